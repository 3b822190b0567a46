'use strict';
// Direct methods (spec 3.8, 5.8, 3.11): the official azure-iothub Client invokes methods on official
// azure-iot-device Client/ModuleClient handlers over MQTT/TLS and MQTT/WebSocket, through a real
// twinhubd: payload types, handler status codes, 128 KB limits both ways, timeouts (504101), offline
// targets (404103), unknown identities, validation, concurrency and disconnects.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client, ModuleClient } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId, rejectsWith } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const service = ServiceClient.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];

const KB128 = 128 * 1024;
// The first call after a handler is registered waits for the SDK's SUBSCRIBE to land.
const firstCall = { connectTimeoutInSeconds: 10 };

async function newDevice() {
  const id = uniqueId('dm');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  return { id, key: dev.authentication.symmetricKey.primaryKey };
}

async function newModule() {
  const { id } = await newDevice();
  const mid = 'mod1';
  const mod = (await registry.addModule({ deviceId: id, moduleId: mid })).responseBody;
  return { id, mid, key: mod.authentication.symmetricKey.primaryKey };
}

async function openDevice(Transport = Mqtt) {
  const d = await newDevice();
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${d.id};SharedAccessKey=${d.key}`, Transport);
  await client.open();
  return { ...d, client };
}

async function openModule(Transport = Mqtt) {
  const m = await newModule();
  const client = ModuleClient.fromConnectionString(
    `HostName=${hostName};DeviceId=${m.id};ModuleId=${m.mid};SharedAccessKey=${m.key}`, Transport);
  await client.open();
  return { ...m, client };
}

// Registers a method handler: Client.onDeviceMethod, ModuleClient.onMethod.
function onMethod(client, name, handler) {
  if (client instanceof ModuleClient) client.onMethod(name, handler);
  else client.onDeviceMethod(name, handler);
}

// Invokes on a device ({id}) or a module ({id, mid}); resolves with the parsed {status, payload}.
async function invoke(target, params) {
  const r = target.mid
    ? await service.invokeDeviceMethod(target.id, target.mid, params)
    : await service.invokeDeviceMethod(target.id, params);
  assert.equal(r.message.statusCode, 200);
  return r.result;
}

// Expects the call to fail with HTTP `status` and, in the nested method error body the real hub
// uses for 404103/504101 (spec 3.11), the numeric `errorCode`.
async function rejectsWithMethodError(promise, status, errorCode) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected the invocation to fail');
  assert.equal(err.response && err.response.statusCode, status, `error: ${err.message}`);
  const outer = JSON.parse(err.responseBody);
  const inner = JSON.parse(outer.Message);
  assert.equal(inner.errorCode, errorCode);
  assert.equal(typeof inner.message, 'string');
  assert.ok(inner.trackingId);
  assert.ok(inner.timestampUtc);
  return { err, inner };
}

// Expects a registry-form error (ErrorCode:<code>;...) with HTTP `status`.
async function rejectsWithCode(promise, status, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected the invocation to fail');
  assert.equal(err.response && err.response.statusCode, status, `error: ${err.message}`);
  assert.match(String(err.responseBody), new RegExp(`"Message":"ErrorCode:${code};`));
  assert.equal(err.response.headers['iothub-errorcode'], code);
  return err;
}

for (const [transportName, Transport] of [['MQTT/TLS', Mqtt], ['MQTT/WebSocket', MqttWs]]) {
  for (const kind of ['device', 'module']) {
    test(`${transportName} ${kind}: object payload in, object payload and status out`, async () => {
      const t = kind === 'device' ? await openDevice(Transport) : await openModule(Transport);
      try {
        const seen = [];
        onMethod(t.client, 'reboot', (req, res) => {
          seen.push(req);
          res.send(200, { ok: true, echo: req.payload, name: req.methodName });
        });
        const r = await invoke(t, { methodName: 'reboot', payload: { delay: 5, nested: { a: [1, 'x'] } },
          responseTimeoutInSeconds: 10, ...firstCall });
        assert.deepEqual(r, { status: 200, payload: { ok: true, echo: { delay: 5, nested: { a: [1, 'x'] } }, name: 'reboot' } });
        assert.equal(seen.length, 1);
        assert.ok(seen[0].requestId);
      } finally {
        await t.client.close();
      }
    });
  }
}

