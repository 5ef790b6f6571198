package hub_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/sas"
)

// env is a hub on a real store, bus, export sink and MQTT listener.
type env struct {
	t     testing.TB
	store ferry.Store
	hubs  *hub.Service
	gw    *mqttgw.Gateway
	addr  string
	dir   string
	hub   *ferry.Hub

	mu     sync.Mutex
	events []ferry.Event
}

func newEnv(t testing.TB, s ferry.Store) *env {
	t.Helper()
	return newEnvWith(t, s, mqttgw.Config{}, "127.0.0.1:0")
}

// newEnvWith starts the gateway with cfg's limits on addr.
func newEnvWith(t testing.TB, s ferry.Store, cfg mqttgw.Config, addr string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: s, dir: t.TempDir()}
	bus := eventbus.New(eventbus.Options{})
	cancel := bus.Subscribe("test", func(ev ferry.Event) {
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
	})
	t.Cleanup(cancel)
	sink, err := export.Open(export.Config{Dir: e.dir, ApplicationID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	e.hubs, err = hub.New(hub.Config{Store: s, Bus: bus, Sink: sink, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.hubs.Close() })
	cfg.Hubs = e.hubs
	e.gw, err = mqttgw.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go e.gw.Serve(ln)
	t.Cleanup(func() { e.gw.Close() })
	e.hub = &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-a", HostName: "hub-a.test", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	if err := s.CreateHub(ctx, e.hub); err != nil {
		t.Fatal(err)
	}
	return e
}

// device creates an identity with a symmetric key and returns the key.
func (e *env) device(id string) string {
	e.t.Helper()
	key := ferry.NewKey(32)
	d := &ferry.DeviceIdentity{HubID: e.hub.ID, DeviceID: id, GenerationID: ferry.NewUUID(), Status: ferry.DeviceEnabled,
		Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: key, SecondaryKey: ferry.NewKey(32)}, CreatedAt: time.Now()}
	if err := e.store.CreateDeviceIdentity(context.Background(), d); err != nil {
		e.t.Fatal(err)
	}
	return key
}

func (e *env) token(id, key string, ttl time.Duration) string {
	e.t.Helper()
	tok, err := sas.Sign(e.hub.HostName+"/devices/"+id, key, "", time.Now().Add(ttl))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type clientOpts struct {
	username string
	password string
	clientID string
	lost     chan error
	will     *mqttgw.Message
	onMsg    paho.MessageHandler
	broker   string
}

// dial connects a paho client and returns it with its CONNACK code.
func (e *env) dial(id string, o clientOpts) (paho.Client, byte) {
	e.t.Helper()
	if o.username == "" {
		o.username = e.hub.HostName + "/" + id + "/?api-version=2021-04-12"
	}
	if o.clientID == "" {
		o.clientID = id
	}
	broker := "tcp://" + e.addr
	if o.broker != "" {
		broker = o.broker
	}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(o.clientID).
		SetUsername(o.username).SetPassword(o.password).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetCleanSession(false).SetKeepAlive(60 * time.Second).SetOrderMatters(false).SetProtocolVersion(4)
	if o.lost != nil {
		opts.SetConnectionLostHandler(func(_ paho.Client, err error) { o.lost <- err })
	}
	if o.will != nil {
		opts.SetBinaryWill(o.will.Topic, o.will.Payload, o.will.QoS, false)
	}
	if o.onMsg != nil {
		opts.SetDefaultPublishHandler(o.onMsg)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		e.t.Fatal("connect timed out")
	}
	code := tok.(*paho.ConnectToken).ReturnCode()
	if code == 0 {
		e.t.Cleanup(func() { c.Disconnect(0) })
	}
	return c, code
}

func (e *env) connect(id, key string) paho.Client {
	e.t.Helper()
	c, code := e.dial(id, clientOpts{password: e.token(id, key, time.Hour)})
	if code != 0 {
		e.t.Fatalf("CONNACK %d", code)
	}
	return c
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) eventsOf(typ string) []ferry.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ferry.Event
	for _, ev := range e.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}
