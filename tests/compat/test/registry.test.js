'use strict';
// The service REST API driven by the official azure-iothub Registry (spec 3.2 rows 1-14, 18, 20):
// devices, modules, their twins, statistics and bulk operations.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Registry } = require('azure-iothub');
const { connectionString, uniqueId, rejectsWith } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());

test('device: create with generated keys, create twice, get, list, update (keys kept when sent, new when empty), delete', async () => {
  const id = uniqueId('dev');
  const created = (await registry.create({ deviceId: id })).responseBody;
  assert.equal(created.deviceId, id);
  assert.equal(created.status, 'enabled');
  assert.equal(created.authentication.type, 'sas');
  assert.equal(Buffer.from(created.authentication.symmetricKey.primaryKey, 'base64').length, 32);
  assert.equal(Buffer.from(created.authentication.symmetricKey.secondaryKey, 'base64').length, 32);
  assert.ok(created.generationId);
  assert.ok(created.etag);

  await rejectsWith(registry.create({ deviceId: id }), 'DeviceAlreadyExistsError', 409, 'DeviceAlreadyExists');

  const got = (await registry.get(id)).responseBody;
  assert.equal(got.deviceId, id);
  assert.equal(got.etag, created.etag);
  assert.equal(got.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey);

  const list = (await registry.list()).responseBody;
  assert.ok(Array.isArray(list));
  assert.ok(list.some((d) => d.deviceId === id));

  // registry.update always sends If-Match "*". Given the device as read, disabling keeps keys and ids.
  const disabled = (await registry.update({ ...got, status: 'disabled' })).responseBody;
  assert.equal(disabled.status, 'disabled');
  assert.equal(disabled.generationId, created.generationId);
  assert.equal(disabled.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey);
  assert.equal(disabled.authentication.symmetricKey.secondaryKey, created.authentication.symmetricKey.secondaryKey);
  assert.notEqual(disabled.etag, created.etag);
  assert.equal((await registry.get(id)).responseBody.status, 'disabled');

  // Given only {deviceId, status}, Node sends empty keys and the hub generates new ones, as IoT Hub
  // does (Node's Registry.update doc: authentication not set to the current values "will be reset").
  const reset = (await registry.update({ deviceId: id, status: 'disabled' })).responseBody;
  assert.equal(reset.status, 'disabled');
  assert.equal(reset.generationId, created.generationId);
  assert.equal(Buffer.from(reset.authentication.symmetricKey.primaryKey, 'base64').length, 32);
  assert.equal(Buffer.from(reset.authentication.symmetricKey.secondaryKey, 'base64').length, 32);
  assert.notEqual(reset.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey);
  assert.notEqual(reset.authentication.symmetricKey.secondaryKey, created.authentication.symmetricKey.secondaryKey);
  assert.deepEqual((await registry.get(id)).responseBody.authentication.symmetricKey, reset.authentication.symmetricKey);

  // Key regeneration keeps the ids.
  const newKey = Buffer.alloc(32, 7).toString('base64');
  const rekeyed = (await registry.update({
    deviceId: id, status: 'enabled',
    authentication: { symmetricKey: { primaryKey: newKey, secondaryKey: created.authentication.symmetricKey.secondaryKey } },
  })).responseBody;
  assert.equal(rekeyed.authentication.symmetricKey.primaryKey, newKey);
  assert.equal(rekeyed.deviceId, id);
  assert.equal(rekeyed.generationId, created.generationId);

  await registry.delete(id);
  await rejectsWith(registry.get(id), 'DeviceNotFoundError', 404, 'DeviceNotFound');
  await rejectsWith(registry.delete(id), 'DeviceNotFoundError', 404, 'DeviceNotFound');
});

test('device: update with a stale etag is refused with PreconditionFailed (bulk UpdateIfMatchETag)', async () => {
  const id = uniqueId('etag');
  const created = (await registry.create({ deviceId: id })).responseBody;
  await registry.update({ deviceId: id, status: 'disabled' });
  // Registry.update has no etag parameter; the etag-checked update path is the bulk API.
  const stale = (await registry.updateDevices([{ deviceId: id, etag: created.etag, status: 'enabled' }], false)
    .catch((e) => ({ responseBody: JSON.parse(e.responseBody), status: e.response.statusCode })));
  assert.equal(stale.responseBody.isSuccessful, false);
  assert.equal(stale.responseBody.errors[0].errorCode, 'PreconditionFailed');
  assert.equal((await registry.get(id)).responseBody.status, 'disabled');
  const current = (await registry.get(id)).responseBody;
  const ok = (await registry.updateDevices([{ deviceId: id, etag: current.etag, status: 'enabled' }], false)).responseBody;
  assert.equal(ok.isSuccessful, true);
  assert.equal((await registry.get(id)).responseBody.status, 'enabled');
  await registry.delete(id);
});

