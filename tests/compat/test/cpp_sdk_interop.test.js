'use strict';
// The C++ SDK interoperates with the official Node SDKs through twinhubd (issue 5):
//  1. the azure-iothub Registry sets a desired property; the C++ module client (example
//     module_twin_listener) receives it;
//  2. the C++ service client (example update_module_twin) sets one; an azure-iot-device
//     ModuleClient over MQTT receives it.
// Run through run_compat.sh (hub on 443/8883, NODE_EXTRA_CA_CERTS set); the example binaries are
// taken from TWINHUB_BIN_DIR.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const path = require('node:path');
const { Registry } = require('azure-iothub');
const { ModuleClient } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId } = require('../lib/hub');

const bin = process.env.TWINHUB_BIN_DIR;
const caFile = path.join(process.env.TWINHUB_DATA_DIR || '', 'tls', 'ca.pem');
const registry = Registry.fromConnectionString(connectionString());
const env = { ...process.env, TWINHUB_CA_FILE: caFile };

async function createModule(deviceId, moduleId) {
  await registry.create({ deviceId });
  const m = (await registry.addModule({ deviceId, moduleId })).responseBody;
  const host = /HostName=([^;]+)/.exec(connectionString())[1];
  return `HostName=${host};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${m.authentication.symmetricKey.primaryKey}`;
}

// Collects a child's stdout from the start; wait(re, ms) resolves with the first line (seen so far
// or later) matching `re`, and rejects after `ms` or when the child exits without it.
function lineWatcher(child) {
  let buf = '';
  let exited = null;
  const waiters = [];
  const check = () => {
    for (const w of waiters.slice()) {
      const line = buf.split('\n').find((l) => w.re.test(l));
      if (line !== undefined) { w.done(); w.resolve(line); }
      else if (exited !== null) { w.done(); w.reject(new Error(`exited ${exited} before ${w.re}:\n${buf}`)); }
    }
  };
  child.stdout.on('data', (d) => { buf += d.toString(); check(); });
  child.on('exit', (code) => { exited = code; setImmediate(check); });
  return (re, ms) => new Promise((resolve, reject) => {
    const w = { re, resolve, reject };
    const timer = setTimeout(() => { w.done(); reject(new Error(`timeout waiting for ${re}; output so far:\n${buf}`)); }, ms);
    w.done = () => { clearTimeout(timer); waiters.splice(waiters.indexOf(w), 1); };
    waiters.push(w);
    check();
  });
}

test('Node service client sets a desired property that the C++ module client receives', async () => {
  const deviceId = uniqueId('interop-cpp-mod');
  const moduleCs = await createModule(deviceId, 'listener');
  const child = spawn(path.join(bin, 'module_twin_listener'), [moduleCs, '1'], { env });
  const waitForLine = lineWatcher(child);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d.toString(); });
  try {
    await waitForLine(/^Waiting for desired property patches/, 20000);
    const twin = (await registry.getModuleTwin(deviceId, 'listener')).responseBody;
    assert.ok(twin.properties.reported.DateTimeLastAppLaunch, 'the C++ module reported its launch time');
    await twin.update({ properties: { desired: { telemetryInterval: 17 } } });
    const line = await waitForLine(/^Desired property patch: /, 20000);
    const patch = JSON.parse(line.replace(/^Desired property patch: /, ''));
    assert.equal(patch.telemetryInterval, 17);
    assert.equal(typeof patch.$version, 'number');
    const code = await exited;
    assert.equal(code, 0, stderr);
  } finally {
    child.kill();
  }
});

test('C++ service client sets a desired property that a Node module client receives', async () => {
  const deviceId = uniqueId('interop-node-mod');
  const moduleCs = await createModule(deviceId, 'nodemod');
  const client = ModuleClient.fromConnectionString(moduleCs, Mqtt);
  try {
    await client.open();
    const twin = await client.getTwin();
    const received = new Promise((resolve) => {
      twin.on('properties.desired', (delta) => {
        if (delta.telemetryInterval === 23) resolve(delta);
      });
    });
    const out = await new Promise((resolve, reject) => {
      execFile(path.join(bin, 'update_module_twin'), [deviceId, 'nodemod', '23'], { env }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    assert.match(out, /^Desired telemetryInterval set to 23 \(desired \$version \d+\)/);
    const delta = await Promise.race([received, new Promise((_, rej) => setTimeout(() => rej(new Error('no desired patch')), 20000))]);
    assert.equal(delta.telemetryInterval, 23);
  } finally {
    await client.close();
  }
});
