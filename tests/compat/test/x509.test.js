'use strict';
// X.509 device and module authentication (issue 16 item 1) with the official Node SDKs unchanged:
// `HostName=...;DeviceId=...;x509=true` plus client.setOptions({cert, key}) over MQTT/TLS (8883),
// MQTT/WebSocket (443), AMQP/TLS (5671), AMQP/WebSocket (443) and HTTPS.
// - selfSigned: the certificate's SHA-1 or SHA-256 thumbprint is one of the identity's.
// - certificateAuthority: the chain verifies to a CA registered with the hub and verified (here
//   with the twinhub CLI's proof-of-possession flow), and the CN is the device id
//   ("device/module" for a module).
// - Bad certificates are refused with the SDK's UnauthorizedError (CONNACK 5, amqp:unauthorized-
//   access, HTTP 401); changing thumbprints, switching the type, disabling or deleting the CA cuts live sessions;
//   SAS clients are unaffected. Certificates are made at test time with openssl (lib/pki.js).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { execFile } = require('node:child_process');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client, ModuleClient, Message } = require('azure-iot-device');
const { NoRetry } = require(require.resolve('azure-iot-common', { paths: [require.resolve('azure-iot-device')] }));
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { Amqp, AmqpWs } = require('azure-iot-device-amqp');
const { Http } = require('azure-iot-device-http');
const { connectionString, uniqueId } = require('../lib/hub');
const pki = require('../lib/pki');

const registry = Registry.fromConnectionString(connectionString());
const service = ServiceClient.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const transports = [['Mqtt', Mqtt], ['MqttWs', MqttWs], ['Amqp', Amqp], ['AmqpWs', AmqpWs], ['Http', Http]];
const hour = pki.hour;

