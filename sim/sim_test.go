package sim_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/device/devicetest"
	"github.com/ferry-iot/ferry/sim"
	"github.com/ferry-iot/ferry/store/storetest"
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
		devicetest.Eventually(t, "200 connected devices", func() bool {
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
