'use strict';
// Devices and modules over AMQP/TLS (5671) and AMQP/WebSocket (443, AMQPWSB10) with the official
// azure-iot-device + azure-iot-device-amqp clients (docs: ../shared/spec/iothub-amqp.md 2, 4):
// CBS authentication, telemetry stored durably before it is accepted, twins (GET, reported patch,
// desired notifications) and direct methods invoked by azure-iothub, and the identity rules.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client, ModuleClient, Message } = require('azure-iot-device');
const { Amqp, AmqpWs } = require('azure-iot-device-amqp');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];

function deviceCs(id, key) { return `HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`; }
function moduleCs(id, mid, key) { return `HostName=${hostName};DeviceId=${id};ModuleId=${mid};SharedAccessKey=${key}`; }

async function newDevice() {
  const id = uniqueId('amqp');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  return { id, key: dev.authentication.symmetricKey.primaryKey };
}

async function newModule(deviceId) {
  const mid = uniqueId('mod');
  const m = (await registry.addModule({ deviceId, moduleId: mid })).responseBody;
  return { mid, key: m.authentication.symmetricKey.primaryKey };
}

function desiredWhere(twin, pred, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching desired properties event')), ms);
    const onDesired = (props) => {
      if (!pred(props)) return;
      clearTimeout(timer);
      twin.removeListener('properties.desired', onDesired);
      resolve(props);
    };
    twin.on('properties.desired', onDesired);
  });
}

function reportedUpdate(twin, patch) {
  return new Promise((resolve, reject) => twin.properties.reported.update(patch, (e) => (e ? reject(e) : resolve())));
}

// The hub's telemetry log, read beside the running hub through SQLite (read-only: safe while the
// hub writes, issue 12). Returns the bodies stored for `deviceId`.
function storedBodies(deviceId, moduleId = '') {
  const db = path.join(process.env.TWINHUB_DATA_DIR, 'twinhub.db');
  const sql = `SELECT hex(body) FROM events WHERE device_id = '${deviceId}' AND module_id = '${moduleId}' ORDER BY seq`;
  const out = execFileSync('sqlite3', ['-readonly', db, sql], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).map((h) => Buffer.from(h, 'hex').toString('utf8'));
}

async function exercise(client, id, mid) {
  await client.open();
  try {
    // Telemetry: sendEvent resolves once the hub accepted, which it does after the commit.
    const body = JSON.stringify({ n: uniqueId('m') });
    const m = new Message(body);
    m.messageId = uniqueId('mid');
    m.properties.add('alert', 'high');
    await client.sendEvent(m);
    assert.ok(storedBodies(id, mid).includes(body), 'the accepted message is in the log');

    const twin = await client.getTwin();
    assert.equal(typeof twin.properties.desired.$version, 'number');
    const v0 = twin.properties.desired.$version;
    await reportedUpdate(twin, { fw: '2.0', nested: { a: 1 } });
    const st = mid ? await registry.getModuleTwin(id, mid) : await registry.getTwin(id);
    assert.equal(st.responseBody.properties.reported.fw, '2.0');

    const got = desiredWhere(twin, (p) => p.rate === 5);
    if (mid) await registry.updateModuleTwin(id, mid, { properties: { desired: { rate: 5 } } }, '*');
    else await registry.updateTwin(id, { properties: { desired: { rate: 5 } } }, '*');
    assert.equal((await got).$version, v0 + 1);

    // A direct method from the service, answered over the AMQP method links.
    const onMethod = (mid ? client.onMethod : client.onDeviceMethod).bind(client);
    onMethod('echo', (req, res) => res.send(201, { got: req.payload }, () => {}));
    const svc = ServiceClient.fromConnectionString(connectionString());
    const call = { methodName: 'echo', payload: { x: 1 }, responseTimeoutInSeconds: 10, connectTimeoutInSeconds: 10 };
    const result = await new Promise((resolve, reject) => {
      const cb = (e, r) => (e ? reject(e) : resolve(r));
      if (mid) svc.invokeDeviceMethod(id, mid, call, cb);
      else svc.invokeDeviceMethod(id, call, cb);
    });
    assert.equal(result.status, 201);
    assert.deepEqual(result.payload, { got: { x: 1 } });
  } finally {
    await client.close();
  }
}

for (const [name, proto] of [['Amqp', Amqp], ['AmqpWs', AmqpWs]]) {
  test(`device over ${name}: telemetry, twin, desired and methods`, async () => {
    const d = await newDevice();
    await exercise(Client.fromConnectionString(deviceCs(d.id, d.key), proto), d.id, '');
  });

  test(`module over ${name}: telemetry, twin, desired and methods`, async () => {
    const d = await newDevice();
    const m = await newModule(d.id);
    await exercise(ModuleClient.fromConnectionString(moduleCs(d.id, m.mid, m.key), proto), d.id, m.mid);
  });

  test(`a wrong key over ${name} is an UnauthorizedError at open`, async () => {
    const d = await newDevice();
    const bad = Buffer.alloc(32, 7).toString('base64');
    const client = Client.fromConnectionString(deviceCs(d.id, bad), proto);
    await assert.rejects(client.open(), (e) => e.constructor.name === 'UnauthorizedError' || /nauthori/.test(e.message));
  });
}

test('disabling a device closes its AMQP connection and the key no longer opens', async () => {
  const d = await newDevice();
  const client = Client.fromConnectionString(deviceCs(d.id, d.key), Amqp);
  await client.open();
  const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
  const dev = (await registry.get(d.id)).responseBody;
  dev.status = 'disabled';
  await registry.update(dev);
  await disconnected;
  await client.close();
  const again = Client.fromConnectionString(deviceCs(d.id, d.key), Amqp);
  await assert.rejects(again.open());
});
