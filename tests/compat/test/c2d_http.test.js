'use strict';
// Cloud-to-device messages over the device HTTPS API and the queue management REST calls (issue 14
// item 3; issue 16 item 2): azure-iot-device-http's Http transport polls
// GET /devices/{id}/messages/devicebound, reads the lock token from the ETag and the properties from
// iothub-* headers, and settles with DELETE (complete), DELETE ?reject and POST .../abandon;
// DELETE /devices/{id}/commands purges; cloudToDeviceMessageCount follows the queue.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const https = require('node:https');
const { Registry, Client: ServiceClient, Amqp: ServiceAmqp } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { Http } = require('azure-iot-device-http');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const policyName = /SharedAccessKeyName=([^;]+)/.exec(connectionString())[1];
const policyKey = /SharedAccessKey=([^;]+)/.exec(connectionString())[1];
function deviceCs(id, key) { return `HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`; }

async function newDevice() {
  const id = uniqueId('c2dh');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  return { id, key: dev.authentication.symmetricKey.primaryKey };
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function inbox(client) {
  const items = [];
  const waiters = [];
  client.on('message', (m) => {
    const w = waiters.shift();
    if (w) w(m); else items.push(m);
  });
  return {
    next(ms = 10000) {
      if (items.length) return Promise.resolve(items.shift());
      return within(new Promise((resolve) => waiters.push(resolve)), ms, 'C2D message');
    },
  };
}

async function feedbackQueue(service) {
  const receiver = (await service.getFeedbackReceiver()).result;
  const records = [];
  const waiters = [];
  receiver.on('message', (msg) => {
    for (const r of JSON.parse(msg.data.toString())) {
      const w = waiters.shift();
      if (w) w(r); else records.push(r);
    }
  });
  return {
    next(ms = 10000) {
      if (records.length) return Promise.resolve(records.shift());
      return within(new Promise((resolve) => waiters.push(resolve)), ms, 'feedback record');
    },
  };
}

// A SAS token as the SDKs make it: sr URL-encoded, HMAC-SHA256 over "sr\nse" with the base64 key.
function sasToken(resource, key, keyName) {
  const sr = encodeURIComponent(resource);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}` + (keyName ? `&skn=${keyName}` : '');
}

function request(method, path, token) {
  const [host, port] = hostName.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: port || 443, method, path, headers: { Authorization: token } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function send(service, id, body, extra = {}) {
  const m = new Message(body);
  m.messageId = extra.messageId || crypto.randomUUID();
  if (extra.ack) m.ack = extra.ack;
  if (extra.correlationId) m.correlationId = extra.correlationId;
  for (const [k, v] of Object.entries(extra.props || {})) m.properties.add(k, v);
  const r = await service.send(id, m);
  assert.equal(r.result.constructor.name, 'MessageEnqueued');
  return m;
}

async function c2dCount(id) {
  return (await registry.get(id)).responseBody.cloudToDeviceMessageCount;
}

test('Http device receives body, ids and properties; complete gives Success feedback and empties the queue', async (t) => {
  const { id, key } = await newDevice();
  const service = ServiceClient.fromConnectionString(connectionString(), ServiceAmqp);
  t.after(() => service.close().catch(() => {}));
  await service.open();
  const feedback = await feedbackQueue(service);
  const sent = await send(service, id, 'over https', { ack: 'full', correlationId: 'corr-h', props: { color: 'blue' } });
  assert.equal(await c2dCount(id), 1);
  const device = Client.fromConnectionString(deviceCs(id, key), Http);
  t.after(() => device.close().catch(() => {}));
  const box = inbox(device);
  await device.open();
  const got = await box.next();
  assert.equal(got.data.toString(), 'over https');
  assert.equal(got.messageId, sent.messageId);
  assert.equal(got.correlationId, 'corr-h');
  assert.equal(got.to, `/devices/${id}/messages/devicebound`);
  // azure-iot-http-base keeps the header name as the property key (as it does against Azure).
  assert.equal(got.properties.getValue('iothub-app-color'), 'blue');
  assert.ok(got.lockToken && !got.lockToken.includes('"'), `lock token ${got.lockToken}`);
  const done = await device.complete(got);
  assert.equal(done.constructor.name, 'MessageCompleted');
  const f = await feedback.next();
  assert.equal(f.originalMessageId, sent.messageId);
  assert.equal(f.statusCode, 'Success');
  assert.equal(await c2dCount(id), 0);
  await device.close();
  await service.close();
});

test('Http device: reject gives Rejected feedback; abandon makes the message come back with a higher delivery count', async (t) => {
  const { id, key } = await newDevice();
  const service = ServiceClient.fromConnectionString(connectionString(), ServiceAmqp);
  t.after(() => service.close().catch(() => {}));
  await service.open();
  const feedback = await feedbackQueue(service);
  const first = await send(service, id, 'reject me', { ack: 'negative' });
  const device = Client.fromConnectionString(deviceCs(id, key), Http);
  t.after(() => device.close().catch(() => {}));
  const box = inbox(device);
  await device.open();
  const a = await box.next();
  assert.equal(a.messageId, first.messageId);
  assert.equal((await device.reject(a)).constructor.name, 'MessageRejected');
  const f = await feedback.next();
  assert.equal(f.originalMessageId, first.messageId);
  assert.equal(f.statusCode, 'Rejected');

  const second = await send(service, id, 'abandon me');
  const b = await box.next();
  assert.equal(b.messageId, second.messageId);
  assert.equal((await device.abandon(b)).constructor.name, 'MessageAbandoned');
  const again = await box.next();
  assert.equal(again.messageId, second.messageId);
  assert.notEqual(again.lockToken, b.lockToken);
  assert.equal((await device.complete(again)).constructor.name, 'MessageCompleted');
  assert.equal(await c2dCount(id), 0);
  await device.close();
  await service.close();
});

test('a settled lock token is 412 DeviceMessageLockLost; an empty queue is 204', async (t) => {
  const { id, key } = await newDevice();
  const service = ServiceClient.fromConnectionString(connectionString(), ServiceAmqp);
  t.after(() => service.close().catch(() => {}));
  await service.open();
  await send(service, id, 'once');
  const token = sasToken(`${hostName}/devices/${id}`, key);
  const got = await request('GET', `/devices/${id}/messages/devicebound?api-version=2020-09-30`, token);
  assert.equal(got.status, 200);
  assert.equal(got.body, 'once');
  const lock = got.headers.etag.replace(/"/g, '');
  assert.equal(got.headers['iothub-deliverycount'], '0');
  assert.ok(Number(got.headers['iothub-sequencenumber']) > 0);
  const ok = await request('DELETE', `/devices/${id}/messages/devicebound/${lock}?api-version=2020-09-30`, token);
  assert.equal(ok.status, 204);
  const stale = await request('DELETE', `/devices/${id}/messages/devicebound/${lock}?api-version=2020-09-30`, token);
  assert.equal(stale.status, 412);
  assert.equal(stale.headers['iothub-errorcode'], 'DeviceMessageLockLost');
  const empty = await request('GET', `/devices/${id}/messages/devicebound?api-version=2020-09-30`, token);
  assert.equal(empty.status, 204);
  await service.close();
});

test("a device's token cannot read or settle another device's messages (401); the message stays queued", async (t) => {
  const a = await newDevice();
  const b = await newDevice();
  const service = ServiceClient.fromConnectionString(connectionString(), ServiceAmqp);
  t.after(() => service.close().catch(() => {}));
  await service.open();
  await send(service, b.id, 'for b only');
  const tokenA = sasToken(`${hostName}/devices/${a.id}`, a.key);
  const r = await request('GET', `/devices/${b.id}/messages/devicebound?api-version=2020-09-30`, tokenA);
  assert.equal(r.status, 401);
  assert.equal(r.headers['iothub-errorcode'], 'IotHubUnauthorizedAccess');
  // A token signed with a's key but naming b's resource does not verify either.
  const forged = sasToken(`${hostName}/devices/${b.id}`, a.key);
  assert.equal((await request('GET', `/devices/${b.id}/messages/devicebound?api-version=2020-09-30`, forged)).status, 401);
  assert.equal(await c2dCount(b.id), 1);
  // A service policy with DeviceConnect (iothubowner) may act for the device, as az iot device c2d-message does.
  const policyToken = sasToken(`${hostName}/devices/${b.id}`, policyKey, policyName);
  const got = await request('GET', `/devices/${b.id}/messages/devicebound?api-version=2020-09-30`, policyToken);
  assert.equal(got.status, 200);
  assert.equal(got.body, 'for b only');
  await service.close();
});

test('DELETE /devices/{id}/commands purges the queue (locked messages too) and reports the count', async (t) => {
  const { id, key } = await newDevice();
  const service = ServiceClient.fromConnectionString(connectionString(), ServiceAmqp);
  t.after(() => service.close().catch(() => {}));
  await service.open();
  for (let i = 0; i < 3; i++) await send(service, id, `m${i}`);
  const devToken = sasToken(`${hostName}/devices/${id}`, key);
  const locked = await request('GET', `/devices/${id}/messages/devicebound?api-version=2020-09-30`, devToken);
  assert.equal(locked.status, 200);
  assert.equal(await c2dCount(id), 3);
  const svcToken = sasToken(hostName, policyKey, policyName);
  const r = await request('DELETE', `/devices/${id}/commands?api-version=2021-04-12`, svcToken);
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { totalMessagesPurged: 3, deviceId: id, moduleId: null });
  assert.equal(await c2dCount(id), 0);
  const lock = locked.headers.etag.replace(/"/g, '');
  const stale = await request('DELETE', `/devices/${id}/messages/devicebound/${lock}?api-version=2020-09-30`, devToken);
  assert.equal(stale.status, 412);
  const unknown = await request('DELETE', `/devices/${uniqueId('nobody')}/commands?api-version=2021-04-12`, svcToken);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.headers['iothub-errorcode'], 'DeviceNotFound');
  // Purging needs ServiceConnect: a device token is not enough.
  assert.equal((await request('DELETE', `/devices/${id}/commands?api-version=2021-04-12`, devToken)).status, 401);
  await service.close();
});
