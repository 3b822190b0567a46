'use strict';
// The web console end to end in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core, pinned in console/package.json), against the twinhubd run_compat.sh started,
// which serves bin/console at https://localhost/console/. A real azure-iot-device client plays
// the device. Screenshots go to build/test-artifacts/console/.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Registry } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId } = require('../lib/hub');

const repo = path.resolve(__dirname, '..', '..', '..');
const { chromium } = require(path.join(repo, 'console', 'node_modules', 'playwright-core'));
const binDir = process.env.TWINHUB_BIN_DIR;
const artifacts = path.join(binDir, '..', 'test-artifacts', 'console');
const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const url = 'https://localhost/console/';

let browser;
let page;
let shot = 0;
const deviceId = uniqueId('console');
let device;

async function screenshot(name) {
  shot += 1;
  await page.screenshot({ path: path.join(artifacts, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
}

// Polls `fn` (page reads through Playwright, not evaluated strings: the console's CSP forbids eval)
// until it returns true, at most 15 s.
async function waitUntil(fn, what) {
  const end = Date.now() + 15000;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function signIn(cs) {
  await page.goto(url);
  await page.fill('#cs', cs);
  await page.click('button[type=submit]');
}

before(async () => {
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox'] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
});

after(async () => {
  if (device) await device.close().catch(() => {});
  if (browser) await browser.close();
});

test('the console is served with its assets and security headers', async () => {
  const res = await page.goto(url);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /^text\/html/);
  assert.match(res.headers()['content-security-policy'], /default-src 'self'/);
  const redirect = await page.goto('https://localhost/console');
  assert.equal(redirect.url(), url);
  // Paths that try to leave the console's directory (sent raw, as a browser would not).
  for (const p of ['/console/../twinhub.db', '/console/assets/..%2f..%2ftwinhub.db', '/console/%2e%2e/tls/server.key']) {
    const status = await new Promise((resolve, reject) => {
      require('node:https').get({ host: '127.0.0.1', port: 443, path: p, servername: 'localhost' }, (r) => { r.resume(); resolve(r.statusCode); }).on('error', reject);
    });
    assert.equal(status, 404, p);
  }
});

test('sign in with a wrong key is refused, with the iothubowner string it shows the overview', async () => {
  await signIn(connectionString().replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='));
  await page.waitForSelector('.error');
  assert.match(await page.textContent('.error'), /401/);
  await signIn(connectionString());
  await page.waitForSelector('[data-stat=Devices]');
  await waitUntil(async () => /\d/.test(await page.textContent('[data-stat=Devices]')), 'the device count');
  await page.waitForSelector('[data-chart="Telemetry messages"]');
  // The policy's key stays in session storage only.
  const stored = await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length }));
  assert.deepEqual(stored, { session: 1, local: 0 });
  await screenshot('overview');
});

test('create a device, see it in the list, copy its connection string', async () => {
  await page.click('a[href="#/devices"]');
  await page.fill('input[aria-label="New device id"]', deviceId);
  await page.click('text=Create device');
  await page.waitForSelector(`h2:has-text("${deviceId}")`);
  const d = await registry.get(deviceId);
  assert.equal(d.responseBody.status, 'enabled');
  await page.click('.tabs >> text=Keys');
  const key = d.responseBody.authentication.symmetricKey.primaryKey;
  await page.waitForSelector(`code:has-text("${key}")`);
  assert.ok(await page.isVisible(`code:has-text("HostName=${hostName};DeviceId=${deviceId};SharedAccessKey=${key}")`));
  await page.click('a[href="#/devices"]');
  await page.fill('input[aria-label=Search]', deviceId);
  await page.waitForSelector(`[data-connection="${deviceId}"]:has-text("Disconnected")`);
  await screenshot('devices');
});

test('edit desired properties; the device gets them; a reported change arrives live', async () => {
  await page.click(`a:has-text("${deviceId}")`);
  await page.waitForSelector('textarea[name=desired]');
  const d = await registry.get(deviceId);
  device = Client.fromConnectionString(
    `HostName=${hostName};DeviceId=${deviceId};SharedAccessKey=${d.responseBody.authentication.symmetricKey.primaryKey}`, Mqtt);
  await device.open();
  const twin = await device.getTwin();
  const desiredSeen = new Promise((resolve) => twin.on('properties.desired', (p) => { if (p.speed === 42) resolve(p); }));

  await page.fill('textarea[name=desired]', JSON.stringify({ speed: 42 }, null, 2));
  await page.fill('textarea[name=tags]', JSON.stringify({ site: 'lab' }));
  await page.click('text=Save twin');
  await page.waitForSelector('[data-twin-saved]');
  await desiredSeen;
  const t = (await registry.getTwin(deviceId)).responseBody;
  assert.equal(t.properties.desired.speed, 42);
  assert.equal(t.tags.site, 'lab');

  await new Promise((resolve, reject) => twin.properties.reported.update({ temperature: 21.5 }, (e) => (e ? reject(e) : resolve())));
  await page.waitForSelector('[data-reported]:has-text("21.5")');
  await page.waitForSelector('td:has-text("reported.temperature")');  // its $metadata timestamp
  await page.waitForSelector('[data-device-connection]:text-is("Connected")');
  await screenshot('twin');
});

test('a concurrent change makes Save show the etag conflict instead of overwriting', async () => {
  await page.fill('textarea[name=desired]', JSON.stringify({ speed: 1 }));
  await registry.updateTwin(deviceId, { properties: { desired: { speed: 7 } } }, '*');
  await page.click('text=Save twin');
  await page.waitForSelector('[data-twin-conflict]');
  assert.equal((await registry.getTwin(deviceId)).responseBody.properties.desired.speed, 7);
  await screenshot('twin-conflict');
  await page.click('text=Reload');
  await waitUntil(async () => (await page.inputValue('textarea[name=desired]')).includes('7'), 'the reloaded twin');
});

test('invoke a direct method and see its response', async () => {
  device.onDeviceMethod('reboot', (req, res) => res.send(200, { rebooted: true, delay: req.payload.delay }));
  await page.click('.tabs >> text=Direct method');
  await page.fill('input[name=methodName]', 'reboot');
  await page.fill('textarea[name=payload]', '{"delay": 5}');
  await page.click('text=Invoke method');
  await page.waitForSelector('[data-method-result]');
  const text = await page.textContent('[data-method-result]');
  assert.match(text, /Status 200/);
  assert.match(text, /"rebooted": true/);
  assert.match(text, /"delay": 5/);
  await screenshot('method');
});

test('send a cloud-to-device message the device receives', async () => {
  const got = new Promise((resolve) => device.on('message', (m) => { device.complete(m, () => {}); resolve(m); }));
  await page.click('.tabs >> text=Cloud-to-device');
  await page.fill('textarea[name=c2dBody]', 'hello from the console');
  await page.click('text=Send message');
  await page.waitForSelector('[data-c2d-sent]');
  const m = await got;
  assert.equal(m.data.toString(), 'hello from the console');
  await screenshot('c2d');
});

test('live telemetry shows the messages the device sends', async () => {
  await page.click('.tabs >> text=Telemetry');
  await page.waitForSelector('[data-chart="Messages/s (last minute)"]');
  // The view starts at the log's end: wait for its first poll before sending.
  await page.waitForResponse((r) => r.url().includes(`/console/api/devices/${deviceId}/events`));
  for (let i = 0; i < 3; i += 1) await device.sendEvent(new Message(JSON.stringify({ reading: i })));
  await waitUntil(async () => (await page.locator('[data-event]').count()) === 3, 'three telemetry messages');
  assert.match(await page.textContent('.events'), /"reading":2/);
  await screenshot('telemetry');
});

test('run a query and see the results as a table', async () => {
  await page.click('a[href="#/query"]');
  await page.fill('textarea[name=query]', `SELECT deviceId, tags.site FROM devices WHERE deviceId = '${deviceId}'`);
  await page.click('text=Run query');
  await page.waitForSelector(`[data-query-results] td:has-text("${deviceId}")`);
  assert.ok(await page.isVisible('[data-query-results] td:has-text("lab")'));
  await screenshot('query');
});

test('the overview counts the connected device and charts its telemetry', async () => {
  await page.click('a[href="#/overview"]');
  await page.waitForSelector('[data-stat=Connected]:text-is("1")');
  // Two polls apart, with messages in between: the rate chart shows them.
  await page.waitForResponse((r) => r.url().endsWith('/metrics'));
  for (let i = 0; i < 10; i += 1) await device.sendEvent(new Message(JSON.stringify({ burst: i })));
  await page.waitForResponse((r) => r.url().endsWith('/metrics'));
  await waitUntil(async () => !/ 0\/s$/.test(await page.textContent('[data-chart="Telemetry messages"] figcaption')),
    'a non-zero telemetry rate');
  await screenshot('overview-traffic');
});

test('a registryRead policy can look but not change: the hub refuses and the console says so', async () => {
  const readCs = execFileSync(path.join(binDir, 'twinhub'),
    ['hub', 'connection-string', 'show', '--data-dir', process.env.TWINHUB_DATA_DIR, '--policy-name', 'registryRead']).toString().trim();
  await page.click('text=Sign out');
  await signIn(readCs);
  await page.click('a[href="#/devices"]');
  await page.fill('input[aria-label=Search]', deviceId);
  await page.waitForSelector(`a:has-text("${deviceId}")`);
  await page.fill('input[aria-label="New device id"]', uniqueId('console-ro'));
  await page.click('text=Create device');
  await page.waitForSelector('.error:has-text("401")');
  await screenshot('registry-read-refused');
  await page.click('text=Sign out');
});

test('disable, then delete the device after confirming', async () => {
  await signIn(connectionString());
  await page.goto(`${url}#/devices/${deviceId}`);
  await page.click('button:has-text("Disable")');
  await page.waitForSelector('button:has-text("Enable")');
  assert.equal((await registry.get(deviceId)).responseBody.status, 'disabled');
  page.once('dialog', (d) => d.dismiss());
  await page.click('text=Delete device');
  assert.equal((await registry.get(deviceId)).responseBody.status, 'disabled', 'dismissing keeps the device');
  page.once('dialog', (d) => d.accept());
  await page.click('text=Delete device');
  await page.waitForSelector('input[aria-label="New device id"]');
  await assert.rejects(registry.get(deviceId), (e) => e.constructor.name === 'DeviceNotFoundError');
  await screenshot('deleted');
});
