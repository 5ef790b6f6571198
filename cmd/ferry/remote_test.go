package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store"
)

// ferryProcess is one `ferry serve` child process with its own data
// directory, ports, CA and logged-in CLI.
type ferryProcess struct {
	*crashServer
	data, ip, httpsURL, caFile string
	ce                         *cliEnv
}

// startFerryProcess starts `ferry serve` on ip (127.0.0.x) with MQTT on
// mqttPort, and logs a CLI in as its administrator.
func startFerryProcess(t *testing.T, ip, mqttPort string) *ferryProcess {
	t.Helper()
	data := t.TempDir()
	httpPort, httpsPort := freePortOn(t, ip), freePortOn(t, ip)
	logf, err := os.Create(filepath.Join(t.TempDir(), "server-"+ip+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	p := &ferryProcess{data: data, ip: ip, httpsURL: "https://" + net.JoinHostPort(ip, httpsPort),
		caFile: filepath.Join(data, "pki", pki.CACertFile)}
	p.crashServer = &crashServer{log: logf, httpURL: "http://" + net.JoinHostPort(ip, httpPort),
		args: []string{"serve", "--data", data, "--db", filepath.Join(data, "ferry.db"), "--http", net.JoinHostPort(ip, httpPort),
			"--https", net.JoinHostPort(ip, httpsPort), "--mqtt", net.JoinHostPort(ip, mqttPort), "--hostname", ip, "--log-level", "debug"}}
	p.start(t)
	t.Cleanup(func() { p.kill(t, syscall.SIGKILL) })
	p.ce = &cliEnv{getenv: envFrom(map[string]string{"FERRY_CONFIG_DIR": t.TempDir(), "FERRY_PASSWORD": "correct horse battery"})}
	p.ce.ok(t, nil, "login", "--url", p.httpsURL, "--username", "admin", "--ca-file", p.caFile)
	return p
}

// freePortOn returns a port on ip that was free a moment ago. It is
// chosen below the kernel's ephemeral range (32768 and up), where no
// outgoing connection's source port can take it between this check and a
// server's bind, or its re-bind after a restart: the tests run simulated
// devices that open thousands of connections.
func freePortOn(t *testing.T, ip string) string {
	t.Helper()
	for range 100 {
		port := strconv.Itoa(10000 + rand.IntN(22000))
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatalf("no free port on %s", ip)
	return ""
}

// freePortOnBoth returns a port free on both addresses, so that devices
// reach both servers' MQTT listeners on one port number.
func freePortOnBoth(t *testing.T, a, b string) string {
	t.Helper()
	for range 20 {
		port := freePortOn(t, a)
		if ln, err := net.Listen("tcp", net.JoinHostPort(b, port)); err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no port free on both addresses")
	return ""
}

// TestMigrationAcrossFerryProcesses moves 20 devices sending telemetry from
// hub A on one `ferry serve` process (127.0.0.1) to hub B on another
// (127.0.0.2, its own data directory and CA). A's orchestrator acts at B as
// a service principal with data roles there: preflight creates B's
// enrollment group with the source group's key, and A follows B's hub
// event stream to verify each device. B is killed with SIGKILL and
// restarted while the first wave is in flight, so A's stream breaks and is
// reopened; A is killed and restarted in the second wave, so its
// orchestrator resumes and reconciles from B's registry. Every device ends
// verified at B and disabled at A. Two are then failed back by hand: A
// commands them through B's hub and verifies them at A again. A's and B's
// export files together hold every telemetry sequence number each device
// saw acknowledged, and no log or answer shows the client secret.
func TestMigrationAcrossFerryProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	const n = 20
	ctx := context.Background()
	f := setupTwoFerries(t, n)
	a, b, stA, stB, sp, secret, dpsB, groupKey, hubA, devs, create := f.a, f.b, f.stA, f.stB, f.sp, f.secret, f.dpsB, f.groupKey, f.hubA, f.devs, f.create
	// Refusals: a wrong secret is B's 401, a missing one a usage error.
	if code, _, errs := create("bad", "--target-client-secret", "wrong"); code != 1 || !strings.Contains(errs, "target Ferry") {
		t.Errorf("create with a wrong secret: exit %d: %s", code, errs)
	}
	if code, _, errs := create("bad"); code != 2 || !strings.Contains(errs, "FERRY_TARGET_CLIENT_SECRET") {
		t.Errorf("create without a secret: exit %d: %s", code, errs)
	}

	a.ce.getenv = envFrom(map[string]string{"FERRY_CONFIG_DIR": a.ce.getenv("FERRY_CONFIG_DIR"), "FERRY_PASSWORD": "correct horse battery",
		"FERRY_TARGET_CLIENT_SECRET": secret})
	code, out, errs := create("across", "--waves", "50,50", "--device-timeout", "60s", "--command-rate", "5")
	if code != 0 {
		t.Fatalf("migrate create: exit %d: %s", code, errs)
	}
	var created map[string]any
	must(t, json.Unmarshal([]byte(out), &created))
	if str(created, "properties.deviceCount") != strconv.Itoa(n) || str(created, "properties.idScope") != str(dpsB, "properties.idScope") ||
		str(created, "properties.targetFerry.clientId") != sp.Name {
		t.Fatalf("migrate create: %s", out)
	}
	if strings.Contains(out, secret) {
		t.Error("migrate create shows the target's client secret")
	}
	var pre map[string]any
	a.ce.ok(t, &pre, "migrate", "preflight", "-g", "fleet", "-n", "across")
	if pre["ok"] != true || str(pre, "online") != strconv.Itoa(n) || str(pre, "enrollmentsCreated") != `["fleet"]` {
		t.Fatalf("preflight: %v", pre)
	}
	dpsBRec, err := stB.GetProvisioningServiceByName(ctx, "dps-b")
	must(t, err)
	if g, err := stB.GetEnrollmentGroup(ctx, dpsBRec.ID, "fleet"); err != nil || g.Attestation.PrimaryKey != groupKey {
		t.Fatalf("B's enrollment group after preflight: %+v, %v", g, err)
	}

	a.ce.ok(t, nil, "migrate", "start", "-g", "fleet", "-n", "across")
	// Kill B while the first wave is in flight: A loses B's event stream
	// and its API, and must catch up once B is back.
	var before migrationStatus
	waitWithin(t, 60*time.Second, "the first verified devices", func() bool {
		before = a.ce.migrationStatus(t, "fleet", "across")
		if before.State != "Running" {
			t.Fatalf("migration is %s before B's crash: %+v", before.State, before)
		}
		return before.Counts["verified"] >= 2
	})
	b.kill(t, syscall.SIGKILL)
	t.Logf("killed B at %+v", before.Counts)
	time.Sleep(time.Second)
	b.start(t)

	// Kill A in the second wave: its orchestrator restarts, reopens B's
	// stream and reconciles what it missed from B's registry.
	var mid migrationStatus
	waitWithin(t, 60*time.Second, "the second wave", func() bool {
		mid = a.ce.migrationStatus(t, "fleet", "across")
		return mid.State != "Running" || mid.CurrentWave == 1 && mid.Counts["commanded"]+mid.Counts["acknowledged"]+mid.Counts["provisioned"] > 0
	})
	a.kill(t, syscall.SIGKILL)
	t.Logf("killed A at %+v", mid.Counts)
	a.start(t)

	var after migrationStatus
	waitWithin(t, 90*time.Second, "the migration to end", func() bool {
		after = a.ce.migrationStatus(t, "fleet", "across")
		return after.State != "Running"
	})
	if after.State != "Completed" || after.Counts["verified"] != n {
		t.Fatalf("after B's restart: %+v", after)
	}

	// Two devices are failed back by hand: A commands them through B's
	// hub service API and sees them come home to A.
	back := map[string]bool{devs[0].id: true, devs[1].id: true}
	a.ce.ok(t, nil, "migrate", "failback", "-g", "fleet", "-n", "across", "--device-ids", devs[0].id+","+devs[1].id)
	waitWithin(t, 60*time.Second, "the failback", func() bool {
		after = a.ce.migrationStatus(t, "fleet", "across")
		return after.State != "Cancelling"
	})
	if after.State != "Cancelled" || after.Counts["failed-back"] != 2 || after.Counts["verified"] != n-2 {
		t.Fatalf("after failback: %+v", after)
	}

	sent := stopDevices(t, devs)
	for _, d := range devs {
		want := "127.0.0.2"
		if back[d.id] {
			want = "127.0.0.1"
		}
		if h := d.c.Hub(); !strings.HasPrefix(h, want) {
			t.Errorf("%s is on %s, want %s", d.id, h, want)
		}
	}
	var show map[string]any
	showOut := a.ce.ok(t, &show, "migrate", "show", "-g", "fleet", "-n", "across")
	if strings.Contains(showOut, secret) || str(show, "properties.targetFerry.apiEndpoint") != b.httpsURL {
		t.Errorf("migrate show: %s", showOut)
	}
	repOut := a.ce.ok(t, nil, "migrate", "report", "-g", "fleet", "-n", "across")
	t.Logf("A reconciled %d transitions from B's registry", strings.Count(repOut, "found by reconciling"))
	a.kill(t, syscall.SIGTERM)
	b.kill(t, syscall.SIGTERM)
	for _, f := range []*os.File{a.log, b.log} {
		logs, err := os.ReadFile(f.Name())
		must(t, err)
		if strings.Contains(string(logs), secret) {
			t.Errorf("%s holds the target's client secret", f.Name())
		}
		// Under -race the servers are race-enabled too.
		if strings.Contains(string(logs), "WARNING: DATA RACE") {
			t.Errorf("%s reports a data race", f.Name())
		}
	}
	// A resumed the migration after SIGKILL with the secret it keeps
	// encrypted: no file of its database holds it in clear.
	dbFiles, err := filepath.Glob(filepath.Join(a.data, "ferry.db*"))
	must(t, err)
	for _, name := range dbFiles {
		b, err := os.ReadFile(name)
		must(t, err)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds the target's client secret", name)
		}
	}

	hubB, err := stB.GetHubByName(ctx, "hub-b")
	must(t, err)
	for _, d := range devs {
		want := ferry.DeviceDisabled
		if back[d.id] {
			want = ferry.DeviceEnabled
		}
		if x, err := stA.GetDeviceIdentity(ctx, hubA.ID, d.id); err != nil || x.Status != want {
			t.Errorf("%s at A: %+v, %v; want %s", d.id, x, err, want)
		}
		if x, err := stB.GetDeviceIdentity(ctx, hubB.ID, d.id); err != nil || x.Status != ferry.DeviceEnabled {
			t.Errorf("%s at B: %+v, %v", d.id, x, err)
		}
	}
	checkExports(t, devs, sent, a.data, b.data)
}

// TestMigrateRemoteRefusals checks what create and preflight say about a
// target Ferry that cannot serve the migration. One in-process server
// plays both sides: the target is reached over HTTPS as a service
// principal, exactly as another server would be.
func TestMigrateRemoteRefusals(t *testing.T) {
	ctx := context.Background()
	// Room for exactly the two devices that move: one more connection
	// and the target is full.
	ce := loginCLI(t, "--mqtt-max-connections", "2")
	m := ce.m
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(caFile, m.CA.CACertPEM(), 0o644))
	ce.createResourceGroup(t, "fleet")
	ce.ok(t, nil, "hub", "create", "-n", "hub-a", "-g", "fleet", "--host-name", "127.0.0.1")
	ce.ok(t, nil, "hub", "create", "-n", "hub-b", "-g", "fleet", "--host-name", "127.0.0.2")
	ce.ok(t, nil, "dps", "create", "-n", "dps-a", "-g", "fleet", "--link-hub", "hub-a")
	var dpsB map[string]any
	ce.ok(t, &dpsB, "dps", "create", "-n", "dps-b", "-g", "fleet", "--link-hub", "hub-b")
	groupKey := ferry.NewKey(64)
	ce.ok(t, nil, "dps", "enrollment-group", "create", "--dps-name", "dps-a", "--enrollment-id", "fleet", "--iot-hubs", "127.0.0.1", "--primary-key", groupKey)
	hubA, err := m.Store.GetHubByName(ctx, "hub-a")
	must(t, err)
	svcB, err := m.Store.GetProvisioningServiceByName(ctx, "dps-b")
	must(t, err)
	// Two devices registered through dps-a's group; preflight looks at
	// their identities, not at live sessions, for the enrollment checks.
	now := time.Now().UTC()
	keys := map[string]string{}
	for _, id := range []string{"d1", "d2"} {
		keys[id] = ferry.NewKey(32)
		must(t, m.Store.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: hubA.ID, DeviceID: id, Status: ferry.DeviceEnabled,
			EnrollmentGroupID: "fleet", Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: keys[id], SecondaryKey: ferry.NewKey(32)},
			CreatedAt: now, StatusUpdatedAt: now}))
	}

	sp, secret, err := m.Identity.CreateServicePrincipal(ctx, "migrator")
	must(t, err)
	for _, role := range []string{"Reader", "IoT Hub Data Contributor", "Device Provisioning Service Data Contributor"} {
		ce.ok(t, nil, "role", "assignment", "create", "--assignee", sp.ID, "--role", role, "-g", "fleet")
	}
	noRoles, noRolesSecret, err := m.Identity.CreateServicePrincipal(ctx, "no roles")
	must(t, err)
	readOnly, readOnlySecret, err := m.Identity.CreateServicePrincipal(ctx, "reader")
	must(t, err)
	ce.ok(t, nil, "role", "assignment", "create", "--assignee", readOnly.ID, "--role", "Reader", "-g", "fleet")

	create := func(name, endpoint, clientID, secret string) (int, string, string) {
		return ce.run(t, "migrate", "create", "-g", "fleet", "-n", name, "--source-hub", "hub-a", "--device-ids", "d1,d2",
			"--target-dps", str(dpsB, "id"), "--target-ferry", endpoint, "--target-client-id", clientID,
			"--target-client-secret", secret, "--target-ca", caFile)
	}
	closed := "https://127.0.0.1:" + freePort(t)
	for _, c := range []struct {
		name, endpoint, clientID, secret, want string
	}{
		{"Unreachable", closed, sp.Name, secret, "unreachable"},
		{"WrongSecret", m.issuerURL(), sp.Name, "wrong", "refused to sign in"},
		{"NoRoles", m.issuerURL(), noRoles.Name, noRolesSecret, "403"},
		{"PlainHTTP", "http://127.0.0.1:1", sp.Name, secret, "https://"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := create("bad", c.endpoint, c.clientID, c.secret)
			if code != 1 || !strings.Contains(errs, c.want) || strings.Contains(errs, c.secret) && c.secret != "wrong" {
				t.Errorf("exit %d: %s", code, errs)
			}
		})
	}

	type report struct {
		OK                 bool
		EnrollmentsCreated []string
		Problems           []struct{ Check, DeviceID, Reason string }
	}
	preflight := func(t *testing.T, name string) report {
		t.Helper()
		var r report
		ce.ok(t, &r, "migrate", "preflight", "-g", "fleet", "-n", name)
		return r
	}
	// problems returns the distinct problems about the target: no
	// device is connected or announces a model in this test.
	problems := func(r report) []string {
		var out []string
		for _, p := range r.Problems {
			if p.Check != "online" && p.Check != "model" && !slices.Contains(out, p.Check+": "+p.Reason) {
				out = append(out, p.Check+": "+p.Reason)
			}
		}
		return out
	}

	if code, _, errs := create("move", m.issuerURL(), sp.Name, secret); code != 0 {
		t.Fatalf("create: exit %d: %s", code, errs)
	}
	t.Run("CreatesTheGroup", func(t *testing.T) {
		r := preflight(t, "move")
		if got := problems(r); len(got) != 0 || len(r.EnrollmentsCreated) != 1 {
			t.Fatalf("preflight: %+v", r)
		}
		g, err := m.Store.GetEnrollmentGroup(ctx, svcB.ID, "fleet")
		if err != nil || g.Attestation.PrimaryKey != groupKey || g.Status != ferry.EnrollmentEnabled {
			t.Fatalf("target group: %+v, %v", g, err)
		}
		if r := preflight(t, "move"); len(problems(r)) != 0 || len(r.EnrollmentsCreated) != 0 {
			t.Errorf("second preflight: %+v", r)
		}
	})
	setGroup := func(t *testing.T, fn func(g *ferry.EnrollmentGroup)) {
		t.Helper()
		g, err := m.Store.GetEnrollmentGroup(ctx, svcB.ID, "fleet")
		must(t, err)
		fn(g)
		must(t, m.Store.PutEnrollmentGroup(ctx, g, g.ETag))
	}
	for _, c := range []struct {
		name string
		set  func(g *ferry.EnrollmentGroup)
		want string
	}{
		{"GroupDisabled", func(g *ferry.EnrollmentGroup) { g.Status = ferry.EnrollmentDisabled }, "enrollment: the target enrollment group fleet is disabled"},
		{"OtherKeys", func(g *ferry.EnrollmentGroup) {
			g.Status, g.Attestation.PrimaryKey, g.Attestation.SecondaryKey = ferry.EnrollmentEnabled, ferry.NewKey(64), ferry.NewKey(64)
		}, "other keys than the source group"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setGroup(t, c.set)
			r := preflight(t, "move")
			got := problems(r)
			if r.OK || len(got) != 1 || !strings.Contains(got[0], c.want) {
				t.Errorf("preflight: %q", got)
			}
		})
	}
	t.Run("Forbidden", func(t *testing.T) {
		// Reader sees the service but may not read its enrollments.
		if code, _, errs := create("read-only", m.issuerURL(), readOnly.Name, readOnlySecret); code != 0 {
			t.Fatalf("create: exit %d: %s", code, errs)
		}
		// Nor the hubs' statistics, so the capacity is unknown too.
		got := problems(preflight(t, "read-only"))
		if len(got) != 2 || !strings.Contains(got[0], "statistics/read") || !strings.Contains(got[1], "enrollments/read") {
			t.Errorf("preflight: %q", got)
		}
		for _, p := range got {
			if !strings.Contains(p, "target Ferry") || !strings.Contains(p, "403") {
				t.Errorf("preflight: %q", p)
			}
		}
	})
	t.Run("Unauthorized", func(t *testing.T) {
		must(t, m.Identity.SetDisabled(ctx, sp.ID, true))
		defer func() { must(t, m.Identity.SetDisabled(ctx, sp.ID, false)) }()
		got := problems(preflight(t, "move"))
		if len(got) != 1 || !strings.HasPrefix(got[0], "remote: ") || !strings.Contains(got[0], "sign in") {
			t.Errorf("preflight: %q", got)
		}
	})
	t.Run("ConnectionsFull", func(t *testing.T) {
		// The target is this same server: a device connected here takes
		// one of its two connections.
		setGroup(t, func(g *ferry.EnrollmentGroup) {
			g.Status, g.Attestation.PrimaryKey, g.Attestation.SecondaryKey = ferry.EnrollmentEnabled, groupKey, ferry.NewKey(64)
		})
		c := connectDevice(t, m, "127.0.0.1", "d1", keys["d1"], make(chan mqtt.Message, 1))
		got := problems(preflight(t, "move"))
		want := "capacity: the target Ferry accepts 1 more device connections (limit 2, 1 open); this migration moves 2"
		if len(got) != 1 || got[0] != want {
			t.Errorf("preflight: %q, want %q", got, want)
		}
		c.Disconnect(100)
		waitFor(t, "the device's connection closed", func() bool { return m.devices.gw.Capacity().Open == 0 })
		if got := problems(preflight(t, "move")); len(got) != 0 {
			t.Errorf("preflight once the device left: %q", got)
		}
	})
	t.Run("SecretNeverShown", func(t *testing.T) {
		out := ce.ok(t, nil, "migrate", "show", "-g", "fleet", "-n", "move")
		if strings.Contains(out, secret) || !strings.Contains(out, sp.Name) {
			t.Errorf("show: %s", out)
		}
		out = ce.ok(t, nil, "migrate", "list", "-g", "fleet")
		if strings.Contains(out, secret) {
			t.Errorf("list: %s", out)
		}
	})
}

