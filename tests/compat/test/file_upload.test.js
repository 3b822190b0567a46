'use strict';
// File upload (issue 16 item 7) against a real storage emulator: Azurite from npm, started here on
// a free port over HTTPS (a certificate signed by the hub's CA, which NODE_EXTRA_CA_CERTS already
// trusts), with a temporary directory. The hub run_compat.sh started has no storage: the first
// test checks Azure's error for that, then the hub is restarted with
// TWINHUB_STORAGE_CONNECTION_STRING. azure-iot-device's uploadToBlob (over the Mqtt, Amqp and Http
// device transports: file upload itself is HTTPS in every SDK) must work unchanged, the blob's bytes
// must be in Azurite (read back with @azure/storage-blob), and azure-iothub's file notification
// receiver (AMQP /messages/serviceBound/filenotifications) must get the notification, which waits
// in the hub (across a restart) until a receiver takes it.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');
const { spawn, execFileSync } = require('node:child_process');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { Amqp } = require('azure-iot-device-amqp');
const { Http } = require('azure-iot-device-http');
const { BlobServiceClient } = require('@azure/storage-blob');
const { connectionString, uniqueId } = require('../lib/hub');
const { stopHub, startHub } = require('../lib/hub_process');

const registry = Registry.fromConnectionString(connectionString());
const hostName = /HostName=([^;]+)/.exec(connectionString())[1];
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'compatuploads';

let azurite = null;
let storageCs = '';
let service = null;
let queue = null;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'twinhub-azurite-'));

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// A server certificate for 127.0.0.1 signed by the hub's CA (DATA/tls/ca.key).
function azuriteCertificate() {
  const tls = path.join(process.env.TWINHUB_DATA_DIR, 'tls');
  const key = path.join(work, 'key.pem');
  const csr = path.join(work, 'req.csr');
  const cert = path.join(work, 'cert.pem');
  const ext = path.join(work, 'ext.cnf');
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', '/CN=127.0.0.1', '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', path.join(tls, 'ca.pem'), '-CAkey', path.join(tls, 'ca.key'),
    '-CAcreateserial', '-CAserial', path.join(work, 'ca.srl'), '-days', '2', '-out', cert, '-extfile', ext], { stdio: 'ignore' });
  return { key, cert };
}

async function startAzurite() {
  const port = await freePort();
  const { key, cert } = azuriteCertificate();
  const bin = path.join(__dirname, '..', 'node_modules', '.bin', 'azurite-blob');
  // --loose: the storage SDK sends headers (x-ms-encryption-algorithm) strict Azurite refuses.
  azurite = spawn(bin, ['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', path.join(work, 'data'),
    '--cert', cert, '--key', key, '--loose', '--skipApiVersionCheck', '--silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await within(new Promise((resolve, reject) => {
    azurite.stdout.on('data', (d) => { out += d; if (/successfully listens/.test(out)) resolve(); });
    azurite.stderr.on('data', (d) => { out += d; });
    azurite.once('exit', (code) => reject(new Error(`azurite exited (${code}): ${out}`)));
  }), 30000, 'azurite start');
  storageCs = `DefaultEndpointsProtocol=https;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};` +
    `BlobEndpoint=https://127.0.0.1:${port}/${ACCOUNT};`;
}

async function newDevice() {
  const id = uniqueId('fup');
  const dev = (await registry.create({ deviceId: id })).responseBody;
  const key = dev.authentication.symmetricKey.primaryKey;
  return { id, key, cs: `HostName=${hostName};DeviceId=${id};SharedAccessKey=${key}` };
}

// The service's file notifications, filtered per device; `ack` says how each one is settled.
async function notificationQueue(client) {
  const receiver = (await client.getFileNotificationReceiver()).result;
  const items = [];
  const waiters = [];
  receiver.on('message', (msg) => {
    const n = JSON.parse(msg.data.toString());
    const item = { n, msg };
    const i = waiters.findIndex((w) => w.deviceId === n.deviceId);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(item); else items.push(item);
  });
  return {
    receiver,
    next(deviceId, ms = 15000) {
      const i = items.findIndex((x) => x.n.deviceId === deviceId);
      if (i >= 0) return Promise.resolve(items.splice(i, 1)[0]);
      return within(new Promise((resolve) => waiters.push({ deviceId, resolve })), ms, `file notification for ${deviceId}`);
    },
    complete(msg) { return new Promise((res, rej) => receiver.complete(msg, (e) => (e ? rej(e) : res()))); },
  };
}

