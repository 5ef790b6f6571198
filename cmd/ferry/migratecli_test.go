package main

import (
	"context"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store/storetest"
)

const migrateModel = "dtmi:ferry:migratecli;1"

// TestMigrateCLI moves 20 devices sending telemetry from hub A
// (127.0.0.1) to hub B (127.0.0.2) with `ferry migrate`, on both
// databases.
func TestMigrateCLI(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var extra []string
			if backend == "postgres" {
				extra = []string{"--db", storetest.NewPostgresSchema(t)}
			}
			testMigrateCLI(t, loginCLI(t, extra...))
		})
	}
}

// cliDevice is a device of the SDK sending sequence-numbered telemetry.
type cliDevice struct {
	id   string
	c    *device.Client
	sent atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func testMigrateCLI(t *testing.T, ce *cliEnv) {
	ctx := context.Background()
	m := ce.m
	port := m.mqttLns[0][strings.LastIndex(m.mqttLns[0], ":")+1:]
	// Hub B's devices dial 127.0.0.2: serve the same gateway there.
	ln, err := tls.Listen("tcp", "127.0.0.2:"+port, m.CA.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"mqtt"}, ClientAuth: tls.RequestClientCert}))
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	m.serveMQTT(m.devices.gw, ln, "mqtts")

	ce.createResourceGroup(t, "fleet")
	ce.ok(t, nil, "hub", "create", "-n", "hub-a", "-g", "fleet", "--host-name", "127.0.0.1")
	ce.ok(t, nil, "hub", "create", "-n", "hub-b", "-g", "fleet", "--host-name", "127.0.0.2")
	var dpsA, dpsB map[string]any
	ce.ok(t, &dpsA, "dps", "create", "-n", "dps-a", "-g", "fleet", "--link-hub", "hub-a")
	ce.ok(t, &dpsB, "dps", "create", "-n", "dps-b", "-g", "fleet", "--link-hub", "hub-b")
	groupKey := ferry.NewKey(64)
	ce.ok(t, nil, "dps", "enrollment-group", "create", "--dps-name", "dps-a", "--enrollment-id", "fleet", "--iot-hubs", "127.0.0.1", "--primary-key", groupKey)
	ce.ok(t, nil, "dps", "enrollment-group", "create", "--dps-name", "dps-b", "--enrollment-id", "fleet", "--iot-hubs", "127.0.0.2", "--primary-key", groupKey)

	// The devices' model, with the DeviceMigration component, and the group
	// the migration selects, made with the CLI as an operator would.
	model := writeFile(t, "mover.json", `{"@id":"`+migrateModel+`","@type":"Interface","displayName":"Mover",`+
		`"contents":[{"@type":"Component","name":"migration","schema":"dtmi:azureiot:DeviceMigration;1"}]}`)
	var tmpl map[string]any
	ce.ok(t, &tmpl, "hub", "device-template", "import", "--hub-name", "hub-a", "-g", "fleet", "--file", model)
	if str(tmpl, "deviceMove.method") != "migration*DeviceMove" {
		t.Fatalf("device-template import: %v", tmpl)
	}
	ce.ok(t, nil, "hub", "device-group", "create", "--hub-name", "hub-a", "-g", "fleet", "--name", "movers",
		"--filter", "SELECT * FROM devices WHERE $template = '"+migrateModel+"'")
	hubA, err := m.Store.GetHubByName(ctx, "hub-a")
	must(t, err)

	devs := startCLIDevices(t, m, port, str(dpsA, "properties.idScope"), groupKey, 20)
	var members []map[string]any
	ce.ok(t, &members, "hub", "device-group", "devices", "--hub-name", "hub-a", "-g", "fleet", "--name", "movers")
	if len(members) != 20 || members[0]["template"] != migrateModel || members[0]["connectionState"] != "Connected" {
		t.Fatalf("device-group devices: %d devices, first %v", len(members), members[0])
	}

	// Bad input: an unknown hub is the server's 404 (exit 1), a missing
	// flag is a usage error (exit 2).
	code, _, errs := ce.run(t, "migrate", "create", "-g", "fleet", "-n", "bad", "--source-hub", "nope", "--device-group", "movers", "--target-dps", "dps-b")
	if code != 1 || !strings.Contains(errs, "ResourceNotFound") {
		t.Errorf("create with an unknown hub: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, "migrate", "create", "-g", "fleet", "-n", "bad", "--source-hub", "hub-a", "--device-group", "movers"); code != 2 {
		t.Errorf("create without --target-dps: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, "migrate", "create", "-g", "fleet", "-n", "bad", "--source-hub", "hub-a", "--target-dps", "dps-b",
		"--device-group", "movers", "--waves", "60,60"); code != 2 {
		t.Errorf("create with waves over 100%%: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, "migrate", "create", "-g", "fleet", "-n", "bad", "--source-hub", "hub-a", "--target-dps", "dps-b",
		"--device-group", "movers", "--catalog-device-group", "/subscriptions/x"); code != 2 || !strings.Contains(errs, "exclude each other") {
		t.Errorf("create with two selections: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, "migrate", "create", "-g", "fleet", "-n", "bad", "--source-hub", "hub-a", "--target-dps", "dps-b",
		"--catalog-device-group", "Production"); code != 1 || !strings.Contains(errs, "InvalidRequestContent") {
		t.Errorf("create with a catalog device group that is not a resource ID: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, "migrate", "create", "-g", "fleet", "-n", "bad", "--source-hub", "hub-a", "--target-dps", "dps-b",
		"--device-group", "nope"); code != 1 || !strings.Contains(errs, "ResourceNotFound") {
		t.Errorf("create with an unknown device group: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, "migrate", "start", "-g", "fleet", "-n", "nope"); code != 1 || !strings.Contains(errs, "ResourceNotFound") {
		t.Errorf("start of a missing migration: exit %d: %s", code, errs)
	}

	var created map[string]any
	ce.ok(t, &created, "migrate", "create", "-g", "fleet", "-n", "move-1", "--source-hub", "hub-a", "--device-group", "movers",
		"--target-dps", "dps-b", "--waves", "20,30,50", "--error-threshold", "0", "--on-error", "failback", "--device-timeout", "60s")
	if str(created, "properties.state") != "Created" || str(created, "properties.deviceCount") != "20" || str(created, "properties.waveCount") != "3" {
		t.Fatalf("migrate create: %v", created)
	}
	var pre map[string]any
	ce.ok(t, &pre, "migrate", "preflight", "-g", "fleet", "-n", "move-1")
	if pre["ok"] != true || str(pre, "devices") != "20" || str(pre, "online") != "20" {
		t.Fatalf("preflight: %v", pre)
	}
	var started map[string]any
	ce.ok(t, &started, "migrate", "start", "-g", "fleet", "-n", "move-1")
	if s := str(started, "properties.state"); s != "Running" && s != "Completed" {
		t.Fatalf("start: state %s", s)
	}
	out := ce.ok(t, nil, "migrate", "status", "-g", "fleet", "-n", "move-1", "--watch", "--interval", "200ms")
	if !strings.Contains(out, "move-1: Completed") || !strings.Contains(out, "wave 3") {
		t.Errorf("status --watch output:\n%s", out)
	}
	st := ce.migrationStatus(t, "fleet", "move-1")
	if st.State != "Completed" || st.Counts["verified"] != 20 || len(st.Waves) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, w := range st.Waves {
		if w.State != "succeeded" || w.Counts["verified"] != w.Size {
			t.Errorf("wave %d: %+v", w.Index, w)
		}
	}
	// Every device is at B now; its identity at A is disabled, not deleted.
	hubB, err := m.Store.GetHubByName(ctx, "hub-b")
	must(t, err)
	for _, d := range devs {
		if h := d.c.Hub(); !strings.HasPrefix(h, "127.0.0.2") {
			t.Errorf("%s is on %s", d.id, h)
		}
		if a, err := m.Store.GetDeviceIdentity(ctx, hubA.ID, d.id); err != nil || a.Status != ferry.DeviceDisabled {
			t.Errorf("%s at A: %v, %v", d.id, a, err)
		}
		if _, err := m.Store.GetDeviceIdentity(ctx, hubB.ID, d.id); err != nil {
			t.Errorf("%s at B: %v", d.id, err)
		}
	}
	var verified []map[string]any
	ce.ok(t, &verified, "migrate", "devices", "-g", "fleet", "-n", "move-1", "--state", "verified")
	if len(verified) != 20 {
		t.Errorf("devices --state verified: %d", len(verified))
	}

	csvOut := ce.ok(t, nil, "migrate", "report", "-g", "fleet", "-n", "move-1", "-o", "csv")
	rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatalf("report CSV: %v\n%s", err, csvOut)
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		if r[2] != "verified" {
			t.Errorf("report row %v", r)
		}
		seen[r[0]] = true
	}
	for _, d := range devs {
		if !seen[d.id] {
			t.Errorf("report CSV has no row for %s", d.id)
		}
	}
	var rep struct {
		State   string
		Devices []struct{ DeviceID, State string }
	}
	ce.ok(t, &rep, "migrate", "report", "-g", "fleet", "-n", "move-1")
	if rep.State != "Completed" || len(rep.Devices) != 20 {
		t.Errorf("report JSON: %s, %d devices", rep.State, len(rep.Devices))
	}

	// One device is failed back by hand: the migration is cancelled once
	// it is verified at A again, where its identity is enabled.
	ce.ok(t, nil, "migrate", "failback", "-g", "fleet", "-n", "move-1", "--device-ids", devs[0].id)
	code, out, errs = ce.run(t, "migrate", "status", "-g", "fleet", "-n", "move-1", "--watch", "--interval", "200ms")
	if code != 1 || !strings.Contains(out, "move-1: Cancelled") || !strings.Contains(errs, "ended Cancelled") {
		t.Errorf("status --watch after failback: exit %d: %s\n%s", code, errs, out)
	}
	if h := devs[0].c.Hub(); !strings.HasPrefix(h, "127.0.0.1") {
		t.Errorf("%s failed back to %s", devs[0].id, h)
	}
	if a, err := m.Store.GetDeviceIdentity(ctx, hubA.ID, devs[0].id); err != nil || a.Status != ferry.DeviceEnabled {
		t.Errorf("%s at A after failback: %v, %v", devs[0].id, a, err)
	}
	var back []map[string]any
	ce.ok(t, &back, "migrate", "devices", "-g", "fleet", "-n", "move-1", "--state", "failed-back")
	if len(back) != 1 || back[0]["deviceId"] != devs[0].id {
		t.Errorf("failed-back devices: %v", back)
	}

	// An ended migration refuses to start again, and can be deleted.
	if code, _, errs := ce.run(t, "migrate", "start", "-g", "fleet", "-n", "move-1"); code != 1 || !strings.Contains(errs, "Conflict") {
		t.Errorf("start of a completed migration: exit %d: %s", code, errs)
	}
	var list []map[string]any
	ce.ok(t, &list, "migrate", "list", "-g", "fleet")
	if len(list) != 1 {
		t.Errorf("list: %d migrations", len(list))
	}
	ce.ok(t, nil, "migrate", "delete", "-g", "fleet", "-n", "move-1")
	if code, _, errs := ce.run(t, "migrate", "show", "-g", "fleet", "-n", "move-1"); code != 1 || !strings.Contains(errs, "ResourceNotFound") {
		t.Errorf("show after delete: exit %d: %s", code, errs)
	}
	stopDevices(t, devs)
}

// startCLIDevices provisions n devices at scope and starts their telemetry.
func startCLIDevices(t *testing.T, m *Main, port, scope, groupKey string, n int) []*cliDevice {
	t.Helper()
	p, _ := strconv.Atoi(port)
	tr := device.Transport{TLS: &tls.Config{RootCAs: m.CA.CAPool(), ServerName: "127.0.0.1"}, Port: p, DialTimeout: 10 * time.Second}
	devs := make([]*cliDevice, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("mover-%02d", i)
			pc := device.ProvisionConfig{Host: "127.0.0.1:" + port, IDScope: scope, RegistrationID: id, GroupKey: groupKey,
				Payload: map[string]string{"modelId": migrateModel}, Transport: tr}
			c, _, err := device.ProvisionAndConnect(context.Background(), pc, device.Config{ModelID: migrateModel,
				MoveTimeout: 30 * time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", id, err)
				return
			}
			devs[i] = &cliDevice{id: id, c: c, stop: make(chan struct{}), done: make(chan struct{})}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, d := range devs {
		go func() {
			defer close(d.done)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				body, _ := json.Marshal(map[string]int64{"seq": d.sent.Load()})
				if d.c.Send(context.Background(), device.Message{Body: body, ContentType: "application/json", ContentEncoding: "utf-8"}) != nil {
					return
				}
				d.sent.Add(1)
				select {
				case <-d.stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	t.Cleanup(func() {
		for _, d := range devs {
			select {
			case <-d.stop:
			default:
				close(d.stop)
			}
			d.c.Close()
		}
	})
	return devs
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatusWatcherTerminal checks the live view on a terminal: one bar per
// wave, redrawn in place, and the counts per state.
func TestStatusWatcherTerminal(t *testing.T) {
	var b strings.Builder
	w := newStatusWatcher(&b, true)
	st := &migrationStatus{Name: "m", State: "Running", Devices: 10, Counts: map[string]int{"pending": 6, "verified": 4},
		Waves: []waveStatus{{Index: 0, Size: 4, State: "succeeded", Counts: map[string]int{"verified": 4}},
			{Index: 1, Size: 6, State: "pending", Counts: map[string]int{"pending": 6}}}}
	w.show(st)
	first := b.String()
	for _, want := range []string{"m: 10 devices in 2 waves", "wave 1 succeeded", "4/4", "wave 2 pending", "0/6", "Running: pending=6 verified=4"} {
		if !strings.Contains(first, want) {
			t.Errorf("first frame lacks %q:\n%s", want, first)
		}
	}
	st.State, st.Counts = "Completed", map[string]int{"verified": 10}
	st.Waves[1].State, st.Waves[1].Counts = "succeeded", map[string]int{"verified": 6}
	w.show(st)
	next := strings.TrimPrefix(b.String(), first)
	for _, want := range []string{"\033[3A", "6/6", "Completed: verified=10"} {
		if !strings.Contains(next, want) {
			t.Errorf("second frame lacks %q:\n%q", want, next)
		}
	}
}

// migrationStatus reads a migration's status with `ferry migrate status`.
func (ce *cliEnv) migrationStatus(t *testing.T, group, name string) migrationStatus {
	t.Helper()
	var s migrationStatus
	ce.ok(t, &s, "migrate", "status", "-g", group, "-n", name)
	return s
}
