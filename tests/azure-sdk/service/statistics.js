// Reads a Ferry hub's statistics with the official Azure IoT Node.js
// service SDK (azure-iothub), as an application would against Azure:
// Registry.getRegistryStatistics (GET /statistics/devices, RegistryRead)
// and the protocol layer's getServiceStatistics (GET /statistics/service,
// ServiceConnect). Run by tests/servicesdk (Go), which creates the
// identities and connects the devices counted below.
//
// Environment: READ_CS (a policy with RegistryRead only), SERVICE_CS (a
// policy with ServiceConnect only), WANT_TOTAL, WANT_ENABLED,
// WANT_DISABLED, WANT_CONNECTED; NODE_EXTRA_CA_CERTS trusts Ferry's CA.
// Prints one line per step and "PASS" at the end; exits 1 on the first
// failure.
'use strict';

const assert = require('node:assert/strict');
const { Registry, DigitalTwinClient, IoTHubTokenCredentials } = require('azure-iothub');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const step = (name, detail) => console.log(`ok ${name}${detail ? ' ' + JSON.stringify(detail) : ''}`);

async function expectStatus(promise, status) {
  try {
    await promise;
  } catch (err) {
    const got = (err.response && err.response.statusCode) || err.statusCode;
    assert.equal(got, status, `want HTTP ${status}, got ${got}: ${err.message}`);
    return err;
  }
  assert.fail(`want HTTP ${status}, the call succeeded`);
}

// serviceStatistics calls the protocol layer the SDK's DigitalTwinClient
// is built on: the SDK has no public wrapper for /statistics/service.
function serviceStatistics(cs) {
  return new DigitalTwinClient(new IoTHubTokenCredentials(cs))._pl.statistics.getServiceStatistics();
}

async function main() {
  const readCs = env('READ_CS');
  const serviceCs = env('SERVICE_CS');

  const res = await Registry.fromConnectionString(readCs).getRegistryStatistics();
  const stats = res.responseBody;
  assert.deepEqual(
    { total: stats.totalDeviceCount, enabled: stats.enabledDeviceCount, disabled: stats.disabledDeviceCount },
    { total: Number(env('WANT_TOTAL')), enabled: Number(env('WANT_ENABLED')), disabled: Number(env('WANT_DISABLED')) });
  step('registry.getRegistryStatistics', stats);

  await expectStatus(Registry.fromConnectionString(serviceCs).getRegistryStatistics(), 401);
  step('registry.getRegistryStatistics without RegistryRead', 401);

  const svc = await serviceStatistics(serviceCs);
  assert.equal(svc.connectedDeviceCount, Number(env('WANT_CONNECTED')));
  step('statistics.getServiceStatistics', { connectedDeviceCount: svc.connectedDeviceCount });

  await expectStatus(serviceStatistics(readCs), 401);
  step('statistics.getServiceStatistics without ServiceConnect', 401);
}

main().then(() => console.log('PASS'), (err) => {
  console.error('FAIL', err && err.stack ? err.stack : err);
  process.exit(1);
});
