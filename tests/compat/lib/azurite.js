'use strict';
// Azurite (the Azure Storage emulator from npm) for the compat tests: started on a free port over
// HTTPS with a certificate signed by the hub's CA (which NODE_EXTRA_CA_CERTS and the hub already
// trust), its data in a temporary directory. Gives the account's connection string and
// container SAS URLs made with @azure/storage-blob, as an Azure user makes them.
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const {
  BlobServiceClient, StorageSharedKeyCredential, ContainerSASPermissions, generateBlobSASQueryParameters,
} = require('@azure/storage-blob');

const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

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

function certificate(work) {
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
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'twinhub-azurite-'));
  const port = await freePort();
  const { key, cert } = certificate(work);
  const bin = path.join(__dirname, '..', 'node_modules', '.bin', 'azurite-blob');
  // --loose: the storage SDK sends headers (x-ms-encryption-algorithm) strict Azurite refuses.
  const child = spawn(bin, ['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', path.join(work, 'data'),
    '--cert', cert, '--key', key, '--loose', '--skipApiVersionCheck', '--silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await within(new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => { out += d; if (/successfully listens/.test(out)) resolve(); });
    child.stderr.on('data', (d) => { out += d; });
    child.once('exit', (code) => reject(new Error(`azurite exited (${code}): ${out}`)));
  }), 30000, 'azurite start');
  const connectionString = `DefaultEndpointsProtocol=https;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};` +
    `BlobEndpoint=https://127.0.0.1:${port}/${ACCOUNT};`;
  const service = BlobServiceClient.fromConnectionString(connectionString);
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
  return {
    connectionString,
    service,
    // A container SAS URL (as Microsoft's e2e test makes them: input 'rl', output 'rwd').
    async containerSasUrl(name, permissions, { expiresInMinutes = 100 } = {}) {
      const container = service.getContainerClient(name);
      await container.createIfNotExists();
      const startsOn = new Date(Date.now() - 100 * 60000);
      const expiresOn = new Date(Date.now() + expiresInMinutes * 60000);
      const sas = generateBlobSASQueryParameters({ containerName: name, permissions: ContainerSASPermissions.parse(permissions),
        startsOn, expiresOn }, credential).toString();
      return `${container.url}?${sas}`;
    },
    async text(container, blob) {
      return (await service.getContainerClient(container).getBlobClient(blob).downloadToBuffer()).toString('utf8');
    },
    async exists(container, blob) {
      return service.getContainerClient(container).getBlobClient(blob).exists();
    },
    async upload(container, blob, text) {
      await service.getContainerClient(container).getBlockBlobClient(blob).upload(text, Buffer.byteLength(text));
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      fs.rmSync(work, { recursive: true, force: true });
    },
  };
}

module.exports = { startAzurite, within };
