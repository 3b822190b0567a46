'use strict';
// Stops and restarts the compat hub (run_compat.sh started it) on the same data directory and
// ports, for the restart and kill -9 tests. run_compat.sh exports TWINHUB_HUB_PID and
// TWINHUB_HUB_PID_FILE; a restarted hub's pid is written to the latter so that run_compat.sh stops
// it even if the test dies.
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pidFile = () => process.env.TWINHUB_HUB_PID_FILE;
let child = null;

function hubPid() {
  const f = pidFile();
  if (f && fs.existsSync(f)) return Number(fs.readFileSync(f, 'utf8').trim());
  const pid = Number(process.env.TWINHUB_HUB_PID);
  if (!pid) throw new Error('TWINHUB_HUB_PID is not set: run the tests through tests/compat/run_compat.sh');
  return pid;
}

// Gone or a zombie (the first hub is run_compat.sh's child, reaped only when the script ends).
function exited(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return true;
  }
}

// Sends `signal` to the running hub and waits until it has exited.
async function stopHub(signal, ms = 15000) {
  const pid = hubPid();
  process.kill(pid, signal);
  const deadline = Date.now() + ms;
  while (!exited(pid)) {
    if (Date.now() > deadline) throw new Error(`twinhubd ${pid} did not exit within ${ms} ms of ${signal}`);
    await sleep(20);
  }
}

function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// Starts twinhubd again on the same data directory and ports; resolves once HTTPS, MQTT and AMQP
// accept connections.
async function startHub() {
  const data = process.env.TWINHUB_DATA_DIR;
  const amqp = process.env.HUB_AMQP_PORT || '5671';
  const out = fs.openSync(`${data}.stdout`, 'a');
  const err = fs.openSync(`${data}.stderr`, 'a');
  child = spawn(path.join(process.env.TWINHUB_BIN_DIR, 'twinhubd'),
    ['--data-dir', data, '--https-port', '443', '--mqtt-port', '8883', '--amqp-port', amqp],
    { stdio: ['ignore', out, err], env: { ...process.env, TWINHUB_LOG_LEVEL: process.env.TWINHUB_LOG_LEVEL || 'warn' } });
  fs.closeSync(out);
  fs.closeSync(err);
  let exitCode = null;
  child.once('exit', (code, sig) => { exitCode = code === null ? sig : code; });
  child.unref();  // run_compat.sh stops it (TWINHUB_HUB_PID_FILE); node may exit before it
  fs.writeFileSync(pidFile(), String(child.pid));
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exitCode !== null) throw new Error(`the restarted twinhubd exited (${exitCode}); see ${data}.stderr`);
    if ((await accepts(443)) && (await accepts(8883)) && (await accepts(Number(amqp)))) return child.pid;
    if (Date.now() > deadline) throw new Error('the restarted twinhubd did not accept connections within 30 s');
    await sleep(50);
  }
}

module.exports = { stopHub, startHub, hubPid };
