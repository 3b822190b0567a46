'use strict';
// The built-in Event Hubs-compatible endpoint read by the official @azure/event-hubs consumer, as
// Microsoft's e2e tests read telemetry (docs: ../shared/spec/iothub-amqp.md 5): what devices and
// modules sent over MQTT, MQTT/WS, AMQP, AMQP/WS and HTTPS (single and batch) arrives with its body, application properties
// and system properties, in order per device; runtime information; bad readers get typed errors.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { Registry } = require('azure-iothub');
const { Client, ModuleClient, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { Amqp, AmqpWs } = require('azure-iot-device-amqp');
const { Http } = require('azure-iot-device-http');
const { EventHubConsumerClient, earliestEventPosition, latestEventPosition } = require('@azure/event-hubs');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];

function eventHubConnectionString(policy = 'service') {
  const cli = path.join(process.env.TWINHUB_BIN_DIR, 'twinhub');
  return execFileSync(cli, ['hub', 'connection-string', 'show', '--eventhub', '--policy-name', policy,
    '--data-dir', process.env.TWINHUB_DATA_DIR], { encoding: 'utf8' }).trim();
}

const consumer = new EventHubConsumerClient('$Default', eventHubConnectionString());
after(() => consumer.close());

// Collects the events of `deviceId` (and `moduleId`) from every partition until `count` arrived.
function collect(deviceId, moduleId, count, startPosition, ms = 15000) {
  const got = [];
  let sub;
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} events arrived`)), ms);
    sub = consumer.subscribe({
      processEvents: async (events) => {
        for (const e of events) {
          if (e.systemProperties['iothub-connection-device-id'] !== deviceId) continue;
          if (moduleId && e.systemProperties['iothub-connection-module-id'] !== moduleId) continue;
          got.push(e);
        }
        if (got.length >= count) {
          clearTimeout(timer);
          resolve(got);
        }
      },
      processError: async () => {},
    }, { startPosition });
  });
  return done.finally(() => sub.close());
}

for (const [name, proto] of [['Mqtt', Mqtt], ['MqttWs', MqttWs], ['Amqp', Amqp], ['AmqpWs', AmqpWs], ['Http', Http]]) {
  test(`telemetry sent over ${name} is read from the built-in endpoint in order, with its properties`, async () => {
    const id = uniqueId('eh');
    const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
    const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`, proto);
    const reading = collect(id, null, 5, { enqueuedOn: new Date(Date.now() - 5000) });
    await client.open();
    for (let i = 0; i < 5; i++) {
      const m = new Message(JSON.stringify({ i }));
      m.messageId = `${id}-m${i}`;
      m.contentType = 'application/json';
      m.contentEncoding = 'utf-8';
      m.properties.add('seq', String(i));
      await client.sendEvent(m);
    }
    const events = await reading;
    await client.close();
    assert.deepEqual(events.map((e) => e.body.i), [0, 1, 2, 3, 4], 'one device\'s messages stay in order');
    const seqs = events.map((e) => e.sequenceNumber);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    for (const [i, e] of events.entries()) {
      assert.equal(e.properties.seq, String(i));
      assert.equal(e.messageId, `${id}-m${i}`);
      assert.equal(e.contentType, 'application/json');
      assert.equal(e.systemProperties['iothub-message-source'], 'Telemetry');
      assert.ok(e.enqueuedTimeUtc instanceof Date && Math.abs(e.enqueuedTimeUtc - Date.now()) < 60000);
      assert.equal(typeof e.offset, 'string');
    }
  });
}