async function blobContent(blobName) {
  const c = BlobServiceClient.fromConnectionString(storageCs).getContainerClient(CONTAINER).getBlobClient(blobName);
  return c.downloadToBuffer();
}

function sasToken(resource, key) {
  const sr = encodeURIComponent(resource);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}`;
}

function post(devicePath, dev, body) {
  const [host, port] = hostName.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: port || 443, method: 'POST', path: `/devices/${dev.id}${devicePath}?api-version=2021-04-12`,
      headers: { Authorization: sasToken(`${hostName}/devices/${dev.id}`, dev.key), 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, code: res.headers['iothub-errorcode'], body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  await startAzurite();
});

after(async () => {
  if (service) await service.close().catch(() => {});
  if (azurite) {
    azurite.kill('SIGTERM');
    await new Promise((r) => azurite.once('exit', r));
  }
  fs.rmSync(work, { recursive: true, force: true });
});

test('without storage the hub answers DefaultStorageEndpointNotConfigured', async () => {
  const dev = await newDevice();
  const client = Client.fromConnectionString(dev.cs, Http);
  await assert.rejects(client.getBlobSharedAccessSignature('a.txt'), (e) => {
    assert.equal(e.response && e.response.statusCode, 400);
    assert.match(String(e.responseBody), /ErrorCode:DefaultStorageEndpointNotConfigured;/);
    return true;
  });
  await client.close();
});

test('restart the hub with the storage account', async () => {
  process.env.TWINHUB_STORAGE_CONNECTION_STRING = storageCs;
  process.env.TWINHUB_STORAGE_CONTAINER = CONTAINER;
  await stopHub('SIGTERM');
  await startHub();
  service = ServiceClient.fromConnectionString(connectionString());
  await service.open();
  queue = await notificationQueue(service);
});

for (const [name, Transport] of [['Mqtt', Mqtt], ['Amqp', Amqp], ['Http', Http]]) {
  test(`uploadToBlob over a ${name} device client: blob in storage, notification for the service`, async () => {
    const dev = await newDevice();
    const client = Client.fromConnectionString(dev.cs, Transport);
    await client.open();
    const data = crypto.randomBytes(300 * 1024 + 17);
    await client.uploadToBlob('logs/run 1.bin', Readable.from([data]), data.length);
    const { n, msg } = await queue.next(dev.id);
    assert.equal(n.blobName, `${dev.id}/logs/run 1.bin`);
    assert.equal(n.blobSizeInBytes, data.length);
    assert.equal(n.blobUri, `${/BlobEndpoint=([^;]+)/.exec(storageCs)[1]}/${CONTAINER}/${dev.id}/logs/run%201.bin`);
    assert.ok(!Number.isNaN(Date.parse(n.lastUpdatedTime)), n.lastUpdatedTime);
    assert.ok(!Number.isNaN(Date.parse(n.enqueuedTimeUtc)), n.enqueuedTimeUtc);
    await queue.complete(msg);
    assert.deepEqual(await blobContent(n.blobName), data);
    await client.close();
  });
}

test('getBlobSharedAccessSignature and notifyBlobUploadStatus: SAS is write-only for that blob; failure sends no notification', async () => {
  const dev = await newDevice();
  const client = Client.fromConnectionString(dev.cs, Http);
  const sas = await client.getBlobSharedAccessSignature('one.txt');
  assert.equal(sas.containerName, CONTAINER);
  assert.equal(sas.blobName, `${dev.id}/one.txt`);
  assert.match(sas.sasToken, /^\?sv=.*&sp=rw&.*sig=/);
  // The SAS names this blob only: another blob with it is refused by storage.
  const { BlockBlobClient } = require('@azure/storage-blob');
  const base = `https://${sas.hostName}/${sas.containerName}`;
  await new BlockBlobClient(`${base}/${sas.blobName}${sas.sasToken}`).upload('hello', 5);
  await assert.rejects(new BlockBlobClient(`${base}/${dev.id}/other.txt${sas.sasToken}`).upload('x', 1), (e) => e.statusCode === 403);
  // The device reports failure: 204, the correlation is used up, no notification.
  await client.notifyBlobUploadStatus(sas.correlationId, false, 500, 'device gave up');
  await assert.rejects(client.notifyBlobUploadStatus(sas.correlationId, true, 200, 'ok'), /Bad Request/);
  await client.close();
});

