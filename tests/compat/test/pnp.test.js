'use strict';
// IoT Plug and Play (issue 16 item 6): the model id a device announces (azure-iot-device-mqtt's
// setOptions({ modelId }) -> &model-id= in the MQTT username) is the twin's modelId and queryable;
// azure-iothub's DigitalTwinClient reads the twin in the PnP convention (root properties,
// components marked "__t": "c", writable property acks), writes desired properties with JSON
// Patch, and invokes commands (direct methods `name` and `component*name`).
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Registry, DigitalTwinClient, IoTHubTokenCredentials } = require('azure-iothub');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const dt = new DigitalTwinClient(new IoTHubTokenCredentials(connectionString()));
const MODEL = 'dtmi:com:example:TemperatureController;2';
const clients = [];
after(async () => { for (const c of clients) await c.close().catch(() => {}); });

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function pnpDevice(model = MODEL) {
  const id = uniqueId('pnp');
  const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`, Mqtt);
  await client.setOptions({ modelId: model });
  await client.open();
  clients.push(client);
  return { id, client };
}

test('model-id in the MQTT username is the twin\'s modelId, queryable', async () => {
  const { id } = await pnpDevice();
  const twin = (await registry.getTwin(id)).responseBody;
  assert.equal(twin.modelId, MODEL);
  const q = registry.createQuery(`SELECT * FROM devices WHERE modelId = '${MODEL}' AND deviceId = '${id}'`);
  const rows = (await q.nextAsTwin()).result;
  assert.equal(rows.length, 1);
  assert.equal(rows[0].deviceId, id);
  const none = (await registry.createQuery(`SELECT * FROM devices WHERE modelId = 'dtmi:other;1' AND deviceId = '${id}'`).nextAsTwin()).result;
  assert.equal(none.length, 0);
});

test('getDigitalTwin: $dtId, $model, root properties, components, writable property acks', async () => {
  const { id, client } = await pnpDevice();
  const twin = await client.getTwin();
  await new Promise((res, rej) => twin.properties.reported.update({
    serialNumber: 'SN-1',
    targetTemperature: { value: 21.5, ac: 200, av: 1, ad: 'ok' },
    thermostat1: { __t: 'c', maxTempSinceLastReboot: 30.1 },
  }, (e) => (e ? rej(e) : res())));
  const d = await dt.getDigitalTwin(id);
  assert.equal(d.$dtId, id);
  assert.equal(d.$metadata.$model, MODEL);
  assert.equal(d.serialNumber, 'SN-1');
  assert.equal(d.targetTemperature, 21.5);
  assert.equal(d.$metadata.targetTemperature.ackCode, 200);
  assert.equal(d.$metadata.targetTemperature.ackVersion, 1);
  assert.equal(d.$metadata.targetTemperature.ackDescription, 'ok');
  assert.ok(d.$metadata.serialNumber.lastUpdateTime);
  assert.equal(d.thermostat1.maxTempSinceLastReboot, 30.1);
  assert.ok(d.thermostat1.$metadata);
  assert.equal(d.thermostat1.__t, undefined);
});

test('updateDigitalTwin: JSON Patch becomes desired properties the device receives', async () => {
  const { id, client } = await pnpDevice();
  const twin = await client.getTwin();
  const got = new Promise((resolve) => twin.on('properties.desired', (p) => { if (p.targetTemperature === 42) resolve(p); }));
  await dt.updateDigitalTwin(id, [
    { op: 'add', path: '/targetTemperature', value: 42 },
    { op: 'add', path: '/thermostat1/targetTemperature', value: 30 },
  ]);
  const p = await within(got, 10000, 'desired patch');
  assert.equal(p.thermostat1.targetTemperature, 30);
  assert.equal(p.thermostat1.__t, 'c');
  const d = await dt.getDigitalTwin(id);
  assert.equal(d.$metadata.targetTemperature.desiredValue, 42);
  assert.equal(d.thermostat1.$metadata.targetTemperature.desiredValue, 30);
  await dt.updateDigitalTwin(id, [{ op: 'remove', path: '/targetTemperature' }]);
  const t = (await registry.getTwin(id)).responseBody;
  assert.equal(t.properties.desired.targetTemperature, undefined);
  // Bad patches: 400, nothing written.
  const before = (await registry.getTwin(id)).responseBody.properties.desired.$version;
  for (const bad of [[{ op: 'move', path: '/a', from: '/b' }], [{ op: 'add', path: 'x', value: 1 }], [], [{ op: 'add', path: '/a' }]]) {
    await assert.rejects(dt.updateDigitalTwin(id, bad), (e) => e.statusCode === 400);
  }
  assert.equal((await registry.getTwin(id)).responseBody.properties.desired.$version, before);
});

test('commands: root and component commands are direct methods; status and payload come back', async () => {
  const { id, client } = await pnpDevice();
  client.onDeviceMethod('reboot', (req, res) => res.send(200, { echo: req.payload }));
  client.onDeviceMethod('thermostat1*getMaxMinReport', (req, res) => res.send(201, { max: 30, since: req.payload }));
  const r = await dt.invokeCommand(id, 'reboot', { delay: 1 }, { responseTimeoutInSeconds: 10 });
  assert.deepEqual(r.body.echo, { delay: 1 });
  assert.equal(r.xMsCommandStatuscode, 200);
  assert.ok(r.xMsRequestId);
  const c = await dt.invokeComponentCommand(id, 'thermostat1', 'getMaxMinReport', '2020-01-01', { responseTimeoutInSeconds: 10 });
  assert.equal(c.body.max, 30);
  assert.equal(c.body.since, '2020-01-01');
  assert.equal(c.xMsCommandStatuscode, 201);
  // A device that is not connected: 404 DeviceNotOnline.
  const off = uniqueId('pnpoff');
  await registry.create({ deviceId: off });
  await assert.rejects(dt.invokeCommand(off, 'reboot', {}), (e) => e.statusCode === 404);
  await assert.rejects(dt.getDigitalTwin(uniqueId('nosuch')), (e) => e.statusCode === 404);
});
