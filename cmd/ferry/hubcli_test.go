package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/ferry-iot/ferry/client"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

// syncBuffer is a bytes.Buffer safe for a command running in a goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cliEnv is a logged-in CLI against a running server.
type cliEnv struct {
	m      *Main
	getenv func(string) string
}

// loginCLI starts the server with MQTT and logs the CLI in as the
// administrator, with the profile in a temporary config directory.
func loginCLI(t *testing.T, extra ...string) *cliEnv {
	t.Helper()
	m, _ := startServer(t, append([]string{"--mqtt", "127.0.0.1:0"}, extra...)...)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, m.CA.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	ce := &cliEnv{m: m, getenv: envFrom(map[string]string{"FERRY_CONFIG_DIR": t.TempDir(), "FERRY_PASSWORD": "correct horse battery"})}
	if code, _, errs := ce.run(t, "login", "--url", m.issuerURL(), "--username", "admin", "--ca-file", caFile); code != 0 {
		t.Fatalf("login: exit %d: %s", code, errs)
	}
	return ce
}

func (ce *cliEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, ce.getenv)
	return code, out.String(), errb.String()
}

// ok runs a command that must succeed and decodes its JSON output into v
// (when v is not nil).
func (ce *cliEnv) ok(t *testing.T, v any, args ...string) string {
	t.Helper()
	code, out, errs := ce.run(t, args...)
	if code != 0 {
		t.Fatalf("ferry %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("ferry %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return out
}

func (ce *cliEnv) client(t *testing.T) *client.Client {
	t.Helper()
	path, _ := client.ProfilePath(ce.getenv)
	p, err := client.LoadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createResourceGroup makes the resource group the hub and DPS live in,
// with `ferry group`, and checks that group show and list see it.
func (ce *cliEnv) createResourceGroup(t *testing.T, name string) {
	t.Helper()
	var g map[string]any
	ce.ok(t, &g, "group", "create", "-n", name)
	if g["name"] != name {
		t.Fatalf("group create: %v", g)
	}
	ce.ok(t, &g, "group", "show", "-n", name)
	var all []map[string]any
	ce.ok(t, &all, "group", "list")
	if len(all) == 0 {
		t.Fatal("group list is empty")
	}
	if code, _, _ := ce.run(t, "group", "show"); code != 2 {
		t.Errorf("group show without --name: exit %d, want 2", code)
	}
	if code, _, errs := ce.run(t, "group", "show", "-n", "nope"); code != 1 || !strings.Contains(errs, "ResourceGroupNotFound") {
		t.Errorf("group show of a missing group: exit %d: %s", code, errs)
	}
}

// connectDevice connects a device with its key over MQTT over TLS, as the
// Azure SDKs do, answers every direct method with {"rebooted":true} and
// passes cloud-to-device messages to c2d.
func connectDevice(t *testing.T, m *Main, host, id, key string, c2d chan<- mqtt.Message) mqtt.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.CACert())
	pw, err := sas.Sign(host+"/devices/"+id, key, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + strings.TrimPrefix(m.mqttLns[0], "mqtts://")).SetClientID(id).
		SetUsername(host + "/" + id + "/?api-version=2021-04-12").SetPassword(pw).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: host}).SetProtocolVersion(4).
		SetAutoReconnect(false).SetCleanSession(true)
	c := mqtt.NewClient(opts)
	if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	wait := func(tk mqtt.Token) {
		t.Helper()
		if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
			t.Fatalf("subscribe: %v", tk.Error())
		}
	}
	wait(c.Subscribe("$iothub/methods/POST/#", 0, func(c mqtt.Client, msg mqtt.Message) {
		rid := msg.Topic()[strings.Index(msg.Topic(), "$rid=")+5:]
		c.Publish("$iothub/methods/res/200/?$rid="+rid, 0, false, `{"rebooted":true}`)
	}))
	wait(c.Subscribe("devices/"+id+"/messages/devicebound/#", 1, func(_ mqtt.Client, msg mqtt.Message) { c2d <- msg }))
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeviceCLI drives the hub and DPS command trees against the real
// server, with a real device on MQTT, on both databases.
func TestDeviceCLI(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var extra []string
			if backend == "postgres" {
				extra = []string{"--db", storetest.NewPostgresSchema(t)}
			}
			testDeviceCLI(t, loginCLI(t, extra...))
		})
	}
}

