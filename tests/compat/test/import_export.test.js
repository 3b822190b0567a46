'use strict';
// Import/export jobs (issue 16 item 4) with azure-iothub's Registry unchanged, against Azurite
// (lib/azurite.js). The first test is Microsoft's e2e "Imports then exports devices"
// (azure-iot-sdk-node e2etests/test/registry.js): 10 devices with keys imported with
// createOrUpdate from devices.txt ("\r\n" between lines) in an 'rl' input container, job polled
// with getJob every second until "completed", exported to an 'rwd' output container, every device
// found in the exported devices.txt with its keys and status, then removed by an import with
// importMode delete. The rest covers what a user of that API relies on besides: twin tags and
// desired properties both ways, excludeKeysInExport, the other import modes and importErrors.log,
// Azure's errors for a bad SAS URI, a malformed line (the job fails, nothing is applied), an
// unknown job, cancel, listJobs, and jobs that survive a hub restart.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Registry } = require('azure-iothub');
const { connectionString, uniqueId } = require('../lib/hub');
const { stopHub, startHub } = require('../lib/hub_process');
const { startAzurite } = require('../lib/azurite');

const registry = Registry.fromConnectionString(connectionString());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let storage = null;
let inUrl = '';
let outUrl = '';
const IN = 'nodee2e-import-' + crypto.randomUUID();
const OUT = 'nodee2e-export-' + crypto.randomUUID();
const jobIds = [];

before(async () => {
  storage = await startAzurite();
  inUrl = await storage.containerSasUrl(IN, 'rl');
  outUrl = await storage.containerSasUrl(OUT, 'rwd');
});

after(async () => {
  if (storage) await storage.stop();
});

