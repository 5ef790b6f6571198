package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/jobs"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/migrate/remoteferry"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/provisioning"
)

// devicePlane is the part of the server that devices talk to: hubs,
// provisioning, the MQTT gateway, the job runner behind the hub service
// API, and the orchestrator that moves fleets between hubs.
type devicePlane struct {
	hubs       *hub.Service
	prov       *provisioning.Service
	gw         *mqttgw.Gateway
	jobs       *jobs.Runner
	migrations *migrate.Orchestrator
}

// startDevicePlane builds the device plane and starts the MQTT listeners.
func (m *Main) startDevicePlane(ctx context.Context) error {
	var (
		dp  devicePlane
		err error
	)
	log := m.logger
	dp.hubs, err = hub.New(hub.Config{Store: m.Store, Bus: m.Bus, Sink: m.Sink, Logger: log})
	if err != nil {
		return fmt.Errorf("hubs: %w", err)
	}
	m.closers = append(m.closers, dp.hubs.Close)
	dp.prov, err = provisioning.New(provisioning.Config{Store: m.Store, Hubs: dp.hubs, Bus: m.Bus, Logger: log})
	if err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	m.closers = append(m.closers, dp.prov.Close)
	dp.gw, err = mqttgw.New(mqttgw.Config{Hubs: dp.hubs, Provisioning: dp.prov, Logger: log,
		MaxConnections: m.Config.MQTTMaxConnections})
	if err != nil {
		return fmt.Errorf("mqtt gateway: %w", err)
	}
	m.closers = append(m.closers, dp.gw.Close)
	dp.jobs, err = jobs.New(jobs.Config{Store: m.Store, Hubs: dp.hubs, Logger: log})
	if err != nil {
		return fmt.Errorf("job runner: %w", err)
	}
	jobCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	dp.jobs.Start(jobCtx)
	m.closers = append(m.closers, func() error { stopJobs(); return dp.jobs.Close() })
	// Closers run in reverse: the orchestrator stops before the hubs and
	// the bus it drives.
	dp.migrations, err = migrate.New(migrate.Config{Store: m.Store, Hubs: dp.hubs, Bus: m.Bus, Logger: log, Remote: remoteferry.Dial})
	if err != nil {
		return fmt.Errorf("migration orchestrator: %w", err)
	}
	if err := dp.migrations.Start(ctx); err != nil {
		return fmt.Errorf("migration orchestrator: %w", err)
	}
	m.closers = append(m.closers, dp.migrations.Close)

	if a := m.Config.MQTTAddr; a != "" {
		cfg := m.CA.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"mqtt"}, ClientAuth: tls.RequestClientCert})
		ln, err := tls.Listen("tcp", a, cfg)
		if err != nil {
			return fmt.Errorf("listen on --mqtt %s: %w", a, err)
		}
		m.serveMQTT(dp.gw, ln, "mqtts")
	}
	if a := m.Config.MQTTPlainAddr; a != "" {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("listen on --mqtt-plain %s: %w", a, err)
		}
		m.serveMQTT(dp.gw, ln, "mqtt")
		log.Warn("plain MQTT is on: devices' keys cross the network unencrypted; use it for development only", "addr", ln.Addr().String())
	}
	m.devices = &dp
	return nil
}

// serveMQTT runs the gateway on ln until Close.
func (m *Main) serveMQTT(gw *mqttgw.Gateway, ln net.Listener, scheme string) {
	m.mqttLns = append(m.mqttLns, scheme+"://"+ln.Addr().String())
	m.closers = append(m.closers, func() error { _ = ln.Close(); return nil })
	go func() {
		if err := gw.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			m.logger.Error("mqtt listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	m.logger.Info("mqtt listening", "addr", ln.Addr().String(), "scheme", scheme)
}

// hubServiceAPI is the IoT Hub and DPS service REST API. Callers with a
// shared-access policy are checked by hubsvc itself; callers with a Ferry
// token need a data role (IoT Hub or DPS Data Contributor/Reader) at the
// hub or service, as in Azure.
func (m *Main) hubServiceAPI(rec audit.Recorder) http.Handler {
	dp := m.devices
	return hubsvc.New(hubsvc.Config{
		Store:        m.Store,
		Hubs:         dp.hubs,
		Provisioning: dp.prov,
		Tokens:       m.Identity,
		Authorize:    m.authorizeDataPlane,
		JobsChanged:  dp.jobs.Wake,
		Audit:        rec,
		Capacity: func() hubsvc.ConnectionCapacity {
			c := dp.gw.Capacity()
			return hubsvc.ConnectionCapacity{Open: c.Open, Limit: c.Limit}
		},
		Logger: m.logger,
	})
}

// dataActions maps the service API's operations to Azure's data actions.
var dataActions = map[hubsvc.Operation]string{
	hubsvc.OpRegistryRead:      "Microsoft.Devices/IotHubs/devices/read",
	hubsvc.OpRegistryWrite:     "Microsoft.Devices/IotHubs/devices/write",
	hubsvc.OpTwinRead:          "Microsoft.Devices/IotHubs/twins/read",
	hubsvc.OpTwinWrite:         "Microsoft.Devices/IotHubs/twins/write",
	hubsvc.OpInvokeMethod:      "Microsoft.Devices/IotHubs/directMethods/invoke/action",
	hubsvc.OpSendC2D:           "Microsoft.Devices/IotHubs/cloudToDeviceMessages/send/action",
	hubsvc.OpPurgeC2D:          "Microsoft.Devices/IotHubs/cloudToDeviceMessages/queue/purge/action",
	hubsvc.OpJobRead:           "Microsoft.Devices/IotHubs/jobs/read",
	hubsvc.OpJobWrite:          "Microsoft.Devices/IotHubs/jobs/write",
	hubsvc.OpDeviceStatistics:  "Microsoft.Devices/IotHubs/statistics/read",
	hubsvc.OpServiceStatistics: "Microsoft.Devices/IotHubs/statistics/read",
	hubsvc.OpEnrollmentRead:    "Microsoft.Devices/provisioningServices/enrollments/read",
	hubsvc.OpEnrollmentWrite:   "Microsoft.Devices/provisioningServices/enrollments/write",
	hubsvc.OpRegistrationRead:  "Microsoft.Devices/provisioningServices/registrationStates/read",
	hubsvc.OpRegistrationWrite: "Microsoft.Devices/provisioningServices/registrationStates/delete",
}

func (m *Main) authorizeDataPlane(ctx context.Context, c *ferry.Caller, t hubsvc.Target, op hubsvc.Operation) error {
	action, ok := dataActions[op]
	if !ok {
		return ferry.Errorf(ferry.EFORBIDDEN, "operation %q is not open to tokens", op)
	}
	var scope string
	switch {
	case t.Hub != nil:
		scope = t.Hub.ResourceID().String()
	case t.Service != nil:
		scope = t.Service.ResourceID().String()
	}
	if scope == "" {
		// A hub or service made outside ARM has no resource ID: only a
		// role at the root scope reaches it.
		scope = "/"
	}
	return m.Authorizer.Authorize(ctx, c, action, scope)
}
