// Package devicetest runs a real device plane in-process for tests of
// device-side code (the SDK, the simulator, migrations): one MQTT gateway
// over TLS on 127.0.0.1, 127.0.0.2 and 127.0.0.3 with the same port, two
// hubs and two provisioning services sharing an enrollment-group key, a
// durable export sink, and helpers to check telemetry sequence numbers.
package devicetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
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
type Plane struct {
	t         testing.TB
	Store     ferry.Store
	Auth      *pki.Authority        // the server's CA
	Hubs      *hub.Service          // invoke methods, update twins, send C2D
	Prov      *provisioning.Service // verify CAs
	Dir       string                // the export sink's directory
	Port      string                // the gateway's port on 127.0.0.1-3
	ProvHost  string                // "127.0.0.1:PORT", both services' host
	HubA      *ferry.Hub            // "127.0.0.2:PORT"
	HubB      *ferry.Hub            // "127.0.0.3:PORT"
	SvcA      *ferry.ProvisioningService
	SvcB      *ferry.ProvisioningService
	GroupKey  string      // key of the enrollment group "group" at both services
	ClientTLS *tls.Config // trusts Auth, with a session cache
}

// NewPlane starts a device plane on s; everything stops when the test ends.
func NewPlane(t testing.TB, s ferry.Store) *Plane {
	t.Helper()
	p := &Plane{t: t, Store: s, Dir: t.TempDir(), GroupKey: ferry.NewKey(64)}
	var err error
	p.Auth, err = pki.LoadOrCreate(t.TempDir(), []string{"localhost", "127.0.0.1", "127.0.0.2", "127.0.0.3"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.ClientTLS = &tls.Config{RootCAs: p.Auth.CAPool(), ClientSessionCache: tls.NewLRUClientSessionCache(1024)}
	bus := eventbus.New(eventbus.Options{})
	sink, err := export.Open(export.Config{Dir: p.Dir, ApplicationID: "ferry-device-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	p.Hubs, err = hub.New(hub.Config{Store: s, Bus: bus, Sink: sink, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Hubs.Close() })
	p.Prov, err = provisioning.New(provisioning.Config{Store: s, Hubs: p.Hubs, Bus: bus, RetryAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mqttgw.New(mqttgw.Config{Hubs: p.Hubs, Provisioning: p.Prov})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	p.Port = listen(t, gw, p.Auth.ServerTLSConfig(pki.TLSOptions{ClientAuth: tls.RequestClientCert}))
	p.ProvHost = "127.0.0.1:" + p.Port
	p.HubA = p.NewHub("hub-a", "127.0.0.2:"+p.Port)
	p.HubB = p.NewHub("hub-b", "127.0.0.3:"+p.Port)
	p.SvcA = p.NewService("dps-a", p.HubA)
	p.SvcB = p.NewService("dps-b", p.HubB)
	p.AddGroup(p.SvcA)
	p.AddGroup(p.SvcB)
	return p
}

// listen serves the gateway on 127.0.0.1-3 with one port number.
func listen(t testing.TB, gw *mqttgw.Gateway, cfg *tls.Config) string {
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

// AddGroup gives svc the enrollment group "group" with GroupKey.
func (p *Plane) AddGroup(svc *ferry.ProvisioningService) {
	p.t.Helper()
	now := time.Now()
	g := &ferry.EnrollmentGroup{ServiceID: svc.ID, ID: "group", Status: ferry.EnrollmentEnabled,
		Attestation:       ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: p.GroupKey, SecondaryKey: ferry.NewKey(64)},
		ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
		CreatedAt:         now, UpdatedAt: now}
	if err := p.Store.PutEnrollmentGroup(context.Background(), g, ""); err != nil {
		p.t.Fatal(err)
	}
}

// AddX509Group gives svc a verified CA named caName (proof of possession
// done) and an X.509 enrollment group groupID on it, and returns the CA's
// certificate and key for issuing device certificates.
func (p *Plane) AddX509Group(svc *ferry.ProvisioningService, caName, groupID string) (*x509.Certificate, *ecdsa.PrivateKey) {
	p.t.Helper()
	return AddX509Group(p.t, p.Store, p.Prov, svc.ID, caName, groupID)
}

// AddX509Group gives the provisioning service serviceID a new CA named
// caName, verified by proof of possession through prov, and an enabled
// X.509 enrollment group on it; it returns the CA to issue device
// certificates with.
func AddX509Group(t testing.TB, s ferry.Store, prov *provisioning.Service, serviceID, caName, groupID string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	caCert, caKey, err := pki.NewCA(caName, now)
	if err != nil {
		t.Fatal(err)
	}
	code, err := pki.NewVerificationCode()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutProvisioningCA(ctx, &ferry.ProvisioningCA{ServiceID: serviceID, Name: caName, DER: caCert.Raw,
		Subject: caCert.Subject.String(), Thumbprint: pki.ThumbprintSHA1(caCert), VerificationCode: code,
		NotBefore: caCert.NotBefore, NotAfter: caCert.NotAfter, CreatedAt: now, UpdatedAt: now}, ""); err != nil {
		t.Fatal(err)
	}
	vc, _, err := pki.IssueClientCert(caCert, caKey, code, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.VerifyCA(ctx, serviceID, caName, vc.Raw); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEnrollmentGroup(ctx, &ferry.EnrollmentGroup{ServiceID: serviceID, ID: groupID, Status: ferry.EnrollmentEnabled,
		Attestation: ferry.Attestation{Type: ferry.AttestX509, CAName: caName}, CreatedAt: now, UpdatedAt: now}, ""); err != nil {
		t.Fatal(err)
	}
	return caCert, caKey
}

// NewHub creates a hub with the default policies.
func (p *Plane) NewHub(name, host string) *ferry.Hub {
	p.t.Helper()
	h := &ferry.Hub{ID: ferry.NewUUID(), Name: name, HostName: host, Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	if err := p.Store.CreateHub(context.Background(), h); err != nil {
		p.t.Fatal(err)
	}
	return h
}

// NewService creates a provisioning service (hashed allocation) linked to h,
// reached at ProvHost.
func (p *Plane) NewService(name string, h *ferry.Hub) *ferry.ProvisioningService {
	p.t.Helper()
	svc := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: name, IDScope: provisioning.NewIDScope(), HostName: p.ProvHost,
		AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: time.Now(),
		LinkedHubs: []ferry.LinkedHub{{HubID: h.ID, HostName: h.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
	if err := p.Store.CreateProvisioningService(context.Background(), svc); err != nil {
		p.t.Fatal(err)
	}
	return svc
}

// ProvisionConfig is a group-key registration at service A.
func (p *Plane) ProvisionConfig(regID string) device.ProvisionConfig {
	return device.ProvisionConfig{Host: p.ProvHost, IDScope: p.SvcA.IDScope, RegistrationID: regID, GroupKey: p.GroupKey,
		Transport: device.Transport{TLS: p.ClientTLS}}
}

// Connect provisions regID at service A and connects it.
func (p *Plane) Connect(regID string, cfg device.Config) (*device.Client, *device.Registration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	c, reg, err := device.ProvisionAndConnect(ctx, p.ProvisionConfig(regID), cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c, reg
}

// SendSeq sends telemetry {"seq":n} with property seq for n in [from, to).
func SendSeq(t testing.TB, c *device.Client, from, to int) {
	t.Helper()
	for n := from; n < to; n++ {
		m := device.Message{Body: fmt.Appendf(nil, `{"seq":%d}`, n), ContentType: "application/json", ContentEncoding: "utf-8",
			Properties: map[string]string{"seq": strconv.Itoa(n)}}
		if err := c.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// Seqs counts the telemetry records of a device in the export sink by
// sequence number, over all hubs.
func (p *Plane) Seqs(deviceID string) map[int]int {
	p.t.Helper()
	recs, err := export.ReadAll(p.Dir)
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

// CheckNoGap fails unless every number in [0, n) reached the sink.
func (p *Plane) CheckNoGap(t testing.TB, deviceID string, n int) {
	t.Helper()
	got := p.Seqs(deviceID)
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

// Eventually polls cond until it holds, failing the test after 20 s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, 20*time.Second, what, cond)
}

// EventuallyWithin polls cond until it holds, failing the test after d.
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
