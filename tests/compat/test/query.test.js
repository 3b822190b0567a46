'use strict';
// Twin queries (spec 3.7) through the official azure-iothub Registry.createQuery: paging with
// nextAsTwin()/next() across several pages (x-ms-continuation present until the last page, absent
// on it), module twins, projections, aggregates, GROUP BY, read-your-writes and query errors.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Registry } = require('azure-iothub');
const { connectionString, uniqueId } = require('../lib/hub');

const registry = Registry.fromConnectionString(connectionString());
const run = uniqueId('q');  // tags.run scopes every query to this run's devices
const devices = [];

async function drain(query, asTwin) {
  const items = [];
  let pages = 0;
  while (query.hasMoreResults) {
    // Promise-style next() without arguments restarts from page 1 (it only falls back to
    // query.continuationToken in callback style), so pass the token as SDK samples do.
    const page = asTwin ? await query.nextAsTwin() : await query.next(query.continuationToken);
    pages += 1;
    assert.ok(Array.isArray(page.result));
    if (query.hasMoreResults) assert.ok(page.result.length > 0, 'a page with a continuation is never empty');
    items.push(...page.result);
    assert.ok(pages < 100, 'paging does not terminate');
  }
  return { items, pages };
}

test('setup: 12 devices with tags and a module each', async () => {
  const entries = [];
  for (let i = 0; i < 12; i += 1) {
    const id = `${run}-d${i}`;
    devices.push(id);
    entries.push({ deviceId: id });
  }
  await registry.addDevices(entries);
  for (let i = 0; i < devices.length; i += 1) {
    const twin = (await registry.getTwin(devices[i])).responseBody;
    await twin.update({ tags: { run, region: i % 3 === 0 ? 'US' : 'EU', n: i } });
    await registry.addModule({ deviceId: devices[i], moduleId: 'sensor' });
    await registry.updateModuleTwin(devices[i], 'sensor', { tags: { run, idx: i } }, '*');
  }
});

test('SELECT * pages through nextAsTwin with a page size of 5', async () => {
  const q = registry.createQuery(`SELECT * FROM devices WHERE tags.run = '${run}'`, 5);
  const { items, pages } = await drain(q, true);
  assert.equal(pages, 3);
  assert.equal(items.length, 12);
  assert.deepEqual(items.map((t) => t.deviceId).sort(), [...devices].sort());
  assert.equal(items[0].constructor.name, 'Twin');
  assert.equal(items[0].tags.run, run);
  assert.ok(items[0].etag);
});

test('filters: equality, IN, range, NOT IS_DEFINED, with next() across pages', async () => {
  const us = await drain(registry.createQuery(`SELECT * FROM devices WHERE tags.run = '${run}' AND tags.region = 'US'`, 2), false);
  assert.equal(us.items.length, 4);
  assert.equal(us.pages, 2);
  const inList = await drain(registry.createQuery(`SELECT deviceId FROM devices WHERE tags.run = '${run}' AND tags.n IN [1, 2, 11]`, 100), false);
  assert.deepEqual(inList.items.map((x) => x.deviceId).sort(), [`${run}-d1`, `${run}-d11`, `${run}-d2`]);
  const range = await drain(registry.createQuery(`SELECT deviceId, tags.n FROM devices WHERE tags.run = '${run}' AND tags.n >= 10`, 100), false);
  assert.deepEqual(range.items.sort((a, b) => a.n - b.n), [{ deviceId: `${run}-d10`, n: 10 }, { deviceId: `${run}-d11`, n: 11 }]);
  const undef = await drain(registry.createQuery(`SELECT * FROM devices WHERE tags.run = '${run}' AND NOT IS_DEFINED(tags.region)`, 100), false);
  assert.equal(undef.items.length, 0);
});

test('module twins: SELECT * FROM devices.modules pages as twins with moduleId', async () => {
  const q = registry.createQuery(`SELECT * FROM devices.modules WHERE tags.run = '${run}'`, 4);
  const { items, pages } = await drain(q, true);
  assert.equal(items.length, 12);
  assert.equal(pages, 3);
  for (const t of items) assert.equal(t.moduleId, 'sensor');
  const proj = await drain(registry.createQuery(`SELECT deviceId, moduleId FROM devices.modules WHERE tags.run = '${run}' AND tags.idx = 3`, 10), false);
  assert.deepEqual(proj.items, [{ deviceId: `${run}-d3`, moduleId: 'sensor' }]);
});

test('aggregates and GROUP BY', async () => {
  const count = await registry.createQuery(`SELECT COUNT() AS numberOfDevices FROM devices WHERE tags.run = '${run}'`).next();
  assert.deepEqual(count.result, [{ numberOfDevices: 12 }]);
  assert.equal(count.message.headers['x-ms-item-type'], 'raw');
  assert.equal(count.message.headers['x-ms-continuation'], undefined);
  const grouped = await drain(registry.createQuery(
    `SELECT tags.region AS region, COUNT() AS n, SUM(tags.n) AS total FROM devices WHERE tags.run = '${run}' GROUP BY tags.region`, 1), false);
  assert.equal(grouped.pages, 2);
  const byRegion = Object.fromEntries(grouped.items.map((g) => [g.region, g]));
  assert.deepEqual(byRegion.US, { region: 'US', n: 4, total: 0 + 3 + 6 + 9 });
  assert.deepEqual(byRegion.EU, { region: 'EU', n: 8, total: 66 - 18 });
});

test('read-your-writes: a twin update is in the very next query', async () => {
  const twin = (await registry.getTwin(devices[5])).responseBody;
  await twin.update({ tags: { region: 'AS' } });
  const page = await registry.createQuery(`SELECT deviceId FROM devices WHERE tags.run = '${run}' AND tags.region = 'AS'`).next();
  assert.deepEqual(page.result, [{ deviceId: devices[5] }]);
});

test('a query error is an ArgumentError with the position', async () => {
  let err;
  try {
    await registry.createQuery('SELECT * FROM devices WHER x = 1').next();
  } catch (e) {
    err = e;
  }
  assert.ok(err);
  assert.equal(err.constructor.name, 'ArgumentError');
  assert.match(String(err.responseBody), /ErrorCode:ArgumentInvalid;Syntax error at position 22/);
});

test('cleanup', async () => {
  await registry.removeDevices(devices.map((deviceId) => ({ deviceId })), true);
});
