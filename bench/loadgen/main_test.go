package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/provisioning"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"Connect", []string{"-n", "10", "--procs", "2", "connect"}, ""},
		{"TelemetryToMosquitto", []string{"--target", "mqtt", "--tls=false", "telemetry"}, ""},
		{"NoMode", []string{"-n", "10"}, "want one MODE"},
		{"UnknownMode", []string{"flood"}, "unknown mode"},
		{"UnknownTarget", []string{"--target", "amqp", "idle"}, "unknown --target"},
		{"UnknownCurve", []string{"--curve", "p521", "connect"}, "unknown --curve"},
		{"TooManyForOneProcess", []string{"-n", "19000", "idle"}, "use --procs"},
		{"DPSWithoutScope", []string{"--dps", "connect"}, "--dps needs --id-scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseFlags: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseFlags error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestAgainstDevicePlane runs the generator's device modes with 10 devices
// against an in-process device plane (hub, provisioning, MQTT gateway over
// TLS, durable export sink) and checks that every operation succeeded.
// It asserts counts, never rates.
func TestAgainstDevicePlane(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		addr, caFile := startPlane(t, s)
		for _, tt := range []struct {
			name string
			args []string
		}{
			{"Connect", []string{"--reconnect", "connect"}},
			{"ConnectP256", []string{"--curve", "p256", "--reconnect", "connect"}},
			{"Telemetry", []string{"--duration", "200ms", "telemetry"}},
			{"Idle", []string{"--hold", "10ms", "idle"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				args := append([]string{"--mqtt", addr, "--ca", caFile, "--server-name", "localhost", "-n", "10", "-c", "4"}, tt.args...)
				o, err := parseFlags(args, io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := run(context.Background(), o, &out); err != nil {
					t.Fatalf("run: %v", err)
				}
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				var r result
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
					t.Fatalf("result %q: %v", out.String(), err)
				}
				if r.Failed != 0 || r.OK < 10 {
					t.Fatalf("ok %d, failed %d (%v), want at least 10 and none failed", r.OK, r.Failed, r.Errors)
				}
				if r.Second != nil && (r.Second.Failed != 0 || r.Second.Resumed != 10) {
					t.Fatalf("reconnect: failed %d, resumed %d of 10", r.Second.Failed, r.Second.Resumed)
				}
			})
		}
	})
}

// startPlane serves hub "localhost" with devices dev-0..dev-9 (keys derived
// from the generator's default group key) on a TLS port, and returns the
// address and the CA file.
func startPlane(t *testing.T, s ferry.Store) (string, string) {
	t.Helper()
	ctx := context.Background()
	pkiDir := t.TempDir()
	auth, err := pki.LoadOrCreate(pkiDir, []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(pkiDir, "bundle.pem")
	if err := os.WriteFile(caFile, auth.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	bus := eventbus.New(eventbus.Options{})
	t.Cleanup(func() { bus.Close() })
	sink, err := export.Open(export.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	hubs, err := hub.New(hub.Config{Store: s, Bus: bus, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hubs.Close() })
	prov, err := provisioning.New(provisioning.Config{Store: s, Hubs: hubs, Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mqttgw.New(mqttgw.Config{Hubs: hubs, Provisioning: prov})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", auth.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"mqtt"}, ClientAuth: tls.RequestClientCert}))
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(ln)
	t.Cleanup(func() { gw.Close() })

	h := &ferry.Hub{ID: ferry.NewUUID(), Name: "loadgen-hub", HostName: "127.0.0.1", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	if err := s.CreateHub(ctx, h); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"connect"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		id := o.deviceID(i)
		key, err := o.deviceKey(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: h.ID, DeviceID: id, GenerationID: ferry.NewUUID(),
			Status: ferry.DeviceEnabled, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: key}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return net.JoinHostPort("127.0.0.1", port), caFile
}
