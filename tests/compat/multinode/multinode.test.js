'use strict';
// Two nodes on one PostgreSQL (run_multinode.sh; kept out of test/, which run_compat.sh runs
// against one node): the service SDK talks to node A, devices connect to node B (GatewayHostName),
// and what one node commits is seen through the other.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { EventHubConsumerClient } = require('@azure/event-hubs');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { Mqtt } = require('azure-iot-device-mqtt');
const { Amqp } = require('azure-iot-device-amqp');
const crypto = require('node:crypto');
const https = require('node:https');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const service = ServiceClient.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const nodeB = process.env.TWINHUB_NODE_B_MQTT;
after(() => service.close());  // its AMQP connection (C2D sends, feedback) would keep node running

async function newDevice() {
  const id = uniqueId('mn');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  return { id, key: dev.authentication.symmetricKey.primaryKey };
}

// A device client on node B.
function clientOnB(d) {
  return Client.fromConnectionString(
    `HostName=${hostName};DeviceId=${d.id};SharedAccessKey=${d.key};GatewayHostName=${nodeB}`, Mqtt);
}

// A device client on node B over AMQP (azure-iot-device-amqp connects to GatewayHostName too).
function amqpClientOnB(d) {
  return Client.fromConnectionString(
    `HostName=${hostName};DeviceId=${d.id};SharedAccessKey=${d.key};GatewayHostName=${process.env.TWINHUB_NODE_B_AMQP}`, Amqp);
}

