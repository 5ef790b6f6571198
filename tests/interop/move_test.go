package interop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/provisioning"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

const moveModelID = "dtmi:ferry:interopmove;1"

// moveStep is one JSON line of devicemove.js.
type moveStep struct {
	Step        string          `json:"step"`
	At          string          `json:"at"`
	Error       string          `json:"error"`
	AssignedHub string          `json:"assignedHub"`
	IDScope     string          `json:"idScope"`
	ProvHost    string          `json:"provisioningHost"`
	Hub         string          `json:"hub"`
	Method      string          `json:"method"`
	Payload     json.RawMessage `json:"payload"`
	Seq         int             `json:"seq"`
	Sent        int             `json:"sent"`
	Moves       int             `json:"moves"`
}

// mover is one devicemove.js process and the steps it printed so far.
type mover struct {
	id    string
	stdin io.WriteCloser
	wait  func() error

	mu    sync.Mutex
	steps []moveStep
	ended bool
}

// startMover runs devicemove.js for regID, provisioning at the plane's
// service with the group-derived key.
func (p *plane) startMover(t *testing.T, regID, deviceKey, modelID string) *mover {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "node", "devicemove.js")
	cmd.Dir = sdkDir(t)
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+p.caFile, "PROVISIONING_HOST="+p.host, "ID_SCOPE="+p.svc.IDScope,
		"REGISTRATION_ID="+regID, "DEVICE_KEY="+deviceKey, "MODEL_ID="+modelID, "TELEMETRY_MS=200")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m := &mover{id: regID}
	if m.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var s moveStep
			if json.Unmarshal(sc.Bytes(), &s) != nil {
				continue
			}
			m.mu.Lock()
			m.steps = append(m.steps, s)
			m.mu.Unlock()
		}
		m.mu.Lock()
		m.ended = true
		m.mu.Unlock()
	}()
	m.wait = func() error {
		<-read
		err := cmd.Wait()
		if err != nil {
			t.Logf("%s: devicemove.js stderr:\n%s", regID, stderr.String())
		}
		return err
	}
	t.Cleanup(func() {
		m.stdin.Close()
		cancel()
		<-read
		cmd.Wait()
		if t.Failed() {
			m.dump(t)
		}
	})
	return m
}

// dump logs every step but the telemetry acknowledgements.
func (m *mover) dump(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	sent := 0
	for _, s := range m.steps {
		if s.Step == "sent" {
			sent++
			continue
		}
		b, _ := json.Marshal(s)
		t.Logf("%s: %s", m.id, b)
	}
	t.Logf("%s: %d acknowledged sends", m.id, sent)
}

// await waits until a step named name satisfies ok (nil: any) and returns
// it; an error step or the end of the process fails the test.
func (m *mover) await(t *testing.T, d time.Duration, name string, ok func(moveStep) bool) moveStep {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m.mu.Lock()
		steps, ended := m.steps, m.ended
		m.mu.Unlock()
		for _, s := range steps {
			if s.Step == "error" {
				t.Fatalf("%s: devicemove.js failed at %s: %s", m.id, s.At, s.Error)
			}
			if s.Step == name && (ok == nil || ok(s)) {
				return s
			}
		}
		if ended {
			t.Fatalf("%s: devicemove.js ended before %q", m.id, name)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q from devicemove.js within %s", m.id, name, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// all returns the steps named name.
func (m *mover) all(name string) []moveStep {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []moveStep
	for _, s := range m.steps {
		if s.Step == name {
			out = append(out, s)
		}
	}
	return out
}

// TestNodeSDKDeviceMove migrates devices built on the official Azure IoT
// Node SDK whose DeviceMove handler behaves like the IoT Central migrator's
// Node sample (answer 200, close, provision again with the new ID scope)
// from hub A to hub B in two waves: every device verifies at B, its
// identity is enabled at B and disabled at A, and the export sink holds
// every sequence number it sent.
func TestNodeSDKDeviceMove(t *testing.T) {
	sdkDir(t)
	cases := []moveCase{{
		// The template declares the DeviceMigration component "migration",
		// so the command arrives as migration*DeviceMove.
		name: "component", modelID: moveModelID, wantMethod: "migration*DeviceMove",
	}, {
		// Like the samples, the device announces no model: preflight skips
		// the model check, the devices are listed by ID, the command is the
		// plain DeviceMove and carries Ferry's provisioningHost.
		name: "plain", wantMethod: "DeviceMove", byIDs: true, provHost: "127.0.0.1",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) { testNodeMove(t, s, c) })
		})
	}
}

