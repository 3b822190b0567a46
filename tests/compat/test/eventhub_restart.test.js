'use strict';
// The built-in endpoint across a hub restart and a kill -9 in the middle of reading: devices send
// telemetry over MQTT (every message PUBACKed, so durable), an @azure/event-hubs subscription reads
// it slowly, and the hub is stopped (SIGTERM) or killed (SIGKILL) while the reader is mid-way and
// started again on the same data directory. The subscription resumes by itself (the SDK reattaches
// from the last sequence number it saw, exclusive); it must then see every acknowledged message
// exactly once, in order per device, with each (partition, sequence number) carrying the same
// content before and after the restart, and new messages must get new sequence numbers. A second
// reader started after the restart from the first reader's last sequence numbers (exclusive) must
// see exactly what the first one saw past them.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Registry } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { EventHubConsumerClient, earliestEventPosition } = require('@azure/event-hubs');
const { connectionString, uniqueId } = require('../lib/hub');
const { stopHub, startHub } = require('../lib/hub_process');

const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const ehCs = execFileSync(path.join(process.env.TWINHUB_BIN_DIR, 'twinhub'),
  ['hub', 'connection-string', 'show', '--eventhub', '--data-dir', process.env.TWINHUB_DATA_DIR],
  { encoding: 'utf8' }).trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Reconnect quickly while the hub is away (the defaults wait 30 s between attempts).
const retryOptions = { maxRetries: 30, retryDelayInMs: 200, maxRetryDelayInMs: 1000, timeoutInMs: 10000 };

const DEVICES = 4;
const PER_DEVICE = 150;

const toClose = [];
after(async () => { for (const c of toClose.reverse()) await c.close().catch(() => {}); });

async function devices(n) {
  const registry = Registry.fromConnectionString(connectionString());
  const out = [];
  for (let d = 0; d < n; d++) {
    const id = uniqueId('ehr');
    const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
    out.push({ id, cs: `HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}` });
  }
  return out;
}

// Every device sends `count` messages from index `from`, one at a time (each awaited: PUBACKed).
async function sendAll(devs, from, count) {
  await Promise.all(devs.map(async (dev) => {
    const client = Client.fromConnectionString(dev.cs, Mqtt);
    await client.open();
    for (let i = from; i < from + count; i++) {
      const m = new Message(JSON.stringify({ d: dev.id, i }));
      m.messageId = `${dev.id}-${i}`;
      m.contentType = 'application/json';
      m.contentEncoding = 'utf-8';
      m.properties.add('i', String(i));
      await client.sendEvent(m);
    }
    await client.close();
  }));
}

