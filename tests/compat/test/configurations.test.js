'use strict';
// Configurations (automatic device management) through the official azure-iothub Registry against
// a real twinhubd: CRUD with etags (412 on a stale one, 409 on a second create), application to
// the twins whose tags match the target condition (desired properties reach a connected MQTT
// device, the twin's configurations section), priority, system and custom metrics, testQueries,
// and applyConfigurationContent on an IoT Edge device.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Registry } = require('azure-iothub');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId, rejectsWith } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const configId = (p) => uniqueId(p).toLowerCase();

async function newDevice(tags) {
  const id = uniqueId('cfg');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  if (tags) await registry.updateTwin(id, { tags }, '*');
  return { id, key: dev.authentication.symmetricKey.primaryKey };
}

// Configurations apply asynchronously: polls the twin (its state is the signal).
async function twinUntil(id, pred, what, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const t = (await registry.getTwin(id)).responseBody;
    if (pred(t)) return t;
    if (Date.now() > deadline) throw new Error(`twin ${id}: ${what} not reached; twin: ${JSON.stringify(t)}`);
    await sleep(50);
  }
}

function status(twin, cfg) {
  return twin.configurations && twin.configurations[cfg] && twin.configurations[cfg].status;
}

test('CRUD with etags: create, 409 on a second create, get, list, update, 412 on a stale etag, delete', async () => {
  const id = configId('crud');
  const cfg = {
    id, content: { deviceContent: { 'properties.desired.settings': { mode: 'eco' } } },
    targetCondition: "tags.none = 'x'", priority: 3, labels: { team: 'a' },
    metrics: { queries: { eco: "SELECT deviceId FROM devices WHERE properties.reported.mode = 'eco'" } },
  };
  const created = (await registry.addConfiguration({ ...cfg })).responseBody;
  assert.equal(created.id, id);
  assert.equal(created.schemaVersion, '1.0');
  assert.ok(created.etag);
  assert.ok(Date.parse(created.createdTimeUtc) > 0);
  const dup = await rejectsWith(registry.addConfiguration({ ...cfg }), 'DeviceAlreadyExistsError', 409);
  assert.equal(dup.response.headers['iothub-errorcode'], 'ConfigurationAlreadyExists');

  const got = (await registry.getConfiguration(id)).responseBody;
  assert.deepEqual(got.content, cfg.content);
  assert.deepEqual(got.labels, cfg.labels);
  assert.equal(got.priority, 3);
  assert.deepEqual(got.systemMetrics.results, { targetedCount: 0, appliedCount: 0 });
  assert.deepEqual(got.metrics.results, { eco: 0 });
  const list = (await registry.getConfigurations()).responseBody;
  assert.ok(list.some((c) => c.id === id));

  got.priority = 7;
  const updated = (await registry.updateConfiguration(got)).responseBody;
  assert.equal(updated.priority, 7);
  assert.notEqual(updated.etag, got.etag);
  assert.equal(updated.createdTimeUtc, got.createdTimeUtc);
  const stale = await registry.updateConfiguration({ ...got, priority: 8 }).then(() => null, (e) => e);
  assert.ok(stale, 'an update with a stale etag succeeded');
  assert.equal(stale.response.statusCode, 412);
  assert.equal(stale.response.headers['iothub-errorcode'], 'PreconditionFailed');
  const changed = await registry.updateConfiguration({ ...updated, content: { deviceContent: { 'properties.desired.x': 1 } } })
    .then(() => null, (e) => e);
  assert.equal(changed.response.statusCode, 400);
  await registry.updateConfiguration({ ...updated, priority: 9 }, true);  // If-Match: *
  assert.equal((await registry.getConfiguration(id)).responseBody.priority, 9);

  await registry.removeConfiguration(id);
  const gone = await registry.getConfiguration(id).then(() => null, (e) => e);
  assert.equal(gone.response.statusCode, 404);
  assert.equal(gone.response.headers['iothub-errorcode'], 'ConfigurationNotFound');
});

test('bad configurations are refused with 400', async () => {
  const bad = async (cfg) => {
    const err = await registry.addConfiguration(cfg).then(() => null, (e) => e);
    assert.ok(err, JSON.stringify(cfg));
    assert.equal(err.response.statusCode, 400);
    assert.equal(err.response.headers['iothub-errorcode'], 'ArgumentInvalid');
  };
  await bad({ id: configId('b'), content: {}, targetCondition: '' });
  await bad({ id: configId('b'), content: { deviceContent: { 'tags.x': 1 } }, targetCondition: '' });
  await bad({ id: configId('b'), content: { deviceContent: {} }, targetCondition: 'tags.x = = 1' });
  await bad({ id: configId('b'), content: { deviceContent: {} }, targetCondition: '', priority: -1 });
  await bad({ id: 'UPPER', content: { deviceContent: {} }, targetCondition: '' });
});

