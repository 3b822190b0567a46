'use strict';
// Key rotation cuts live sessions (issue 12 item 3): azure-iothub's Registry.update with new keys
// disconnects an azure-iot-device client connected with the old key over MQTT/TLS (8883) and
// MQTT/WebSocket (443); the SDK's reconnect with the old key is refused (CONNACK 5), a client
// with the new key connects. A client whose key is still valid stays connected.
//
// The SDK's view of CONNACK 5: mqtt.js 4.x/5.x gives its connect error a numeric `code` (the
// return code), and azure-iot-mqtt-base's translateError maps any error with a `code` to
// NotConnectedError, which the default retry policy retries for 240 s. So with the default policy
// a cut client keeps reconnecting (and being refused) for four minutes before it emits
// 'disconnect', as it would against Azure. The clients here use NoRetry so that the refusal
// surfaces at once.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');
const { Registry } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
// azure-iot-common comes with azure-iot-device (the copy it uses, not a package of our own).
const { NoRetry } = require(require.resolve('azure-iot-common', { paths: [require.resolve('azure-iot-device')] }));
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { Amqp, AmqpWs } = require('azure-iot-device-amqp');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];

function deviceCs(id, key) { return `HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`; }
function newKey() { return crypto.randomBytes(32).toString('base64'); }

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// CONNACK 5 as the SDK reports it (see the file comment): 'Connection refused: Not authorized'.
function refused(err) {
  if (err && err.constructor.name === 'UnauthorizedError') return true;  // AMQP: CBS put-token 401
  assert.match(String(err && (err.message || err)), /Not authorized|UnauthorizedError/, `${err && err.constructor.name}: ${err && err.message}`);
  return true;
}

async function newDevice() {
  const id = uniqueId('kr');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  return { id, keys: dev.authentication.symmetricKey };
}

// An open client with a twin desired-properties listener: after a transport disconnect the SDK
// reconnects to re-enable it, and emits 'disconnect' when that fails.
async function openWithTwin(id, key, Transport) {
  const client = Client.fromConnectionString(deviceCs(id, key), Transport);
  await client.open();
  const twin = await client.getTwin();
  twin.on('properties.desired', () => {});
  await client.sendEvent(new Message('before'));
  return client;
}

for (const [name, Transport] of [['MQTT/TLS', Mqtt], ['MQTT/WebSocket', MqttWs], ['AMQP/TLS', Amqp], ['AMQP/WebSocket', AmqpWs]]) {
  test(`${name}: a new primary key disconnects the client; the old key is refused, the new one connects`, async () => {
    const { id, keys } = await newDevice();
    const client = await openWithTwin(id, keys.primaryKey, Transport);
    client.setRetryPolicy(new NoRetry());
    // The transport's own event (internal): the moment the hub closed the connection.
    const transportDown = new Promise((resolve) => client._transport.once('disconnect', () => resolve(performance.now())));
    const disconnected = new Promise((resolve) => client.once('disconnect', resolve));

    const rotated = newKey();
    const t0 = performance.now();
    await registry.update({ deviceId: id, authentication: { symmetricKey: { primaryKey: rotated, secondaryKey: keys.secondaryKey } } });
    const tUpdated = performance.now();
    const tDown = await within(transportDown, 10000, 'transport disconnect');
    const gone = await within(disconnected, 20000, "client 'disconnect' event");
    console.log(`${name}: Registry.update took ${(tUpdated - t0).toFixed(1)} ms; transport disconnect ` +
                `${(tDown - t0).toFixed(1)} ms after the update was sent; client 'disconnect' ` +
                `(${gone.transportObj && gone.transportObj.constructor.name}) ${(performance.now() - t0).toFixed(1)} ms`);

    // Telemetry through the cut client is not accepted: its reconnect with the old key fails.
    await assert.rejects(within(client.sendEvent(new Message('after')), 20000, 'sendEvent after rotation'), refused);
    await client.close().catch(() => {});

    const old = Client.fromConnectionString(deviceCs(id, keys.primaryKey), Transport);
    old.setRetryPolicy(new NoRetry());
    await assert.rejects(within(old.open(), 20000, 'open with the old key'), refused);
    const fresh = Client.fromConnectionString(deviceCs(id, rotated), Transport);
    await fresh.open();
    await fresh.sendEvent(new Message('with the new key'));
    await fresh.close();
    await registry.delete(id);
  });

  test(`${name}: a new secondary key keeps a client connected with the primary key`, async () => {
    const { id, keys } = await newDevice();
    const client = await openWithTwin(id, keys.primaryKey, Transport);
    let transportDisconnects = 0;
    client._transport.on('disconnect', () => { transportDisconnects += 1; });
    await registry.update({ deviceId: id, authentication: { symmetricKey: { primaryKey: keys.primaryKey, secondaryKey: newKey() } } });
    // The hub re-checks the session before it reads anything the client sends after the update.
    await client.sendEvent(new Message('after'));
    const twin = await client.getTwin();
    await new Promise((resolve, reject) => twin.properties.reported.update({ stillUp: true }, (err) => (err ? reject(err) : resolve())));
    assert.equal(transportDisconnects, 0);
    await client.close();
    assert.equal((await registry.getTwin(id)).responseBody.properties.reported.stillUp, true);
    await registry.delete(id);
  });
}