func testDeviceCLI(t *testing.T, ce *cliEnv) {
	ce.createResourceGroup(t, "fleet")

	// Hub and DPS linked to it.
	var hub map[string]any
	ce.ok(t, &hub, "hub", "create", "-n", "hub-a", "-g", "fleet", "--host-name", "127.0.0.1")
	if str(hub, "properties.hostName") != "127.0.0.1" || str(hub, "name") != "hub-a" {
		t.Fatalf("hub create: %v", hub)
	}
	if out := ce.ok(t, nil, "hub", "list", "-o", "table"); !strings.Contains(out, "hub-a") || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("hub list table:\n%s", out)
	}
	var dps map[string]any
	ce.ok(t, &dps, "dps", "create", "-n", "dps-a", "-g", "fleet", "--link-hub", "hub-a")
	if !strings.HasPrefix(str(dps, "properties.idScope"), "0ne") || !strings.Contains(str(dps, "properties.iotHubs"), "127.0.0.1") {
		t.Fatalf("dps create: %v", dps)
	}
	if strings.Contains(str(dps, "properties.iotHubs"), ce.hubOwnerKey(t)) {
		t.Error("dps create shows the linked hub's key")
	}
	var shown map[string]any
	ce.ok(t, &shown, "dps", "show", "-n", "dps-a")
	if str(shown, "properties.idScope") != str(dps, "properties.idScope") {
		t.Errorf("dps show: %v", shown)
	}

	// Linked hubs: add a second hub, then take it away again; the first
	// stays linked with a working key.
	ce.ok(t, nil, "hub", "create", "-n", "hub-b", "-g", "fleet", "--host-name", "127.0.0.5")
	ce.ok(t, nil, "dps", "linked-hub", "create", "--dps-name", "dps-a", "--hub-name", "hub-b", "--allocation-weight", "3")
	var links []map[string]any
	ce.ok(t, &links, "dps", "linked-hub", "list", "--dps-name", "dps-a")
	if len(links) != 2 || str(links[1], "name") != "127.0.0.5" || str(links[1], "allocationWeight") != "3" {
		t.Errorf("linked hubs after create: %v", links)
	}
	ce.ok(t, nil, "dps", "linked-hub", "delete", "--dps-name", "dps-a", "--linked-hub", "hub-b")
	links = nil
	ce.ok(t, &links, "dps", "linked-hub", "list", "--dps-name", "dps-a")
	if len(links) != 1 || str(links[0], "name") != "127.0.0.1" {
		t.Errorf("linked hubs after delete: %v", links)
	}
	ce.ok(t, nil, "hub", "delete", "-n", "hub-b", "-g", "fleet")
	var hubCS map[string]string
	ce.ok(t, &hubCS, "hub", "connection-string", "show", "-n", "hub-a")
	if want := "HostName=127.0.0.1;SharedAccessKeyName=iothubowner;SharedAccessKey=" + ce.hubOwnerKey(t); hubCS["connectionString"] != want {
		t.Errorf("hub connection string %q, want %q", hubCS["connectionString"], want)
	}

	// Enrollment group and individual enrollment: keys in show, never in lists.
	var grp map[string]any
	ce.ok(t, &grp, "dps", "enrollment-group", "create", "--dps-name", "dps-a", "--enrollment-id", "grp1", "--iot-hubs", "127.0.0.1")
	gkey := str(grp, "attestation.symmetricKey.primaryKey")
	if gkey == "" || str(grp, "attestation.type") != "symmetricKey" {
		t.Fatalf("enrollment-group create: %v", grp)
	}
	var derived string
	ce.ok(t, &derived, "dps", "enrollment-group", "compute-device-key", "--dps-name", "dps-a", "--enrollment-id", "grp1", "--registration-id", "dev-1")
	if want, _ := sas.DeriveDeviceKey(gkey, "dev-1"); derived != want {
		t.Errorf("compute-device-key %q, want %q", derived, want)
	}
	var enr map[string]any
	ce.ok(t, &enr, "dps", "enrollment", "create", "--dps-name", "dps-a", "--enrollment-id", "dev-2", "--device-id", "dev-2")
	ekey := str(enr, "attestation.symmetricKey.primaryKey")
	if ekey == "" {
		t.Fatalf("enrollment create: %v", enr)
	}
	for _, c := range []struct{ kind, id, key string }{{"enrollment-group", "grp1", gkey}, {"enrollment", "dev-2", ekey}} {
		out := ce.ok(t, nil, "dps", c.kind, "list", "--dps-name", "dps-a")
		if !strings.Contains(out, c.id) || strings.Contains(out, c.key) {
			t.Errorf("%s list lacks %s or shows its key:\n%s", c.kind, c.id, out)
		}
		if out := ce.ok(t, nil, "dps", c.kind, "show", "--dps-name", "dps-a", "--enrollment-id", c.id); !strings.Contains(out, c.key) {
			t.Errorf("%s show lacks the key:\n%s", c.kind, out)
		}
	}

	if out := ce.ok(t, nil, "dps", "enrollment-group", "registration", "list", "--dps-name", "dps-a", "--enrollment-id", "grp1"); strings.TrimSpace(out) != "[]" {
		t.Errorf("registrations before any device provisioned: %s", out)
	}
	if code, _, errs := ce.run(t, "dps", "registration", "show", "--dps-name", "dps-a", "--registration-id", "dev-1"); code != 1 || !strings.Contains(errs, "404202") {
		t.Errorf("registration show of an unknown device: exit %d: %s", code, errs)
	}

	// A device provisions through the group with the key the CLI derived,
	// and lands on the linked hub.
	state := provisionDevice(t, ce.m, str(dps, "properties.idScope"), "dev-1", derived)
	if state["assignedHub"] != "127.0.0.1" || state["deviceId"] != "dev-1" {
		t.Errorf("registration state %v", state)
	}
	if out := ce.ok(t, nil, "dps", "enrollment-group", "registration", "list", "--dps-name", "dps-a", "--enrollment-id", "grp1", "-o", "table"); !strings.Contains(out, "dev-1") || !strings.Contains(out, "assigned") {
		t.Errorf("group registrations:\n%s", out)
	}
	var reg map[string]any
	ce.ok(t, &reg, "dps", "registration", "show", "--dps-name", "dps-a", "--registration-id", "dev-1")
	if str(reg, "status") != "assigned" || str(reg, "assignedHub") != "127.0.0.1" {
		t.Errorf("registration show: %v", reg)
	}
	ce.ok(t, nil, "dps", "registration", "delete", "--dps-name", "dps-a", "--registration-id", "dev-1")

	// Device identity, twin.
	var dev map[string]any
	ce.ok(t, &dev, "hub", "device-identity", "create", "-n", "hub-a", "-d", "sensor-1")
	key := str(dev, "authentication.symmetricKey.primaryKey")
	if key == "" {
		t.Fatalf("device-identity create: %v", dev)
	}
	if out := ce.ok(t, nil, "hub", "device-identity", "list", "-n", "hub-a"); !strings.Contains(out, "sensor-1") || strings.Contains(out, key) {
		t.Errorf("device-identity list lacks the device or shows its key:\n%s", out)
	}
	if out := ce.ok(t, nil, "hub", "device-identity", "show", "-n", "hub-a", "-d", "sensor-1"); !strings.Contains(out, key) {
		t.Errorf("device-identity show lacks the key:\n%s", out)
	}
	var devCS map[string]string
	ce.ok(t, &devCS, "hub", "device-identity", "connection-string", "show", "-n", "hub-a", "-d", "sensor-1")
	if want := "HostName=127.0.0.1;DeviceId=sensor-1;SharedAccessKey=" + key; devCS["connectionString"] != want {
		t.Errorf("device connection string %q, want %q", devCS["connectionString"], want)
	}
	var twin map[string]any
	ce.ok(t, &twin, "hub", "device-twin", "update", "-n", "hub-a", "-d", "sensor-1", "--desired", `{"interval":5}`, "--tags", `{"site":"north"}`)
	ce.ok(t, &twin, "hub", "device-twin", "show", "-n", "hub-a", "-d", "sensor-1")
	if str(twin, "deviceId") != "sensor-1" || str(twin, "properties.desired.interval") != "5" || str(twin, "tags.site") != "north" {
		t.Errorf("device-twin show: %v", twin)
	}

	// A real device: methods, C2D, telemetry through monitor-events.
	c2d := make(chan mqtt.Message, 4)
	device := connectDevice(t, ce.m, "127.0.0.1", "sensor-1", key, c2d)

	var res map[string]any
	ce.ok(t, &res, "hub", "invoke-device-method", "-n", "hub-a", "-d", "sensor-1", "--method-name", "reboot", "--method-payload", `{"delay":0}`, "--timeout", "10")
	if str(res, "status") != "200" || str(res, "payload.rebooted") != "true" {
		t.Errorf("invoke-device-method: %v", res)
	}

	ce.ok(t, nil, "hub", "c2d-message", "send", "-n", "hub-a", "-d", "sensor-1", "--data", "hello", "--props", "a=b;c=d")
	select {
	case msg := <-c2d:
		if string(msg.Payload()) != "hello" || !strings.Contains(msg.Topic(), "a=b") || !strings.Contains(msg.Topic(), "c=d") {
			t.Errorf("C2D message %q on %q", msg.Payload(), msg.Topic())
		}
	case <-time.After(10 * time.Second):
		t.Error("the device received no C2D message")
	}

	ctx, stop := context.WithCancel(context.Background())
	var monOut, monErr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"hub", "monitor-events", "-n", "hub-a", "-d", "sensor-1", "--timeout", "60"}, strings.NewReader(""), &monOut, &monErr, ce.getenv)
	}()
	waitFor(t, "the event monitor to start", func() bool { return strings.Contains(monErr.String(), "Starting event monitor") })
	tk := device.Publish("devices/sensor-1/messages/events/unit=C", 1, false, `{"temperature":21.5}`)
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("publish: %v", tk.Error())
	}
	waitFor(t, "telemetry in monitor-events", func() bool { return strings.Contains(monOut.String(), "21.5") })
	stop()
	if code := <-done; code != 0 {
		t.Errorf("monitor-events: exit %d: %s", code, monErr.String())
	}
	var ev struct {
		Event struct {
			Origin     string          `json:"origin"`
			Payload    json.RawMessage `json:"payload"`
			Properties struct {
				Application map[string]string `json:"application"`
			} `json:"properties"`
		} `json:"event"`
	}
	line, _, _ := strings.Cut(monOut.String(), "\n")
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Event.Origin != "sensor-1" ||
		string(ev.Event.Payload) != `{"temperature":21.5}` || ev.Event.Properties.Application["unit"] != "C" {
		t.Errorf("monitor-events printed %q (%v)", line, err)
	}

	t.Run("ErrUnknownHub", func(t *testing.T) {
		code, _, errs := ce.run(t, "hub", "show", "-n", "nope", "-g", "fleet")
		if code != 1 || !strings.Contains(errs, "ResourceNotFound") || !strings.Contains(errs, "nope") || strings.Count(errs, "\n") != 1 {
			t.Errorf("exit %d: %q", code, errs)
		}
	})
	t.Run("ErrUnknownDevice", func(t *testing.T) {
		code, _, errs := ce.run(t, "hub", "device-identity", "show", "-n", "hub-a", "-d", "ghost")
		if code != 1 || !strings.Contains(errs, "DeviceNotFound") || !strings.Contains(errs, "ghost") {
			t.Errorf("exit %d: %q", code, errs)
		}
	})
	t.Run("ErrUnknownEnrollment", func(t *testing.T) {
		code, _, errs := ce.run(t, "dps", "enrollment", "show", "--dps-name", "dps-a", "--enrollment-id", "ghost")
		if code != 1 || !strings.Contains(errs, "ghost") || !strings.Contains(errs, "404201") {
			t.Errorf("exit %d: %q", code, errs)
		}
	})
	t.Run("ErrMonitorUnknownHub", func(t *testing.T) {
		code, _, errs := ce.run(t, "hub", "monitor-events", "-n", "nope", "--timeout", "1")
		if code != 1 || !strings.Contains(errs, "nope") || !strings.Contains(errs, "404") {
			t.Errorf("exit %d: %q", code, errs)
		}
	})
	for _, c := range []struct {
		name string
		args []string
	}{
		{"ErrMissingDeviceID", []string{"hub", "device-identity", "show", "-n", "hub-a"}},
		{"ErrMissingHubName", []string{"hub", "invoke-device-method", "-d", "sensor-1", "--method-name", "x"}},
		{"ErrMissingGroup", []string{"hub", "create", "-n", "hub-b"}},
		{"ErrBadOutput", []string{"hub", "list", "-o", "yaml"}},
		{"ErrBadPayload", []string{"hub", "invoke-device-method", "-n", "hub-a", "-d", "sensor-1", "--method-name", "x", "--method-payload", "{"}},
		{"ErrBadAuthMethod", []string{"hub", "device-identity", "create", "-n", "hub-a", "-d", "x", "--auth-method", "password"}},
		{"ErrUnknownFlag", []string{"dps", "list", "--colour"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, _, errs := ce.run(t, c.args...); code != 2 {
				t.Errorf("exit %d, want 2: %s", code, errs)
			}
		})
	}
	t.Run("ErrNotLoggedIn", func(t *testing.T) {
		var errb bytes.Buffer
		code := run(context.Background(), []string{"hub", "list"}, strings.NewReader(""), &bytes.Buffer{}, &errb,
			envFrom(map[string]string{"FERRY_CONFIG_DIR": t.TempDir()}))
		if code != 1 || !strings.Contains(errb.String(), "ferry login") {
			t.Errorf("exit %d: %q", code, errb.String())
		}
	})

	var upd map[string]any
	ce.ok(t, &upd, "hub", "device-identity", "update", "-n", "hub-a", "-d", "sensor-1", "--status", "disabled", "--status-reason", "retired")
	if str(upd, "status") != "disabled" || str(upd, "statusReason") != "retired" || str(upd, "authentication.symmetricKey.primaryKey") != key {
		t.Errorf("device-identity update: %v", upd)
	}

	// Delete everything again.
	ce.ok(t, nil, "hub", "device-identity", "delete", "-n", "hub-a", "-d", "sensor-1")
	ce.ok(t, nil, "dps", "enrollment-group", "delete", "--dps-name", "dps-a", "--enrollment-id", "grp1")
	ce.ok(t, nil, "dps", "enrollment", "delete", "--dps-name", "dps-a", "--enrollment-id", "dev-2")
	if out := ce.ok(t, nil, "dps", "enrollment-group", "list", "--dps-name", "dps-a"); strings.TrimSpace(out) != "[]" {
		t.Errorf("groups left: %s", out)
	}
	ce.ok(t, nil, "dps", "delete", "-n", "dps-a", "-g", "fleet")
	ce.ok(t, nil, "hub", "delete", "-n", "hub-a", "-g", "fleet")
	for _, tree := range []string{"hub", "dps"} {
		if out := ce.ok(t, nil, tree, "list"); strings.TrimSpace(out) != "[]" {
			t.Errorf("%s list after delete: %s", tree, out)
		}
	}
}