test('a configuration applies to matching twins, reaches a connected device, and follows tag changes', async () => {
  const run = uniqueId('r');
  const a = await newDevice({ run, env: 'prod' });
  const b = await newDevice({ run, env: 'test' });
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${a.id};SharedAccessKey=${a.key}`, Mqtt);
  await client.open();
  try {
    const twin = await client.getTwin();
    const seen = new Promise((resolve) => {
      twin.on('properties.desired', (d) => { if (d.telemetry && d.telemetry.interval === 30) resolve(d); });
    });
    const id = configId('apply');
    await registry.addConfiguration({
      id, content: { deviceContent: { 'properties.desired.telemetry': { interval: 30 } } },
      targetCondition: `tags.run = '${run}' AND tags.env = 'prod'`, priority: 10,
      metrics: { queries: { slow: `SELECT deviceId FROM devices WHERE configurations.[[${id}]].status = 'Applied' AND properties.reported.lag > 5` } },
    });
    const ta = await twinUntil(a.id, (t) => status(t, id) === 'Applied', 'Applied');
    assert.equal(ta.properties.desired.telemetry.interval, 30);
    await seen;
    const tb = (await registry.getTwin(b.id)).responseBody;
    assert.equal(status(tb, id), undefined);
    assert.equal(tb.properties.desired.telemetry, undefined);

    await client.getTwin().then((t) => new Promise((res, rej) => t.properties.reported.update({ lag: 9 }, (e) => (e ? rej(e) : res()))));
    const cfg = (await registry.getConfiguration(id)).responseBody;
    assert.deepEqual(cfg.systemMetrics.results, { targetedCount: 1, appliedCount: 1 });
    assert.match(cfg.systemMetrics.queries.targetedCount, /tags\.env = 'prod'/);
    assert.deepEqual(cfg.metrics.results, { slow: 1 });
    const q = registry.createQuery(`SELECT deviceId FROM devices WHERE configurations['${id}'].status = 'Applied'`);
    assert.deepEqual((await q.next()).result, [{ deviceId: a.id }]);

    // b's tags change: now it is targeted too.
    await registry.updateTwin(b.id, { tags: { env: 'prod' } }, '*');
    const tb2 = await twinUntil(b.id, (t) => status(t, id) === 'Applied', 'Applied after the tag change');
    assert.equal(tb2.properties.desired.telemetry.interval, 30);

    // Removing the configuration drops the section entry and keeps the desired value.
    await registry.removeConfiguration(id);
    const ta2 = await twinUntil(a.id, (t) => status(t, id) === undefined, 'section entry removed');
    assert.equal(ta2.properties.desired.telemetry.interval, 30);
  } finally {
    await client.close();
  }
});

test('priority: the highest wins per device, a tie goes to the newest; the others are Targeted', async () => {
  const run = uniqueId('p');
  const d = await newDevice({ run });
  const low = configId('low');
  const high = configId('high');
  const cond = `tags.run = '${run}'`;
  await registry.addConfiguration({ id: high, content: { deviceContent: { 'properties.desired.level': 'high' } }, targetCondition: cond, priority: 50 });
  await registry.addConfiguration({ id: low, content: { deviceContent: { 'properties.desired.level': 'low' } }, targetCondition: cond, priority: 5 });
  let t = await twinUntil(d.id, (x) => status(x, low) === 'Targeted' && status(x, high) === 'Applied', 'high Applied, low Targeted');
  assert.equal(t.properties.desired.level, 'high');
  const cl = (await registry.getConfiguration(low)).responseBody;
  assert.deepEqual(cl.systemMetrics.results, { targetedCount: 1, appliedCount: 0 });

  const tie = configId('tie');
  await registry.addConfiguration({ id: tie, content: { deviceContent: { 'properties.desired.level': 'tie' } }, targetCondition: cond, priority: 50 });
  t = await twinUntil(d.id, (x) => status(x, tie) === 'Applied' && status(x, high) === 'Targeted', 'the newest of equal priority Applied');
  assert.equal(t.properties.desired.level, 'tie');
  for (const id of [low, high, tie]) await registry.removeConfiguration(id);
});

test('testQueries reports errors; applyConfigurationContent writes edge module twins', async () => {
  const res = await new Promise((resolve, reject) => {
    registry._restApiClient.executeApiCall('POST', '/configurations/testQueries?api-version=2020-05-31-preview',
      { 'Content-Type': 'application/json; charset=utf-8' },
      { targetCondition: 'tags.x = = 1', customMetricQueries: { ok: 'SELECT deviceId FROM devices', bad: 'SELECT FROM' } },
      (err, body) => (err ? reject(err) : resolve(body)));
  });
  assert.ok(res.targetConditionError.length > 0);
  assert.deepEqual(Object.keys(res.customMetricQueryErrors), ['bad']);

  const edgeId = uniqueId('edge');
  await registry.create({ deviceId: edgeId, capabilities: { iotEdge: true } });
  const content = {
    modulesContent: {
      $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', runtime: { type: 'docker' }, modules: {} } },
      $edgeHub: { 'properties.desired': { schemaVersion: '1.1', routes: {}, storeAndForwardConfiguration: { timeToLiveSecs: 7200 } } },
      sensor: { 'properties.desired': { rate: 5 } },
    },
  };
  await registry.applyConfigurationContentOnDevice(edgeId, content);
  const agent = (await registry.getModuleTwin(edgeId, '$edgeAgent')).responseBody;
  assert.deepEqual(agent.properties.desired.runtime, { type: 'docker' });
  const hub = (await registry.getModuleTwin(edgeId, '$edgeHub')).responseBody;
  assert.equal(hub.properties.desired.storeAndForwardConfiguration.timeToLiveSecs, 7200);
  const sensor = (await registry.getModuleTwin(edgeId, 'sensor')).responseBody;
  assert.equal(sensor.properties.desired.rate, 5);
  // Applying again replaces the module's desired properties.
  await registry.applyConfigurationContentOnDevice(edgeId, { modulesContent: { sensor: { 'properties.desired': { other: 1 } } } });
  const sensor2 = (await registry.getModuleTwin(edgeId, 'sensor')).responseBody;
  assert.equal(sensor2.properties.desired.rate, undefined);
  assert.equal(sensor2.properties.desired.other, 1);

  const plain = await newDevice();
  const err = await registry.applyConfigurationContentOnDevice(plain.id, content).then(() => null, (e) => e);
  assert.equal(err.response.statusCode, 400);
  const nobody = await registry.applyConfigurationContentOnDevice(uniqueId('none'), content).then(() => null, (e) => e);
  assert.equal(nobody.response.statusCode, 404);
});