// A device created through node A is known to node B once B's change feed has applied the create
// (polled every 20 ms): until then B refuses it as it would an unknown device, and the device
// retries, as devices do.
async function openOnB(d) {
  const end = Date.now() + 5000;
  for (;;) {
    const client = clientOnB(d);
    try {
      await client.open();
      return client;
    } catch (e) {
      if (e.constructor.name !== 'UnauthorizedError' || Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function reportedUpdate(twin, patch) {
  return new Promise((resolve, reject) => twin.properties.reported.update(patch, (err) => (err ? reject(err) : resolve())));
}

async function until(what, f, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('desired patches written through node A reach a session on node B in $version order, each once', async () => {
  assert.ok(nodeB, 'TWINHUB_NODE_B_MQTT: run through run_multinode.sh');
  const d = await newDevice();
  const client = await openOnB(d);
  try {
    const twin = await client.getTwin();
    const v0 = twin.properties.desired.$version;
    const seen = [];
    twin.on('properties.desired', (p) => { if (p.n !== undefined) seen.push([p.$version, p.n]); });
    const n = 25;
    for (let i = 1; i <= n; ++i) await registry.updateTwin(d.id, { properties: { desired: { n: i } } }, '*');
    await until(`${n} desired patches on node B`, () => seen.length >= n);
    await new Promise((r) => setTimeout(r, 300));  // a duplicate would arrive by now
    assert.deepEqual(seen, Array.from({ length: n }, (_, i) => [v0 + 1 + i, i + 1]));
  } finally {
    await client.close();
  }
});

test('reported properties a device writes on node B are read through node A', async () => {
  const d = await newDevice();
  const client = await openOnB(d);
  try {
    const twin = await client.getTwin();
    const t0 = Date.now();
    await reportedUpdate(twin, { fw: 'b-1', nested: { k: 1 } });
    const t = await until('the reported write on node A', async () => {
      const got = (await registry.getTwin(d.id)).responseBody;
      return got.properties.reported.fw === 'b-1' ? got : null;
    });
    assert.equal(t.properties.reported.nested.k, 1);
    assert.ok(Date.now() - t0 < 5000, 'cross-node lag under 5 s');
  } finally {
    await client.close();
  }
});

test('connectionState read through node A follows a session on node B', async () => {
  const d = await newDevice();
  const state = async () => (await registry.get(d.id)).responseBody.connectionState;
  assert.equal(await state(), 'Disconnected');
  const client = await openOnB(d);
  try {
    await until('Connected through node A', async () => (await state()) === 'Connected', 5000);
  } finally {
    await client.close();
  }
  await until('Disconnected through node A', async () => (await state()) === 'Disconnected', 5000);
});

test('a direct method invoked through node A runs on a device on node B, with one-node error codes', async () => {
  const d = await newDevice();
  const client = await openOnB(d);
  try {
    client.onDeviceMethod('echo', (req, res) => res.send(201, { got: req.payload, on: 'B' }));
    client.onDeviceMethod('silent', () => {});
    // The method subscription and node B's presence reach node A within the feed's interval.
    const r = await until('the method through node A', async () => {
      try {
        return await service.invokeDeviceMethod(d.id, { methodName: 'echo', payload: { n: 7 }, responseTimeoutInSeconds: 5 });
      } catch (e) {
        if (e.response && e.response.statusCode === 404) return null;
        throw e;
      }
    }, 5000);
    assert.equal(r.result.status, 201);
    assert.deepEqual(r.result.payload, { got: { n: 7 }, on: 'B' });
    // No answer: 504101 after the caller's timeout, as on one node.
    const t0 = Date.now();
    let err;
    try {
      await service.invokeDeviceMethod(d.id, { methodName: 'silent', payload: null, responseTimeoutInSeconds: 5 });
    } catch (e) { err = e; }
    assert.ok(err, 'the silent method must fail');
    assert.equal(err.response.statusCode, 504);
    assert.match(String(err.responseBody), /504101/);
    assert.ok(Date.now() - t0 >= 4500, 'waited for the response timeout');
  } finally {
    await client.close();
  }
  // Nobody holds a session: 404103, as on one node.
  await until('Disconnected through node A', async () =>
    (await registry.get(d.id)).responseBody.connectionState === 'Disconnected', 5000);
  let err;
  try {
    await service.invokeDeviceMethod(d.id, { methodName: 'echo', payload: null, responseTimeoutInSeconds: 5 });
  } catch (e) { err = e; }
  assert.ok(err, 'a method on a disconnected device must fail');
  assert.equal(err.response.statusCode, 404);
  assert.match(String(err.responseBody), /404103/);
});

test('an Event Hubs reader on node B wakes for telemetry a device sends through node A', async () => {
  const cs = execFileSync(path.join(process.env.TWINHUB_BIN_DIR, 'twinhub'),
    ['hub', 'connection-string', 'show', '--eventhub', '--policy-name', 'service', '--data-dir',
      process.env.TWINHUB_DATA_DIR], { encoding: 'utf8' }).trim();
  const consumer = new EventHubConsumerClient('$Default', cs,
    { customEndpointAddress: `amqps://${process.env.TWINHUB_NODE_B_AMQP}` });
  const d = await newDevice();
  const got = [];
  let sub;
  try {
    const all = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length} of 3 events reached node B's reader`)), 15000);
      sub = consumer.subscribe({
        processEvents: async (events) => {
          for (const e of events)
            if (e.systemProperties['iothub-connection-device-id'] === d.id) got.push(e.body.toString());
          if (got.length >= 3) {
            clearTimeout(timer);
            resolve();
          }
        },
        processError: async () => {},
      }, { startPosition: { enqueuedOn: new Date() } });
    });
    // The reader's links are open and waiting before anything is sent.
    await new Promise((r) => setTimeout(r, 2000));
    const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${d.id};SharedAccessKey=${d.key}`, Mqtt);
    await client.open();
    try {
      for (let i = 1; i <= 3; ++i) await client.sendEvent(new Message(`via-a-${i}`));
    } finally {
      await client.close();
    }
    await all;
    assert.deepEqual(got, ['via-a-1', 'via-a-2', 'via-a-3']);
  } finally {
    if (sub) await sub.close();
    await consumer.close();
  }
});

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Items an emitter delivers, as a queue the test awaits.
function queueOf(emitter, event, map = (x) => [x]) {
  const items = [];
  const waiters = [];
  emitter.on(event, (arg) => {
    for (const item of map(arg)) {
      const w = waiters.shift();
      if (w) w(item); else items.push(item);
    }
  });
  return {
    next(ms = 10000) {
      if (items.length) return Promise.resolve(items.shift());
      return within(new Promise((resolve) => waiters.push(resolve)), ms, event);
    },
  };
}

// The feedback records a receiver on node A gets, as a queue (only `deviceId`'s).
async function feedbackOnA(deviceId) {
  const receiver = (await service.getFeedbackReceiver()).result;
  return queueOf(receiver, 'message', (msg) => JSON.parse(msg.data.toString()).filter((r) => r.deviceId === deviceId));
}

function c2dMessage(body, ack) {
  const m = new Message(body);
  m.messageId = crypto.randomUUID();
  if (ack) m.ack = ack;
  return m;
}

function sasToken(resource, key, keyName) {
  const sr = encodeURIComponent(resource);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}` + (keyName ? `&skn=${keyName}` : '');
}

// A service REST call on one node ('host:port').
function restOn(node, method, path) {
  const policyName = /SharedAccessKeyName=([^;]+)/.exec(connectionString())[1];
  const policyKey = /SharedAccessKey=([^;]+)/.exec(connectionString())[1];
  const [host, port] = node.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: port || 443, method, path,
      headers: { Authorization: sasToken(hostName, policyKey, policyName) } }, (res) => {
      let body = '';
      res.on('data', (x) => { body += x; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

// cloudToDeviceMessageCount as one node has it; -1 while that node does not know the device yet.
async function c2dCountOn(node, id) {
  const r = await restOn(node, 'GET', `/devices/${id}?api-version=2021-04-12`);
  if (r.status === 404) return -1;
  assert.equal(r.status, 200);
  return JSON.parse(r.body).cloudToDeviceMessageCount;
}

test('C2D sent through node A reaches an MQTT session on node B in order, each once; Success feedback on node A', async () => {
  const d = await newDevice();
  await service.open();
  const feedback = await feedbackOnA(d.id);
  // One message queued while no node holds a session, the rest while node B holds one.
  const sent = [c2dMessage('m0', 'full')];
  await service.send(d.id, sent[0]);
  const client = await openOnB(d);
  try {
    const box = queueOf(client, 'message');
    for (let i = 1; i < 5; ++i) {
      sent.push(c2dMessage(`m${i}`, 'full'));
      await service.send(d.id, sent[i]);
    }
    const got = [];
    for (let i = 0; i < 5; ++i) {
      const m = await box.next();
      got.push([m.data.toString(), m.messageId]);
      await client.complete(m);
    }
    assert.deepEqual(got, sent.map((m, i) => [`m${i}`, m.messageId]));
    const records = [];
    for (let i = 0; i < 5; ++i) records.push(await feedback.next());
    assert.deepEqual(records.map((r) => r.statusCode), Array(5).fill('Success'));
    assert.deepEqual(records.map((r) => r.originalMessageId).sort(), sent.map((m) => m.messageId).sort());
    await assert.rejects(box.next(1500), /not within/);  // no duplicate delivery
    // Both nodes' queues converged on the database's: empty.
    await until('an empty queue on node A', async () => (await c2dCountOn(hostName, d.id)) === 0, 5000);
    assert.equal(await c2dCountOn(process.env.TWINHUB_NODE_B_HTTPS, d.id), 0);
  } finally {
    await client.close();
  }
});

test('C2D sent through node A to an AMQP session on node B: abandon redelivers, reject ends it (Rejected feedback on node A)', async () => {
  const d = await newDevice();
  await service.open();
  const feedback = await feedbackOnA(d.id);
  await until('node B knows the device', async () => (await restOn(process.env.TWINHUB_NODE_B_HTTPS, 'GET',
    `/devices/${d.id}?api-version=2021-04-12`)).status === 200, 5000);
  const client = amqpClientOnB(d);
  await client.open();
  try {
    const box = queueOf(client, 'message');
    const rejected = c2dMessage('to reject', 'negative');
    const kept = c2dMessage('to abandon', 'full');
    await service.send(d.id, rejected);
    await service.send(d.id, kept);
    const first = await box.next();
    assert.equal(first.messageId, rejected.messageId);
    assert.equal((await client.reject(first)).constructor.name, 'MessageRejected');
    const second = await box.next();
    assert.equal(second.messageId, kept.messageId);
    assert.equal((await client.abandon(second)).constructor.name, 'MessageAbandoned');
    const again = await box.next();
    assert.equal(again.messageId, kept.messageId);
    assert.equal(again.data.toString(), 'to abandon');
    assert.equal((await client.complete(again)).constructor.name, 'MessageCompleted');
    const f1 = await feedback.next();
    assert.deepEqual([f1.statusCode, f1.originalMessageId], ['Rejected', rejected.messageId]);
    const f2 = await feedback.next();
    assert.deepEqual([f2.statusCode, f2.originalMessageId], ['Success', kept.messageId]);
    await assert.rejects(box.next(1500), /not within/);  // the rejected message is not redelivered
    await assert.rejects(feedback.next(500), /not within/);  // one record per settlement
    await until('an empty queue on node A', async () => (await c2dCountOn(hostName, d.id)) === 0, 5000);
  } finally {
    await client.close();
  }
});

test('a purge through node A empties the queue node B delivers from', async () => {
  const d = await newDevice();
  await service.open();
  for (let i = 0; i < 3; ++i) await service.send(d.id, c2dMessage(`old${i}`));
  await until('3 messages on node B', async () => (await c2dCountOn(process.env.TWINHUB_NODE_B_HTTPS, d.id)) === 3, 5000);
  const r = await restOn(hostName, 'DELETE', `/devices/${d.id}/commands?api-version=2021-04-12`);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).totalMessagesPurged, 3);
  await until('an empty queue on node B', async () => (await c2dCountOn(process.env.TWINHUB_NODE_B_HTTPS, d.id)) === 0, 5000);
  const client = await openOnB(d);
  try {
    const box = queueOf(client, 'message');
    const fresh = c2dMessage('new');
    await service.send(d.id, fresh);
    const m = await box.next();
    assert.equal(m.messageId, fresh.messageId);
    await client.complete(m);
    await assert.rejects(box.next(1000), /not within/);
  } finally {
    await client.close();
  }
});

test('node B killed with SIGKILL mid-load loses no reported write it acknowledged', async () => {
  const d = await newDevice();
  const client = await openOnB(d);
  client.on('error', () => {});
  const twin = await client.getTwin();
  let acked = 0;
  let stop = false;
  await until('Connected through node A', async () =>
    (await registry.get(d.id)).responseBody.connectionState === 'Connected', 5000);
  const writer = (async () => {
    for (let i = 1; !stop; ++i) {
      try {
        await reportedUpdate(twin, { seq: i });
        acked = i;
      } catch (e) {
        return;
      }
    }
  })();
  await until('a first batch of acknowledged writes', () => acked >= 30);
  process.kill(Number(process.env.TWINHUB_NODE_B_PID), 'SIGKILL');
  const killedAt = Date.now();
  stop = true;
  await Promise.race([writer, new Promise((r) => setTimeout(r, 3000))]);
  const last = acked;
  assert.ok(last >= 30);
  // Node A serves what node B acknowledged: the database is the source of truth and the change
  // feed carries it. (A write in flight at the kill may or may not have committed.)
  const got = await until('the acknowledged writes on node A', async () => {
    const t = (await registry.getTwin(d.id)).responseBody;
    return t.properties.reported.seq >= last ? t : null;
  });
  assert.ok(got.properties.reported.seq <= last + 1, `seq ${got.properties.reported.seq} was never sent`);
  // Its sessions' presence is cleared by node A once node B's heartbeat is 10 s old (swept every 2 s).
  assert.equal((await registry.get(d.id)).responseBody.connectionState, 'Connected');
  await until('Disconnected after node B died', async () =>
    (await registry.get(d.id)).responseBody.connectionState === 'Disconnected', 20000);
  const after = Date.now() - killedAt;
  assert.ok(after <= 15000, `presence cleared after ${after} ms`);
  client.close().catch(() => {});
});