function x509Cs(id, moduleId) {
  return `HostName=${hostName};DeviceId=${id};${moduleId ? `ModuleId=${moduleId};` : ''}x509=true`;
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function deviceClient(id, Transport, { cert, key }, moduleId) {
  const client = moduleId ? ModuleClient.fromConnectionString(x509Cs(id, moduleId), Transport)
    : Client.fromConnectionString(x509Cs(id), Transport);
  client.setOptions({ cert, key });
  client.setRetryPolicy(new NoRetry());
  return client;
}

// The SDK's refusal: UnauthorizedError (AMQP, HTTP, MQTT CONNACK 5), or mqtt.js's 'Not authorized'.
function assertRefused(err, what) {
  assert.ok(err, `${what}: expected a refusal, the call succeeded`);
  if (err.constructor.name === 'UnauthorizedError') return;
  assert.match(String(err.message || err), /Not authorized|Unauthorized/, `${what}: ${err.constructor.name}: ${err.message}`);
}

async function expectRefused(id, Transport, creds, what, moduleId) {
  const client = deviceClient(id, Transport, creds, moduleId);
  let err;
  try {
    await within(client.sendEvent(new Message('refused?')), 20000, what);
  } catch (e) {
    err = e;
  } finally {
    await client.close().catch(() => {});
  }
  assertRefused(err, what);
}

// The twinhub CLI: { code, stdout, stderr }.
function cli(args, env = {}) {
  const bin = path.join(process.env.TWINHUB_BIN_DIR, 'twinhub');
  const caFile = path.join(process.env.TWINHUB_DATA_DIR, 'tls', 'ca.pem');
  return new Promise((resolve) => {
    execFile(bin, args, { env: { ...process.env, TWINHUB_CA_FILE: caFile, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

async function cliJson(args) {
  const r = await cli(args);
  assert.equal(r.code, 0, `twinhub ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function selfSignedDevice(cert, { sha256 = false } = {}) {
  const id = uniqueId('x5ss');
  // SHA-256 given lower-case: the hub compares case-insensitively.
  const t = sha256 ? pki.thumbprint(cert.cert, 'sha256').toLowerCase() : pki.thumbprint(cert.cert);
  await registry.create({ deviceId: id, authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: t } } });
  return id;
}

async function caDevice() {
  const id = uniqueId('x5ca');
  await registry.create({ deviceId: id, authentication: { type: 'certificateAuthority' } });
  return id;
}

// Telemetry, and for MQTT/AMQP a reported-property patch seen by the service and a direct method.
async function exercise(client, id, name, moduleId) {
  await within(client.sendEvent(new Message(JSON.stringify({ via: name }))), 20000, `${name}: sendEvent`);
  if (name === 'Http') return;
  const twin = await within(client.getTwin(), 20000, `${name}: getTwin`);
  await new Promise((resolve, reject) => twin.properties.reported.update({ via: name }, (e) => (e ? reject(e) : resolve())));
  const seen = moduleId ? (await registry.getModuleTwin(id, moduleId)).responseBody : (await registry.getTwin(id)).responseBody;
  assert.equal(seen.properties.reported.via, name);
  const onMethod = moduleId ? client.onMethod : client.onDeviceMethod;
  onMethod.call(client, 'ping', (req, res) => res.send(200, { pong: req.payload }));
  const r = moduleId
    ? await service.invokeDeviceMethod(id, moduleId, { methodName: 'ping', payload: 7, responseTimeoutInSeconds: 15, connectTimeoutInSeconds: 20 })
    : await service.invokeDeviceMethod(id, { methodName: 'ping', payload: 7, responseTimeoutInSeconds: 15, connectTimeoutInSeconds: 20 });
  assert.equal(r.result.status, 200);
  assert.deepEqual(r.result.payload, { pong: 7 });
}

const root = pki.certificate('x509-test-root', { ca: true });
const intermediate = pki.certificate('x509-test-intermediate', { ca: true, issuer: root });
const stranger = pki.certificate('x509-stranger-root', { ca: true });

test('selfSigned: SHA-1 and SHA-256 thumbprints over every transport (telemetry, twin, methods)', async () => {
  for (const [name, Transport] of transports) {
    const cert = pki.certificate('whatever-cn');  // a self-signed identity's CN does not matter
    const id = await selfSignedDevice(cert, { sha256: name === 'MqttWs' || name === 'Http' });
    const client = deviceClient(id, Transport, cert);
    try {
      await exercise(client, id, name);
    } finally {
      await client.close();
    }
  }
});

test('selfSigned: the secondary thumbprint authenticates too', async () => {
  const cert = pki.certificate('second');
  const id = uniqueId('x5ss2');
  await registry.create({ deviceId: id, authentication: { type: 'selfSigned',
    x509Thumbprint: { primaryThumbprint: pki.thumbprint(pki.certificate('other').cert), secondaryThumbprint: pki.thumbprint(cert.cert) } } });
  const client = deviceClient(id, Mqtt, cert);
  await client.sendEvent(new Message('secondary'));
  await client.close();
});

test('CLI: certificate create/show/list, unverified CA refused, proof of possession, verified CA accepted', async () => {
  const name = uniqueId('root');
  const created = await cliJson(['certificate', 'create', '--name', name, '--path', root.file]);
  assert.equal(created.name, name);
  assert.equal(created.properties.isVerified, false);
  assert.equal(created.properties.thumbprint, pki.thumbprint(root.cert));
  assert.equal(created.properties.subject, 'CN=x509-test-root');

  // Not verified yet: its devices are refused.
  const early = await caDevice();
  const earlyCert = pki.certificate(early, { issuer: root });
  await expectRefused(early, Mqtt, earlyCert, 'CA not verified yet');

  // A stale etag is refused; so is a verification certificate with the wrong CN or signer.
  const stale = await cli(['certificate', 'generate-verification-code', '--name', name, '--etag', 'bm9wZQ==']);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /PreconditionFailed/);
  const shown = await cliJson(['certificate', 'show', '--name', name]);
  const code = await cliJson(['certificate', 'generate-verification-code', '--name', name, '--etag', shown.etag]);
  const verificationCode = code.properties.verificationCode;
  assert.match(verificationCode, /^[0-9a-f]{16,}$/);
  const wrongCn = pki.certificate('not-the-code', { issuer: root });
  const bad = await cli(['certificate', 'verify', '--name', name, '--etag', code.etag, '--path', wrongCn.file]);
  assert.equal(bad.code, 1, bad.stderr);
  const wrongSigner = pki.certificate(verificationCode, { issuer: stranger });
  const bad2 = await cli(['certificate', 'verify', '--name', name, '--etag', code.etag, '--path', wrongSigner.file]);
  assert.equal(bad2.code, 1, bad2.stderr);
  assert.equal((await cliJson(['certificate', 'show', '--name', name])).properties.isVerified, false);

  const proof = pki.certificate(verificationCode, { issuer: root });
  const verified = await cliJson(['certificate', 'verify', '--name', name, '--etag', code.etag, '--path', proof.file]);
  assert.equal(verified.properties.isVerified, true);
  const list = await cliJson(['certificate', 'list']);
  assert.ok(list.value.some((c) => c.name === name && c.properties.isVerified));

  // Now the same device connects.
  const client = deviceClient(early, Mqtt, earlyCert);
  await client.sendEvent(new Message('verified'));
  await client.close();
});

test('CLI: certificate delete needs the etag; a registryRead policy may not manage certificates', async () => {
  const name = uniqueId('tmp');
  const other = pki.certificate('tmp-ca', { ca: true });
  const c = await cliJson(['certificate', 'create', '--name', name, '--path', other.file, '--verified', 'true']);
  assert.equal(c.properties.isVerified, true);
  const again = await cli(['certificate', 'create', '--name', name, '--path', other.file]);
  assert.equal(again.code, 1, 'creating an existing name without its etag is refused');
  const stale = await cli(['certificate', 'delete', '--name', name, '--etag', 'bm9wZQ==']);
  assert.equal(stale.code, 1);
  const readOnly = (await cli(['hub', 'connection-string', 'show', '--data-dir', process.env.TWINHUB_DATA_DIR,
    '--policy-name', 'registryRead'])).stdout.trim();
  const denied = await cli(['certificate', 'list', '--login', readOnly]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /Unauthorized/);
  const del = await cli(['certificate', 'delete', '--name', name, '--etag', c.etag]);
  assert.equal(del.code, 0, del.stderr);
  const gone = await cli(['certificate', 'show', '--name', name]);
  assert.equal(gone.code, 1);
});

test('certificateAuthority: leaf of a verified root, and leaf + intermediate chain, over every transport', async () => {
  await cliJson(['certificate', 'create', '--name', uniqueId('root-v'), '--path', root.file, '--verified', 'true']);
  for (const [name, Transport] of transports) {
    const id = await caDevice();
    // Half of them send the intermediate after the leaf (Node's `cert` may hold a chain).
    const viaIntermediate = name === 'MqttWs' || name === 'Amqp';
    const leaf = pki.certificate(id, { issuer: viaIntermediate ? intermediate : root });
    const creds = viaIntermediate ? { cert: leaf.cert + intermediate.cert, key: leaf.key } : leaf;
    const client = deviceClient(id, Transport, creds);
    try {
      await exercise(client, id, name);
    } finally {
      await client.close();
    }
  }
});

// azure-iot-device's ModuleClient refuses x509 connection strings ("ModuleClient only supports SAS
// Token authentication"), so modules connect with mqtt.js (the MQTT client under the Node SDK):
// CONNECT without a password over TLS with the module's certificate, then a QoS 1 telemetry PUBLISH.
function moduleConnect(id, moduleId, { cert, key }) {
  const mqtt = require(require.resolve('mqtt', { paths: [require.resolve('azure-iot-mqtt-base')] }));
  const caFile = path.join(process.env.TWINHUB_DATA_DIR, 'tls', 'ca.pem');
  const [host] = hostName.split(':');
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtts://${host}:8883`, {
      clientId: `${id}/${moduleId}`, username: `${hostName}/${id}/${moduleId}/?api-version=2021-04-12`,
      cert, key, ca: fs.readFileSync(caFile), protocolVersion: 4, reconnectPeriod: 0, clean: true,
    });
    c.once('connect', () => c.publish(`devices/${id}/modules/${moduleId}/messages/events/`, 'module', { qos: 1 }, (e) => {
      c.end(true);
      e ? reject(e) : resolve();
    }));
    c.once('error', (e) => { c.end(true); reject(e); });
  });
}

test('modules over MQTT: certificateAuthority with CN "device/module", and selfSigned', async () => {
  const id = await caDevice();
  const caModule = uniqueId('mca');
  await registry.addModule({ deviceId: id, moduleId: caModule, authentication: { type: 'certificateAuthority' } });
  await moduleConnect(id, caModule, pki.certificate(`${id}/${caModule}`, { issuer: root }));
  // The device's own CN does not authenticate the module (CONNACK 5).
  await assert.rejects(moduleConnect(id, caModule, pki.certificate(id, { issuer: root })), (e) => e.code === 5);

  const ssModule = uniqueId('mss');
  const cert = pki.certificate('module-cert');
  await registry.addModule({ deviceId: id, moduleId: ssModule,
    authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: pki.thumbprint(cert.cert, 'sha256') } } });
  await moduleConnect(id, ssModule, cert);
  await assert.rejects(moduleConnect(id, ssModule, pki.certificate('module-cert')), (e) => e.code === 5);
});

test('bad certificates are refused with UnauthorizedError over Mqtt, MqttWs, Amqp, AmqpWs and Http', async () => {
  const ssCert = pki.certificate('ss');
  const ssId = await selfSignedDevice(ssCert);
  const caId = await caDevice();
  const disabledId = uniqueId('x5off');
  await registry.create({ deviceId: disabledId, status: 'disabled', authentication: { type: 'certificateAuthority' } });
  const sas = (await registry.create({ deviceId: uniqueId('x5sas') })).responseBody;
  const now = Date.now();
  const cases = [
    ['expired CA-signed', caId, pki.certificate(caId, { issuer: root, from: new Date(now - 48 * hour), to: new Date(now - 24 * hour) })],
    ['not yet valid CA-signed', caId, pki.certificate(caId, { issuer: root, from: new Date(now + 24 * hour), to: new Date(now + 48 * hour) })],
    ['expired self-signed with the right thumbprint', null, null],
    ['chain to an unregistered CA', caId, pki.certificate(caId, { issuer: stranger })],
    ['CN is not the device id', caId, pki.certificate('someone-else', { issuer: root })],
    ['thumbprint mismatch', ssId, pki.certificate('ss')],
    ['unknown device', uniqueId('x5none'), pki.certificate('x', { issuer: root })],
    ['disabled device', disabledId, pki.certificate(disabledId, { issuer: root })],
    ['sas device presenting a certificate', sas.deviceId, pki.certificate(sas.deviceId, { issuer: root })],
  ];
  // A self-signed certificate registered by thumbprint but expired.
  const expired = pki.certificate('old', { from: new Date(now - 48 * hour), to: new Date(now - 24 * hour) });
  const expiredId = await selfSignedDevice(expired);
  cases[2] = [cases[2][0], expiredId, expired];
  for (const [name, Transport] of transports) {
    for (const [what, id, creds] of cases) await expectRefused(id, Transport, creds, `${name}: ${what}`);
  }
});

// The transport's own event (internal): the moment the hub closed the connection.
async function openedClient(id, Transport, creds) {
  const client = deviceClient(id, Transport, creds);
  await client.open();
  const twin = await client.getTwin();
  twin.on('properties.desired', () => {});
  await client.sendEvent(new Message('before'));
  const down = new Promise((resolve) => client._transport.once('disconnect', resolve));
  return { client, down };
}

test('revocation: new thumbprints, a switch to sas, or disabling cut live X.509 sessions', async () => {
  const changes = [
    ['thumbprint changed', 'Mqtt', Mqtt, (id) => registry.update({ deviceId: id, authentication: { type: 'selfSigned',
      x509Thumbprint: { primaryThumbprint: pki.thumbprint(pki.certificate('new').cert) } } })],
    ['thumbprint changed', 'Amqp', Amqp, (id) => registry.update({ deviceId: id, authentication: { type: 'selfSigned',
      x509Thumbprint: { primaryThumbprint: pki.thumbprint(pki.certificate('new').cert) } } })],
    ['switched to sas', 'MqttWs', MqttWs, (id) => registry.update({ deviceId: id, authentication: { type: 'sas' } })],
    ['disabled', 'AmqpWs', AmqpWs, (id) => registry.update({ deviceId: id, status: 'disabled', authentication: { type: 'certificateAuthority' } })],
  ];
  for (const [what, name, Transport, change] of changes) {
    let id, creds;
    if (what === 'disabled') {
      id = await caDevice();
      creds = pki.certificate(id, { issuer: root });
    } else {
      creds = pki.certificate('rev');
      id = await selfSignedDevice(creds);
    }
    // A bystander with its own certificate stays connected.
    const otherCreds = pki.certificate('bystander');
    const otherId = await selfSignedDevice(otherCreds);
    const { client, down } = await openedClient(id, Transport, creds);
    const other = await openedClient(otherId, Transport, otherCreds);
    await change(id);
    await within(down, 10000, `${name}: ${what}: transport disconnect`);
    await client.close().catch(() => {});
    await expectRefused(id, Transport, creds, `${name}: ${what}: reconnect`);
    await within(other.client.sendEvent(new Message('still here')), 10000, `${name}: bystander`);
    await other.client.close();
  }
});

test('deleting a CA certificate cuts the live sessions authenticated through it (Mqtt, Amqp)', async () => {
  const doomed = pki.certificate('x509-doomed-root', { ca: true });
  const name = uniqueId('doomed');
  const c = await cliJson(['certificate', 'create', '--name', name, '--path', doomed.file, '--verified', 'true']);
  const sessions = [];
  for (const [transport, Transport] of [['Mqtt', Mqtt], ['Amqp', Amqp]]) {
    const id = await caDevice();
    const creds = pki.certificate(id, { issuer: doomed });
    sessions.push({ transport, Transport, id, creds, ...(await openedClient(id, Transport, creds)) });
    // A bystander whose chain ends at another verified CA stays connected.
    const otherId = await caDevice();
    const otherCreds = pki.certificate(otherId, { issuer: root });
    sessions.push({ transport, bystander: true, ...(await openedClient(otherId, Transport, otherCreds)) });
  }
  try {
    const del = await cli(['certificate', 'delete', '--name', name, '--etag', c.etag]);
    assert.equal(del.code, 0, del.stderr);
    for (const s of sessions.filter((x) => !x.bystander)) {
      await within(s.down, 10000, `${s.transport}: transport disconnect after the CA was deleted`);
      await s.client.close().catch(() => {});
      await expectRefused(s.id, s.Transport, s.creds, `${s.transport}: reconnect after the CA was deleted`);
    }
    for (const s of sessions.filter((x) => x.bystander)) {
      await within(s.client.sendEvent(new Message('still here')), 10000, `${s.transport}: bystander`);
    }
  } finally {
    for (const s of sessions) await s.client.close().catch(() => {});
  }
});

test('SAS clients are unaffected by the client-certificate request', async () => {
  const dev = (await registry.create({ deviceId: uniqueId('x5sasok') })).responseBody;
  const cs = `HostName=${hostName};DeviceId=${dev.deviceId};SharedAccessKey=${dev.authentication.symmetricKey.primaryKey}`;
  for (const [name, Transport] of transports) {
    const client = Client.fromConnectionString(cs, Transport);
    await within(client.sendEvent(new Message('sas')), 20000, `${name}: SAS sendEvent`);
    await client.close();
  }
  // A TLS 1.2 client without a certificate (as Python's ssl module connects) completes the handshake.
  const tls = require('node:tls');
  const caFile = path.join(process.env.TWINHUB_DATA_DIR, 'tls', 'ca.pem');
  const socket = tls.connect({ host: hostName.split(':')[0], port: 8883, maxVersion: 'TLSv1.2', ca: fs.readFileSync(caFile) });
  await within(new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); }), 10000, 'TLS 1.2 handshake');
  assert.equal(socket.getProtocol(), 'TLSv1.2');
  socket.destroy();
});
