'use strict';
// Device and module twins over MQTT/TLS (8883) and MQTT/WebSocket (443) with the official
// azure-iot-device + azure-iot-device-mqtt clients, the service side through azure-iothub
// (spec 4.5, 5.1-5.3, 5.7, 5.10, 5.11, 6).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { promisify } = require('node:util');
const { Registry } = require('azure-iothub');
const { Client, ModuleClient } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];

function deviceCs(id, key) { return `HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`; }
function moduleCs(id, mid, key) { return `HostName=${hostName};DeviceId=${id};ModuleId=${mid};SharedAccessKey=${key}`; }

async function newDevice(extra = {}) {
  const id = uniqueId('mq');
  const dev = (await registry.create({ deviceId: id, ...extra })).responseBody;
  return { id, key: dev.authentication.symmetricKey.primaryKey };
}

// Resolves with the first desired event for which pred(props) is true.
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
  return new Promise((resolve, reject) => twin.properties.reported.update(patch, (err) => (err ? reject(err) : resolve())));
}

async function twinRoundTrip(client, serviceUpdate, serviceGet) {
  await client.open();
  try {
    const twin = await client.getTwin();
    assert.equal(typeof twin.properties.desired.$version, 'number');
    assert.equal(typeof twin.properties.reported.$version, 'number');
    const v0 = twin.properties.desired.$version;

    const got = desiredWhere(twin, (p) => p.temp && p.temp.max === 30);
    await serviceUpdate({ properties: { desired: { temp: { max: 30 }, mode: 'eco' } } });
    const patch = await got;
    assert.equal(patch.$version, v0 + 1);
    assert.equal(patch.mode, 'eco');

    // A deletion arrives as an explicit null, with the next $version.
    const removed = desiredWhere(twin, (p) => p.mode === null);
    await serviceUpdate({ properties: { desired: { mode: null } } });
    assert.equal((await removed).$version, v0 + 2);

    await reportedUpdate(twin, { fw: '2.0', nested: { a: 1 } });
    const service = await serviceGet();
    assert.equal(service.properties.reported.fw, '2.0');
    assert.equal(service.properties.reported.nested.a, 1);
    assert.ok(service.properties.reported.$metadata.fw.$lastUpdated, 'reported $metadata');
    assert.equal(service.properties.desired.temp.max, 30);
  } finally {
    await client.close();
  }
}

for (const [name, Transport] of [['MQTT/TLS', Mqtt], ['MQTT/WebSocket', MqttWs]]) {
  test(`${name}: module client gets its twin, receives desired patches, reports properties`, async () => {
    const { id } = await newDevice();
    const mid = 'mod1';
    const mod = (await registry.addModule({ deviceId: id, moduleId: mid })).responseBody;
    const client = ModuleClient.fromConnectionString(moduleCs(id, mid, mod.authentication.symmetricKey.primaryKey), Transport);
    await twinRoundTrip(client,
      (patch) => registry.updateModuleTwin(id, mid, patch, '*'),
      async () => (await registry.getModuleTwin(id, mid)).responseBody);
    await registry.delete(id);
  });

  test(`${name}: device client gets its twin, receives desired patches, reports properties`, async () => {
    const { id, key } = await newDevice();
    const client = Client.fromConnectionString(deviceCs(id, key), Transport);
    await twinRoundTrip(client,
      (patch) => registry.updateTwin(id, patch, '*'),
      async () => (await registry.getTwin(id)).responseBody);
    await registry.delete(id);
  });

  test(`${name}: SAS renewal reconnects with clean-session 0 and keeps the twin subscriptions`, async () => {
    const { id, key } = await newDevice();
    const client = Client.fromConnectionString(deviceCs(id, key), Transport);
    client.setOptions({ tokenRenewal: { tokenValidTimeInSeconds: 20, tokenRenewalMarginInSeconds: 15 } });
    let connects = 0;
    await client.open();
    try {
      const twin = await client.getTwin();
      // The SDK renews every 5 s: DISCONNECT, CONNECT (same client id, clean 0), no SUBSCRIBE.
      const mqttClient = client._transport._mqtt._mqttClient;
      if (mqttClient) mqttClient.on('connect', () => { connects += 1; });
      await new Promise((r) => setTimeout(r, 12000));
      const got = desiredWhere(twin, (p) => p.afterRenewal === 1);
      await registry.updateTwin(id, { properties: { desired: { afterRenewal: 1 } } }, '*');
      await got;
      await reportedUpdate(twin, { renewed: true });
      const service = (await registry.getTwin(id)).responseBody;
      assert.equal(service.properties.reported.renewed, true);
      // 20 s tokens with a 15 s margin: the hub would have closed an unrenewed connection by now.
      if (client._transport._mqtt._mqttClient === mqttClient && mqttClient) assert.ok(connects >= 1, 'no reconnect seen');
    } finally {
      await client.close();
    }
    await registry.delete(id);
  });

  test(`${name}: a disabled device and a wrong key are refused (CONNACK 5)`, async () => {
    const disabled = await newDevice({ status: 'disabled' });
    const c1 = Client.fromConnectionString(deviceCs(disabled.id, disabled.key), Transport);
    await assert.rejects(c1.open(), (err) => err.constructor.name === 'UnauthorizedError');
    const ok = await newDevice();
    const wrongKey = Buffer.alloc(32, 9).toString('base64');
    const c2 = Client.fromConnectionString(deviceCs(ok.id, wrongKey), Transport);
    await assert.rejects(c2.open(), (err) => err.constructor.name === 'UnauthorizedError');
    await registry.delete(disabled.id);
    await registry.delete(ok.id);
  });
}
