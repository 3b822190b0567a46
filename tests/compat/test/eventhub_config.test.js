'use strict';
// The built-in endpoint's shape and administration (issue 15 items 1, 2), against a hub started
// with TWINHUB_PARTITIONS=8 and TWINHUB_RETENTION=5s (tests/compat/CMakeLists.txt): the partition
// count chosen at creation, consumer groups created and deleted with the CLI, owner-level (epoch)
// receivers that take a partition over, retention trimming old events, and the amqp:link:redirect
// that an IoT Hub connection string gets on messages/events, followed as Microsoft's sample does.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const rhea = require('rhea');
const { Registry } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { EventHubConsumerClient, earliestEventPosition } = require('@azure/event-hubs');
const { connectionString, uniqueId } = require('../lib/hub');

const cli = path.join(process.env.TWINHUB_BIN_DIR, 'twinhub');
const caFile = path.join(process.env.TWINHUB_DATA_DIR, 'tls', 'ca.pem');
function show(args) {
  return execFileSync(cli, ['hub', 'connection-string', 'show', ...args, '--data-dir', process.env.TWINHUB_DATA_DIR],
    { encoding: 'utf8' }).trim();
}
function twinhub(args) {
  return spawnSync(cli, [...args, '--login', connectionString(), '--ca-file', caFile], { encoding: 'utf8' });
}
const ehCs = show(['--eventhub', '--policy-name', 'service']);
const serviceCs = show(['--policy-name', 'service']);
const host = /HostName=([^;:]+)/.exec(serviceCs)[1];
const serviceKey = /SharedAccessKey=([^;]+)/.exec(serviceCs)[1];
const registry = Registry.fromConnectionString(connectionString());
const clients = [];
after(async () => { for (const c of clients) await c.close().catch(() => {}); });

function consumer(group = '$Default', cs = ehCs) {
  const c = new EventHubConsumerClient(group, cs);
  clients.push(c);
  return c;
}

async function device() {
  const id = uniqueId('ehc');
  const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
  const client = Client.fromConnectionString(`HostName=${host};DeviceId=${id};SharedAccessKey=${key}`, Mqtt);
  await client.open();
  clients.push(client);
  return { id, client };
}

async function send(client, body) {
  await client.sendEvent(new Message(JSON.stringify(body)));
}

// Reads every event of `deviceId` from `partitionId` (from the start) until `count` arrived.
function readPartition(c, partitionId, deviceId, count, ms = 15000, startPosition = earliestEventPosition) {
  const got = [];
  return new Promise((resolve, reject) => {
    let sub;
    const timer = setTimeout(() => { sub.close(); reject(new Error(`only ${got.length} of ${count} events arrived`)); }, ms);
    sub = c.subscribe(partitionId, {
      processEvents: async (events) => {
        for (const e of events) if (e.systemProperties['iothub-connection-device-id'] === deviceId) got.push(e);
        if (got.length >= count) { clearTimeout(timer); await sub.close(); resolve(got); }
      },
      processError: async (err) => { clearTimeout(timer); await sub.close(); reject(err); },
    }, { startPosition, maxWaitTimeInSeconds: 1 });
  });
}

// Reads every partition at once (retention is short: a sequential scan could outlast it).
async function partitionOf(c, deviceId, count = 1) {
  const ids = await c.getPartitionIds();
  try {
    return await Promise.any(ids.map((p) => readPartition(c, p, deviceId, count, 8000).then((events) => ({ partitionId: p, events }))));
  } catch (_) {
    throw new Error(`no partition holds ${count} events of ${deviceId}`);
  }
}

test('the hub was created with 8 device-to-cloud partitions and reports them', async () => {
  const c = consumer();
  assert.deepEqual(await c.getPartitionIds(), ['0', '1', '2', '3', '4', '5', '6', '7']);
  const props = await c.getEventHubProperties();
  assert.equal(props.partitionIds.length, 8);
  assert.ok(props.createdOn instanceof Date && props.createdOn.getTime() > Date.parse('2020-01-01'));
  const p7 = await c.getPartitionProperties('7');
  assert.equal(p7.partitionId, '7');
  await assert.rejects(c.getPartitionProperties('8'));
});

test('consumer groups: created with the CLI, read from, listed, deleted; bad names refused', async () => {
  const name = `cg-${crypto.randomBytes(3).toString('hex')}`;
  const created = twinhub(['hub', 'consumer-group', 'create', '--name', name]);
  assert.equal(created.status, 0, created.stderr);
  assert.equal(JSON.parse(created.stdout).name, name);
  const list = twinhub(['hub', 'consumer-group', 'list']);
  assert.equal(list.status, 0, list.stderr);
  const names = JSON.parse(list.stdout).map((g) => g.name);
  assert.equal(names[0], '$Default');
  assert.ok(names.includes(name));

  const { id, client } = await device();
  await send(client, { n: 1 });
  const { events } = await partitionOf(consumer(name), id);
  assert.equal(events[0].body.n, 1);

  const bad = twinhub(['hub', 'consumer-group', 'create', '--name', '-bad name']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /consumer group/i);
  const nodefault = twinhub(['hub', 'consumer-group', 'delete', '--name', '$Default']);
  assert.notEqual(nodefault.status, 0);

  const deleted = twinhub(['hub', 'consumer-group', 'delete', '--name', name]);
  assert.equal(deleted.status, 0, deleted.stderr);
  const gone = twinhub(['hub', 'consumer-group', 'show', '--name', name]);
  assert.notEqual(gone.status, 0);
  await assert.rejects(readPartition(consumer(name), '0', id, 1, 5000), (err) => {
    assert.match(err.name + ' ' + err.message, /not.?found|consumer group/i);
    return true;
  });
});

