'use strict';
// Message routing (README "Message routing", docs/compatibility.md) read end to end with the
// official SDKs: devices send with azure-iot-device (MQTT / AMQP), routing.json is written into the
// running hub's data directory, and @azure/event-hubs reads the built-in endpoint (`events`) and
// custom Event Hubs-compatible endpoints (EntityPath=<endpoint name>). One condition form per test,
// Azure's fallback rules, enrichments, live changes, twin change and device lifecycle events.
//
// Every configuration written here also holds one "marker" route per endpoint (condition
// `marker = '<generation>'`). A test's devices end with a marker message; one device's messages
// keep their order in its partition, so once a device's marker arrived at an endpoint, everything
// that device sent before and that was routed there has arrived too: absences are checked without
// sleeping. The marker of a fresh generation reaching `hot` also tells that the hub applied the
// new file.
const nodeTest = require('node:test');
const { before, after } = nodeTest;
// A hang fails its test instead of the whole ctest run.
const test = (name, fn) => nodeTest(name, { timeout: 120000 }, fn);
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Registry } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { Amqp } = require('azure-iot-device-amqp');
const { EventHubConsumerClient } = require('@azure/event-hubs');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const hubName = hostName.split('.')[0];
const dataDir = process.env.TWINHUB_DATA_DIR;
const routingFile = path.join(dataDir, 'routing.json');
const hubLog = `${dataDir}.stderr`;
const ENDPOINTS = ['events', 'hot', 'cold'];

const builtinCs = execFileSync(path.join(process.env.TWINHUB_BIN_DIR, 'twinhub'),
  ['hub', 'connection-string', 'show', '--eventhub', '--data-dir', dataDir], { encoding: 'utf8' }).trim();
// A custom endpoint is read like the built-in one with its name as the EntityPath.
const endpointCs = (name) => (name === 'events' ? builtinCs : builtinCs.replace(/EntityPath=[^;]+/, `EntityPath=${name}`));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bodyText = (e) => (Buffer.isBuffer(e.body) ? e.body.toString()
  : typeof e.body === 'string' ? e.body : JSON.stringify(e.body));

// One subscription per endpoint for the whole file, started before anything is sent; `seen[ep]`
// holds every event read there.
const consumers = {};
const subs = [];
const seen = {};
const waiters = [];
function notify() {
  for (const w of [...waiters]) if (w.check()) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
}
function waitFor(check, what, ms = 20000) {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const w = { check, resolve: () => { clearTimeout(w.timer); resolve(); } };
    w.timer = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`timed out waiting for ${what}`)); }, ms);
    waiters.push(w);
  });
}

before(async () => {
  const from = { enqueuedOn: new Date(Date.now() - 2000) };
  // The custom endpoints exist only once a configuration names them.
  writeRouting(config('g0', []));
  await waitApplied('g0');
  for (const ep of ENDPOINTS) {
    seen[ep] = [];
    consumers[ep] = new EventHubConsumerClient('$Default', endpointCs(ep));
    subs.push(consumers[ep].subscribe({
      processEvents: async (events) => {
        for (const e of events) e.properties ||= {};  // the SDK leaves it undefined without application properties
        seen[ep].push(...events);
        notify();
      },
      processError: async () => {},
    }, { startPosition: from, maxWaitTimeInSeconds: 1 }));
  }
  await probe('g0');
});

after(async () => {
  for (const s of subs) await s.close();
  for (const c of Object.values(consumers)) await c.close();
  if (probeClient) await probeClient.close();
  fs.rmSync(routingFile, { force: true });
});

// A routing object: `routes` under test plus one marker route per endpoint.
function config(generation, routes, extra = {}) {
  return {
    endpoints: { eventHubs: [{ name: 'hot', connectionString: 'ignored by twinhub' }, { name: 'cold' }] },
    routes: [
      ...routes,
      ...ENDPOINTS.map((ep) => ({
        name: `marker-${ep}`, source: 'DeviceMessages', condition: `marker = '${generation}'`,
        endpointNames: [ep], isEnabled: true,
      })),
    ],
    fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
    ...extra,
  };
}