// twoFerries is a source Ferry A with hub-a, dps-a, its enrollment group
// and a hub device group "movers", and a target Ferry B with hub-b, dps-b
// and a service principal with the roles a migration needs there. Devices
// run at A, trusting both CAs, and A's CLI has B's client secret in its
// environment.
type twoFerries struct {
	a, b     *ferryProcess
	stA, stB ferry.Store
	sp       *ferry.Principal
	secret   string
	dpsB     map[string]any
	groupKey string
	hubA     *ferry.Hub
	devs     []*cliDevice
	create   func(name string, extra ...string) (int, string, string)
}

func setupTwoFerries(t *testing.T, n int) *twoFerries {
	t.Helper()
	ctx := context.Background()
	mqttPort := freePortOnBoth(t, "127.0.0.1", "127.0.0.2")
	a := startFerryProcess(t, "127.0.0.1", mqttPort)
	b := startFerryProcess(t, "127.0.0.2", mqttPort)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server A log (tail):\n%s", a.logs())
			t.Logf("server B log (tail):\n%s", b.logs())
		}
	})

	// A: the source hub, its provisioning service and enrollment group.
	a.ce.ok(t, nil, "group", "create", "-n", "fleet")
	a.ce.ok(t, nil, "hub", "create", "-n", "hub-a", "-g", "fleet", "--host-name", "127.0.0.1")
	var dpsA map[string]any
	a.ce.ok(t, &dpsA, "dps", "create", "-n", "dps-a", "-g", "fleet", "--link-hub", "hub-a")
	groupKey := ferry.NewKey(64)
	a.ce.ok(t, nil, "dps", "enrollment-group", "create", "--dps-name", "dps-a", "--enrollment-id", "fleet", "--iot-hubs", "127.0.0.1", "--primary-key", groupKey)
	stA, err := store.Open(ctx, store.Config{URL: filepath.Join(a.data, "ferry.db")})
	must(t, err)
	t.Cleanup(func() { stA.Close() })
	now := time.Now()
	must(t, stA.PutDeviceTemplate(ctx, &ferry.DeviceTemplate{ID: migrateModel, DisplayName: "Mover",
		Model:         json.RawMessage(`{"@id":"` + migrateModel + `","@type":"Interface","contents":[{"@type":"Component","name":"migration","schema":"dtmi:azureiot:DeviceMigration;1"}]}`),
		HasDeviceMove: true, MigrationComponent: "migration", CreatedAt: now}))
	hubA, err := stA.GetHubByName(ctx, "hub-a")
	must(t, err)
	must(t, stA.CreateHubDeviceGroup(ctx, &ferry.HubDeviceGroup{ID: ferry.NewUUID(), HubID: hubA.ID, Name: "movers",
		Query: "$template = '" + migrateModel + "'", CreatedAt: now}))

	// B: the target hub and provisioning service, no enrollment group
	// yet, and a service principal with the roles a migration needs.
	b.ce.ok(t, nil, "group", "create", "-n", "fleet")
	b.ce.ok(t, nil, "hub", "create", "-n", "hub-b", "-g", "fleet", "--host-name", "127.0.0.2")
	var dpsB map[string]any
	b.ce.ok(t, &dpsB, "dps", "create", "-n", "dps-b", "-g", "fleet", "--link-hub", "hub-b")
	stB, err := store.Open(ctx, store.Config{URL: filepath.Join(b.data, "ferry.db")})
	must(t, err)
	t.Cleanup(func() { stB.Close() })
	ids, err := identity.New(identity.Config{Store: stB, Issuer: b.httpsURL})
	must(t, err)
	sp, secret, err := ids.CreateServicePrincipal(ctx, "migration from A")
	must(t, err)
	for _, role := range []string{"Reader", "IoT Hub Data Contributor", "Device Provisioning Service Data Contributor"} {
		b.ce.ok(t, nil, "role", "assignment", "create", "--assignee", sp.ID, "--role", role, "-g", "fleet")
	}

	devs := startPoolDevices(t, caPool(t, a.caFile, b.caFile), "remote", mqttPort, str(dpsA, "properties.idScope"), groupKey, n)

	create := func(name string, extra ...string) (int, string, string) {
		args := append([]string{"migrate", "create", "-g", "fleet", "-n", name, "--source-hub", "hub-a", "--device-group", "movers",
			"--target-dps", str(dpsB, "id"), "--target-ferry", b.httpsURL, "--target-client-id", sp.Name, "--target-ca", b.caFile,
			"--provisioning-host", "127.0.0.2"}, extra...)
		return a.ce.run(t, args...)
	}
	return &twoFerries{a: a, b: b, stA: stA, stB: stB, sp: sp, secret: secret, dpsB: dpsB, groupKey: groupKey, hubA: hubA, devs: devs, create: create}
}

