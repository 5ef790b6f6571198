package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store"
	"github.com/ferry-iot/ferry/store/storetest"
)

// crashServeEnv, when set, makes TestCrashServerProcess run `ferry` with
// these unit-separator-separated arguments: the crash test re-executes its own binary
// as the server so that it can kill it.
const crashServeEnv = "FERRY_CRASH_TEST_ARGS"

// TestCrashServerProcess is the server child of TestMigrationSurvivesSIGKILL;
// without crashServeEnv it does nothing.
func TestCrashServerProcess(t *testing.T) {
	args := os.Getenv(crashServeEnv)
	if args == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, strings.Split(args, "\x1f"), strings.NewReader(""), os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// crashServer is `ferry serve` in a child process, restartable on the same
// data directory and ports.
type crashServer struct {
	args    []string
	log     *os.File
	httpURL string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	return freePortOn(t, "127.0.0.1")
}

func (s *crashServer) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashServeEnv+"="+strings.Join(s.args, "\x1f"), "FERRY_ADMIN_PASSWORD=correct horse battery")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(40 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("server exited at start: %v\n%s", cmd.ProcessState, s.logs())
		default:
		}
		if resp, err := hc.Get(s.httpURL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready\n%s", s.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the server with sig and waits for the process to go.
func (s *crashServer) kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Logf("signal %v: %v", sig, err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("server did not stop on %v", sig)
	}
	s.cmd = nil
}

func (s *crashServer) logs() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// TestMigrationSurvivesSIGKILL moves 30 devices sending telemetry from hub A
// (127.0.0.1) to hub B (localhost, the same listener) and kills the server
// with SIGKILL while the first wave is in flight. Restarted on the same data
// directory and ports, the server resumes the migration, which completes:
// every device verified at B, its identity disabled at A, and no telemetry
// sequence number that a device saw acknowledged missing from the export.
func TestMigrationSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var db string
			if backend == "postgres" {
				db = storetest.NewPostgresSchema(t)
			}
			testMigrationSurvivesSIGKILL(t, db)
		})
	}
}