test('module: create, create twice, get, list, update with right and stale etag, remove', async () => {
  const deviceId = uniqueId('mdev');
  await registry.create({ deviceId });
  await rejectsWith(registry.addModule({ deviceId: uniqueId('ghost'), moduleId: 'm' }), 'DeviceNotFoundError', 404, 'DeviceNotFound');
  await registry.addModule({ deviceId, moduleId: 'mod1' });
  await rejectsWith(registry.addModule({ deviceId, moduleId: 'mod1' }), 'DeviceAlreadyExistsError', 409,
    'ModuleAlreadyExistsOnDevice');
  await registry.addModule({ deviceId, moduleId: 'mod2' });

  const mod = (await registry.getModule(deviceId, 'mod1')).responseBody;
  assert.equal(mod.moduleId, 'mod1');
  assert.equal(mod.deviceId, deviceId);
  assert.equal(Buffer.from(mod.authentication.symmetricKey.primaryKey, 'base64').length, 32);

  const mods = (await registry.getModulesOnDevice(deviceId)).responseBody;
  assert.deepEqual(mods.map((m) => m.moduleId).sort(), ['mod1', 'mod2']);

  const updated = (await registry.updateModule({ ...mod, managedBy: 'someone' }, false)).responseBody;
  assert.equal(updated.managedBy, 'someone');
  assert.notEqual(updated.etag, mod.etag);
  assert.equal(updated.authentication.symmetricKey.primaryKey, mod.authentication.symmetricKey.primaryKey);
  await rejectsWith(registry.updateModule({ ...mod, managedBy: 'stale' }, false), 'InvalidEtagError', 412, 'PreconditionFailed');
  const forced = (await registry.updateModule({ ...mod, managedBy: 'forced' }, true)).responseBody;
  assert.equal(forced.managedBy, 'forced');
  // A module update without authentication regenerates the module's keys, as for devices.
  const rekeyedModule = (await registry.updateModule({ deviceId, moduleId: 'mod1', managedBy: 'forced' }, true)).responseBody;
  assert.equal(Buffer.from(rekeyedModule.authentication.symmetricKey.primaryKey, 'base64').length, 32);
  assert.notEqual(rekeyedModule.authentication.symmetricKey.primaryKey, mod.authentication.symmetricKey.primaryKey);

  await registry.removeModule(deviceId, 'mod2');
  await rejectsWith(registry.getModule(deviceId, 'mod2'), 'Error', 404, 'ModuleNotFound');
  await registry.delete(deviceId);
  // Deleting the device removed its remaining module and the module's twin.
  await rejectsWith(registry.getModule(deviceId, 'mod1'), 'DeviceNotFoundError', 404, 'DeviceNotFound');
});

test('device twin: get, update desired and tags with etag, stale etag, null out desired and tags', async () => {
  const id = uniqueId('twin');
  await registry.create({ deviceId: id });
  const twin = (await registry.getTwin(id)).responseBody;
  assert.equal(twin.deviceId, id);
  assert.ok(twin.etag);
  const v0 = twin.properties.desired.$version;
  assert.equal(v0, 1);

  const patched = (await registry.updateTwin(id, { tags: { site: 'lab', floor: 2 }, properties: { desired: { rate: 5, cfg: { a: 1 } } } },
    twin.etag)).responseBody;
  assert.equal(patched.tags.site, 'lab');
  assert.equal(patched.properties.desired.rate, 5);
  assert.equal(patched.properties.desired.$version, v0 + 1);
  assert.notEqual(patched.etag, twin.etag);

  await rejectsWith(registry.updateTwin(id, { tags: { x: 1 } }, twin.etag), 'InvalidEtagError', 412, 'PreconditionFailed');
  await rejectsWith(registry.updateTwin(id, { tags: { x: 1 } }, 'abc'), 'InvalidEtagError', 412, 'PreconditionFailed');

  // The Twin object's own update (If-Match from the twin it was read with).
  const t = (await registry.getTwin(id)).responseBody;
  const viaTwin = (await t.update({ properties: { desired: { more: true } } })).result;
  assert.equal(viaTwin.properties.desired.more, true);
  assert.equal(viaTwin.properties.desired.$version, v0 + 2);

  const nulled = (await registry.updateTwin(id, { properties: { desired: null } }, '*')).responseBody;
  assert.deepEqual(Object.keys(nulled.properties.desired).filter((k) => !k.startsWith('$')), []);
  assert.equal(nulled.properties.desired.$version, v0 + 3);
  const untagged = (await registry.updateTwin(id, { tags: null }, '*')).responseBody;
  assert.deepEqual(untagged.tags || {}, {});
  await registry.delete(id);
  await rejectsWith(registry.getTwin(id), 'DeviceNotFoundError', 404, 'DeviceNotFound');
});

