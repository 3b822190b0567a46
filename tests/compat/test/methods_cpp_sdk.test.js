'use strict';
// Direct methods between the C++ SDK and the official Node SDKs through twinhubd (issue 6):
//  1. azure-iothub invokes methods on a C++ SDK device and module (methods_cpp_device);
//  2. the C++ SDK's service side (the twinhub CLI, invoke-device-method / invoke-module-method)
//     invokes methods on azure-iot-device clients, including the error cases.
// Run through run_compat.sh; binaries come from TWINHUB_BIN_DIR.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const path = require('node:path');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client, ModuleClient } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { connectionString, uniqueId } = require('../lib/hub');

const bin = process.env.TWINHUB_BIN_DIR;
const caFile = path.join(process.env.TWINHUB_DATA_DIR || '', 'tls', 'ca.pem');
const env = { ...process.env, TWINHUB_CA_FILE: caFile };
const registry = Registry.fromConnectionString(connectionString());
const service = ServiceClient.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];

async function newDevice() {
  const id = uniqueId('dmc');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  return { id, cs: `HostName=${hostName};DeviceId=${id};SharedAccessKey=${dev.authentication.symmetricKey.primaryKey}` };
}

async function newModule() {
  const { id } = await newDevice();
  const mod = (await registry.addModule({ deviceId: id, moduleId: 'm1' })).responseBody;
  return { id, mid: 'm1',
    cs: `HostName=${hostName};DeviceId=${id};ModuleId=m1;SharedAccessKey=${mod.authentication.symmetricKey.primaryKey}` };
}

// Starts methods_cpp_device and resolves once it printed "ready".
function startCppDevice(cs, transport = 'mqtt') {
  const child = spawn(path.join(bin, 'methods_cpp_device'), [cs, transport], { env });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`methods_cpp_device not ready: ${out} ${err}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      if (/^ready$/m.test(out)) { clearTimeout(timer); resolve(); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`methods_cpp_device exited ${code}: ${err}`)); });
  });
  return { child, ready, exited, stderr: () => err };
}

// Runs the twinhub CLI; resolves with {code, stdout, stderr}.
function cli(args) {
  return new Promise((resolve) => {
    execFile(path.join(bin, 'twinhub'), [...args, '--login', connectionString(), '--ca-file', caFile],
      { env, timeout: 60000 }, (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
}

for (const [kind, make] of [['device', newDevice], ['module', newModule]]) {
  for (const transport of ['mqtt', 'mqtt_ws']) {
    test(`azure-iothub invokes methods on a C++ SDK ${kind} (${transport})`, async () => {
      const t = await make();
      const dev = startCppDevice(t.cs, transport);
      try {
        await dev.ready;
        const call = (params) => (t.mid ? service.invokeDeviceMethod(t.id, t.mid, params) : service.invokeDeviceMethod(t.id, params));
        let r = await call({ methodName: 'echo', payload: { a: [1, 'two'], status: 201 }, responseTimeoutInSeconds: 10 });
        assert.deepEqual(r.result, { status: 201, payload: { echo: { a: [1, 'two'], status: 201 }, from: 'cpp' } });
        r = await call({ methodName: 'echo', payload: 'x'.repeat(100000) });
        assert.equal(r.result.payload.echo.length, 100000);
        r = await call({ methodName: 'echo' });
        assert.deepEqual(r.result, { status: 200, payload: { echo: null, from: 'cpp' } });
        r = await call({ methodName: 'empty', payload: 1 });
        assert.deepEqual(r.result, { status: 204, payload: null });
        r = await call({ methodName: 'unknownMethod' });
        assert.equal(r.result.status, 501);
        r = await call({ methodName: 'exit' });
        assert.deepEqual(r.result, { status: 200, payload: 'bye' });
        assert.equal(await dev.exited, 0, dev.stderr());
      } finally {
        dev.child.kill();
      }
    });
  }
}

test('the C++ SDK (twinhub CLI) invokes methods on azure-iot-device clients', async () => {
  const d = await newDevice();
  const m = await newModule();
  const device = Client.fromConnectionString(d.cs, Mqtt);
  const module = ModuleClient.fromConnectionString(m.cs, Mqtt);
  await device.open();
  await module.open();
  try {
    device.onDeviceMethod('sum', (req, res) => res.send(200, { sum: req.payload.reduce((a, b) => a + b, 0) }));
    module.onMethod('status', (req, res) => res.send(req.payload, 'as asked'));
    module.onMethod('silent', () => {});

    let r = await cli(['invoke-device-method', '--device-id', d.id, '--method-name', 'sum',
      '--method-payload', '[1,2,3.5]', '--connect-timeout', '10']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, payload: { sum: 6.5 } });

    r = await cli(['invoke-module-method', '--device-id', m.id, '--module-id', m.mid,
      '--method-name', 'status', '--method-payload', '418', '--connect-timeout', '10']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { status: 418, payload: 'as asked' });

    // Errors surface as non-zero exits with the hub's message.
    r = await cli(['invoke-module-method', '--device-id', m.id, '--module-id', m.mid,
      '--method-name', 'silent', '--timeout', '5']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Timed out waiting for the response|504101|GatewayTimeout/i);
    const offline = await newDevice();
    r = await cli(['invoke-device-method', '--device-id', offline.id, '--method-name', 'sum']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /isn't online|404103|DeviceNotOnline/i);
    r = await cli(['invoke-device-method', '--device-id', uniqueId('nobody'), '--method-name', 'sum']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not found|DeviceNotFound/i);
  } finally {
    await device.close();
    await module.close();
  }
});
