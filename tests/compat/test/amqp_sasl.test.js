'use strict';
// SASL on the AMQP port as other clients than the Node SDKs do it (issue 14 item 1):
// `az iot hub monitor-events` (uamqp) sends SASL PLAIN with username `{policy}@sas.root.{hub}` and
// a SAS token as password, then attaches to the Event Hubs-compatible endpoint without CBS. rhea
// (the AMQP library under the Node SDKs) does the same PLAIN exchange here.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const rhea = require('rhea');

const cli = path.join(process.env.TWINHUB_BIN_DIR, 'twinhub');
function show(args) {
  return execFileSync(cli, ['hub', 'connection-string', 'show', ...args, '--data-dir', process.env.TWINHUB_DATA_DIR],
    { encoding: 'utf8' }).trim();
}
const serviceCs = show(['--policy-name', 'service']);
const entity = /EntityPath=([^;]+)/.exec(show(['--eventhub', '--policy-name', 'service']))[1];
const host = /HostName=([^;:]+)/.exec(serviceCs)[1];
const key = /SharedAccessKey=([^;]+)/.exec(serviceCs)[1];
const hubName = host.split('.')[0];

function token(sr, k, skn) {
  const se = Math.floor(Date.now() / 1000) + 3600;
  const esr = encodeURIComponent(sr);
  const sig = crypto.createHmac('sha256', Buffer.from(k, 'base64')).update(`${esr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${esr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${skn}`;
}

// Opens a connection with SASL PLAIN and a receiver on partition 0; resolves 'open' or the error.
function attach(password) {
  return new Promise((resolve) => {
    const container = rhea.create_container();
    const conn = container.connect({
      host: '127.0.0.1', servername: host, port: 5671, transport: 'tls', reconnect: false,
      username: `service@sas.root.${hubName}`, password,
    });
    const done = (what) => { try { conn.close(); } catch (_) { /* closing anyway */ } resolve(what); };
    const timer = setTimeout(() => done('timeout'), 10000);
    conn.on('receiver_open', () => { clearTimeout(timer); done('open'); });
    conn.on('connection_error', (ctx) => { clearTimeout(timer); done('error: ' + (ctx.connection.error && ctx.connection.error.condition)); });
    conn.on('disconnected', (ctx) => { clearTimeout(timer); done('disconnected' + (ctx.error ? ': ' + ctx.error.message : '')); });
    conn.open_receiver({ source: { address: `${entity}/ConsumerGroups/$Default/Partitions/0` } });
  });
}

test('SASL PLAIN with a service policy token opens an Event Hubs receiver without CBS', async () => {
  assert.equal(await attach(token(host, key, 'service')), 'open');
});

test('SASL PLAIN with a wrongly signed token is refused and opens nothing', async () => {
  const wrong = crypto.randomBytes(32).toString('base64');
  const r = await attach(token(host, wrong, 'service'));
  assert.notEqual(r, 'open');
  assert.notEqual(r, 'timeout');
});