// TestMigrationAcrossFerryProcessesFailsBack starts a migration to B although
// preflight says B's enrollment group is disabled: B refuses the devices,
// which stay at A; the first wave crosses its error threshold and is
// failed back, the second never starts, and the migration fails with every
// device verified at A, enabled there, and no telemetry lost.
func TestMigrationAcrossFerryProcessesFailsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	const n = 10
	f := setupTwoFerries(t, n)
	f.b.ce.ok(t, nil, "dps", "enrollment-group", "create", "--dps-name", "dps-b", "--enrollment-id", "fleet", "--iot-hubs", "127.0.0.2",
		"--primary-key", f.groupKey, "--provisioning-status", "disabled")
	f.a.ce.getenv = envFrom(map[string]string{"FERRY_CONFIG_DIR": f.a.ce.getenv("FERRY_CONFIG_DIR"), "FERRY_PASSWORD": "correct horse battery",
		"FERRY_TARGET_CLIENT_SECRET": f.secret})
	if code, _, errs := f.create("refused", "--waves", "50,50", "--device-timeout", "15s", "--error-threshold", "20", "--on-error", "failback"); code != 0 {
		t.Fatalf("migrate create: exit %d: %s", code, errs)
	}
	var pre struct {
		OK       bool
		Problems []struct{ Check, Reason string }
	}
	f.a.ce.ok(t, &pre, "migrate", "preflight", "-g", "fleet", "-n", "refused")
	if pre.OK || len(pre.Problems) != n || !strings.Contains(pre.Problems[0].Reason, "fleet is disabled") {
		t.Fatalf("preflight: %+v", pre)
	}
	f.a.ce.ok(t, nil, "migrate", "start", "-g", "fleet", "-n", "refused")
	var st migrationStatus
	waitWithin(t, 90*time.Second, "the migration to end", func() bool {
		st = f.a.ce.migrationStatus(t, "fleet", "refused")
		return st.State != "Running" && st.State != "Created"
	})
	if st.State != "Failed" || len(st.Waves) != 2 || st.Waves[0].State != "failed-back" || st.Waves[0].Counts["failed-back"] != n/2 ||
		st.Waves[1].State != "pending" {
		t.Fatalf("migration: %+v", st)
	}
	sent := stopDevices(t, f.devs)
	for _, d := range f.devs {
		if h := d.c.Hub(); !strings.HasPrefix(h, "127.0.0.1") {
			t.Errorf("%s is on %s", d.id, h)
		}
	}
	f.a.kill(t, syscall.SIGTERM)
	f.b.kill(t, syscall.SIGTERM)
	ctx := context.Background()
	for _, d := range f.devs {
		if x, err := f.stA.GetDeviceIdentity(ctx, f.hubA.ID, d.id); err != nil || x.Status != ferry.DeviceEnabled {
			t.Errorf("%s at A: %+v, %v", d.id, x, err)
		}
	}
	checkExports(t, f.devs, sent, f.a.data, f.b.data)
}

// checkExports fails for every acknowledged sequence number of a device
// that none of the servers' export files holds.
func checkExports(t *testing.T, devs []*cliDevice, sent map[string]int64, dataDirs ...string) {
	t.Helper()
	seen := map[string]map[int64]bool{}
	for _, dir := range dataDirs {
		recs, err := export.ReadAll(filepath.Join(dir, "export"))
		must(t, err)
		for _, r := range recs {
			var body struct{ Seq *int64 }
			if r.MessageSource != "telemetry" || json.Unmarshal(r.Telemetry, &body) != nil || body.Seq == nil {
				continue
			}
			if seen[r.DeviceID] == nil {
				seen[r.DeviceID] = map[int64]bool{}
			}
			seen[r.DeviceID][*body.Seq] = true
		}
	}
	for _, d := range devs {
		var missing []int64
		for i := range sent[d.id] {
			if !seen[d.id][i] {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: %d of %d acknowledged sequence numbers missing from the exports, first %v",
				d.id, len(missing), sent[d.id], missing[:min(10, len(missing))])
		}
	}
}
