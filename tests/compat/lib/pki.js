'use strict';
// Test-time X.509 material for the compatibility tests, made with the openssl command line (no
// fixtures checked in): EC P-256 keys, self-signed and CA-signed certificates with chosen
// validity windows (`openssl ca` takes -startdate/-enddate, which expired and not-yet-valid
// certificates need), SHA-1/SHA-256 thumbprints.
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinhub-pki-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(path.join(dir, 'ca.cnf'), `
[ ca ]
default_ca = d
[ d ]
database = ${dir}/index.txt
new_certs_dir = ${dir}
serial = ${dir}/serial
default_md = sha256
policy = p
unique_subject = no
email_in_dn = no
[ p ]
commonName = supplied
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[ leaf_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
`);
fs.writeFileSync(path.join(dir, 'index.txt'), '');
fs.writeFileSync(path.join(dir, 'serial'), '1000\n');

let n = 0;
function openssl(args) {
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

// openssl ca's time format: YYYYMMDDHHMMSSZ.
function stamp(date) {
  return date.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

const hour = 3600 * 1000;

// A certificate for `cn`: self-signed unless `issuer` ({cert, key} PEM) is given; a CA with `ca`;
// valid from `from` to `to` (Dates; default: an hour ago to a day from now).
// Returns { cert, key, file, keyFile } (PEM strings and their files).
function certificate(cn, { issuer, ca = false, from = new Date(Date.now() - hour), to = new Date(Date.now() + 24 * hour) } = {}) {
  const base = path.join(dir, `c${++n}`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${base}.key`]);
  // '/' in a CN (a module's "device/module") is escaped for -subj.
  openssl(['req', '-new', '-key', `${base}.key`, '-subj', `/CN=${cn.replace(/\//g, '\\/')}`, '-out', `${base}.csr`]);
  const args = ['ca', '-batch', '-config', path.join(dir, 'ca.cnf'), '-in', `${base}.csr`, '-out', `${base}.pem`, '-notext',
    '-extensions', ca ? 'ca_ext' : 'leaf_ext', '-startdate', stamp(from), '-enddate', stamp(to)];
  if (issuer) {
    fs.writeFileSync(`${base}.issuer.pem`, issuer.cert);
    fs.writeFileSync(`${base}.issuer.key`, issuer.key);
    args.push('-cert', `${base}.issuer.pem`, '-keyfile', `${base}.issuer.key`);
  } else {
    args.push('-selfsign', '-keyfile', `${base}.key`);
  }
  openssl(args);
  const cert = fs.readFileSync(`${base}.pem`, 'utf8');
  return { cert, key: fs.readFileSync(`${base}.key`, 'utf8'), file: `${base}.pem`, keyFile: `${base}.key` };
}

// Upper-case hex thumbprints of a PEM certificate.
function thumbprint(pem, algorithm = 'sha1') {
  const der = new crypto.X509Certificate(pem).raw;
  return crypto.createHash(algorithm).update(der).digest('hex').toUpperCase();
}

module.exports = { certificate, thumbprint, hour };
