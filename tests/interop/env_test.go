package interop_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/provisioning"
)

// require skips a test whose tool is missing, or fails it under CI=true.
func require(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (required when CI=true)", what)
	}
	t.Skipf("%s is missing", what)
}

// plane is a whole device plane on one TLS port: hub "localhost:PORT" and a
// provisioning service linked to it.
type plane struct {
	t      *testing.T
	store  ferry.Store
	auth   *pki.Authority
	bus    *eventbus.Bus
	caFile string
	hubs   *hub.Service
	prov   *provisioning.Service
	gw     *mqttgw.Gateway
	port   string
	host   string // localhost:PORT
	dir    string // export directory
	hub    *ferry.Hub
	svc    *ferry.ProvisioningService

	mu     sync.Mutex
	events []ferry.Event
}

func newPlane(t *testing.T, s ferry.Store) *plane {
	t.Helper()
	ctx := context.Background()
	p := &plane{t: t, store: s, dir: t.TempDir()}
	pkiDir := t.TempDir()
	var err error
	p.auth, err = pki.LoadOrCreate(pkiDir, []string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.caFile = filepath.Join(pkiDir, "ca-bundle.pem")
	if err := os.WriteFile(p.caFile, p.auth.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	bus := eventbus.New(eventbus.Options{})
	p.bus = bus
	t.Cleanup(bus.Subscribe("interop", func(ev ferry.Event) {
		p.mu.Lock()
		p.events = append(p.events, ev)
		p.mu.Unlock()
	}))
	sink, err := export.Open(export.Config{Dir: p.dir, ApplicationID: "ferry-interop"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	p.hubs, err = hub.New(hub.Config{Store: s, Bus: bus, Sink: sink, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.hubs.Close() })
	p.prov, err = provisioning.New(provisioning.Config{Store: s, Hubs: p.hubs, Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	p.gw, err = mqttgw.New(mqttgw.Config{Hubs: p.hubs, Provisioning: p.prov})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.auth.ServerTLSConfig(pki.TLSOptions{ClientAuth: tls.RequestClientCert}))
	if err != nil {
		t.Fatal(err)
	}
	_, p.port, _ = net.SplitHostPort(ln.Addr().String())
	p.host = "localhost:" + p.port
	go p.gw.Serve(ln)
	t.Cleanup(func() { p.gw.Close() })

	p.hub = &ferry.Hub{ID: ferry.NewUUID(), Name: "interop-hub", HostName: p.host, Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	if err := s.CreateHub(ctx, p.hub); err != nil {
		t.Fatal(err)
	}
	p.svc = &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: "interop-dps", IDScope: provisioning.NewIDScope(), HostName: p.host,
		AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: time.Now(),
		LinkedHubs: []ferry.LinkedHub{{HubID: p.hub.ID, HostName: p.host, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
	if err := s.CreateProvisioningService(ctx, p.svc); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *plane) eventsOf(source, typ string) []ferry.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ferry.Event
	for _, ev := range p.events {
		if ev.Source == source && ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func haveTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func sdkDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../azure-sdk")
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(filepath.Join(dir, "node_modules", "azure-iot-device"))
	require(t, err == nil && haveTool("node"), "node and tests/azure-sdk/node_modules (npm ci)")
	return dir
}