// A slow reader of the given devices' events: batches of 5, 20 ms of "work" per batch.
function slowReader(ids, startPosition) {
  const consumer = new EventHubConsumerClient('$Default', ehCs, { retryOptions });
  toClose.push(consumer);
  const r = { events: [], errors: [], lastSeq: {}, waiters: [] };
  r.sub = consumer.subscribe({
    processEvents: async (events, ctx) => {
      for (const e of events) {
        if (!ids.has(e.systemProperties['iothub-connection-device-id'])) continue;
        r.events.push({ partition: ctx.partitionId, seq: e.sequenceNumber, offset: e.offset,
          device: e.systemProperties['iothub-connection-device-id'], i: Number(e.properties.i),
          messageId: e.messageId, body: JSON.stringify(e.body) });
      }
      if (events.length) r.lastSeq[ctx.partitionId] = events.at(-1).sequenceNumber;
      for (const w of [...r.waiters]) if (w.check()) { r.waiters.splice(r.waiters.indexOf(w), 1); w.resolve(); }
      await sleep(20);
    },
    processError: async (err) => { r.errors.push(err); },
  // A small prefetch, so that the hub is still sending when it goes away (not just the SDK's buffer).
  }, { startPosition, maxBatchSize: 5, maxWaitTimeInSeconds: 1, prefetchCount: 10 });
  toClose.push(r.sub);
  r.until = (check, what, ms = 60000) => (check() ? Promise.resolve() : new Promise((resolve, reject) => {
    const w = { check, resolve: () => { clearTimeout(w.timer); resolve(); } };
    w.timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${r.events.length} events read, ` +
      `errors: ${r.errors.map((e) => e.code || e.message).join(', ')}`)), ms);
    r.waiters.push(w);
  }));
  return r;
}

// Every device's indexes 0..total-1 exactly once and in order; sequence numbers strictly rising
// per partition; one device stays in one partition.
function checkExactlyOnce(events, devs, total) {
  for (const dev of devs) {
    const mine = events.filter((e) => e.device === dev.id);
    assert.deepEqual(mine.map((e) => e.i), Array.from({ length: total }, (_, i) => i),
      `device ${dev.id}: every acknowledged message exactly once, in order`);
    assert.equal(new Set(mine.map((e) => e.partition)).size, 1, 'one device, one partition');
    for (const e of mine) assert.equal(e.messageId, `${dev.id}-${e.i}`);
  }
  const byPartition = {};
  for (const e of events) (byPartition[e.partition] ||= []).push(e.seq);
  for (const [p, seqs] of Object.entries(byPartition))
    for (let k = 1; k < seqs.length; k++)
      assert.ok(seqs[k] > seqs[k - 1], `partition ${p}: sequence numbers rise (${seqs[k - 1]} then ${seqs[k]})`);
}

// Same (partition, sequence number) => same content, across every reader and both hub lives.
function checkNoReuse(...lists) {
  const content = new Map();
  for (const list of lists)
    for (const e of list) {
      const key = `${e.partition}/${e.seq}`;
      const value = `${e.messageId}|${e.body}|${e.offset}`;
      if (content.has(key)) assert.equal(content.get(key), value, `sequence number ${key} reused for other content`);
      else content.set(key, value);
    }
}

async function restartMidRead(signal) {
  const devs = await devices(DEVICES);
  const ids = new Set(devs.map((d) => d.id));
  const total = DEVICES * PER_DEVICE;
  await sendAll(devs, 0, PER_DEVICE);

  const reader = slowReader(ids, earliestEventPosition);
  await reader.until(() => reader.events.length >= total / 4, 'a quarter of the events');
  const atStop = { ...reader.lastSeq };
  const readBefore = reader.events.length;
  await stopHub(signal);
  assert.ok(readBefore < total, `the reader was mid-way when the hub stopped (${readBefore} of ${total})`);
  console.log(`${signal} after ${readBefore} of ${total} events read`);
  await startHub();

  // The same subscription carries on from where it was.
  await reader.until(() => reader.events.length >= total, 'every acknowledged message after the restart');
  await sleep(1500);  // anything duplicated would arrive now
  checkExactlyOnce(reader.events, devs, PER_DEVICE);
  // (The SDK reattaches inside receiveBatch without calling processError: nothing to assert there.)

  // A new reader from the last sequence numbers the first one had seen when the hub went away.
  const partitions = [...new Set(reader.events.map((e) => e.partition))];
  const resumed = [];
  const consumer = new EventHubConsumerClient('$Default', ehCs, { retryOptions });
  toClose.push(consumer);
  for (const p of partitions) {
    const expected = reader.events.filter((e) => e.partition === p && (atStop[p] === undefined || e.seq > atStop[p]));
    const got = [];
    const from = atStop[p] === undefined ? earliestEventPosition : { sequenceNumber: atStop[p], isInclusive: false };
    const sub = consumer.subscribe(p, {
      processEvents: async (events) => {
        for (const e of events)
          if (ids.has(e.systemProperties['iothub-connection-device-id']))
            got.push({ partition: p, seq: e.sequenceNumber, offset: e.offset, device: e.systemProperties['iothub-connection-device-id'],
              i: Number(e.properties.i), messageId: e.messageId, body: JSON.stringify(e.body) });
      },
      processError: async () => {},
    }, { startPosition: from, maxBatchSize: 100, maxWaitTimeInSeconds: 1 });
    const deadline = Date.now() + 30000;
    while (got.length < expected.length && Date.now() < deadline) await sleep(50);
    await sleep(500);
    await sub.close();
    assert.deepEqual(got.map((e) => e.seq), expected.map((e) => e.seq),
      `partition ${p}: a reader resuming after sequence number ${atStop[p]} sees exactly what followed it`);
    resumed.push(...got);
  }

  // New messages after the restart: new sequence numbers, read by the same subscription.
  const lastSeqBefore = {};
  for (const e of reader.events) lastSeqBefore[e.partition] = Math.max(lastSeqBefore[e.partition] ?? -1, e.seq);
  await sendAll(devs, PER_DEVICE, 10);
  await reader.until(() => reader.events.length >= total + DEVICES * 10, 'the messages sent after the restart');
  await sleep(1000);
  checkExactlyOnce(reader.events, devs, PER_DEVICE + 10);
  for (const e of reader.events.filter((x) => x.i >= PER_DEVICE))
    assert.ok(e.seq > lastSeqBefore[e.partition], `a message sent after the restart got sequence number ${e.seq}, ` +
      `not above ${lastSeqBefore[e.partition]} of partition ${e.partition}`);

  // And a reader from earliest on the restarted hub sees the same log.
  const full = slowReader(ids, earliestEventPosition);
  await full.until(() => full.events.length >= total + DEVICES * 10, 'the whole log from earliest');
  checkExactlyOnce(full.events, devs, PER_DEVICE + 10);
  checkNoReuse(reader.events, resumed, full.events);
  await full.sub.close();
  await reader.sub.close();
}

test('a plain restart (SIGTERM) while an @azure/event-hubs reader is mid-way', async () => {
  await restartMidRead('SIGTERM');
});

test('kill -9 while an @azure/event-hubs reader is mid-way: every acknowledged message exactly once after the restart', async () => {
  await restartMidRead('SIGKILL');
});
