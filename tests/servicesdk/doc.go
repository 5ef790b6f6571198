// Package servicesdk holds tests that drive Ferry's hub and DPS service REST
// APIs with the official Azure IoT Node.js service SDKs (azure-iothub and
// azure-iot-provisioning-service, installed by `npm ci` in tests/azure-sdk)
// and check the outcome on the server side.
//
// The SDKs always dial HTTPS on port 443 of the connection string's
// HostName: azure-iothub 1.16 and azure-iot-provisioning-service 1.11 hand
// the HostName to https.request as `host`, so "127.0.0.5:8443" is looked up
// as a DNS name and fails with ENOTFOUND. The test therefore serves on port
// 443 of free 127.x.y.z addresses, which needs permission to bind low ports
// (root, as on the CI machines).
package servicesdk
