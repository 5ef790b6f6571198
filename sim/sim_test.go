package sim_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/device/devicetest"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/sim"
	"github.com/ferry-iot/ferry/store/storetest"
	"github.com/google/go-cmp/cmp"
)

func TestRun200Devices(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := sim.Config{Count: 200, Prefix: "fleet-", ProvisioningHost: p.ProvHost, IDScope: p.SvcA.IDScope, GroupKey: p.GroupKey,
			TelemetryInterval: 200 * time.Millisecond, Transport: device.Transport{TLS: p.ClientTLS},
			SourceAddrs: []string{"127.0.0.1", "127.0.0.4"}, StatsInterval: 100 * time.Millisecond}
		done := make(chan sim.Stats, 1)
		go func() {
			st, err := sim.Run(ctx, cfg)
			if err != nil {
				t.Error(err)
			}
			done <- st
		}()
		devicetest.EventuallyWithin(t, 2*time.Minute, "200 connected devices", func() bool {
			n, err := s.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: p.HubA.ID, ConnectionState: ferry.Connected})
			return err == nil && n == 200
		})
		time.Sleep(time.Second)
		cancel()
		st := <-done
		if st.Devices != 200 || st.Provisioned != 200 || st.Sent < 200 || st.Queued != 0 || st.Acked < st.Sent {
			t.Errorf("stats %+v", st)
		}
		for i := 0; i < 200; i += 37 {
			id := cfg.DeviceID(i)
			seqs := p.Seqs(id)
			p.CheckNoGap(t, id, len(seqs))
		}
	})
}