// moveCase is one way of moving Node SDK devices.
type moveCase struct {
	name       string
	modelID    string // the devices' model; "": none, and preflight skips the model check
	wantMethod string // the method the devices must see
	byIDs      bool   // select the devices by ID rather than by a hub device group
	provHost   string // host (the port is the plane's) sent as provisioningHost; "": none
}

func testNodeMove(t *testing.T, s ferry.Store, c moveCase) {
	ctx := context.Background()
	now := time.Now()
	p := newPlane(t, s) // hub A "localhost:PORT" and its provisioning service
	hubB := &ferry.Hub{ID: ferry.NewUUID(), Name: "interop-hub-b", HostName: "127.0.0.1:" + p.port, Policies: ferry.DefaultHubPolicies(), CreatedAt: now}
	if err := s.CreateHub(ctx, hubB); err != nil {
		t.Fatal(err)
	}
	dpsB := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: "interop-dps-b", IDScope: provisioning.NewIDScope(), HostName: p.host,
		AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: now,
		LinkedHubs: []ferry.LinkedHub{{HubID: hubB.ID, HostName: hubB.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
	if err := s.CreateProvisioningService(ctx, dpsB); err != nil {
		t.Fatal(err)
	}
	groupKey := ferry.NewKey(64)
	if err := s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: p.svc.ID, ID: "node-fleet", Status: ferry.EnrollmentEnabled,
		Attestation:       ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: groupKey, SecondaryKey: ferry.NewKey(64)},
		ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
		CreatedAt:         now, UpdatedAt: now}, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDeviceTemplate(ctx, &ferry.DeviceTemplate{ID: moveModelID, DisplayName: "Node SDK mover",
		Model:         json.RawMessage(`{"@id":"` + moveModelID + `","@type":"Interface","contents":[{"@type":"Component","name":"migration","schema":"dtmi:azureiot:DeviceMigration;1"}]}`),
		HasDeviceMove: true, MigrationComponent: "migration", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	group := &ferry.HubDeviceGroup{ID: ferry.NewUUID(), HubID: p.hub.ID, Name: "node-movers", Query: "$template = '" + moveModelID + "'", CreatedAt: now}
	if err := s.CreateHubDeviceGroup(ctx, group); err != nil {
		t.Fatal(err)
	}

	var movers []*mover
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("node-mover-%d", i+1)
		dk, err := sas.DeriveDeviceKey(groupKey, id)
		if err != nil {
			t.Fatal(err)
		}
		movers = append(movers, p.startMover(t, id, dk, c.modelID))
		ids = append(ids, id)
	}
	for _, m := range movers {
		m.await(t, 60*time.Second, "connected", func(s moveStep) bool { return s.Hub == p.host })
		m.await(t, 30*time.Second, "sent", nil)
	}

	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o, err := migrate.New(migrate.Config{Store: s, Hubs: p.hubs, Bus: p.bus, Logger: log, Tick: 100 * time.Millisecond, RetryInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	sel := ferry.MigrationSelection{Kind: ferry.SelectHubDeviceGroup, HubDeviceGroupID: group.ID}
	if c.byIDs {
		sel = ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: ids}
	}
	provHost := ""
	if c.provHost != "" {
		provHost = c.provHost + ":" + p.port
	}
	mig, err := o.Create(ctx, &ferry.Migration{Name: "node-sdk-move", SourceHubID: p.hub.ID,
		Selection:        sel,
		Target:           ferry.MigrationTarget{ProvisioningServiceID: dpsB.ID, ProvisioningHost: provHost},
		Waves:            ferry.WavePlan{Sizes: []int{1, 2}},
		SuccessThreshold: 100, OnError: ferry.OnErrorFailback, DeviceTimeout: 45 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := o.Preflight(ctx, mig.ID, migrate.PreflightOptions{SkipModelCheck: c.modelID == ""})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Devices != len(movers) || rep.Online != len(movers) || len(rep.EnrollmentsCreated) != 1 {
		t.Fatalf("preflight = %+v", rep)
	}
	start := time.Now()
	if err := o.Begin(ctx, mig.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		mig, err = s.GetMigration(ctx, mig.ID)
		if err != nil {
			t.Fatal(err)
		}
		if mig.State == ferry.MigrationCompleted || mig.State == ferry.MigrationFailed || mig.State == ferry.MigrationPaused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration is still %s after 90 s", mig.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if mig.State != ferry.MigrationCompleted || mig.StateReason != "" {
		t.Fatalf("migration %s: %s", mig.State, mig.StateReason)
	}
	t.Logf("%d Node SDK devices migrated in %s", len(movers), time.Since(start).Round(time.Millisecond))

	page, err := s.ListMigrationDevices(ctx, ferry.MigrationDeviceFilter{MigrationID: mig.ID, Wave: -1, ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != len(movers) {
		t.Errorf("%d devices in the migration, want %d", len(page.Items), len(movers))
	}
	for _, d := range page.Items {
		if d.State != ferry.DeviceVerified {
			t.Errorf("%s is %s: %s", d.DeviceID, d.State, d.Reason)
		}
		b, err := s.GetDeviceIdentity(ctx, hubB.ID, d.DeviceID)
		if err != nil || b.Status != ferry.DeviceEnabled {
			t.Errorf("identity of %s at B: %+v, %v", d.DeviceID, b, err)
		}
		a, err := s.GetDeviceIdentity(ctx, p.hub.ID, d.DeviceID)
		if err != nil || a.Status != ferry.DeviceDisabled {
			t.Errorf("identity of %s at A: %+v, %v", d.DeviceID, a, err)
		}
	}

	// The report shows each device's path through the states the events
	// drove: the method response may come after the registration, which
	// then implies it.
	report, err := o.Report(ctx, mig.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range report.Devices {
		var path []string
		for _, tr := range d.Transitions {
			path = append(path, string(tr.To))
		}
		if got := strings.Join(path, ","); got != "commanded,acknowledged,provisioned,connected,verified" && got != "commanded,provisioned,connected,verified" {
			t.Errorf("transitions of %s: %s", d.DeviceID, got)
		}
	}

	// Each device moved once, by the component's method, with the new
	// scope, and keeps sending at B.
	sent := map[string]int{}
	movedAt := map[string]int{} // sequence number in flight when the device moved
	for _, m := range movers {
		mv := m.await(t, 10*time.Second, "move", nil)
		var payload struct{ IDScope, ProvisioningHost string }
		if err := json.Unmarshal(mv.Payload, &payload); err != nil || mv.Method != c.wantMethod || payload.IDScope != dpsB.IDScope || payload.ProvisioningHost != provHost {
			t.Errorf("%s: move %s %s", m.id, mv.Method, mv.Payload)
		}
		wantHost := p.host
		if provHost != "" {
			wantHost = provHost
		}
		m.await(t, 10*time.Second, "provisioned", func(s moveStep) bool {
			return s.IDScope == dpsB.IDScope && s.AssignedHub == hubB.HostName && s.ProvHost == wantHost
		})
		at := m.await(t, 10*time.Second, "moved", func(s moveStep) bool { return s.Hub == hubB.HostName })
		movedAt[m.id] = at.Seq
		m.await(t, 10*time.Second, "sent", func(s moveStep) bool { return s.Hub == hubB.HostName && s.Seq > at.Seq })
		if _, err := io.WriteString(m.stdin, "stop\n"); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range movers {
		done := m.await(t, 30*time.Second, "done", nil)
		// At least one message after the move: how many went before it
		// depends on how fast the move was (DPS may answer 200 at once).
		if done.Moves != 1 || done.Hub != hubB.HostName || done.Sent < movedAt[m.id]+2 {
			t.Errorf("%s: done after %d moves at %q having sent %d", m.id, done.Moves, done.Hub, done.Sent)
		}
		if err := m.wait(); err != nil {
			t.Errorf("%s: devicemove.js: %v", m.id, err)
		}
		sent[m.id] = done.Sent
		retries := len(m.all("send-retry"))
		t.Logf("%s sent %d messages, %d sent again", m.id, done.Sent, retries)
	}

	recs, err := export.ReadAll(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[int]bool{}
	for _, r := range recs {
		if r.MessageSource != ferry.SourceTelemetry {
			continue
		}
		var body struct{ Seq *int }
		if json.Unmarshal(r.Telemetry, &body) != nil || body.Seq == nil {
			continue
		}
		if seen[r.DeviceID] == nil {
			seen[r.DeviceID] = map[int]bool{}
		}
		seen[r.DeviceID][*body.Seq] = true
	}
	for id, n := range sent {
		var missing []int
		for i := range n {
			if !seen[id][i] {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: %d of %d sequence numbers missing from the export sink: %v", id, len(missing), n, missing[:min(10, len(missing))])
		}
	}
}

// logWriter logs lines through the test.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