// Polls getJob every second, as the e2e test does, until the job is no longer enqueued/running.
async function finished(jobId, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await registry.getJob(jobId);
    assert.equal(job.jobId, jobId);
    if (!['enqueued', 'running'].includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.status} after ${ms} ms`);
    await sleep(1000);
  }
}

async function runImport(lines, { expect = 'completed' } = {}) {
  await storage.upload(IN, 'devices.txt', lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\r\n') + '\r\n');
  const created = await registry.importDevicesFromBlob(inUrl, outUrl);
  assert.equal(created.type, 'import');
  assert.equal(created.status, 'enqueued');
  jobIds.push(created.jobId);
  const job = await finished(created.jobId);
  assert.equal(job.status, expect, `failureReason: ${job.failureReason}`);
  return job;
}

async function runExport(excludeKeys) {
  const created = await registry.exportDevicesToBlob(outUrl, excludeKeys);
  assert.equal(created.type, 'export');
  jobIds.push(created.jobId);
  const job = await finished(created.jobId);
  assert.equal(job.status, 'completed', `failureReason: ${job.failureReason}`);
  assert.equal(job.progress, 100);
  const text = await storage.text(OUT, 'devices.txt');
  return text.split('\r\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function errorsLog() {
  const text = await storage.text(OUT, 'importErrors.log');
  return text.split('\r\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function httpError(promise) {
  try {
    await promise;
  } catch (e) {
    return { status: e.response && e.response.statusCode, code: e.response && e.response.headers['iothub-errorcode'], e };
  }
  throw new Error('expected the call to fail');
}

async function gone(id) {
  const r = await httpError(registry.get(id));
  assert.equal(r.status, 404);
  assert.equal(r.code, 'DeviceNotFound');
}

test('e2e registry.js: imports then exports devices', async () => {
  const devicesToImport = [];
  for (let i = 0; i < 10; i++) {
    devicesToImport.push({
      id: 'nodee2e-' + crypto.randomUUID(),
      authentication: { symmetricKey: {
        primaryKey: Buffer.from(crypto.randomUUID()).toString('base64'),
        secondaryKey: Buffer.from(crypto.randomUUID()).toString('base64') } },
      status: 'enabled',
      importMode: 'createOrUpdate',
    });
  }
  await runImport(devicesToImport);
  assert.deepEqual(await errorsLog(), []);
  const exported = await runExport(false);
  for (const d of devicesToImport) {
    const e = exported.find((x) => x.id === d.id);
    assert.ok(e, `exported devices.txt lacks ${d.id}`);
    assert.equal(e.authentication.symmetricKey.primaryKey, d.authentication.symmetricKey.primaryKey);
    assert.equal(e.authentication.symmetricKey.secondaryKey, d.authentication.symmetricKey.secondaryKey);
    assert.equal(e.status, d.status);
    // The registry has them too, with those keys.
    const got = (await registry.get(d.id)).responseBody;
    assert.equal(got.authentication.symmetricKey.primaryKey, d.authentication.symmetricKey.primaryKey);
  }
  await runImport(devicesToImport.map((d) => ({ ...d, importMode: 'delete' })));
  for (const d of devicesToImport) await gone(d.id);
});

test('twin tags and desired properties are imported and exported; excludeKeysInExport exports null keys', async () => {
  const id = uniqueId('ie-twin');
  await runImport([{ id, importMode: 'create', status: 'disabled', statusReason: 'maintenance',
    tags: { site: 'plant-7', floor: 2 }, properties: { desired: { interval: 30, mode: { eco: true } } } }]);
  const twin = (await registry.getTwin(id)).responseBody;
  assert.deepEqual(twin.tags, { site: 'plant-7', floor: 2 });
  assert.equal(twin.properties.desired.interval, 30);
  assert.deepEqual(twin.properties.desired.mode, { eco: true });
  const dev = (await registry.get(id)).responseBody;
  assert.equal(dev.status, 'disabled');
  assert.ok(dev.authentication.symmetricKey.primaryKey, 'keys are generated for a line without keys');

  const withKeys = (await runExport(false)).find((x) => x.id === id);
  assert.equal(withKeys.authentication.symmetricKey.primaryKey, dev.authentication.symmetricKey.primaryKey);
  assert.equal(withKeys.eTag, dev.etag);
  assert.equal(withKeys.status, 'disabled');
  assert.equal(withKeys.statusReason, 'maintenance');
  assert.deepEqual(withKeys.tags, { site: 'plant-7', floor: 2 });
  assert.equal(withKeys.properties.desired.interval, 30);
  assert.equal(typeof withKeys.properties.desired.$version, 'number');
  assert.ok('reported' in withKeys.properties);
  assert.equal(withKeys.twinETag, twin.etag);

  const noKeys = (await runExport(true)).find((x) => x.id === id);
  assert.equal(noKeys.authentication.symmetricKey.primaryKey, null);
  assert.equal(noKeys.authentication.symmetricKey.secondaryKey, null);
  assert.deepEqual(noKeys.tags, { site: 'plant-7', floor: 2 });
});

test('import modes: create, update, updateIfMatchETag, updateTwin, deleteIfMatchETag; failures in importErrors.log', async () => {
  const a = uniqueId('ie-a');
  const b = uniqueId('ie-b');
  const existing = uniqueId('ie-x');
  await registry.create({ deviceId: existing });
  await runImport([
    { id: a, importMode: 'create' },
    { id: b, importMode: 'Create' },
    { id: existing, importMode: 'create' },
  ]);
  let errors = await errorsLog();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].deviceId, existing);
  assert.equal(errors[0].errorCode, 'DeviceAlreadyExists');
  assert.equal(errors[0].operation, 'create');
  assert.ok(errors[0].errorStatus);

  const devA = (await registry.get(a)).responseBody;
  const missing = uniqueId('ie-missing');
  await runImport([
    { id: a, importMode: 'updateIfMatchETag', eTag: devA.etag, status: 'disabled',
      authentication: devA.authentication },
    { id: b, importMode: 'updateIfMatchETag', eTag: 'bm90IHRoZSBldGFn', status: 'disabled' },
    { id: missing, importMode: 'update', status: 'enabled' },
    { id: existing, importMode: 'updateTwin', tags: { imported: true } },
  ]);
  errors = await errorsLog();
  assert.deepEqual(errors.map((e) => [e.deviceId, e.errorCode]).sort(),
    [[b, 'PreconditionFailed'], [missing, 'DeviceNotFound']].sort());
  const newA = (await registry.get(a)).responseBody;
  assert.equal(newA.status, 'disabled');
  assert.equal(newA.authentication.symmetricKey.primaryKey, devA.authentication.symmetricKey.primaryKey);
  assert.equal((await registry.get(b)).responseBody.status, 'enabled');
  assert.deepEqual((await registry.getTwin(existing)).responseBody.tags, { imported: true });
  await gone(missing);

  await runImport([
    { id: a, importMode: 'deleteIfMatchETag', eTag: newA.etag },
    { id: b, importMode: 'deleteIfMatchETag', eTag: 'bm90IHRoZSBldGFn' },
    { id: existing, importMode: 'delete' },
  ]);
  errors = await errorsLog();
  assert.deepEqual(errors.map((e) => [e.deviceId, e.errorCode, e.operation]), [[b, 'PreconditionFailed', 'deleteIfMatchETag']]);
  await gone(a);
  await gone(existing);
  assert.equal((await registry.get(b)).responseBody.deviceId, b);
  await registry.delete(b);
});

test('a malformed line fails the import and nothing is applied', async () => {
  const first = uniqueId('ie-first');
  const job = await runImport([{ id: first, importMode: 'create' }, '{"id": "broken", "importMode": ', { id: uniqueId('ie-third') }],
    { expect: 'failed' });
  assert.match(job.failureReason, /line 2/);
  assert.ok(job.endTimeUtc);
  await gone(first);
  const errors = await errorsLog();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].errorCode, 'IotHubFormatError');
  assert.match(errors[0].errorStatus, /line 2/);

  const unknownMode = await runImport([{ id: first, importMode: 'create' }, { id: uniqueId('ie-y'), importMode: 'replaceEverything' }],
    { expect: 'failed' });
  assert.match(unknownMode.failureReason, /importMode 'replaceEverything'/);
  await gone(first);
});

test('a missing devices.txt fails the job with the reason', async () => {
  const emptyIn = await storage.containerSasUrl('nodee2e-empty-' + crypto.randomUUID(), 'rl');
  const created = await registry.importDevicesFromBlob(emptyIn, outUrl);
  jobIds.push(created.jobId);
  const job = await finished(created.jobId);
  assert.equal(job.status, 'failed');
  assert.match(job.failureReason, /devices\.txt.*404/);
});

test('bad SAS URIs: 400 BlobContainerValidationError or ArgumentInvalid, no job created', async () => {
  const before = (await registry.listJobs()).responseBody.length;
  const forged = outUrl.replace(/sig=[^&]+/, 'sig=' + encodeURIComponent(Buffer.alloc(32, 7).toString('base64')));
  let r = await httpError(registry.exportDevicesToBlob(forged, false));
  assert.equal(r.status, 400);
  assert.equal(r.code, 'BlobContainerValidationError');
  assert.match(String(r.e.responseBody), /Unauthorized to write to output blob container/);

  const expiredIn = await storage.containerSasUrl(IN, 'rl', { expiresInMinutes: -1 });
  r = await httpError(registry.importDevicesFromBlob(expiredIn, outUrl));
  assert.equal(r.status, 400);
  assert.equal(r.code, 'BlobContainerValidationError');

  const noContainer = outUrl.replace(OUT, 'nodee2e-nosuch-' + crypto.randomUUID().slice(0, 8));
  r = await httpError(registry.exportDevicesToBlob(noContainer, false));
  assert.equal(r.status, 400);
  assert.equal(r.code, 'BlobContainerValidationError');

  r = await httpError(registry.exportDevicesToBlob('http://127.0.0.1/container?sig=x', false));
  assert.equal(r.status, 400);
  assert.equal(r.code, 'ArgumentInvalid');
  assert.equal((await registry.listJobs()).responseBody.length, before);
});

test('getJob and cancelJob of an unknown job: 404 JobNotFound; cancel of a finished job keeps it', async () => {
  let r = await httpError(registry.getJob('no-such-job'));
  assert.equal(r.status, 404);
  assert.equal(r.code, 'JobNotFound');
  r = await httpError(registry.cancelJob('no-such-job'));
  assert.equal(r.status, 404);
  assert.equal(r.code, 'JobNotFound');
  const done = jobIds[0];
  await registry.cancelJob(done);
  assert.equal((await registry.getJob(done)).status, 'completed');
});

test('cancelJob of an active job: cancelled (or finished first), and then a new job may start', async () => {
  const created = await registry.exportDevicesToBlob(outUrl, true);
  jobIds.push(created.jobId);
  await registry.cancelJob(created.jobId);
  const job = await finished(created.jobId);
  assert.ok(['cancelled', 'completed'].includes(job.status), job.status);
  await runExport(false);
});

test('listJobs lists the jobs newest first, and they survive a restart', async () => {
  const listed = (await registry.listJobs()).responseBody;
  const ids = listed.map((j) => j.jobId);
  for (const id of jobIds) assert.ok(ids.includes(id), `listJobs lacks ${id}`);
  assert.equal(ids[0], jobIds[jobIds.length - 1]);
  const statuses = Object.fromEntries(listed.map((j) => [j.jobId, j.status]));
  await stopHub('SIGTERM');
  await startHub();
  for (const id of jobIds) assert.equal((await registry.getJob(id)).status, statuses[id], id);
  // kill -9 right after a create: the acknowledged job is there after the restart and runs.
  const created = await registry.exportDevicesToBlob(outUrl, false);
  await stopHub('SIGKILL');
  await startHub();
  const job = await finished(created.jobId);
  assert.equal(job.status, 'completed', `failureReason: ${job.failureReason}`);
});