func TestConfigErrors(t *testing.T) {
	ok := sim.Config{Count: 1, ProvisioningHost: "h", IDScope: "s", GroupKey: ferry.NewKey(32)}
	for _, tc := range []struct {
		name string
		edit func(*sim.Config)
	}{
		{"ErrCount", func(c *sim.Config) { c.Count = 0 }},
		{"ErrHost", func(c *sim.Config) { c.ProvisioningHost = "" }},
		{"ErrScope", func(c *sim.Config) { c.IDScope = "" }},
		{"ErrNoCredentials", func(c *sim.Config) { c.GroupKey = "" }},
		{"ErrSigningKeyMissing", func(c *sim.Config) { c.GroupKey = ""; c.SigningCert = new(x509.Certificate) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if _, err := sim.Run(context.Background(), c); !ferry.IsCode(err, ferry.EINVALID) {
				t.Errorf("got %v, want EINVALID", err)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name           string
		count, n       int
		addrs          []string
		want           []sim.Worker
		wantErrInvalid bool
	}{
		{name: "OneWorker", count: 10, want: []sim.Worker{{Index: 0, Start: 0, Count: 10, SourceAddr: "127.0.0.10"}}},
		{name: "Auto100k", count: 100000, want: nil},
		{name: "ThreeWorkersTwoAddrs", count: 10, n: 3, addrs: []string{"127.0.0.2", "127.0.0.3"}, want: []sim.Worker{
			{Index: 0, Start: 0, Count: 4, SourceAddr: "127.0.0.2"},
			{Index: 1, Start: 4, Count: 4, SourceAddr: "127.0.0.3"},
			{Index: 2, Start: 8, Count: 2, SourceAddr: "127.0.0.2"}}},
		{name: "ErrTooFewWorkers", count: 40000, n: 2, wantErrInvalid: true},
		{name: "ErrNoDevices", count: 0, wantErrInvalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sim.Split(tc.count, tc.n, tc.addrs)
			if tc.wantErrInvalid {
				if !ferry.IsCode(err, ferry.EINVALID) {
					t.Fatalf("got %v, want EINVALID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil { // auto: every worker within the limit, all devices covered
				total := 0
				for _, w := range got {
					if w.Count > sim.MaxPerWorker || w.Start != total {
						t.Fatalf("worker %+v", w)
					}
					total += w.Count
				}
				if total != tc.count || len(got) != 7 {
					t.Fatalf("%d workers for %d devices", len(got), total)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("workers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunX509SigningCA(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		caCert, caKey := p.AddX509Group(p.SvcA, "sim-ca", "x509")
		cfg := sim.Config{Count: 10, Prefix: "x509-", ProvisioningHost: p.ProvHost, IDScope: p.SvcA.IDScope,
			SigningCert: caCert, SigningKey: caKey, TelemetryInterval: 100 * time.Millisecond,
			Transport: device.Transport{TLS: p.ClientTLS}, StatsInterval: 100 * time.Millisecond}
		done := make(chan sim.Stats, 1)
		go func() {
			st, _ := sim.Run(ctx, cfg)
			done <- st
		}()
		devicetest.EventuallyWithin(t, time.Minute, "10 connected X.509 devices", func() bool {
			n, err := s.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: p.HubA.ID, ConnectionState: ferry.Connected})
			return err == nil && n == 10
		})
		time.Sleep(500 * time.Millisecond)
		cancel()
		if st := <-done; st.Provisioned != 10 || st.Acked == 0 || st.Queued != 0 {
			t.Errorf("stats %+v", st)
		}
		id, err := s.GetDeviceIdentity(context.Background(), p.HubA.ID, "x509-000003")
		if err != nil || id.Auth.Type == ferry.AuthSAS {
			t.Errorf("identity %+v, %v", id, err)
		}
	})
}

// TestStatsWhileComingUp checks that a fleet reports statistics while its
// devices are still trying to come up: here none can, because nothing
// listens at the provisioning host, and one attempt at a time is allowed.
func TestStatsWhileComingUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var early []sim.Stats
	cfg := sim.Config{Count: 50, ProvisioningHost: "127.0.0.1:1", IDScope: "0ne00000000", GroupKey: ferry.NewKey(32),
		Transport: device.Transport{Plain: true}, Workers: 1, StatsInterval: 100 * time.Millisecond,
		OnStats: func(s sim.Stats) {
			if ctx.Err() == nil {
				early = append(early, s)
			}
		}}
	final, err := sim.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(early) < 3 {
		t.Fatalf("%d statistics reports before the end, want one every 100 ms", len(early))
	}
	if s := early[len(early)-1]; s.Devices != 50 || s.Connected != 0 || s.Failures == 0 {
		t.Errorf("last report while coming up: %+v", s)
	}
	if final.Connected != 0 || final.Provisioned != 0 {
		t.Errorf("final: %+v", final)
	}
}

// TestMovedDeviceReportsAtOnce: a simulated device that moves to another hub
// sends its next message right away rather than at its next interval, so a
// migration verifies it without waiting out the telemetry interval.
func TestMovedDeviceReportsAtOnce(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := sim.Config{Count: 3, Prefix: "mover-", ProvisioningHost: p.ProvHost, IDScope: p.SvcA.IDScope, GroupKey: p.GroupKey,
			TelemetryInterval: time.Hour, Transport: device.Transport{TLS: p.ClientTLS}, StatsInterval: 100 * time.Millisecond}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := sim.Run(ctx, cfg); err != nil {
				t.Error(err)
			}
		}()
		for i := range cfg.Count {
			id := cfg.DeviceID(i)
			devicetest.Eventually(t, id+" connected at hub A", func() bool { return p.Hubs.Connected(p.HubA.ID, id) })
			res, err := p.Hubs.InvokeMethod(ctx, p.HubA.ID, id, ferry.MethodRequest{MethodName: "DeviceMove",
				Payload: json.RawMessage(`{"idScope":"` + p.SvcB.IDScope + `"}`), ResponseTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second})
			if err != nil || res.Status != 200 {
				t.Fatalf("move %s: %+v, %v", id, res, err)
			}
		}
		for i := range cfg.Count {
			id := cfg.DeviceID(i)
			devicetest.Eventually(t, id+"'s message through hub B", func() bool {
				recs, err := export.ReadAll(p.Dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if r.DeviceID == id && r.MessageSource == "telemetry" && r.Ferry.HubID == p.HubB.ID {
						return true
					}
				}
				return false
			})
		}
		cancel()
		<-done
	})
}
