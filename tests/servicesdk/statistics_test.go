package servicesdk_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestStatisticsSDK reads a hub's registry and service statistics with
// azure-iothub (service/statistics.js): three identities, one disabled,
// one device connected over MQTT; each call needs its own right.
func TestStatisticsSDK(t *testing.T) {
	dir := sdkDir(t)
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		hubLn := listen443(t)
		hubHost := host(hubLn)
		hs, gw, mln := startHubs(t, s)

		h := &ferry.Hub{ID: ferry.NewUUID(), Name: "stats-hub", HostName: hubHost, Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
		if err := s.CreateHub(ctx, h); err != nil {
			t.Fatal(err)
		}
		key := ferry.NewKey(32)
		for i, status := range []ferry.DeviceStatus{ferry.DeviceEnabled, ferry.DeviceEnabled, ferry.DeviceDisabled} {
			if err := s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: h.ID, DeviceID: fmt.Sprintf("stats-%d", i), GenerationID: "1",
				Status: status, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: key, SecondaryKey: ferry.NewKey(32)}, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		ca, err := pki.LoadOrCreate(t.TempDir(), []string{hubHost}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, ca.CACertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		handler := hubsvc.New(hubsvc.Config{Store: s, Hubs: hs, Capacity: func() hubsvc.ConnectionCapacity {
			c := gw.Capacity()
			return hubsvc.ConnectionCapacity{Open: c.Open, Limit: c.Limit}
		}})
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(tls.NewListener(hubLn, &tls.Config{Certificates: []tls.Certificate{ca.ServerCertificate()}}))
		t.Cleanup(func() { srv.Close() })
		connectDevice(t, mln.Addr().String(), hubHost, "stats-0", key, make(chan string, 1))
		for deadline := time.Now().Add(10 * time.Second); !hs.Connected(h.ID, "stats-0"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("stats-0 has no session")
			}
		}

		cs := func(policy string) string {
			p := h.Policy(policy)
			return fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", hubHost, p.KeyName, p.PrimaryKey)
		}
		cmd := exec.Command("node", filepath.Join(dir, "service", "statistics.js"))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+caFile, "READ_CS="+cs("registryRead"), "SERVICE_CS="+cs("service"),
			"WANT_TOTAL=3", "WANT_ENABLED=2", "WANT_DISABLED=1", "WANT_CONNECTED=1")
		out, err := cmd.CombinedOutput()
		t.Logf("node statistics.js:\n%s", out)
		if err != nil || !strings.Contains(string(out), "\nPASS") {
			t.Fatalf("statistics.js failed: %v", err)
		}
	})
}