// hubOwnerKey reads hub-a's iothubowner key with listkeys.
func (ce *cliEnv) hubOwnerKey(t *testing.T) string {
	t.Helper()
	c := ce.client(t)
	var hubs struct {
		Value []struct{ ID string } `json:"value"`
	}
	var subs struct {
		Value []struct{ SubscriptionID string } `json:"value"`
	}
	ctx := context.Background()
	if _, err := c.Do(ctx, http.MethodGet, "/subscriptions?api-version=2022-12-01", nil, &subs); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/subscriptions/%s/providers/Microsoft.Devices/IotHubs?api-version=2023-06-30", subs.Value[0].SubscriptionID), nil, &hubs); err != nil || len(hubs.Value) == 0 {
		t.Fatalf("list hubs: %v", err)
	}
	var keys struct {
		Value []struct{ KeyName, PrimaryKey string } `json:"value"`
	}
	if _, err := c.Do(ctx, http.MethodPost, hubs.Value[0].ID+"/listkeys?api-version=2023-06-30", nil, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.Value {
		if k.KeyName == "iothubowner" {
			return k.PrimaryKey
		}
	}
	t.Fatal("no iothubowner key")
	return ""
}

// provisionDevice runs the DPS register flow over MQTT over TLS with a
// symmetric key and returns the final registrationState.
func provisionDevice(t *testing.T, m *Main, idScope, regID, key string) map[string]any {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.CACert())
	res := idScope + "/registrations/" + regID
	pw, err := sas.Sign(res, key, "registration", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + strings.TrimPrefix(m.mqttLns[0], "mqtts://")).SetClientID(regID).
		SetUsername(res + "/api-version=2019-03-31").SetPassword(pw).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}).SetProtocolVersion(4).
		SetAutoReconnect(false).SetCleanSession(true)
	c := mqtt.NewClient(opts)
	if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("DPS connect: %v", tk.Error())
	}
	defer c.Disconnect(100)
	resp := make(chan mqtt.Message, 4)
	if tk := c.Subscribe("$dps/registrations/res/#", 1, func(_ mqtt.Client, msg mqtt.Message) { resp <- msg }); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("DPS subscribe: %v", tk.Error())
	}
	call := func(topic, body string) (string, map[string]any) {
		t.Helper()
		c.Publish(topic, 1, false, body).WaitTimeout(10 * time.Second)
		select {
		case msg := <-resp:
			var v map[string]any
			_ = json.Unmarshal(msg.Payload(), &v)
			return msg.Topic(), v
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer to %s", topic)
			return "", nil
		}
	}
	_, v := call("$dps/registrations/PUT/iotdps-register/?$rid=1", `{"registrationId":"`+regID+`"}`)
	for i := 2; v["status"] == "assigning" && i < 50; i++ {
		op, _ := v["operationId"].(string)
		_, v = call(fmt.Sprintf("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=%d&operationId=%s", i, op), " ")
		if v["status"] == "assigning" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if v["status"] != "assigned" {
		t.Fatalf("provisioning ended %v", v)
	}
	state, _ := v["registrationState"].(map[string]any)
	return state
}