// Written as a user would replace the file: a new file renamed over the old one.
function writeRouting(obj) {
  const tmp = `${routingFile}.tmp`;
  fs.writeFileSync(tmp, typeof obj === 'string' ? obj : JSON.stringify(obj, null, 2));
  fs.renameSync(tmp, routingFile);
}

let probeClient;
let probeId;
async function probeDevice() {
  if (probeClient) return;
  probeId = uniqueId('rprobe');
  const key = (await registry.create({ deviceId: probeId })).responseBody.authentication.symmetricKey.primaryKey;
  probeClient = Client.fromConnectionString(`HostName=${hostName};DeviceId=${probeId};SharedAccessKey=${key}`, Mqtt);
  await probeClient.open();
}

// Sends the marker of `generation` from the probe device until it arrives at `hot`, i.e. until
// the hub routes with the file that introduced `generation`.
async function probe(generation) {
  await probeDevice();
  // At `hot`, not `events`: before the file is applied the probe takes the fallback to events.
  const arrived = () => (seen.hot || []).some((e) => e.systemProperties['iothub-connection-device-id'] === probeId &&
    e.properties.marker === generation);
  const deadline = Date.now() + 20000;
  while (!arrived()) {
    if (Date.now() > deadline) throw new Error(`routing generation ${generation} was not applied within 20 s`);
    const m = new Message('probe');
    m.properties.add('marker', generation);
    await probeClient.sendEvent(m);
    try { await waitFor(arrived, 'probe', 700); } catch { /* not applied yet: send again */ }
  }
}

// Before the subscriptions exist: polls the hub log instead (only needed for g0).
async function waitApplied(generation) {
  for (let i = 0; i < 200; i++) {
    const c = new EventHubConsumerClient('$Default', endpointCs('hot'), { retryOptions: { maxRetries: 0 } });
    try {
      await c.getPartitionIds();
      await c.close();
      return;
    } catch {
      await c.close();
      await sleep(100);
    }
  }
  throw new Error(`routing generation ${generation}: endpoint 'hot' never appeared`);
}

let generationCounter = 0;
async function applyRouting(routes, extra) {
  const g = `g${++generationCounter}`;
  writeRouting(config(g, routes, extra));
  await probe(g);
  return g;
}

