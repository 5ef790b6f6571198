package device_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/provisioning"
)

// plane is a real device plane on one gateway with TLS listeners on
// 127.0.0.1, 127.0.0.2 and 127.0.0.3 (same port): hub A is "127.0.0.2:P",
// hub B "127.0.0.3:P"; provisioning service A (scope A) assigns to hub A,
// service B (scope B) to hub B, both reached at "127.0.0.1:P". Both have an
// enrollment group with the same group key, as a migration needs.
type plane struct {
	t          *testing.T
	store      ferry.Store
	auth       *pki.Authority
	hubs       *hub.Service
	prov       *provisioning.Service
	dir        string
	port       string
	provHost   string
	hubA, hubB *ferry.Hub
	svcA, svcB *ferry.ProvisioningService
	groupKey   string
	clientTLS  *tls.Config
}

func newPlane(t *testing.T, s ferry.Store) *plane {
	t.Helper()
	ctx := context.Background()
	p := &plane{t: t, store: s, dir: t.TempDir(), groupKey: ferry.NewKey(64)}
	var err error
	p.auth, err = pki.LoadOrCreate(t.TempDir(), []string{"localhost", "127.0.0.1", "127.0.0.2", "127.0.0.3"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.clientTLS = &tls.Config{RootCAs: p.auth.CAPool(), ClientSessionCache: tls.NewLRUClientSessionCache(1024)}
	bus := eventbus.New(eventbus.Options{})
	sink, err := export.Open(export.Config{Dir: p.dir, ApplicationID: "ferry-device-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	p.hubs, err = hub.New(hub.Config{Store: s, Bus: bus, Sink: sink, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.hubs.Close() })
	p.prov, err = provisioning.New(provisioning.Config{Store: s, Hubs: p.hubs, Bus: bus, RetryAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mqttgw.New(mqttgw.Config{Hubs: p.hubs, Provisioning: p.prov})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	p.port = listen(t, gw, p.auth.ServerTLSConfig(pki.TLSOptions{ClientAuth: tls.RequestClientCert}))
	p.provHost = "127.0.0.1:" + p.port
	p.hubA = p.newHub("hub-a", "127.0.0.2:"+p.port)
	p.hubB = p.newHub("hub-b", "127.0.0.3:"+p.port)
	p.svcA = p.newService("dps-a", p.hubA)
	p.svcB = p.newService("dps-b", p.hubB)
	for _, svc := range []*ferry.ProvisioningService{p.svcA, p.svcB} {
		now := time.Now()
		g := &ferry.EnrollmentGroup{ServiceID: svc.ID, ID: "group", Status: ferry.EnrollmentEnabled,
			Attestation:       ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: p.groupKey, SecondaryKey: ferry.NewKey(64)},
			ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
			CreatedAt:         now, UpdatedAt: now}
		if err := s.PutEnrollmentGroup(ctx, g, ""); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// listen serves the gateway on 127.0.0.1-3 with one port number.
func listen(t *testing.T, gw *mqttgw.Gateway, cfg *tls.Config) string {
	t.Helper()
	for try := 0; try < 20; try++ {
		first, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(first.Addr().String())
		lns := []net.Listener{first}
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			ln, err := tls.Listen("tcp", ip+":"+port, cfg)
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) < 3 {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		for _, ln := range lns {
			go gw.Serve(ln)
		}
		return port
	}
	t.Fatal("no common free port on 127.0.0.1-3")
	return ""
}

func (p *plane) newHub(name, host string) *ferry.Hub {
	p.t.Helper()
	h := &ferry.Hub{ID: ferry.NewUUID(), Name: name, HostName: host, Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	if err := p.store.CreateHub(context.Background(), h); err != nil {
		p.t.Fatal(err)
	}
	return h
}

func (p *plane) newService(name string, h *ferry.Hub) *ferry.ProvisioningService {
	p.t.Helper()
	svc := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: name, IDScope: provisioning.NewIDScope(), HostName: p.provHost,
		AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: time.Now(),
		LinkedHubs: []ferry.LinkedHub{{HubID: h.ID, HostName: h.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
	if err := p.store.CreateProvisioningService(context.Background(), svc); err != nil {
		p.t.Fatal(err)
	}
	return svc
}

// provisionConfig is a group-key registration at service A.
func (p *plane) provisionConfig(regID string) device.ProvisionConfig {
	return device.ProvisionConfig{Host: p.provHost, IDScope: p.svcA.IDScope, RegistrationID: regID, GroupKey: p.groupKey,
		Transport: device.Transport{TLS: p.clientTLS}}
}

// connect provisions regID at service A and connects it.
func (p *plane) connect(regID string, cfg device.Config) (*device.Client, *device.Registration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	c, reg, err := device.ProvisionAndConnect(ctx, p.provisionConfig(regID), cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c, reg
}

// sendSeq sends telemetry {"seq":n} with property seq for n in [from, to).
func sendSeq(t *testing.T, c *device.Client, from, to int) {
	t.Helper()
	for n := from; n < to; n++ {
		m := device.Message{Body: fmt.Appendf(nil, `{"seq":%d}`, n), ContentType: "application/json", ContentEncoding: "utf-8",
			Properties: map[string]string{"seq": strconv.Itoa(n)}}
		if err := c.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// seqs returns the sequence numbers of a device in the export sink, per
// hub (the export enrichments do not name the hub, so all hubs together).
func (p *plane) seqs(deviceID string) map[int]int {
	p.t.Helper()
	recs, err := export.ReadAll(p.dir)
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[int]int{}
	for _, r := range recs {
		if r.DeviceID != deviceID || r.MessageSource != "telemetry" {
			continue
		}
		var body struct{ Seq *int }
		if json.Unmarshal(r.Telemetry, &body) == nil && body.Seq != nil {
			out[*body.Seq]++
		}
	}
	return out
}

// checkNoGap fails unless every number in [0, n) reached the sink.
func (p *plane) checkNoGap(t *testing.T, deviceID string, n int) {
	t.Helper()
	got := p.seqs(deviceID)
	var missing []int
	for i := 0; i < n; i++ {
		if got[i] == 0 {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s: %d of %d sequence numbers missing from the export sink, first %v", deviceID, len(missing), n, missing[:min(10, len(missing))])
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