test('payloads: strings, numbers, arrays, booleans and null both ways', async () => {
  const t = await openDevice();
  try {
    onMethod(t.client, 'echo', (req, res) => res.send(200, req.payload));
    onMethod(t.client, 'nothing', (req, res) => res.send(200));
    onMethod(t.client, 'type', (req, res) => res.send(200, req.payload === null ? 'null' : typeof req.payload));
    await invoke(t, { methodName: 'echo', payload: 1, ...firstCall });
    for (const p of ['text with "quotes" and ünïcödé', 42, -1.5, [1, [2], { a: null }], true, false, {}]) {
      assert.deepEqual(await invoke(t, { methodName: 'echo', payload: p }), { status: 200, payload: p });
    }
    // No payload: the device gets JSON null (never an empty body) and may answer nothing.
    assert.deepEqual(await invoke(t, { methodName: 'type' }), { status: 200, payload: 'null' });
    assert.deepEqual(await invoke(t, { methodName: 'type', payload: null }), { status: 200, payload: 'null' });
    assert.deepEqual(await invoke(t, { methodName: 'nothing', payload: { a: 1 } }), { status: 200, payload: null });
  } finally {
    await t.client.close();
  }
});

test('handler status codes other than 200 come back as HTTP 200 with that status', async () => {
  const t = await openModule();
  try {
    onMethod(t.client, 'fail', (req, res) => res.send(req.payload.status, { reason: 'because' }));
    for (const status of [201, 400, 404, 500, 503, 999, -7]) {
      const r = await invoke(t, { methodName: 'fail', payload: { status }, ...firstCall });
      assert.deepEqual(r, { status, payload: { reason: 'because' } });
    }
  } finally {
    await t.client.close();
  }
});

test('a request payload of exactly 128 KB is delivered; one byte more is 413 MessageTooLarge', async () => {
  const t = await openDevice();
  try {
    onMethod(t.client, 'size', (req, res) => res.send(200, { length: JSON.stringify(req.payload).length }));
    const atLimit = 'x'.repeat(KB128 - 2); // JSON text: 131072 bytes with its quotes
    const r = await invoke(t, { methodName: 'size', payload: atLimit, ...firstCall });
    assert.deepEqual(r, { status: 200, payload: { length: KB128 } });
    const err = await rejectsWithCode(service.invokeDeviceMethod(t.id, { methodName: 'size', payload: atLimit + 'x' }),
      413, 'MessageTooLarge');
    assert.match(err.responseBody, /128 KB/);
  } finally {
    await t.client.close();
  }
});

test('a response payload of exactly 128 KB is returned; a larger one fails the call with 413', async () => {
  const t = await openModule();
  try {
    onMethod(t.client, 'big', (req, res) => res.send(200, 'y'.repeat(req.payload - 2)));
    const r = await invoke(t, { methodName: 'big', payload: KB128, ...firstCall });
    assert.equal(r.payload.length, KB128 - 2);
    const err = await rejectsWithCode(service.invokeDeviceMethod(t.id, t.mid, { methodName: 'big', payload: KB128 + 1000 }),
      413, 'MessageTooLarge');
    assert.match(err.responseBody, /answered method 'big'/);
    // The connection is still usable afterwards.
    assert.equal((await invoke(t, { methodName: 'big', payload: 10 })).payload, 'yyyyyyyy');
  } finally {
    await t.client.close();
  }
});

test('no answer within responseTimeoutInSeconds is 504 GatewayTimeout (504101); a late answer is dropped', async () => {
  const t = await openDevice();
  try {
    let late;
    onMethod(t.client, 'slow', (req, res) => { late = res; });
    onMethod(t.client, 'fast', (req, res) => res.send(200, 'ok'));
    await invoke(t, { methodName: 'fast', ...firstCall });
    const started = Date.now();
    const { err, inner } = await rejectsWithMethodError(
      service.invokeDeviceMethod(t.id, { methodName: 'slow', responseTimeoutInSeconds: 5 }), 504, 504101);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 4900 && elapsed < 9000, `timed out after ${elapsed} ms`);
    assert.equal(err.constructor.name, 'GatewayTimeoutError');
    assert.equal(inner.info.timeout, '00:00:05');
    assert.equal(err.response.headers['iothub-errorcode'], 'GatewayTimeout');
    await late.send(200, 'too late'); // dropped by the hub
    assert.deepEqual(await invoke(t, { methodName: 'fast' }), { status: 200, payload: 'ok' });
  } finally {
    await t.client.close();
  }
});

test('offline targets are 404 DeviceNotOnline (404103): never connected, connected without a handler, disconnected', async () => {
  const d = await newDevice();
  const { err, inner } = await rejectsWithMethodError(service.invokeDeviceMethod(d.id, { methodName: 'm' }), 404, 404103);
  assert.equal(inner.info.timeout, '00:00:00');
  assert.equal(err.response.headers['iothub-errorcode'], 'DeviceNotOnline');

  // Connected, but never registered a method handler (not subscribed to $iothub/methods/POST/#).
  const t = await openModule();
  try {
    await t.client.getTwin();
    await rejectsWithMethodError(service.invokeDeviceMethod(t.id, t.mid, { methodName: 'm' }), 404, 404103);
  } finally {
    await t.client.close();
  }

  // Was subscribed, then closed the connection.
  const u = await openDevice();
  u.client.onDeviceMethod('m', (req, res) => res.send(200));
  await invoke(u, { methodName: 'm', ...firstCall });
  await u.client.close();
  await rejectsWithMethodError(service.invokeDeviceMethod(u.id, { methodName: 'm' }), 404, 404103);

  // connectTimeoutInSeconds bounds the wait; the error says which timeout applied.
  const started = Date.now();
  const r = await rejectsWithMethodError(
    service.invokeDeviceMethod(d.id, { methodName: 'm', connectTimeoutInSeconds: 2 }), 404, 404103);
  assert.ok(Date.now() - started >= 1900);
  assert.equal(r.inner.info.timeout, '00:00:02');
});

