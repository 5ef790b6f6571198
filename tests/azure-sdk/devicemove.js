'use strict';
// A device built on the official Azure IoT Node SDKs whose DeviceMove handler
// behaves like the IoT Central migrator's Node sample
// (device_samples/nodejs/javascript/device.js): it provisions with a
// group-derived key, connects, sends telemetry, and on
// `migration*DeviceMove` (or plain `DeviceMove`) answers 200 with the new ID
// scope, closes its client, provisions again with the new scope and connects
// to the hub it is given. Unlike the sample it numbers its telemetry and
// sends a number again until the hub acknowledges it, so the Go test in
// tests/interop can check that nothing is lost across the move. Ferry may add
// `provisioningHost` to the payload; without it the device keeps its current
// provisioning host.
//
// Each step prints one JSON line on stdout. A line "stop" on stdin (or the
// end of stdin) stops the telemetry; the device waits for the message in
// flight, closes and prints {"step":"done","sent":N}: sequence numbers 0..N-1
// were all acknowledged.
//
// Environment: PROVISIONING_HOST, ID_SCOPE, REGISTRATION_ID, DEVICE_KEY,
// MODEL_ID (optional), TELEMETRY_MS (default 200). Trust comes from
// NODE_EXTRA_CA_CERTS.
const readline = require('readline');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt: ProvisioningMqtt } = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

function out(o) { process.stdout.write(JSON.stringify(o) + '\n'); }
function fail(at, err) {
  out({ step: 'error', at, error: String((err && (err.stack || err.message)) || err) });
  process.exit(1);
}
setTimeout(() => fail('timeout', 'gave up after 150 s'), 150000).unref();

const env = process.env;
const interval = Number(env.TELEMETRY_MS || 200);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let provisioningHost = env.PROVISIONING_HOST;
let idScope = env.ID_SCOPE;
let client = null; // the connected hub client, null while moving
let hub = '';
let seq = 0; // the next number to send; every number below it was acknowledged
let inFlight = null; // promise of the send in flight
let stopping = false;
let moves = 0;

function promisify(fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

function provision() {
  const security = new SymmetricKeySecurityClient(env.REGISTRATION_ID, env.DEVICE_KEY);
  const pc = ProvisioningDeviceClient.create(provisioningHost, idScope, new ProvisioningMqtt(), security);
  if (env.MODEL_ID) pc.setProvisioningPayload({ modelId: env.MODEL_ID });
  return promisify((cb) => pc.register(cb));
}

// connect provisions at the current scope and opens a client on the hub it
// is assigned to. Registration is tried a few times, as firmware would.
async function connect() {
  let reg;
  for (let attempt = 1; ; attempt++) {
    try {
      reg = await provision();
      break;
    } catch (e) {
      out({ step: 'provision-retry', attempt, error: String(e && e.message) });
      if (attempt >= 5) throw e;
      await sleep(1000 * attempt);
    }
  }
  out({ step: 'provisioned', assignedHub: reg.assignedHub, deviceId: reg.deviceId, idScope, provisioningHost });
  const c = Client.fromConnectionString(
    `HostName=${reg.assignedHub};DeviceId=${reg.deviceId};SharedAccessKey=${env.DEVICE_KEY}`, Mqtt);
  if (env.MODEL_ID) await promisify((cb) => c.setOptions({ modelId: env.MODEL_ID }, cb));
  c.on('error', (e) => out({ step: 'client-error', error: String(e && e.message) }));
  const onMove = (req, res) => move(c, req, res);
  c.onDeviceMethod('migration*DeviceMove', onMove);
  c.onDeviceMethod('DeviceMove', onMove);
  await promisify((cb) => c.open(cb));
  hub = reg.assignedHub;
  client = c;
  out({ step: 'connected', hub });
}

// move is the sample's handler: answer 200 with the new scope, close, and
// provision again with the scope (and host) from the payload.
async function move(c, req, res) {
  const p = req.payload || {};
  out({ step: 'move', method: req.methodName, payload: p });
  if (c !== client || !p.idScope) {
    res.send(400, { error: 'not connected or no idScope' }, () => {});
    return;
  }
  await promisify((cb) => res.send(200, p.idScope, cb)).catch((e) => out({ step: 'response-error', error: String(e) }));
  client = null; // telemetry waits until the device is connected again
  if (inFlight) await inFlight;
  c.close(() => out({ step: 'closed', hub }));
  idScope = p.idScope;
  if (p.provisioningHost) provisioningHost = p.provisioningHost;
  moves++;
  try {
    await connect();
    out({ step: 'moved', hub, moves, seq });
  } catch (e) {
    fail('reprovision', e);
  }
}

// telemetry sends {"seq": n} every interval; a number is sent again until
// the hub acknowledges it.
async function telemetry() {
  while (!stopping) {
    const c = client;
    if (c) {
      const n = seq;
      const m = new Message(JSON.stringify({ seq: n, temperature: 20 + (n % 10) }));
      m.contentType = 'application/json';
      m.contentEncoding = 'utf-8';
      m.properties.add('seq', String(n));
      inFlight = promisify((cb) => c.sendEvent(m, cb)).then(
        () => { if (seq === n) seq = n + 1; out({ step: 'sent', seq: n, hub }); },
        (e) => out({ step: 'send-retry', seq: n, error: String(e && e.message) }));
      await inFlight;
      inFlight = null;
    }
    await sleep(interval);
  }
}

async function stop() {
  if (stopping) return;
  stopping = true;
  for (let i = 0; !client && i < 150; i++) await sleep(100); // let a move finish
  if (inFlight) await inFlight;
  const c = client;
  out({ step: 'done', sent: seq, hub, moves });
  if (c) await promisify((cb) => c.close(cb)).catch(() => {});
  process.exit(0);
}

async function main() {
  await connect().catch((e) => fail('connect', e));
  readline.createInterface({ input: process.stdin })
    .on('line', (l) => { if (l.trim() === 'stop') stop(); })
    .on('close', stop);
  out({ step: 'ready' });
  await telemetry();
}

main().catch((e) => fail('main', e));
