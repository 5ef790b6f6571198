// Package interop holds Ferry's interoperability tests: the official Azure
// IoT Node.js SDKs (installed in tests/azure-sdk by .ci/run) and the
// Mosquitto command-line clients drive a Ferry device plane wired in-process
// from its real parts: store, event bus, export sink, hub, provisioning and
// the MQTT gateway over TLS.
package interop