test('module twin: get, update desired and tags with etag, stale etag, null out', async () => {
  const deviceId = uniqueId('mtwin');
  await registry.create({ deviceId });
  await registry.addModule({ deviceId, moduleId: 'm1' });
  const twin = (await registry.getModuleTwin(deviceId, 'm1')).responseBody;
  assert.equal(twin.moduleId, 'm1');
  const patched = (await registry.updateModuleTwin(deviceId, 'm1', { tags: { t: 1 }, properties: { desired: { d: 'x' } } },
    twin.etag)).responseBody;
  assert.equal(patched.tags.t, 1);
  assert.equal(patched.properties.desired.d, 'x');
  assert.equal(patched.properties.desired.$version, twin.properties.desired.$version + 1);
  await rejectsWith(registry.updateModuleTwin(deviceId, 'm1', { tags: { t: 2 } }, twin.etag), 'InvalidEtagError', 412,
    'PreconditionFailed');
  const nulled = (await registry.updateModuleTwin(deviceId, 'm1', { tags: null, properties: { desired: null } }, '*')).responseBody;
  assert.deepEqual(Object.keys(nulled.properties.desired).filter((k) => !k.startsWith('$')), []);
  assert.deepEqual(nulled.tags || {}, {});
  await registry.delete(deviceId);
});

test('statistics: registry counts follow creates and disables', async () => {
  const before = (await registry.getRegistryStatistics()).responseBody;
  for (const k of ['totalDeviceCount', 'enabledDeviceCount', 'disabledDeviceCount']) assert.equal(typeof before[k], 'number');
  const id = uniqueId('stat');
  await registry.create({ deviceId: id, status: 'disabled' });
  const after = (await registry.getRegistryStatistics()).responseBody;
  assert.equal(after.totalDeviceCount, before.totalDeviceCount + 1);
  assert.equal(after.disabledDeviceCount, before.disabledDeviceCount + 1);
  await registry.delete(id);
});

test('bulk: add, update, remove; duplicates are DeviceDefinedMultipleTimes', async () => {
  const ids = [uniqueId('bulk'), uniqueId('bulk'), uniqueId('bulk')];
  const added = (await registry.addDevices(ids.map((deviceId) => ({ deviceId })))).responseBody;
  assert.deepEqual(added, { isSuccessful: true, errors: [], warnings: [] });
  for (const id of ids) assert.equal((await registry.get(id)).responseBody.deviceId, id);

  const updated = (await registry.updateDevices(ids.map((deviceId) => ({ deviceId, status: 'disabled' })), true)).responseBody;
  assert.equal(updated.isSuccessful, true);
  assert.equal((await registry.get(ids[1])).responseBody.status, 'disabled');

  await rejectsWith(registry.addDevices([{ deviceId: 'dup-x' }, { deviceId: 'dup-x' }]), 'ArgumentError', 400,
    'DeviceDefinedMultipleTimes');
  await rejectsWith(registry.get('dup-x'), 'DeviceNotFoundError', 404);

  const again = await registry.addDevices([{ deviceId: ids[0] }]).catch((e) => e);
  assert.equal(again.constructor.name, 'ArgumentError');
  const body = JSON.parse(again.responseBody);
  assert.equal(body.isSuccessful, false);
  assert.equal(body.errors[0].deviceId, ids[0]);
  assert.equal(body.errors[0].errorCode, 'DeviceAlreadyExists');

  const removed = (await registry.removeDevices(ids.map((deviceId) => ({ deviceId })), true)).responseBody;
  assert.equal(removed.isSuccessful, true);
  for (const id of ids) await rejectsWith(registry.get(id), 'DeviceNotFoundError', 404, 'DeviceNotFound');
});

test('authorisation: a registryRead policy cannot create devices', async () => {
  const { execFileSync } = require('node:child_process');
  const path = require('node:path');
  const cli = path.join(process.env.TWINHUB_BIN_DIR || path.join(__dirname, '../../../build/bin'), 'twinhub');
  // The CLI prints the bare connection string (`-o json` gives az's {"connectionString": "..."}).
  const out = execFileSync(cli, ['hub', 'connection-string', 'show', '--policy-name', 'registryRead', '--data-dir',
    process.env.TWINHUB_DATA_DIR], { encoding: 'utf8' });
  const readOnly = out.trim();
  const asJson = execFileSync(cli, ['hub', 'connection-string', 'show', '--policy-name', 'registryRead', '-o', 'json',
    '--data-dir', process.env.TWINHUB_DATA_DIR], { encoding: 'utf8' });
  assert.equal(JSON.parse(asJson).connectionString, readOnly);
  assert.match(readOnly, /SharedAccessKeyName=registryRead;/);
  const ro = Registry.fromConnectionString(readOnly);
  await ro.list();
  await rejectsWith(ro.create({ deviceId: uniqueId('ro') }), 'UnauthorizedError', 401, 'IotHubUnauthorizedAccess');
});
