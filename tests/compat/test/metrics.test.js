'use strict';
// GET /metrics (Prometheus text) around traffic from the official Node SDKs: N telemetry
// messages, M reported patches, device twin reads, service twin reads and updates, K method
// calls (and one to an offline device), C C2D messages the device completes, Q twin queries. Each
// Azure Monitor counter must move by exactly what was sent. The hub runs with
// TWINHUB_METRICS_PORT=19464 (tests/compat/CMakeLists.txt) and TWINHUB_METRICS_TOKEN.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const https = require('node:https');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId } = require('../lib/hub');

const metricsPort = Number(process.env.TWINHUB_METRICS_PORT || 19464);
const metricsToken = process.env.TWINHUB_METRICS_TOKEN;
const registry = Registry.fromConnectionString(connectionString());
const service = ServiceClient.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];

function get(mod, options) {
  return new Promise((resolve, reject) => {
    mod.get(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

// name -> value of every sample line (histogram buckets keep their labels in the name).
function parse(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape() {
  const r = await get(http, { host: '127.0.0.1', port: metricsPort, path: '/metrics' });
  assert.equal(r.status, 200);
  return parse(r.body);
}

const C = {
  ingressAll: 'twinhub_d2c_telemetry_ingress_allProtocol_total',
  ingressOk: 'twinhub_d2c_telemetry_ingress_success_total',
  d2cRead: 'twinhub_d2c_twin_read_success_total',
  d2cUpdate: 'twinhub_d2c_twin_update_success_total',
  c2dRead: 'twinhub_c2d_twin_read_success_total',
  c2dUpdate: 'twinhub_c2d_twin_update_success_total',
  methodsOk: 'twinhub_c2d_methods_success_total',
  methodsFail: 'twinhub_c2d_methods_failure_total',
  c2dComplete: 'twinhub_c2d_commands_egress_complete_success_total',
  queries: 'twinhub_twinQueries_success_total',
  quota: 'twinhub_dailyMessageQuotaUsed',
  connected: 'twinhub_connectedDeviceCount',
  connectedAll: 'twinhub_devices_connectedDevices_allProtocol',
  total: 'twinhub_totalDeviceCount',
};

function delta(before, after, name) {
  assert.ok(after.has(name), `${name} is exported`);
  return after.get(name) - before.get(name);
}

// Scrapes until `name` has moved by `want` (a completion the device does not wait for lands just
// after the SDK's callback), at most 10 s; returns the last scrape.
async function until(before, name, want, pred = (d) => d >= want) {
  const end = Date.now() + 10000;
  for (;;) {
    const now = await scrape();
    if (pred(delta(before, now, name)) || Date.now() > end) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the text format: HELP names the Azure metric, TYPE, histograms, process figures', async () => {
  const r = await get(http, { host: '127.0.0.1', port: metricsPort, path: '/metrics' });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^# HELP twinhub_d2c_telemetry_ingress_allProtocol_total Azure Monitor IoT Hub metric d2c\.telemetry\.ingress\.allProtocol: /m);
  assert.match(r.body, /^# TYPE twinhub_d2c_telemetry_ingress_allProtocol_total counter$/m);
  assert.match(r.body, /^# TYPE twinhub_store_commit_latency_seconds histogram$/m);
  assert.match(r.body, /^twinhub_store_commit_latency_seconds_bucket\{le="\+Inf"\} \d+$/m);
  assert.match(r.body, /^twinhub_store_commit_group_size_count \d+$/m);
  const m = parse(r.body);
  for (const name of ['twinhub_store_wal_bytes', 'twinhub_store_commits_in_flight', 'process_resident_memory_bytes',
    'process_open_fds', 'twinhub_uptime_seconds', 'process_start_time_seconds', C.quota, C.total]) {
    assert.ok(m.has(name), `${name} is exported`);
  }
  assert.ok(m.get('process_resident_memory_bytes') > 1e6);
  assert.ok(m.get('process_open_fds') > 3);
  // Every line is a comment or "name value" (Prometheus rejects anything else).
  for (const line of r.body.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) \S+ .+|[a-zA-Z_:][\w:]*(\{[^}]*\})? -?[\d.e+-]+)$/);
});

test('/metrics on the HTTPS port: 401 without a token, 200 with the bearer token or a SAS token', async () => {
  const base = { host: '127.0.0.1', port: 443, path: '/metrics', servername: 'localhost' };
  assert.equal((await get(https, base)).status, 401);
  assert.equal((await get(https, { ...base, headers: { Authorization: 'Bearer wrong' } })).status, 401);
  if (metricsToken) {
    const r = await get(https, { ...base, headers: { Authorization: `Bearer ${metricsToken}` } });
    assert.equal(r.status, 200);
    assert.match(r.body, /twinhub_totalDeviceCount/);
  }
  const { SharedAccessSignature } = require('azure-iothub');
  const parts = Object.fromEntries(connectionString().split(';').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  const sas = SharedAccessSignature.create(parts.HostName, parts.SharedAccessKeyName, parts.SharedAccessKey,
    Math.floor(Date.now() / 1000) + 600).toString();
  const r = await get(https, { ...base, headers: { Authorization: sas } });
  assert.equal(r.status, 200);
});

test('counters move by exactly the traffic the SDKs sent', async () => {
  const N = 7; const M = 5; const K = 3; const Q = 2; const CM = 2; const R = 2;
  const start = await scrape();
  const id = uniqueId('metrics');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  let m0 = await scrape();
  assert.equal(delta(start, m0, C.total), 1, 'totalDeviceCount counts the new device');

  const client = Client.fromConnectionString(
    `HostName=${hostName};DeviceId=${id};SharedAccessKey=${dev.authentication.symmetricKey.primaryKey}`, Mqtt);
  await client.open();
  try {
    let m1 = await until(m0, C.connected, 1);
    assert.equal(delta(m0, m1, C.connected), 1, 'connectedDeviceCount counts the connected device');
    assert.equal(delta(m0, m1, C.connectedAll), 1);

    // N telemetry messages.
    m0 = m1;
    for (let i = 0; i < N; i += 1) await client.sendEvent(new Message(JSON.stringify({ i })));
    m1 = await scrape();
    assert.equal(delta(m0, m1, C.ingressAll), N);
    assert.equal(delta(m0, m1, C.ingressOk), N);
    assert.equal(delta(m0, m1, C.quota), N, 'small messages count one quota message each');

    // Device twin: one GET, M reported patches.
    m0 = m1;
    const twin = await client.getTwin();
    for (let i = 0; i < M; i += 1) {
      await new Promise((resolve, reject) => twin.properties.reported.update({ n: i }, (e) => (e ? reject(e) : resolve())));
    }
    m1 = await scrape();
    assert.equal(delta(m0, m1, C.d2cRead), 1);
    assert.equal(delta(m0, m1, C.d2cUpdate), M);
    assert.equal(delta(m0, m1, C.quota), 1 + M);
    assert.equal(delta(m0, m1, C.ingressAll), 0);

    // Service twin: R reads, one desired update.
    m0 = m1;
    for (let i = 0; i < R; i += 1) await registry.getTwin(id);
    await registry.updateTwin(id, { properties: { desired: { speed: 3 } } }, '*');
    m1 = await scrape();
    assert.equal(delta(m0, m1, C.c2dRead), R);
    assert.equal(delta(m0, m1, C.c2dUpdate), 1);
    assert.equal(delta(m0, m1, C.d2cUpdate), 0);

    // K method calls answered, one to an offline device.
    client.onDeviceMethod('ping', (req, res) => res.send(200, { pong: req.payload }));
    m0 = await scrape();
    for (let i = 0; i < K; i += 1) {
      const r = await service.invokeDeviceMethod(id, { methodName: 'ping', payload: i, connectTimeoutInSeconds: 10, responseTimeoutInSeconds: 10 });
      assert.equal(r.result.status, 200);
    }
    const offline = uniqueId('metrics-off');
    await registry.create({ deviceId: offline });
    await assert.rejects(service.invokeDeviceMethod(offline, { methodName: 'ping', payload: 1, connectTimeoutInSeconds: 0, responseTimeoutInSeconds: 5 }));
    m1 = await scrape();
    assert.equal(delta(m0, m1, C.methodsOk), K);
    assert.equal(delta(m0, m1, C.methodsFail), 1);
    assert.equal(delta(m0, m1, C.quota), 2 * K, 'a method counts its request and its response');
    assert.equal(delta(m0, m1, C.total), 1);

    // CM cloud-to-device messages, completed by the device (MQTT PUBACK).
    m0 = m1;
    const got = [];
    const received = new Promise((resolve) => {
      client.on('message', (msg) => { got.push(msg); client.complete(msg, () => {}); if (got.length === CM) resolve(); });
    });
    await service.open();
    try {
      for (let i = 0; i < CM; i += 1) await service.send(id, new Message(`c2d ${i}`));
      await received;
    } finally {
      await service.close();
    }
    m1 = await until(m0, C.c2dComplete, CM);
    assert.equal(delta(m0, m1, C.c2dComplete), CM);

    // Q twin queries (one small page each).
    m0 = await scrape();
    for (let i = 0; i < Q; i += 1) {
      const q = registry.createQuery(`SELECT deviceId FROM devices WHERE deviceId = '${id}'`);
      const page = await q.next();
      assert.equal(page.result.length, 1);
    }
    m1 = await scrape();
    assert.equal(delta(m0, m1, C.queries), Q);
    assert.equal(delta(m0, m1, C.quota), Q, 'small query results count one quota message each');

    // Store figures moved with the writes.
    assert.ok(m1.get('twinhub_store_commit_latency_seconds_count') > start.get('twinhub_store_commit_latency_seconds_count'));
    assert.ok(m1.get('twinhub_store_wal_bytes') > 0);
  } finally {
    await client.close();
  }
  const end = await until(start, C.connected, 0, (d) => d === 0);
  assert.equal(delta(start, end, C.connected), 0, 'the closed device no longer counts as connected');
});