async function device(proto = Mqtt) {
  const id = uniqueId('rt');
  const key = (await registry.create({ deviceId: id })).responseBody.authentication.symmetricKey.primaryKey;
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}`, proto);
  await client.open();
  return { id, client };
}

// `spec`: { body, props, contentType, contentEncoding, messageId }.
function message({ body = '', props = {}, contentType, contentEncoding, messageId }) {
  const m = new Message(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  for (const [k, v] of Object.entries(props)) m.properties.add(k, v);
  if (contentType) m.contentType = contentType;
  if (contentEncoding) m.contentEncoding = contentEncoding;
  if (messageId) m.messageId = messageId;
  return m;
}

// Sends `specs` (each with a `tag` app property) and then the marker of `generation` from `dev`;
// waits for the marker at every endpoint and returns, per endpoint, the tags of `dev`'s messages
// that arrived there (in arrival order) and the events themselves.
let nonce = 0;
async function sendAndRead(dev, generation, specs) {
  for (const s of specs) await dev.client.sendEvent(message({ ...s, props: { ...(s.props || {}), tag: s.tag } }));
  const n = String(++nonce);
  await dev.client.sendEvent(message({ body: 'marker', props: { marker: generation, nonce: n } }));
  const mine = (ep) => seen[ep].filter((e) => e.systemProperties['iothub-connection-device-id'] === dev.id);
  for (const ep of ENDPOINTS)
    await waitFor(() => mine(ep).some((e) => e.properties.nonce === n), `the marker of ${dev.id} at ${ep}`);
  const out = {};
  for (const ep of ENDPOINTS) {
    const events = mine(ep).filter((e) => e.properties.marker === undefined);
    out[ep] = { tags: events.map((e) => e.properties.tag), events };
  }
  return out;
}

test('application property condition: level = \'critical\' goes to its endpoint only; the rest takes the fallback', async () => {
  const g = await applyRouting([
    { name: 'critical', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['hot'], isEnabled: true },
  ]);
  const dev = await device();
  const got = await sendAndRead(dev, g, [
    { tag: 'crit', props: { level: 'critical' } },
    { tag: 'info', props: { level: 'info' } },
    { tag: 'none' },
    { tag: 'Crit', props: { level: 'Critical' } },  // string comparison is case-sensitive
  ]);
  await dev.client.close();
  assert.deepEqual(got.hot.tags, ['crit']);
  assert.deepEqual(got.events.tags, ['info', 'none', 'Crit'], 'a matched message does not also go to events');
  assert.deepEqual(got.cold.tags, []);
  const [e] = got.hot.events;
  assert.equal(e.properties.level, 'critical');
  assert.equal(e.systemProperties['iothub-message-source'], 'Telemetry');
  assert.equal(e.systemProperties['iothub-connection-device-id'], dev.id);
});

test('system property conditions: $connectionDeviceId and $contentType', async () => {
  const a = await device();
  const b = await device(Amqp);
  const g = await applyRouting([
    { name: 'by-device', source: 'DeviceMessages', condition: `$connectionDeviceId = '${a.id}'`, endpointNames: ['hot'], isEnabled: true },
    { name: 'by-type', source: 'DeviceMessages', condition: "$contentType = 'application/json'", endpointNames: ['cold'], isEnabled: true },
  ]);
  const specs = [
    { tag: 'json', body: { x: 1 }, contentType: 'application/json', contentEncoding: 'utf-8' },
    { tag: 'text', body: 'plain', contentType: 'text/plain' },
    { tag: 'bare', body: 'bare' },
  ];
  const ga = await sendAndRead(a, g, specs);
  const gb = await sendAndRead(b, g, specs);
  await a.client.close();
  await b.client.close();
  assert.deepEqual(ga.hot.tags, ['json', 'text', 'bare']);
  assert.deepEqual(ga.cold.tags, ['json'], 'both routes match: the message goes to both endpoints');
  assert.deepEqual(ga.events.tags, []);
  assert.deepEqual(gb.hot.tags, [], 'over AMQP, another device id does not match');
  assert.deepEqual(gb.cold.tags, ['json']);
  assert.deepEqual(gb.events.tags, ['text', 'bare']);
  assert.equal(ga.cold.events[0].contentType, 'application/json');
});

test('body condition $body.temp > 30: JSON bodies only (application/json + utf-8)', async () => {
  const g = await applyRouting([
    { name: 'hot-body', source: 'DeviceMessages', condition: '$body.temp > 30', endpointNames: ['hot'], isEnabled: true },
  ]);
  const dev = await device();
  const json = { contentType: 'application/json', contentEncoding: 'utf-8' };
  const got = await sendAndRead(dev, g, [
    { tag: 'hot', body: { temp: 35.5, unit: 'C' }, ...json },
    { tag: 'mild', body: { temp: 20 }, ...json },
    { tag: 'edge', body: { temp: 30 }, ...json },
    { tag: 'str', body: { temp: '40' }, ...json },  // a string is not greater than a number
    { tag: 'no-type', body: { temp: 40 } },  // JSON text, but not declared JSON: $body undefined
    { tag: 'no-enc', body: { temp: 40 }, contentType: 'application/json' },
    { tag: 'garbage', body: '{temp: 40', ...json },  // declared JSON, not JSON
    { tag: 'upper', body: { temp: 41 }, contentType: 'Application/JSON', contentEncoding: 'UTF-8' },
  ]);
  await dev.client.close();
  assert.deepEqual(got.hot.tags, ['hot', 'upper']);
  assert.deepEqual(got.events.tags, ['mild', 'edge', 'str', 'no-type', 'no-enc', 'garbage']);
  assert.deepEqual(JSON.parse(bodyText(got.hot.events[0])), { temp: 35.5, unit: 'C' }, 'the body arrives unchanged');
});

test('condition true, a disabled route, and AND / OR / NOT', async () => {
  const g = await applyRouting([
    { name: 'everything', source: 'DeviceMessages', condition: 'true', endpointNames: ['cold'], isEnabled: true },
    { name: 'disabled', source: 'DeviceMessages', condition: 'true', endpointNames: ['hot'], isEnabled: false },
    { name: 'logic', source: 'DeviceMessages',
      condition: "(level = 'critical' AND NOT (zone = 'lab')) OR $body.alarm = true", endpointNames: ['events'], isEnabled: true },
  ]);
  const dev = await device();
  const json = { contentType: 'application/json', contentEncoding: 'utf-8' };
  const got = await sendAndRead(dev, g, [
    { tag: 'crit-plant', props: { level: 'critical', zone: 'plant' } },
    { tag: 'crit-lab', props: { level: 'critical', zone: 'lab' } },
    { tag: 'crit-nozone', props: { level: 'critical' } },  // NOT (undefined) is undefined: no match
    { tag: 'alarm', props: { zone: 'lab' }, body: { alarm: true }, ...json },
    { tag: 'quiet', body: { alarm: false }, ...json },
  ]);
  await dev.client.close();
  assert.deepEqual(got.cold.tags, ['crit-plant', 'crit-lab', 'crit-nozone', 'alarm', 'quiet'], 'condition true matches all');
  assert.deepEqual(got.hot.tags, [], 'a disabled route sends nothing');
  assert.deepEqual(got.events.tags, ['crit-plant', 'alarm'],
    'events gets what a route sends there; the fallback does not apply once a route matched');
});

test('fallback: unmatched messages reach events while it is enabled, and nowhere once it is disabled', async () => {
  const routes = [{ name: 'crit', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['hot'], isEnabled: true }];
  let g = await applyRouting(routes);
  let dev = await device();
  let got = await sendAndRead(dev, g, [{ tag: 'a', props: { level: 'critical' } }, { tag: 'b' }]);
  await dev.client.close();
  assert.deepEqual(got.hot.tags, ['a']);
  assert.deepEqual(got.events.tags, ['b']);

  g = await applyRouting(routes, {
    fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: false },
  });
  dev = await device();
  got = await sendAndRead(dev, g, [{ tag: 'a', props: { level: 'critical' } }, { tag: 'b' }]);
  await dev.client.close();
  assert.deepEqual(got.hot.tags, ['a']);
  assert.deepEqual(got.events.tags, [], 'with the fallback disabled an unmatched message is dropped');
  assert.deepEqual(got.cold.tags, []);

  // No routes and no fallbackRoute member: Azure's default, everything reaches events.
  g = `g${++generationCounter}`;
  writeRouting({
    endpoints: { eventHubs: [{ name: 'hot' }, { name: 'cold' }] },
    routes: ENDPOINTS.filter((ep) => ep !== 'events').map((ep) => ({
      name: `marker-${ep}`, source: 'DeviceMessages', condition: `marker = '${g}'`, endpointNames: [ep], isEnabled: true,
    })).concat([{ name: 'marker-events', source: 'DeviceMessages', condition: `marker = '${g}'`, endpointNames: ['events'], isEnabled: true }]),
  });
  await probe(g);
  dev = await device();
  got = await sendAndRead(dev, g, [{ tag: 'x', props: { level: 'critical' } }, { tag: 'y' }]);
  await dev.client.close();
  assert.deepEqual(got.events.tags, ['x', 'y']);
  assert.deepEqual(got.hot.tags, []);
});

test('enrichments: a static value, $iothubname and $twin.tags arrive as application properties of their endpoint', async () => {
  const dev = await device();
  await registry.updateTwin(dev.id, { tags: { site: 'plant-7', floor: 3, nested: { a: 1 } } }, '*');
  const g = await applyRouting([
    { name: 'crit', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['hot'], isEnabled: true },
  ], {
    enrichments: [
      { key: 'team', value: 'ops', endpointNames: ['hot', 'events'] },
      { key: 'hub', value: '$iothubname', endpointNames: ['hot'] },
      { key: 'site', value: '$twin.tags.site', endpointNames: ['hot'] },
      { key: 'floor', value: '$twin.tags.floor', endpointNames: ['hot'] },
      { key: 'missing', value: '$twin.tags.nope', endpointNames: ['hot'] },
      { key: 'obj', value: '$twin.tags.nested', endpointNames: ['hot'] },
    ],
  });
  const got = await sendAndRead(dev, g, [
    { tag: 'c', props: { level: 'critical' } },
    { tag: 'n' },
  ]);
  assert.deepEqual(got.hot.tags, ['c']);
  const hot = got.hot.events[0].properties;
  assert.equal(hot.team, 'ops');
  assert.equal(hot.hub, hubName);
  assert.equal(hot.site, 'plant-7');
  assert.equal(hot.floor, '3');
  assert.equal(hot.missing, '$twin.tags.nope', 'a missing path stamps the literal text, as on Azure');
  assert.equal(hot.obj, '$twin.tags.nested', 'an object value stamps the literal text, as on Azure');
  assert.equal(hot.level, 'critical', 'the message\'s own properties stay');
  assert.deepEqual(got.events.tags, ['n']);
  const ev = got.events.events[0].properties;
  assert.equal(ev.hub, undefined, 'enrichments apply only to the endpoints they name');
  assert.equal(ev.team, 'ops');
  // A changed tag is read at routing time.
  await registry.updateTwin(dev.id, { tags: { site: 'plant-8' } }, '*');
  const again = await sendAndRead(dev, g, [{ tag: 'c2', props: { level: 'critical' } }]);
  await dev.client.close();
  assert.equal(again.hot.events.at(-1).properties.site, 'plant-8');
});

test('a live change of routing.json takes effect; an invalid change keeps the current routing', async () => {
  const dev = await device();
  let g = await applyRouting([
    { name: 'crit', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['hot'], isEnabled: true },
  ]);
  let got = await sendAndRead(dev, g, [{ tag: 'one', props: { level: 'critical' } }]);
  assert.deepEqual(got.hot.tags, ['one']);
  assert.deepEqual(got.cold.tags, []);

  g = await applyRouting([
    { name: 'crit', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['cold'], isEnabled: true },
  ]);
  got = await sendAndRead(dev, g, [{ tag: 'two', props: { level: 'critical' } }]);
  assert.deepEqual(got.hot.tags, ['one'], 'after the change nothing more goes to hot');
  assert.deepEqual(got.cold.tags, ['two']);

  // An invalid file (unknown endpoint) is logged and ignored; routing stays as it was.
  const logBefore = fs.readFileSync(hubLog, 'utf8').length;
  writeRouting({
    ...config('never', []),
    routes: [{ name: 'bad', source: 'DeviceMessages', condition: 'true', endpointNames: ['nowhere'], isEnabled: true }],
  });
  for (let i = 0; ; i++) {
    const log = fs.readFileSync(hubLog, 'utf8').slice(logBefore);
    if (/telemetry\.routing_rejected/.test(log)) {
      assert.match(log, /nowhere/, 'the rejection names the unknown endpoint');
      break;
    }
    if (i > 100) throw new Error('the invalid routing.json was not reported in the hub log');
    await sleep(100);
  }
  got = await sendAndRead(dev, g, [{ tag: 'three', props: { level: 'critical' } }, { tag: 'four' }]);
  await dev.client.close();
  assert.deepEqual(got.cold.tags, ['two', 'three']);
  assert.deepEqual(got.events.tags, ['four']);
});

// Generated events of `id` at `ep` with iothub-message-source `source`.
const generated = (ep, id, source) => seen[ep].filter((e) => e.systemProperties['iothub-connection-device-id'] === id &&
  e.systemProperties['iothub-message-source'] === source);

test('twin change events: desired (updateTwin) and reported (device) changes reach events when routed', async () => {
  const dev = await device();
  // Not routed: no twin change event reaches the built-in endpoint, even through the fallback.
  let g = await applyRouting([]);
  await registry.updateTwin(dev.id, { properties: { desired: { before: 1 } } }, '*');
  await sendAndRead(dev, g, []);
  assert.deepEqual(generated('events', dev.id, 'twinChangeEvents'), []);

  g = await applyRouting([
    { name: 'twins', source: 'TwinChangeEvents', condition: 'true', endpointNames: ['events'], isEnabled: true },
    { name: 'reported-cold', source: 'TwinChangeEvents', condition: 'IS_DEFINED($body.properties.reported.fw)',
      endpointNames: ['cold'], isEnabled: true },
  ]);
  await registry.updateTwin(dev.id, { properties: { desired: { interval: 42 } } }, '*');
  const twin = await dev.client.getTwin();
  await new Promise((resolve, reject) => twin.properties.reported.update({ fw: '1.2.3' }, (e) => (e ? reject(e) : resolve())));
  await waitFor(() => generated('events', dev.id, 'twinChangeEvents').length >= 2, 'two twin change events');
  await waitFor(() => generated('cold', dev.id, 'twinChangeEvents').length >= 1, 'the reported change at cold');
  await sendAndRead(dev, g, []);
  await dev.client.close();
  const evs = generated('events', dev.id, 'twinChangeEvents');
  assert.equal(evs.length, 2, 'one event per change');
  const [desired, reported] = evs.map((e) => ({ e, body: JSON.parse(bodyText(e)) }));
  assert.equal(desired.body.properties.desired.interval, 42);
  assert.equal(typeof desired.body.properties.desired.$version, 'number');
  assert.equal(reported.body.properties.reported.fw, '1.2.3');
  assert.equal(typeof desired.body.version, 'number');
  for (const { e } of [desired, reported]) {
    assert.equal(e.properties.opType, 'updateTwin');
    assert.equal(e.properties.deviceId, dev.id);
    assert.equal(e.properties.hubName, hubName);
    assert.equal(e.properties['iothub-message-schema'], 'twinChangeNotification');
    assert.ok(!Number.isNaN(Date.parse(e.properties.operationTimestamp)));
    assert.equal(e.contentType, 'application/json');
  }
  const cold = generated('cold', dev.id, 'twinChangeEvents');
  assert.equal(cold.length, 1, 'only the reported change matched the body condition');
  assert.equal(JSON.parse(bodyText(cold[0])).properties.reported.fw, '1.2.3');
});

test('device lifecycle events: createDeviceIdentity and deleteDeviceIdentity reach events when routed', async () => {
  // Not routed: creating a device generates nothing at events (its own later marker shows it).
  let g = await applyRouting([]);
  const quiet = await device();
  await sendAndRead(quiet, g, []);
  await quiet.client.close();
  assert.deepEqual(generated('events', quiet.id, 'deviceLifecycleEvents'), []);

  g = await applyRouting([
    { name: 'lifecycle', source: 'DeviceLifecycleEvents', condition: "opType = 'deleteDeviceIdentity' OR opType = 'createDeviceIdentity'",
      endpointNames: ['events'], isEnabled: true },
    { name: 'deletes', source: 'DeviceLifecycleEvents', condition: "opType = 'deleteDeviceIdentity'",
      endpointNames: ['cold'], isEnabled: true },
  ]);
  const id = uniqueId('rlc');
  await registry.create({ deviceId: id, capabilities: { iotEdge: false } });
  await waitFor(() => generated('events', id, 'deviceLifecycleEvents').length >= 1, 'the create event');
  await registry.delete(id);
  await waitFor(() => generated('events', id, 'deviceLifecycleEvents').length >= 2, 'the delete event');
  await waitFor(() => generated('cold', id, 'deviceLifecycleEvents').length >= 1, 'the delete event at cold');
  const evs = generated('events', id, 'deviceLifecycleEvents');
  assert.deepEqual(evs.map((e) => e.properties.opType), ['createDeviceIdentity', 'deleteDeviceIdentity']);
  for (const e of evs) {
    assert.equal(e.properties.deviceId, id);
    assert.equal(e.properties.hubName, hubName);
    assert.equal(e.properties['iothub-message-schema'], 'deviceLifecycleNotification');
    assert.ok(!Number.isNaN(Date.parse(e.properties.operationTimestamp)));
    assert.equal(JSON.parse(bodyText(e)).deviceId, id, 'the body is the device twin');
  }
  // A later telemetry marker from another device does not order this device's partition: the delete
  // event at cold is the last one of `id` there, so the create event (earlier) must be absent.
  assert.deepEqual(generated('cold', id, 'deviceLifecycleEvents').map((e) => e.properties.opType), ['deleteDeviceIdentity']);
  assert.equal(generated('hot', id, 'deviceLifecycleEvents').length, 0);
});
