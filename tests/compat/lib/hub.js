'use strict';
// Helpers shared by the compatibility tests: the hub's connection string (from run_compat.sh),
// unique ids per run, and assertions on the errors the official SDKs raise.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

function connectionString() {
  const cs = process.env.TWINHUB_CONNECTION_STRING;
  if (!cs) throw new Error('TWINHUB_CONNECTION_STRING is not set: run the tests through tests/compat/run_compat.sh');
  return cs;
}

// A fresh id, so that tests never depend on each other's leftovers.
function uniqueId(prefix) {
  return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

// Awaits `promise`, expects it to fail with the SDK error class `className` (e.g.
// 'DeviceAlreadyExistsError'), HTTP status `status`, and the hub error code `code` in the body.
async function rejectsWith(promise, className, status, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${className} but the call succeeded`);
  assert.equal(err.constructor.name, className, `error: ${err && err.message}`);
  if (status !== undefined) assert.equal(err.response && err.response.statusCode, status);
  if (code !== undefined) {
    assert.match(String(err.responseBody), new RegExp(`"Message":"ErrorCode:${code};`));
    assert.equal(err.response.headers['iothub-errorcode'], code);
  }
  return err;
}

module.exports = { connectionString, uniqueId, rejectsWith };