test('retention: events older than the retention period are trimmed, the last one of a partition stays', async () => {
  const { id, client } = await device();
  await send(client, { n: 'old-1' });
  await send(client, { n: 'old-2' });
  const c = consumer();
  const { partitionId, events } = await partitionOf(c, id, 2);
  const firstSeq = events[0].sequenceNumber;
  // Retention is 5 s; the trimmer runs every second.
  let props;
  for (let i = 0; i < 150; i++) {
    await new Promise((r) => setTimeout(r, 100));
    props = await c.getPartitionProperties(partitionId);
    if (props.beginningSequenceNumber > firstSeq) break;
  }
  assert.ok(props.beginningSequenceNumber > firstSeq, `partition ${partitionId} still begins at ${props.beginningSequenceNumber}`);
  assert.ok(props.lastEnqueuedSequenceNumber >= events[1].sequenceNumber, 'the last event is kept');
  assert.equal(props.isEmpty, false);
  await send(client, { n: 'new' });
  const from = await readPartition(c, partitionId, id, 1, 5000);
  assert.ok(!from.some((e) => e.body.n === 'old-1'), 'the trimmed event is not read again');
  const next = await readPartition(c, partitionId, id, 1, 5000, { sequenceNumber: events[1].sequenceNumber });
  assert.equal(next[0].body.n, 'new');
  assert.equal(next[0].sequenceNumber, events[1].sequenceNumber + 1, 'sequence numbers continue after a trim');
});

// @azure/event-hubs 6 surfaces amqp:link:stolen as a MessagingError whose code is
// ReceiverDisconnectedError (core-amqp's ConditionErrorNameMapper), as against Azure.
test('a receiver with a higher owner level takes the partition over; a lower one is refused', async () => {
  const errors = { low: null, lower: null, high: null };
  const low = consumer().subscribe('3', {
    processEvents: async () => {},
    processError: async (err) => { errors.low = errors.low || err; },
  }, { ownerLevel: 1, startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(errors.low, null, 'the owner-level 1 receiver opened');
  const high = consumer().subscribe('3', {
    processEvents: async () => {},
    processError: async (err) => { errors.high = errors.high || err; },
  }, { ownerLevel: 2, startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 });
  for (let i = 0; i < 100 && !errors.low; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(errors.low, 'the owner-level 1 receiver was disconnected');
  assert.equal(errors.low.code, 'ReceiverDisconnectedError', errors.low.message);
  assert.match(errors.low.message, /higher epoch of '2'/);
  const lower = consumer().subscribe('3', {
    processEvents: async () => {},
    processError: async (err) => { errors.lower = errors.lower || err; },
  }, { ownerLevel: 0, startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 });
  for (let i = 0; i < 100 && !errors.lower; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(errors.lower, 'the receiver below owner level 2 was refused');
  assert.equal(errors.lower.code, 'ReceiverDisconnectedError', errors.lower.message);
  assert.equal(errors.high, null, 'the owner-level 2 receiver kept the partition');
  await Promise.all([low.close(), high.close(), lower.close()]);
});

function sasToken(sr, key, skn) {
  const se = Math.floor(Date.now() / 1000) + 3600;
  const esr = encodeURIComponent(sr);
  const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(`${esr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${esr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${skn}`;
}

// What Microsoft's "iothubConnectionString" sample for @azure/event-hubs does with an IoT Hub
// connection string: attach to messages/events on the hub, take the redirect, and build an
// Event Hubs connection string from its hostname with the IoT hub's name as EntityPath.
function redirectOf(source) {
  return new Promise((resolve, reject) => {
    const conn = rhea.create_container().connect({
      host: '127.0.0.1', servername: host, port: 5671, transport: 'tls', reconnect: false,
      username: `service@sas.root.${host.split('.')[0]}`, password: sasToken(host, serviceKey, 'service'),
    });
    const timer = setTimeout(() => { conn.close(); reject(new Error('no redirect within 10 s')); }, 10000);
    conn.on('receiver_error', (ctx) => {
      clearTimeout(timer);
      const e = ctx.receiver.error;
      conn.close();
      resolve(e);
    });
    conn.on('disconnected', (ctx) => { clearTimeout(timer); reject(new Error('disconnected: ' + (ctx.error && ctx.error.message))); });
    conn.open_receiver({ source: { address: source } });
  });
}

test('an IoT Hub connection string is redirected to the Event Hubs-compatible endpoint, which then reads', async () => {
  const mgmt = await redirectOf(`amqps://${host}/messages/events/$management`);
  assert.equal(mgmt.condition, 'amqp:link:redirect');
  const info = mgmt.info;
  assert.ok(info && info.hostname && info.address, JSON.stringify(mgmt));
  assert.equal(info.hostname, host);
  assert.equal(info.port, 5671);
  assert.match(info.address, /^amqps:\/\/[^/]+:5671\/[^/]+\/\$management$/);
  const entity = /:5671\/(.*)\//.exec(info.address)[1];
  assert.equal(entity, /EntityPath=([^;]+)/.exec(ehCs)[1]);
  const part = await redirectOf('messages/events/ConsumerGroups/$Default/Partitions/2');
  assert.equal(part.condition, 'amqp:link:redirect');
  assert.match(part.info.address, /\/ConsumerGroups\/\$Default\/Partitions\/2$/);

  // What Microsoft's sample then does: an Event Hubs connection string from the redirect.
  const fromRedirect = `Endpoint=sb://${info.hostname}/;EntityPath=${entity};SharedAccessKeyName=service;SharedAccessKey=${serviceKey}`;
  const { id, client } = await device();
  await send(client, { via: 'redirect' });
  const { events } = await partitionOf(consumer('$Default', fromRedirect), id);
  assert.equal(events[0].body.via, 'redirect');
});