test('bad requests: Azure error codes, nothing recorded', async () => {
  const dev = await newDevice();
  let r = await post('/files', dev, '{"blobName": ');
  assert.equal(r.status, 400);
  assert.equal(r.code, 'IotHubFormatError');
  r = await post('/files', dev, '{}');
  assert.equal(r.status, 400);
  assert.equal(r.code, 'ArgumentInvalid');
  r = await post('/files', dev, JSON.stringify({ blobName: 'a?b' }));
  assert.equal(r.status, 400);
  r = await post('/files', dev, JSON.stringify({ blobName: 'x'.repeat(1025) }));
  assert.equal(r.status, 400);
  r = await post('/files/notifications', dev, JSON.stringify({ correlationId: 'nope', isSuccess: true, statusCode: 200 }));
  assert.equal(r.status, 400);
  assert.equal(r.code, 'InvalidFileUploadCorrelationId');
  const ok = JSON.parse((await post('/files', dev, JSON.stringify({ blobName: 'z.txt' }))).body);
  r = await post('/files/notifications', dev, JSON.stringify({ correlationId: ok.correlationId, isSuccess: 'yes' }));
  assert.equal(r.status, 400);
  assert.equal(r.code, 'InvalidFileUploadCompletionStatus');
  // Reported as uploaded, but the blob is not in storage: refused, the correlation still usable.
  r = await post('/files/notifications', dev, JSON.stringify({ correlationId: ok.correlationId, isSuccess: true, statusCode: 201 }));
  assert.equal(r.status, 400);
  assert.equal(r.code, 'InvalidStorageEndpointOrBlob');
  r = await post('/files/notifications', dev, JSON.stringify({ correlationId: ok.correlationId, isSuccess: false, statusCode: 500 }));
  assert.equal(r.status, 204);
  // Another device cannot use this device's correlation id.
  const other = await newDevice();
  const theirs = JSON.parse((await post('/files', other, JSON.stringify({ blobName: 'o.txt' }))).body);
  r = await post('/files/notifications', dev, JSON.stringify({ correlationId: theirs.correlationId, isSuccess: false, statusCode: 1 }));
  assert.equal(r.code, 'InvalidFileUploadCorrelationId');
});

test('at most 10 uploads in flight per device: DeviceMaximumActiveFileUploadLimitExceeded', async () => {
  const dev = await newDevice();
  const ids = [];
  for (let i = 0; i < 10; i++) {
    const r = await post('/files', dev, JSON.stringify({ blobName: `f${i}` }));
    assert.equal(r.status, 200, r.body);
    ids.push(JSON.parse(r.body).correlationId);
  }
  const r = await post('/files', dev, JSON.stringify({ blobName: 'f10' }));
  assert.equal(r.status, 403);
  assert.equal(r.code, 'DeviceMaximumActiveFileUploadLimitExceeded');
  await post('/files/notifications', dev, JSON.stringify({ correlationId: ids[0], isSuccess: false, statusCode: 500 }));
  assert.equal((await post('/files', dev, JSON.stringify({ blobName: 'f10' }))).status, 200);
});

test('a notification is durable: sent while no service listens, delivered after a hub restart', async () => {
  // azure-iothub's receiver accepts (completes) each message as it arrives, so the notification
  // must wait in the hub while no receiver is attached, across a restart.
  await service.close();
  const dev = await newDevice();
  const client = Client.fromConnectionString(dev.cs, Http);
  const data = Buffer.from('durable notification');
  await client.uploadToBlob('keep.txt', Readable.from([data]), data.length);
  await client.close();
  await stopHub('SIGTERM');
  await startHub();
  service = ServiceClient.fromConnectionString(connectionString());
  await service.open();
  queue = await notificationQueue(service);
  const { n, msg } = await queue.next(dev.id);
  assert.equal(n.blobName, `${dev.id}/keep.txt`);
  assert.equal(n.blobSizeInBytes, data.length);
  await queue.complete(msg);
  // Completed: a new receiver does not get it again.
  await service.close();
  service = ServiceClient.fromConnectionString(connectionString());
  await service.open();
  queue = await notificationQueue(service);
  await assert.rejects(queue.next(dev.id, 2000), /not within/);
});
