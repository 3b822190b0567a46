'use strict';
// Fault injection as Microsoft's *_disconnect.js e2e tests drive it (issue 16 item 3): telemetry
// with AzIoTHub_FaultOperationType breaks the sender's connection after the delay, when the hub
// runs with TWINHUB_FAULT_INJECTION=1 (ctest compat_fault_injection); without it (ctest
// compat_fault_injection_off) the same message is ordinary telemetry and nothing breaks.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Registry } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { NoRetry } = require('azure-iot-common');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { Amqp, AmqpWs } = require('azure-iot-device-amqp');
const { connectionString, uniqueId } = require('../lib/hub');

const enabled = process.env.TWINHUB_FAULT_INJECTION === '1';
const registry = Registry.fromConnectionString(connectionString());
const host = /HostName=([^;]+)/.exec(connectionString())[1];
const clients = [];
after(async () => { for (const c of clients) await c.close().catch(() => {}); });

async function device(transport, retry) {
  const id = uniqueId('fault');
  const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
  const client = Client.fromConnectionString(`HostName=${host};DeviceId=${id};SharedAccessKey=${key}`, transport);
  if (!retry) client.setRetryPolicy(new NoRetry());
  await client.open();
  clients.push(client);
  return client;
}

function fault(type, delay = 1, extra = {}) {
  const m = new Message('');
  m.properties.add('AzIoTHub_FaultOperationType', type);
  m.properties.add('AzIoTHub_FaultOperationCloseReason', 'test');
  m.properties.add('AzIoTHub_FaultOperationDelayInSecs', delay);
  for (const [k, v] of Object.entries(extra)) m.properties.add(k, v);
  return m;
}

function disconnected(client, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    client.once('disconnect', () => { clearTimeout(t); resolve(true); });
  });
}

const cases = [
  ['Mqtt', Mqtt, 'KillTcp'], ['MqttWs', MqttWs, 'KillTcp'], ['Mqtt', Mqtt, 'ShutDownMqtt'],
  ['Amqp', Amqp, 'KillTcp'], ['AmqpWs', AmqpWs, 'KillTcp'], ['Amqp', Amqp, 'KillAmqpConnection'],
  ['Amqp', Amqp, 'ShutDownAmqp'],
];

for (const [name, transport, type] of cases) {
  test(`${name}: ${type} ${enabled ? 'disconnects the device after the delay' : 'is ordinary telemetry when fault injection is off'}`, async () => {
    const client = await device(transport, false);
    const started = Date.now();
    const gone = disconnected(client, 6000);
    await client.sendEvent(fault(type, 1));
    const wasDisconnected = await gone;
    assert.equal(wasDisconnected, enabled, `disconnect event: ${wasDisconnected}`);
    if (enabled) assert.ok(Date.now() - started >= 900, 'not before the 1 s delay');
    else await client.sendEvent(new Message('still connected'));
  });
}

if (enabled) {
  test('Amqp: a killed D2C link is re-attached by the SDK and the next message is accepted', async () => {
    const client = await device(Amqp, true);
    await client.sendEvent(fault('KillAmqpD2CLink', 0));
    await new Promise((r) => setTimeout(r, 500));
    await client.sendEvent(new Message('after the link kill'));
  });

  test('Amqp: InvokeThrottling refuses telemetry for its duration with the SDK\'s ThrottlingError', async () => {
    const client = await device(Amqp, false);
    await client.sendEvent(fault('InvokeThrottling', 0, { AzIoTHub_FaultOperationDurationInSecs: 2 }));
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(client.sendEvent(new Message('throttled')), (err) => {
      assert.equal(err.constructor.name, 'ThrottlingError', err.message);
      return true;
    });
    await new Promise((r) => setTimeout(r, 2200));
    await client.sendEvent(new Message('after the throttle'));
  });

  test('an unknown fault type is ordinary telemetry', async () => {
    const client = await device(Mqtt, false);
    const gone = disconnected(client, 2500);
    await client.sendEvent(fault('NoSuchFault', 0));
    assert.equal(await gone, false);
  });
}
