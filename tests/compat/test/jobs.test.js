'use strict';
// Scheduled jobs (/jobs/v2): the official azure-iothub JobClient schedules twin updates and
// device methods over a query condition against a real twinhubd; azure-iot-device clients over
// MQTT see the desired changes and answer the methods. Statistics, per-device records
// (SELECT * FROM devices.jobs), cancel, the job query with paging, bad requests, and a scheduled
// job that survives a hub restart.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Registry, JobClient } = require('azure-iothub');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId, rejectsWith } = require('../lib/hub');
const { stopHub, startHub } = require('../lib/hub_process');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Devices tagged {group}, so that one job's query condition selects exactly them.
async function newDevices(n, group) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const id = uniqueId('job');
    const dev = (await registry.create({ deviceId: id })).responseBody;
    await registry.updateTwin(id, { tags: { group } }, '*');
    out.push({ id, key: dev.authentication.symmetricKey.primaryKey });
  }
  return out;
}

async function openDevice(d) {
  const client = Client.fromConnectionString(`HostName=${hostName};DeviceId=${d.id};SharedAccessKey=${d.key}`, Mqtt);
  await client.open();
  return client;
}

// Polls getJob (the job's status is the signal) until it reaches a final state.
async function finished(jobs, jobId, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = (await jobs.getJob(jobId)).jobStatus;
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.status} after ${ms} ms`);
    await sleep(100);
  }
}

async function queryAll(sql, reg = registry) {
  const q = reg.createQuery(sql, 100);
  const rows = [];
  while (q.hasMoreResults) rows.push(...(await q.next(q.continuationToken)).result);
  return rows;
}

test('a twin update job reaches every matching twin and a connected MQTT device', async () => {
  const jobs = JobClient.fromConnectionString(connectionString());
  const group = uniqueId('g');
  const devs = await newDevices(3, group);
  const client = await openDevice(devs[0]);
  try {
    const twin = await client.getTwin();
    const seen = new Promise((resolve) => {
      twin.on('properties.desired', (d) => { if (d.fw === '2.0') resolve(d); });
    });
    const before = (await registry.getTwin(devs[1].id)).responseBody.properties.desired.$version;
    const jobId = uniqueId('twinjob');
    const patch = { etag: '*', tags: { stage: 'rolled' }, properties: { desired: { fw: '2.0' }, reported: {} } };
    const created = (await jobs.scheduleTwinUpdate(jobId, `tags.group = '${group}'`, patch, new Date(), 60)).jobStatus;
    assert.equal(created.jobId, jobId);
    assert.equal(created.status, 'queued');
    assert.equal(created.type, 'scheduleUpdateTwin');
    const job = await finished(jobs, jobId);
    assert.equal(job.status, 'completed');
    assert.deepEqual(job.deviceJobStatistics,
      { deviceCount: 3, failedCount: 0, succeededCount: 3, runningCount: 0, pendingCount: 0 });
    assert.ok(Date.parse(job.endTime) >= Date.parse(job.startTime));
    assert.ok(Date.parse(job.createdTime) > 0);
    const delta = await seen;
    assert.equal(delta.$version, twin.properties.desired.$version);
    for (const d of devs) {
      const t = (await registry.getTwin(d.id)).responseBody;
      assert.equal(t.tags.stage, 'rolled');
      assert.equal(t.properties.desired.fw, '2.0');
    }
    const after = (await registry.getTwin(devs[1].id)).responseBody.properties.desired.$version;
    assert.equal(after, before + 1);
    const rows = await queryAll(`SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '${jobId}'`);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows.map((r) => r.deviceId).sort(), devs.map((d) => d.id).sort());
    for (const r of rows) {
      assert.equal(r.status, 'completed');
      assert.equal(r.jobType, 'scheduleUpdateTwin');
    }
  } finally {
    await client.close();
  }
});

test('a method job: the online device answers, the offline one fails, the job completes', async () => {
  const jobs = JobClient.fromConnectionString(connectionString());
  const group = uniqueId('g');
  const [online, offline] = await newDevices(2, group);
  const client = await openDevice(online);
  try {
    let calls = 0;
    client.onDeviceMethod('reboot', (req, res) => {
      calls++;
      res.send(201, { echo: req.payload }, () => {});
    });
    await sleep(200);  // the SDK's SUBSCRIBE to the method topic has no completion signal
    const jobId = uniqueId('mjob');
    await jobs.scheduleDeviceMethod(jobId, `tags.group = '${group}'`,
      { methodName: 'reboot', payload: { delay: 5 }, responseTimeoutInSeconds: 10 }, new Date(), 60);
    const job = await finished(jobs, jobId);
    assert.equal(job.status, 'completed');
    assert.equal(job.type, 'scheduleDeviceMethod');
    assert.equal(job.cloudToDeviceMethod.methodName, 'reboot');
    assert.deepEqual(job.deviceJobStatistics,
      { deviceCount: 2, failedCount: 1, succeededCount: 1, runningCount: 0, pendingCount: 0 });
    assert.equal(calls, 1);
    const rows = await queryAll(`SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '${jobId}'`);
    const byId = Object.fromEntries(rows.map((r) => [r.deviceId, r]));
    assert.equal(byId[online.id].status, 'completed');
    assert.deepEqual(byId[online.id].outcome.deviceMethodResponse, { status: 201, payload: { echo: { delay: 5 } } });
    assert.equal(byId[offline.id].status, 'failed');
    assert.equal(byId[offline.id].error.code, 'DeviceNotOnline');
    const failed = await queryAll(
      `SELECT deviceId FROM devices.jobs WHERE devices.jobs.jobId = '${jobId}' AND devices.jobs.status = 'failed'`);
    assert.deepEqual(failed, [{ deviceId: offline.id }]);
  } finally {
    await client.close();
  }
});

test('a scheduled job is cancelled before it starts and never touches the twins', async () => {
  const jobs = JobClient.fromConnectionString(connectionString());
  const group = uniqueId('g');
  const [d] = await newDevices(1, group);
  const jobId = uniqueId('cjob');
  const created = (await jobs.scheduleTwinUpdate(jobId, `tags.group = '${group}'`,
    { etag: '*', properties: { desired: { never: true } } }, new Date(Date.now() + 3600000), 60)).jobStatus;
  assert.equal(created.status, 'queued');
  assert.equal((await jobs.getJob(jobId)).jobStatus.status, 'scheduled');
  const cancelled = (await jobs.cancelJob(jobId)).jobStatus;
  assert.equal(cancelled.status, 'cancelled');
  assert.equal((await jobs.getJob(jobId)).jobStatus.status, 'cancelled');
  assert.equal((await registry.getTwin(d.id)).responseBody.properties.desired.never, undefined);
});

test('createQuery filters by type and status and pages with x-ms-continuation', async () => {
  const jobs = JobClient.fromConnectionString(connectionString());
  const group = uniqueId('g');
  await newDevices(1, group);
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const jobId = uniqueId('qjob');
    ids.push(jobId);
    await jobs.scheduleTwinUpdate(jobId, `tags.group = '${group}'`, { etag: '*', tags: { n: i } }, new Date(), 60);
    await finished(jobs, jobId);
  }
  const q = jobs.createQuery('scheduleUpdateTwin', 'completed', 1);
  const seen = [];
  let pages = 0;
  while (q.hasMoreResults) {
    const page = (await q.next(q.continuationToken)).result;  // next() alone restarts (promise form)
    pages++;
    assert.ok(page.length <= 1);
    for (const j of page) {
      assert.equal(j.type, 'scheduleUpdateTwin');
      assert.equal(j.status, 'completed');
      seen.push(j.jobId);
    }
  }
  for (const id of ids) assert.ok(seen.includes(id), `${id} is in the query`);
  assert.ok(pages >= 3);
  const methods = (await jobs.createQuery('scheduleDeviceMethod', 'cancelled').next()).result;
  for (const j of methods) assert.equal(j.type, 'scheduleDeviceMethod');
  assert.ok(!methods.some((j) => ids.includes(j.jobId)));
});

test('bad job requests are refused with IoT Hub error codes', async () => {
  const jobs = JobClient.fromConnectionString(connectionString());
  const jobId = uniqueId('bad');
  await jobs.scheduleTwinUpdate(jobId, "deviceId = 'nobody'", { etag: '*', tags: { a: 1 } }, new Date(), 60);
  const dup = await rejectsWith(
    jobs.scheduleTwinUpdate(jobId, "deviceId = 'nobody'", { etag: '*', tags: { a: 1 } }, new Date(), 60),
    'DeviceAlreadyExistsError', 409);
  assert.equal(dup.response.headers['iothub-errorcode'], 'JobAlreadyExists');
  await rejectsWith(jobs.scheduleTwinUpdate(uniqueId('bad'), "deviceId = = 'x'", { etag: '*', tags: {} }, new Date(), 60),
    'ArgumentError', 400, 'ArgumentInvalid');
  await rejectsWith(jobs.scheduleTwinUpdate(uniqueId('bad'), "deviceId = 'x'", { tags: { a: 1 } }, new Date(), 60),
    'ArgumentError', 400, 'ArgumentInvalid');
  await rejectsWith(jobs.scheduleDeviceMethod(uniqueId('bad'), "deviceId = 'x'",
    { methodName: 'm', responseTimeoutInSeconds: 9999 }, new Date(), 60), 'ArgumentError', 400, 'ArgumentInvalid');
  const missing = await rejectsWith(jobs.getJob(uniqueId('none')), 'Error', 404);  // the SDK has no class for JobNotFound
  assert.equal(missing.response.headers['iothub-errorcode'], 'JobNotFound');
  // The job with no matching device still completed, with zero devices.
  const job = await finished(jobs, jobId);
  assert.equal(job.status, 'completed');
  assert.equal(job.deviceJobStatistics.deviceCount, 0);
});

test('jobs survive a restart: a scheduled job runs after it, a finished one is still there', async () => {
  let jobs = JobClient.fromConnectionString(connectionString());
  const group = uniqueId('g');
  const [d] = await newDevices(1, group);
  const doneId = uniqueId('before');
  await jobs.scheduleTwinUpdate(doneId, `tags.group = '${group}'`, { etag: '*', tags: { first: 1 } }, new Date(), 60);
  await finished(jobs, doneId);
  const laterId = uniqueId('later');
  await jobs.scheduleTwinUpdate(laterId, `tags.group = '${group}'`,
    { etag: '*', properties: { desired: { afterRestart: true } } }, new Date(Date.now() + 3000), 60);
  await stopHub('SIGTERM');
  await startHub();
  jobs = JobClient.fromConnectionString(connectionString());  // a fresh keep-alive agent
  const reg = Registry.fromConnectionString(connectionString());
  const first = (await jobs.getJob(doneId)).jobStatus;
  assert.equal(first.status, 'completed');
  assert.equal(first.deviceJobStatistics.succeededCount, 1);
  const later = await finished(jobs, laterId);
  assert.equal(later.status, 'completed');
  assert.equal(later.deviceJobStatistics.succeededCount, 1);
  assert.equal((await reg.getTwin(d.id)).responseBody.properties.desired.afterRestart, true);
  const rows = await queryAll(`SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '${doneId}'`, reg);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].status, 'completed');
});