test('sendEventBatch over Http: every message of the batch arrives in order with its properties', async () => {
  const id = uniqueId('ehb');
  const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`, Http);
  const reading = collect(id, null, 3, { enqueuedOn: new Date(Date.now() - 5000) });
  await client.open();
  const batch = [0, 1, 2].map((i) => {
    const m = new Message(`batch ${i} \u00e9`);
    m.properties.add('n', String(i));
    return m;
  });
  await client.sendEventBatch(batch);
  const events = await reading;
  await client.close();
  assert.deepEqual(events.map((e) => (Buffer.isBuffer(e.body) ? e.body.toString() : e.body)),
    ['batch 0 \u00e9', 'batch 1 \u00e9', 'batch 2 \u00e9']);
  assert.deepEqual(events.map((e) => e.properties.n), ['0', '1', '2']);
});

test('Http telemetry over 256 KB is 413 MessageTooLarge and nothing of it is stored', async () => {
  const id = uniqueId('ehl');
  const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`, Http);
  await client.open();
  let err;
  try { await client.sendEvent(new Message(Buffer.alloc(256 * 1024 + 1, 'x'))); } catch (e) { err = e; }
  assert.ok(err, 'an oversized message must fail');
  assert.equal(err.constructor.name, 'MessageTooLargeError');
  await client.sendEvent(new Message('small'));
  const events = await collect(id, null, 1, { enqueuedOn: new Date(Date.now() - 10000) });
  await client.close();
  assert.equal(events.length, 1);
  assert.equal(Buffer.isBuffer(events[0].body) ? events[0].body.toString() : events[0].body, 'small');
});

test('module telemetry carries the module id', async () => {
  const id = uniqueId('ehm');
  await registry.create({ deviceId: id });
  const mid = uniqueId('mod');
  const key = (await registry.addModule({ deviceId: id, moduleId: mid })).responseBody.authentication.symmetricKey.primaryKey;
  const client = ModuleClient.fromConnectionString(`HostName=${hostName};DeviceId=${id};ModuleId=${mid};SharedAccessKey=${key}`, Amqp);
  const reading = collect(id, mid, 1, { enqueuedOn: new Date(Date.now() - 5000) });
  await client.open();
  await client.sendEvent(new Message('module says hi'));
  const [e] = await reading;
  await client.close();
  assert.equal(e.systemProperties['iothub-connection-module-id'], mid);
  assert.equal(Buffer.isBuffer(e.body) ? e.body.toString() : e.body, 'module says hi');
});

test('runtime information: partitions and their last sequence numbers', async () => {
  const ids = await consumer.getPartitionIds();
  assert.deepEqual(ids, ['0', '1', '2', '3']);
  const hub = await consumer.getEventHubProperties();
  assert.deepEqual(hub.partitionIds, ids);
  for (const p of ids) {
    const info = await consumer.getPartitionProperties(p);
    assert.equal(info.partitionId, p);
    assert.equal(typeof info.lastEnqueuedSequenceNumber, 'number');
    assert.equal(info.isEmpty, info.lastEnqueuedSequenceNumber < 0);
  }
});

test('a reader from latest sees only what is sent after it attached; one from earliest sees the old too', async () => {
  const id = uniqueId('ehl');
  const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`, Mqtt);
  await client.open();
  await client.sendEvent(new Message('before'));
  const fromLatest = collect(id, null, 1, latestEventPosition);
  await new Promise((r) => setTimeout(r, 1500));  // the receivers attach before the next send
  await client.sendEvent(new Message('after'));
  const [late] = await fromLatest;
  assert.equal(late.body.toString(), 'after');
  const all = await collect(id, null, 2, earliestEventPosition);
  assert.deepEqual(all.map((e) => e.body.toString()), ['before', 'after']);
  await client.close();
});

test('an unknown consumer group and a policy without ServiceConnect are refused', async () => {
  const other = new EventHubConsumerClient('no-such-group', eventHubConnectionString());
  await assert.rejects(other.getEventHubProperties().then(async () => {
    await new Promise((resolve, reject) => {
      const sub = other.subscribe('0', {
        processEvents: async () => {},
        processError: async (err) => { sub.close(); reject(err); },
      });
      setTimeout(() => { sub.close(); resolve(); }, 10000);
    });
  }), /consumer group/);
  await other.close();
  // The SDK retries UnauthorizedError (credentials may have rotated): no retries here, and the
  // put-token's 401 arrives as a typed error, not as a timeout.
  const reader = new EventHubConsumerClient('$Default', eventHubConnectionString('registryRead'),
    { retryOptions: { maxRetries: 0 } });
  await assert.rejects(reader.getPartitionIds(), (e) => (e.errors || [e]).some(
    (x) => x.code === 'UnauthorizedError' && /ServiceConnect/.test(x.message)));
  await reader.close();
});
