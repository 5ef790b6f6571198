'use strict';
// One device's life against Ferry with the official Azure IoT Node SDKs:
// provision (symmetric group-derived key or X.509), connect to the assigned
// hub, send telemetry with properties, answer a direct method, get the twin,
// patch reported properties, and receive a desired update and a
// cloud-to-device message. Each step prints one JSON line on stdout; the Go
// test in tests/interop drives the service side from these lines.
//
// Environment: PROVISIONING_HOST, ID_SCOPE, REGISTRATION_ID, MODEL_ID, and
// DEVICE_KEY or CERT_FILE + KEY_FILE. Trust comes from NODE_EXTRA_CA_CERTS.
const fs = require('fs');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt: ProvisioningMqtt } = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { X509Security } = require('azure-iot-security-x509');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

function out(o) { process.stdout.write(JSON.stringify(o) + '\n'); }
function fail(at, err) {
  out({ step: 'error', at, error: String((err && (err.stack || err.message)) || err) });
  process.exit(1);
}
setTimeout(() => fail('timeout', 'gave up after 90 s'), 90000).unref();

const env = process.env;
const x509 = !!env.CERT_FILE;
const cert = x509 ? fs.readFileSync(env.CERT_FILE, 'utf8') : undefined;
const key = x509 ? fs.readFileSync(env.KEY_FILE, 'utf8') : undefined;

function provision() {
  return new Promise((resolve, reject) => {
    const security = x509
      ? new X509Security(env.REGISTRATION_ID, { cert, key })
      : new SymmetricKeySecurityClient(env.REGISTRATION_ID, env.DEVICE_KEY);
    const client = ProvisioningDeviceClient.create(env.PROVISIONING_HOST, env.ID_SCOPE, new ProvisioningMqtt(), security);
    client.setProvisioningPayload({ modelId: env.MODEL_ID });
    client.register((err, result) => (err ? reject(err) : resolve(result)));
  });
}

function promisify(fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

async function main() {
  const reg = await provision().catch((e) => fail('provision', e));
  out({ step: 'provisioned', assignedHub: reg.assignedHub, deviceId: reg.deviceId });

  const cs = x509
    ? `HostName=${reg.assignedHub};DeviceId=${reg.deviceId};x509=true`
    : `HostName=${reg.assignedHub};DeviceId=${reg.deviceId};SharedAccessKey=${env.DEVICE_KEY}`;
  const client = Client.fromConnectionString(cs, Mqtt);
  const opts = { modelId: env.MODEL_ID };
  if (x509) { opts.cert = cert; opts.key = key; }
  await promisify((cb) => client.setOptions(opts, cb)).catch((e) => fail('options', e));
  client.on('error', (e) => fail('client', e));

  const waiting = new Set(['method', 'desired', 'c2d']);
  let finishing = false;
  const got = (what) => {
    waiting.delete(what);
    if (waiting.size === 0 && !finishing) {
      finishing = true;
      setTimeout(() => client.close(() => { out({ step: 'done' }); process.exit(0); }), 300);
    }
  };

  client.on('message', (msg) => {
    out({ step: 'c2d', body: msg.data.toString(), messageId: msg.messageId, properties: msg.properties.propertyList });
    client.complete(msg, (err) => { if (err) fail('complete', err); got('c2d'); });
  });
  await promisify((cb) => client.open(cb)).catch((e) => fail('open', e));
  out({ step: 'connected' });

  const msg = new Message(JSON.stringify({ temperature: 21.5 }));
  msg.messageId = 'msg-' + reg.deviceId;
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  msg.properties.add('site', 'berlin west');
  await promisify((cb) => client.sendEvent(msg, cb)).catch((e) => fail('telemetry', e));
  out({ step: 'telemetry' });

  client.onDeviceMethod('reboot', (req, res) => {
    out({ step: 'method', name: req.methodName, payload: req.payload });
    res.send(200, { rebooted: true, echo: req.payload }, (err) => { if (err) fail('method response', err); got('method'); });
  });

  const twin = await promisify((cb) => client.getTwin(cb)).catch((e) => fail('twin', e));
  out({ step: 'twin', desired: twin.properties.desired, reported: twin.properties.reported });
  await promisify((cb) => twin.properties.reported.update({ firmware: '1.2.3', nested: { a: 1 } }, cb)).catch((e) => fail('reported', e));
  out({ step: 'reported' });
  twin.on('properties.desired', (delta) => {
    if (delta.interval === 42) {
      out({ step: 'desired', delta });
      got('desired');
    }
  });
  out({ step: 'ready' });
}

main().catch((e) => fail('main', e));