func testMigrationSurvivesSIGKILL(t *testing.T, dbURL string) {
	const n = 30
	ctx := context.Background()
	data := t.TempDir()
	if dbURL == "" {
		dbURL = filepath.Join(data, "ferry.db")
	}
	httpPort, httpsPort, mqttPort := freePort(t), freePort(t), freePort(t)
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	srv := &crashServer{log: logf, httpURL: "http://127.0.0.1:" + httpPort,
		args: []string{"serve", "--data", data, "--db", dbURL, "--http", "127.0.0.1:" + httpPort, "--https", "127.0.0.1:" + httpsPort,
			"--mqtt", "127.0.0.1:" + mqttPort, "--hostname", "127.0.0.1", "--hostname", "localhost", "--log-level", "debug"}}
	srv.start(t)
	t.Cleanup(func() { srv.kill(t, syscall.SIGKILL) })
	defer func() {
		if t.Failed() {
			t.Logf("server log (tail):\n%s", srv.logs())
		}
	}()

	caFile := filepath.Join(data, "pki", pki.CACertFile)
	ce := &cliEnv{getenv: envFrom(map[string]string{"FERRY_CONFIG_DIR": t.TempDir(), "FERRY_PASSWORD": "correct horse battery"})}
	ce.ok(t, nil, "login", "--url", "https://127.0.0.1:"+httpsPort, "--username", "admin", "--ca-file", caFile)
	ce.ok(t, nil, "group", "create", "-n", "fleet")
	ce.ok(t, nil, "hub", "create", "-n", "hub-a", "-g", "fleet", "--host-name", "127.0.0.1")
	ce.ok(t, nil, "hub", "create", "-n", "hub-b", "-g", "fleet", "--host-name", "localhost")
	var dpsA map[string]any
	ce.ok(t, &dpsA, "dps", "create", "-n", "dps-a", "-g", "fleet", "--link-hub", "hub-a")
	ce.ok(t, nil, "dps", "create", "-n", "dps-b", "-g", "fleet", "--link-hub", "hub-b")
	groupKey := ferry.NewKey(64)
	ce.ok(t, nil, "dps", "enrollment-group", "create", "--dps-name", "dps-a", "--enrollment-id", "fleet", "--iot-hubs", "127.0.0.1", "--primary-key", groupKey)
	ce.ok(t, nil, "dps", "enrollment-group", "create", "--dps-name", "dps-b", "--enrollment-id", "fleet", "--iot-hubs", "localhost", "--primary-key", groupKey)

	// No CLI makes templates or hub device groups yet: put them in the
	// server's database from this process.
	st, err := store.Open(ctx, store.Config{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	must(t, st.PutDeviceTemplate(ctx, &ferry.DeviceTemplate{ID: migrateModel, DisplayName: "Mover",
		Model:         json.RawMessage(`{"@id":"` + migrateModel + `","@type":"Interface","contents":[{"@type":"Component","name":"migration","schema":"dtmi:azureiot:DeviceMigration;1"}]}`),
		HasDeviceMove: true, MigrationComponent: "migration", CreatedAt: now}))
	hubA, err := st.GetHubByName(ctx, "hub-a")
	must(t, err)
	must(t, st.CreateHubDeviceGroup(ctx, &ferry.HubDeviceGroup{ID: ferry.NewUUID(), HubID: hubA.ID, Name: "movers",
		Query: "$template = '" + migrateModel + "'", CreatedAt: now}))

	devs := startCrashDevices(t, caFile, mqttPort, str(dpsA, "properties.idScope"), groupKey, n)

	var created map[string]any
	ce.ok(t, &created, "migrate", "create", "-g", "fleet", "-n", "crash", "--source-hub", "hub-a", "--device-group", "movers",
		"--target-dps", "dps-b", "--waves", "50,50", "--command-rate", "4", "--device-timeout", "60s")
	if str(created, "properties.deviceCount") != strconv.Itoa(n) {
		t.Fatalf("migrate create: %v", created)
	}
	ce.ok(t, nil, "migrate", "start", "-g", "fleet", "-n", "crash")

	// Kill the server once the first devices are verified and before all
	// are: the first wave is in flight.
	var before migrationStatus
	waitWithin(t, 40*time.Second, "the first verified devices", func() bool {
		before = ce.migrationStatus(t, "fleet", "crash")
		if before.State != "Running" {
			t.Fatalf("migration is %s before the crash: %+v", before.State, before)
		}
		return before.Counts["verified"] >= 2
	})
	srv.kill(t, syscall.SIGKILL)
	t.Logf("killed the server at %+v", before.Counts)
	if before.Counts["verified"] == n {
		t.Fatal("every device was verified before the crash")
	}
	srv.start(t)

	var after migrationStatus
	waitWithin(t, 60*time.Second, "the migration to end", func() bool {
		after = ce.migrationStatus(t, "fleet", "crash")
		return after.State != "Running"
	})
	if after.State != "Completed" || after.Counts["verified"] != n {
		t.Fatalf("after the restart: %+v", after)
	}

	// Stop telemetry, wait for every message to be acknowledged, then stop
	// the server cleanly so that the export is complete on disk.
	sent := stopDevices(t, devs)
	var reconnects uint64
	for _, d := range devs {
		if h := d.c.Hub(); !strings.HasPrefix(h, "localhost") {
			t.Errorf("%s is on %s", d.id, h)
		}
		st := d.c.Stats()
		if st.Moves == 0 || sent[d.id] == 0 {
			t.Errorf("%s: %+v after %d messages", d.id, st, sent[d.id])
		}
		reconnects += st.Reconnects
	}
	t.Logf("devices reconnected %d times in all", reconnects)
	srv.kill(t, syscall.SIGTERM)

	hubB, err := st.GetHubByName(ctx, "hub-b")
	must(t, err)
	for _, d := range devs {
		if a, err := st.GetDeviceIdentity(ctx, hubA.ID, d.id); err != nil || a.Status != ferry.DeviceDisabled {
			t.Errorf("%s at A: %+v, %v", d.id, a, err)
		}
		if b, err := st.GetDeviceIdentity(ctx, hubB.ID, d.id); err != nil || b.Status != ferry.DeviceEnabled {
			t.Errorf("%s at B: %+v, %v", d.id, b, err)
		}
	}

	checkExports(t, devs, sent, data)
}

// waitWithin polls cond every 100 ms until it holds, failing after d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startCrashDevices provisions n devices at scope through the server's
// MQTT port and starts their telemetry. They reconnect with a short backoff,
// so they outlive the server's death.
func startCrashDevices(t *testing.T, caFile, port, scope, groupKey string, n int) []*cliDevice {
	t.Helper()
	return startPoolDevices(t, caPool(t, caFile), "crash", port, scope, groupKey, n)
}

// caPool returns a pool of the certificates in the PEM files.
func caPool(t *testing.T, files ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", f)
		}
	}
	return pool
}

// startPoolDevices provisions n devices named prefix-NN at 127.0.0.1:port,
// trusting pool, and starts their telemetry.
func startPoolDevices(t *testing.T, pool *x509.CertPool, prefix, port, scope, groupKey string, n int) []*cliDevice {
	t.Helper()
	p, _ := strconv.Atoi(port)
	tr := device.Transport{TLS: &tls.Config{RootCAs: pool}, Port: p, DialTimeout: 10 * time.Second}
	devs := make([]*cliDevice, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("%s-%02d", prefix, i)
			pc := device.ProvisionConfig{Host: "127.0.0.1:" + port, IDScope: scope, RegistrationID: id, GroupKey: groupKey,
				Payload: map[string]string{"modelId": migrateModel}, Transport: tr}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := device.ProvisionAndConnect(ctx, pc, device.Config{ModelID: migrateModel,
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
				seq := d.sent.Load()
				m := device.Message{Body: fmt.Appendf(nil, `{"seq":%d}`, seq), ContentType: "application/json", ContentEncoding: "utf-8",
					Properties: map[string]string{"seq": strconv.FormatInt(seq, 10)}}
				if d.c.Send(context.Background(), m) != nil {
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

// stopDevices stops telemetry, waits until every message is
// acknowledged and returns how many each device sent.
func stopDevices(t *testing.T, devs []*cliDevice) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := map[string]int64{}
	for _, d := range devs {
		close(d.stop)
		<-d.done
		if err := d.c.Flush(ctx); err != nil {
			t.Errorf("flush %s: %v", d.id, err)
		}
		if st := d.c.Stats(); st.Queued != 0 {
			t.Errorf("%s: %d messages not acknowledged", d.id, st.Queued)
		}
		sent[d.id] = d.sent.Load()
	}
	return sent
}
