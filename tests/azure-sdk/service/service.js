// Drives Ferry's service REST APIs with the official Azure IoT Node.js
// service SDKs (azure-iothub, azure-iot-provisioning-service), exactly as an
// application would against Azure. Run by tests/servicesdk (Go), which
// starts Ferry, connects the device METHOD_DEVICE over MQTT, pre-creates the
// registration records named below, and checks the server side afterwards.
//
// Environment: HUB_CS and DPS_CS (connection strings with a shared-access
// policy), METHOD_DEVICE, REG_GROUP (a group with registration records),
// REG_ID (one of its registrations); NODE_EXTRA_CA_CERTS trusts Ferry's CA.
// Prints one line per step and "PASS" at the end; exits 1 on the first
// failure.
'use strict';

const assert = require('node:assert/strict');
const { Registry, Client, JobClient } = require('azure-iothub');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');

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
    const got = err.response && err.response.statusCode;
    assert.equal(got, status, `want HTTP ${status}, got ${got}: ${err.message}`);
    return err;
  }
  assert.fail(`want HTTP ${status}, the call succeeded`);
}

async function waitJob(jobs, id) {
  for (let i = 0; i < 200; i++) {
    const res = await jobs.getJob(id);
    const job = res.jobStatus;
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} did not finish`);
}

async function hub() {
  const cs = env('HUB_CS');
  const methodDevice = env('METHOD_DEVICE');
  const registry = Registry.fromConnectionString(cs);

  // Registry: create with generated keys, get, update, list, delete.
  let res = await registry.create({ deviceId: 'node-1' });
  const created = res.responseBody;
  assert.equal(created.deviceId, 'node-1');
  assert.ok(created.authentication.symmetricKey.primaryKey, 'no generated primary key');
  assert.ok(created.generationId && created.etag, 'no generationId or etag');
  step('registry.create', { status: created.status, connectionState: created.connectionState });

  await expectStatus(registry.create({ deviceId: 'node-1' }), 409);
  step('registry.create duplicate → 409');

  res = await registry.get('node-1');
  assert.equal(res.responseBody.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey);
  step('registry.get');

  res = await registry.update({ deviceId: 'node-1', status: 'disabled', statusReason: 'sdk test' });
  assert.equal(res.responseBody.status, 'disabled');
  assert.equal(res.responseBody.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey, 'update changed the keys');
  step('registry.update', { status: res.responseBody.status });

  await registry.create({ deviceId: 'node-2', authentication: { x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20) } } });
  res = await registry.get('node-2');
  assert.equal(res.responseBody.authentication.type, 'selfSigned');
  step('registry.create selfSigned');

  res = await registry.list();
  const ids = res.responseBody.map((d) => d.deviceId).sort();
  assert.ok(ids.includes('node-1') && ids.includes('node-2') && ids.includes(methodDevice), `list: ${ids}`);
  step('registry.list', { count: ids.length });

  // Twins: update tags and desired properties through the Twin object.
  res = await registry.getTwin('node-1');
  const twin = res.responseBody;
  await twin.update({ tags: { site: 'berlin' }, properties: { desired: { fw: '2.0' } } });
  res = await registry.getTwin('node-1');
  assert.equal(res.responseBody.tags.site, 'berlin');
  assert.equal(res.responseBody.properties.desired.fw, '2.0');
  step('twin.update', { version: res.responseBody.properties.desired.$version });

  res = await registry.updateTwin('node-2', { tags: { site: 'berlin' } }, '*');
  step('registry.updateTwin');

  // Query with paging: one twin per page.
  const query = registry.createQuery("SELECT * FROM devices WHERE tags.site = 'berlin'", 1);
  const found = [];
  let pages = 0;
  do {
    const page = await query.nextAsTwin();
    pages++;
    for (const t of page.result) found.push(t.deviceId);
  } while (query.hasMoreResults && pages < 10);
  assert.deepEqual(found.sort(), ['node-1', 'node-2']);
  assert.ok(pages >= 2, `pages: ${pages}`);
  step('registry.createQuery', { found, pages });

  // Direct methods: a device connected over MQTT answers; an offline one is 404.
  const client = Client.fromConnectionString(cs);
  res = await client.invokeDeviceMethod(methodDevice, { methodName: 'reboot', payload: { delay: 1 }, responseTimeoutInSeconds: 10 });
  assert.equal(res.result.status, 200);
  assert.deepEqual(res.result.payload, { rebooted: true, delay: 1 });
  step('client.invokeDeviceMethod', res.result);

  await expectStatus(client.invokeDeviceMethod('node-2', { methodName: 'reboot', responseTimeoutInSeconds: 5 }), 404);
  step('client.invokeDeviceMethod offline → 404');

  // Jobs.
  const jobs = JobClient.fromConnectionString(cs);
  await jobs.scheduleDeviceMethod('job-method', `deviceId IN ['${methodDevice}', 'node-2']`,
    { methodName: 'reboot', payload: { delay: 2 }, responseTimeoutInSeconds: 5 });
  let job = await waitJob(jobs, 'job-method');
  assert.equal(job.status, 'completed');
  assert.equal(job.deviceJobStatistics.deviceCount, 2);
  assert.equal(job.deviceJobStatistics.succeededCount, 1);
  assert.equal(job.deviceJobStatistics.failedCount, 1);
  step('jobClient.scheduleDeviceMethod', job.deviceJobStatistics);

  await jobs.scheduleTwinUpdate('job-twin', "tags.site = 'berlin'", { etag: '*', tags: { wave: 1 }, properties: { desired: { fw: '3.0' } } }, new Date());
  job = await waitJob(jobs, 'job-twin');
  assert.equal(job.status, 'completed');
  assert.equal(job.deviceJobStatistics.succeededCount, 2);
  res = await registry.getTwin('node-2');
  assert.equal(res.responseBody.tags.wave, 1);
  step('jobClient.scheduleTwinUpdate', job.deviceJobStatistics);

  const later = new Date(Date.now() + 3600 * 1000);
  await jobs.scheduleTwinUpdate('job-later', "deviceId = 'node-1'", { tags: { late: true } }, later);
  res = await jobs.cancelJob('job-later');
  assert.equal(res.jobStatus.status, 'cancelled');
  step('jobClient.cancelJob');

  const jq = jobs.createQuery('scheduleUpdateTwin');
  res = await jq.next();
  assert.deepEqual(res.result.map((j) => j.jobId).sort(), ['job-later', 'job-twin']);
  step('jobClient.createQuery');

  const djq = registry.createQuery("SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'job-method'");
  res = await djq.next();
  assert.equal(res.result.length, 2);
  step('registry.createQuery devices.jobs', { count: res.result.length });

  await registry.delete('node-2');
  await expectStatus(registry.get('node-2'), 404);
  step('registry.delete');
}

async function dps() {
  const client = ProvisioningServiceClient.fromConnectionString(env('DPS_CS'));
  const regGroup = env('REG_GROUP');
  const regId = env('REG_ID');

  let res = await client.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: 'sdk-group',
    attestation: { type: 'symmetricKey', symmetricKey: {} },
    provisioningStatus: 'enabled',
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    initialTwin: { tags: { fleet: 'sdk' }, properties: { desired: { fw: '1.0' } } },
  });
  const group = res.responseBody;
  assert.ok(group.attestation.symmetricKey.primaryKey, 'no generated group key');
  assert.ok(group.etag);
  step('createOrUpdateEnrollmentGroup');

  res = await client.getEnrollmentGroup('sdk-group');
  const got = res.responseBody;
  got.provisioningStatus = 'disabled';
  res = await client.createOrUpdateEnrollmentGroup(got);
  assert.equal(res.responseBody.provisioningStatus, 'disabled');
  assert.equal(res.responseBody.attestation.symmetricKey.primaryKey, group.attestation.symmetricKey.primaryKey);
  step('getEnrollmentGroup + update with etag');

  await expectStatus(client.createOrUpdateEnrollmentGroup(got), 412);
  step('stale etag → 412');

  res = await client.getEnrollmentGroupAttestationMechanism('sdk-group');
  assert.equal(res.responseBody.symmetricKey.primaryKey, group.attestation.symmetricKey.primaryKey);
  step('getEnrollmentGroupAttestationMechanism');

  await expectStatus(client.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'tpm-group', attestation: { type: 'tpm', tpm: { endorsementKey: 'AAAA' } } }), 400);
  step('TPM → 400');

  res = await client.createOrUpdateIndividualEnrollment({ registrationId: 'sdk-device', deviceId: 'sdk-device-1', attestation: { type: 'symmetricKey' } });
  assert.equal(res.responseBody.deviceId, 'sdk-device-1');
  assert.ok(res.responseBody.attestation.symmetricKey.primaryKey);
  step('createOrUpdateIndividualEnrollment');

  res = await client.getIndividualEnrollment('sdk-device');
  assert.equal(res.responseBody.registrationId, 'sdk-device');
  step('getIndividualEnrollment');

  res = await client.createEnrollmentGroupQuery({ query: '*' }).next();
  assert.ok(res.responseBody.some((g) => g.enrollmentGroupId === 'sdk-group'));
  step('createEnrollmentGroupQuery', { count: res.responseBody.length });

  res = await client.createIndividualEnrollmentQuery({ query: '*' }).next();
  assert.deepEqual(res.responseBody.map((e) => e.registrationId), ['sdk-device']);
  step('createIndividualEnrollmentQuery');

  res = await client.getDeviceRegistrationState(regId);
  assert.equal(res.responseBody.status, 'assigned');
  step('getDeviceRegistrationState', { assignedHub: res.responseBody.assignedHub });

  const rq = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, regGroup, 1);
  const regs = [];
  do {
    // This SDK's promise-style next() ignores the stored continuation
    // token (it reads it only when no argument is given, and a promise call
    // always passes undefined), so hand it over explicitly.
    res = await rq.next(rq.continuationToken);
    for (const r of res.responseBody) regs.push(r.registrationId);
  } while (rq.hasMoreResults && regs.length < 10);
  assert.deepEqual(regs.sort(), ['reg-a', 'reg-b']);
  step('createEnrollmentGroupDeviceRegistrationStateQuery', { regs });

  await client.deleteDeviceRegistrationState(regId);
  await expectStatus(client.getDeviceRegistrationState(regId), 404);
  step('deleteDeviceRegistrationState');

  await client.deleteIndividualEnrollment('sdk-device');
  await client.deleteEnrollmentGroup('sdk-group');
  await expectStatus(client.getEnrollmentGroup('sdk-group'), 404);
  step('delete enrollments');
}

(async () => {
  const which = process.argv[2] || 'all';
  if (which === 'all' || which === 'hub') await hub();
  if (which === 'all' || which === 'dps') await dps();
  console.log('PASS');
})().catch((err) => {
  console.error('FAIL', err && err.stack ? err.stack : err);
  if (err && err.responseBody) console.error('response body:', err.responseBody);
  process.exit(1);
});