test('connectTimeoutInSeconds waits for the device to connect and subscribe', async () => {
  const d = await newDevice();
  const pending = service.invokeDeviceMethod(d.id, { methodName: 'hello', payload: 'early', connectTimeoutInSeconds: 20 });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${d.id};SharedAccessKey=${d.key}`, Mqtt);
  await client.open();
  try {
    client.onDeviceMethod('hello', (req, res) => res.send(202, `got ${req.payload}`));
    const r = await pending;
    assert.deepEqual(r.result, { status: 202, payload: 'got early' });
  } finally {
    await client.close();
  }
});

test('a disconnect fails the calls pending on that connection at once with 504', async () => {
  const t = await openDevice();
  let closed = false;
  try {
    const got = new Promise((resolve) => onMethod(t.client, 'hang', () => resolve()));
    const call = service.invokeDeviceMethod(t.id, { methodName: 'hang', responseTimeoutInSeconds: 60, ...firstCall });
    const outcome = rejectsWithMethodError(call, 504, 504101);
    await got;
    const started = Date.now();
    await t.client.close();
    closed = true;
    const { inner } = await outcome;
    assert.ok(Date.now() - started < 5000, 'failed at once, not after the 60 s timeout');
    assert.match(inner.message, /disconnected/);
  } finally {
    if (!closed) await t.client.close();
  }
});

test('unknown device is 404 DeviceNotFound, unknown module 404 ModuleNotFound', async () => {
  await rejectsWith(service.invokeDeviceMethod(uniqueId('nobody'), { methodName: 'm' }), 'DeviceNotFoundError', 404,
    'DeviceNotFound');
  const d = await newDevice();
  await rejectsWithCode(service.invokeDeviceMethod(d.id, 'nomodule', { methodName: 'm' }), 404, 'ModuleNotFound');
});

test('bad method names and timeouts are 400 ArgumentInvalid', async () => {
  const d = await newDevice();
  for (const params of [
    { methodName: 'a/b' }, { methodName: 'has space' }, { methodName: '$edge' }, { methodName: 'a#b' },
    { methodName: 'm', responseTimeoutInSeconds: 4 }, { methodName: 'm', responseTimeoutInSeconds: 301 },
    { methodName: 'm', connectTimeoutInSeconds: 301 }, { methodName: 'm', connectTimeoutInSeconds: -1 },
  ]) {
    const err = await rejectsWith(service.invokeDeviceMethod(d.id, params), 'ArgumentError', 400);
    assert.match(String(err.responseBody), /"Message":"ErrorCode:ArgumentInvalid;/, JSON.stringify(params));
  }
});

test('many calls in flight to one device and to many modules', async () => {
  const dev = await openDevice();
  const mods = [];
  try {
    // The handler answers in reverse arrival order, so answers come back out of order.
    const held = [];
    dev.client.onDeviceMethod('count', (req, res) => {
      held.push([req, res]);
      if (held.length === 50) for (const [q, s] of held.reverse()) s.send(200, q.payload * 2);
    });
    dev.client.onDeviceMethod('ping', (req, res) => res.send(200));
    await invoke(dev, { methodName: 'ping', ...firstCall });
    const calls = [];
    for (let i = 0; i < 50; i++) calls.push(invoke(dev, { methodName: 'count', payload: i }));
    const results = await Promise.all(calls);
    results.forEach((r, i) => assert.deepEqual(r, { status: 200, payload: i * 2 }));

    for (let i = 0; i < 5; i++) mods.push(await openModule());
    for (const m of mods) onMethod(m.client, 'who', (req, res) => res.send(200, { id: m.id, n: req.payload }));
    await Promise.all(mods.map((m) => invoke(m, { methodName: 'who', payload: -1, ...firstCall })));
    const fanout = [];
    for (let n = 0; n < 10; n++) for (const m of mods) fanout.push(invoke(m, { methodName: 'who', payload: n }).then((r) => [m, n, r]));
    for (const [m, n, r] of await Promise.all(fanout)) assert.deepEqual(r, { status: 200, payload: { id: m.id, n } });
  } finally {
    await dev.client.close();
    for (const m of mods) await m.client.close();
  }
});
