package migrate_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/provisioning"
)

const (
	modelID = "dtmi:ferry:migratetest;1"
	groupID = "fleet"
)

// fleet is one Ferry device plane on a real TLS MQTT listener with two hubs
// (A is "localhost:PORT", B is "127.0.0.1:PORT"), a provisioning service
// linked to each, an enrollment group at A, a device template declaring
// DeviceMove in a "migration" component, a hub device group at A selecting
// it, and simulated devices from the device SDK sending sequence-numbered
// telemetry.
type fleet struct {
	t         testing.TB
	store     ferry.Store
	bus       *eventbus.Bus
	hubs      *hub.Service
	tlsConf   *tls.Config
	host      string
	exportDir string
	hubA      *ferry.Hub
	hubB      *ferry.Hub
	dpsA      *ferry.ProvisioningService
	dpsB      *ferry.ProvisioningService
	groupKey  string
	group     *ferry.HubDeviceGroup

	mu      sync.Mutex
	devices []*simDevice
	onMove  func(deviceID string) // called by devices when DeviceMove arrives
}

type simDevice struct {
	id   string
	c    *device.Client
	sent atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func newFleet(t testing.TB, s ferry.Store) *fleet {
	t.Helper()
	ctx := context.Background()
	f := &fleet{t: t, store: s, exportDir: t.TempDir()}
	auth, err := pki.LoadOrCreate(t.TempDir(), []string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(auth.CACertPEM())
	f.tlsConf = &tls.Config{RootCAs: pool}
	f.bus = eventbus.New(eventbus.Options{})
	sink, err := export.Open(export.Config{Dir: f.exportDir, ApplicationID: "ferry-migrate-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	f.hubs, err = hub.New(hub.Config{Store: s, Bus: f.bus, Sink: sink, FlushInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.hubs.Close() })
	prov, err := provisioning.New(provisioning.Config{Store: s, Hubs: f.hubs, Bus: f.bus})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mqttgw.New(mqttgw.Config{Hubs: f.hubs, Provisioning: prov})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", auth.ServerTLSConfig(pki.TLSOptions{ClientAuth: tls.RequestClientCert}))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	f.host = "localhost:" + port
	go gw.Serve(ln)
	t.Cleanup(func() { gw.Close() })

	now := time.Now()
	f.hubA = &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-a", HostName: "localhost:" + port, Policies: ferry.DefaultHubPolicies(), CreatedAt: now}
	f.hubB = &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-b", HostName: "127.0.0.1:" + port, Policies: ferry.DefaultHubPolicies(), CreatedAt: now}
	for _, h := range []*ferry.Hub{f.hubA, f.hubB} {
		must(t, s.CreateHub(ctx, h))
	}
	dps := func(name string, h *ferry.Hub) *ferry.ProvisioningService {
		svc := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: name, IDScope: provisioning.NewIDScope(), HostName: f.host,
			AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: now,
			LinkedHubs: []ferry.LinkedHub{{HubID: h.ID, HostName: h.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
		must(t, s.CreateProvisioningService(ctx, svc))
		return svc
	}
	f.dpsA, f.dpsB = dps("dps-a", f.hubA), dps("dps-b", f.hubB)
	f.groupKey = ferry.NewKey(64)
	must(t, s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: f.dpsA.ID, ID: groupID,
		Attestation:       ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: f.groupKey, SecondaryKey: ferry.NewKey(64)},
		ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
		Status:            ferry.EnrollmentEnabled, CreatedAt: now, UpdatedAt: now}, ""))
	must(t, s.PutDeviceTemplate(ctx, &ferry.DeviceTemplate{ID: modelID, DisplayName: "Migration test device",
		Model:         json.RawMessage(`{"@id":"dtmi:ferry:migratetest;1","@type":"Interface","contents":[{"@type":"Component","name":"migration","schema":"dtmi:azureiot:DeviceMigration;1"}]}`),
		HasDeviceMove: true, MigrationComponent: "migration", CreatedAt: now}))
	f.group = &ferry.HubDeviceGroup{ID: ferry.NewUUID(), HubID: f.hubA.ID, Name: "movers", Query: "$template = '" + modelID + "'", CreatedAt: now}
	must(t, s.CreateHubDeviceGroup(ctx, f.group))
	t.Cleanup(f.stopDevices)
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// startDevices provisions n devices at A and starts their telemetry.
func (f *fleet) startDevices(n int, every time.Duration) {
	f.t.Helper()
	ctx := context.Background()
	tr := device.Transport{TLS: f.tlsConf, DialTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 100)
	devs := make([]*simDevice, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("dev-%04d", i)
			pc := device.ProvisionConfig{Host: f.host, IDScope: f.dpsA.IDScope, RegistrationID: id, GroupKey: f.groupKey,
				Payload: map[string]string{"modelId": modelID}, Transport: tr}
			cfg := device.Config{ModelID: modelID, MoveTimeout: 30 * time.Second, MinBackoff: 100 * time.Millisecond,
				MaxBackoff: time.Second, OnMove: func(device.Move) error {
					f.mu.Lock()
					fn := f.onMove
					f.mu.Unlock()
					if fn != nil {
						fn(id)
					}
					return nil
				}}
			c, _, err := device.ProvisionAndConnect(ctx, pc, cfg)
			if err != nil {
				errs <- fmt.Errorf("device %s: %w", id, err)
				return
			}
			devs[i] = &simDevice{id: id, c: c, stop: make(chan struct{}), done: make(chan struct{})}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Fatal(err)
	}
	for _, d := range devs {
		go d.run(every)
	}
	f.mu.Lock()
	f.devices = append(f.devices, devs...)
	f.mu.Unlock()
}

func (d *simDevice) run(every time.Duration) {
	defer close(d.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		seq := d.sent.Load()
		body, _ := json.Marshal(map[string]int64{"seq": seq})
		if err := d.c.Send(context.Background(), device.Message{Body: body, ContentType: "application/json", ContentEncoding: "utf-8"}); err != nil {
			return
		}
		d.sent.Add(1)
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
	}
}

// finish stops telemetry, waits until every message is acknowledged and
// closes the devices.
func (f *fleet) finish() {
	f.t.Helper()
	f.mu.Lock()
	devs := f.devices
	f.mu.Unlock()
	for _, d := range devs {
		close(d.stop)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range devs {
		<-d.done
		if err := d.c.Flush(ctx); err != nil {
			f.t.Errorf("flush %s: %v (hub %s)", d.id, err, d.c.Hub())
		}
	}
	f.stopDevices()
}

func (f *fleet) stopDevices() {
	f.mu.Lock()
	devs := f.devices
	f.devices = nil
	f.mu.Unlock()
	for _, d := range devs {
		select {
		case <-d.stop:
		default:
			close(d.stop)
		}
		d.c.Close()
	}
	f.mu.Lock()
	f.devices = nil
	f.mu.Unlock()
}

// checkNoGap reads the export sink and checks that every sequence number
// each device sent is there at least once.
func (f *fleet) checkNoGap(devs []*simDevice) {
	f.t.Helper()
	files, err := filepath.Glob(filepath.Join(f.exportDir, "*"))
	if err != nil || len(files) == 0 {
		f.t.Fatalf("no export files: %v", err)
	}
	recs, err := export.ReadAll(f.exportDir)
	if err != nil {
		f.t.Fatal(err)
	}
	seen := map[string]map[int64]bool{}
	for _, r := range recs {
		if r.MessageSource != ferry.SourceTelemetry {
			continue
		}
		var body struct{ Seq int64 }
		if err := json.Unmarshal(r.Telemetry, &body); err != nil {
			f.t.Fatalf("telemetry of %s: %v", r.DeviceID, err)
		}
		if seen[r.DeviceID] == nil {
			seen[r.DeviceID] = map[int64]bool{}
		}
		seen[r.DeviceID][body.Seq] = true
	}
	gaps := 0
	for _, d := range devs {
		n := d.sent.Load()
		if n < 2 {
			f.t.Errorf("%s sent only %d messages", d.id, n)
		}
		for i := range n {
			if !seen[d.id][i] {
				gaps++
				if gaps <= 10 {
					f.t.Errorf("%s: sequence number %d of %d is missing from the export", d.id, i, n)
				}
			}
		}
	}
	if gaps > 10 {
		f.t.Errorf("%d sequence numbers missing in all", gaps)
	}
}

func (f *fleet) orchestrator() *migrate.Orchestrator {
	f.t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{f.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o, err := migrate.New(migrate.Config{Store: f.store, Hubs: f.hubs, Bus: f.bus, Logger: log, Tick: 100 * time.Millisecond, RetryInterval: time.Second})
	if err != nil {
		f.t.Fatal(err)
	}
	must(f.t, o.Start(context.Background()))
	f.t.Cleanup(func() { o.Close() })
	return o
}

// testWriter logs lines through the test.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (f *fleet) plan(name string) *ferry.Migration {
	timeout := 20 * time.Second
	if raceEnabled {
		timeout = time.Minute
	}
	return &ferry.Migration{Name: name, SourceHubID: f.hubA.ID,
		Selection:        ferry.MigrationSelection{Kind: ferry.SelectHubDeviceGroup, HubDeviceGroupID: f.group.ID},
		Target:           ferry.MigrationTarget{ProvisioningServiceID: f.dpsB.ID},
		SuccessThreshold: 100, ErrorThreshold: 0, OnError: ferry.OnErrorFailback, DeviceTimeout: timeout}
}

// waitState waits for a migration to reach one of states.
func waitState(t testing.TB, s ferry.Store, id string, d time.Duration, states ...ferry.MigrationState) *ferry.Migration {
	t.Helper()
	if raceEnabled {
		d *= 2
	}
	deadline := time.Now().Add(d)
	for {
		m, err := s.GetMigration(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range states {
			if m.State == st {
				return m
			}
		}
		if time.Now().After(deadline) {
			counts, _ := s.CountMigrationDevices(context.Background(), id)
			t.Fatalf("migration is %s (%s) after %s, want %v; devices by wave and state: %v", m.State, m.StateReason, d, states, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func devicesIn(t testing.TB, s ferry.Store, id string) []*ferry.MigrationDevice {
	t.Helper()
	p, err := s.ListMigrationDevices(context.Background(), ferry.MigrationDeviceFilter{MigrationID: id, Wave: -1, ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}
