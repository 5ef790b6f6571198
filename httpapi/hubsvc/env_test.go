package hubsvc_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/sas"
)

// Hosts of the test resources; every 127.0.0.0/8 address is local on Linux.
const (
	hostA   = "127.0.0.2" // hub A
	hostB   = "127.0.0.3" // hub B
	hostDPS = "127.0.0.4" // provisioning service
)

// env is the service REST on real TLS listeners over a real store, with a
// real hub service and MQTT gateway for devices.
type env struct {
	t      *testing.T
	store  ferry.Store
	hubs   *hub.Service
	gw     *mqttgw.Gateway
	ca     *pki.Authority
	client *http.Client
	urls   map[string]string // host → https://host:port
	mqtt   string            // plain MQTT address of the gateway
	hubA   *ferry.Hub
	hubB   *ferry.Hub
	dps    *ferry.ProvisioningService
	cfg    hubsvc.Config
}

type envOpt func(*hubsvc.Config)

func newEnv(t *testing.T, s ferry.Store, opts ...envOpt) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: s, urls: map[string]string{}}
	var err error
	e.hubs, err = hub.New(hub.Config{Store: s, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.hubs.Close() })
	gw, err := mqttgw.New(mqttgw.Config{Hubs: e.hubs})
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.mqtt = mln.Addr().String()
	go gw.Serve(mln)
	t.Cleanup(func() { gw.Close() })
	e.gw = gw

	e.hubA = &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-a", HostName: hostA, Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	e.hubB = &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-b", HostName: hostB, Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	for _, h := range []*ferry.Hub{e.hubA, e.hubB} {
		if err := s.CreateHub(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	e.dps = &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: "dps-a", IDScope: "0ne00000A1B", HostName: hostDPS,
		AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: time.Now(),
		LinkedHubs: []ferry.LinkedHub{{HubID: e.hubA.ID, HostName: hostA, AllocationWeight: 1, ApplyAllocationPolicy: true},
			{HubID: e.hubB.ID, HostName: hostB, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
	if err := s.CreateProvisioningService(ctx, e.dps); err != nil {
		t.Fatal(err)
	}

	e.ca, err = pki.LoadOrCreate(t.TempDir(), []string{hostA, hostB, hostDPS}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = hubsvc.Config{Store: s, Hubs: e.hubs, Capacity: func() hubsvc.ConnectionCapacity {
		c := gw.Capacity()
		return hubsvc.ConnectionCapacity{Open: c.Open, Limit: c.Limit}
	}}
	for _, o := range opts {
		o(&e.cfg)
	}
	srv := &http.Server{Handler: hubsvc.New(e.cfg), ReadHeaderTimeout: 5 * time.Second}
	tc := &tls.Config{Certificates: []tls.Certificate{e.ca.ServerCertificate()}}
	for _, h := range []string{hostA, hostB, hostDPS} {
		ln, err := net.Listen("tcp", h+":0")
		if err != nil {
			t.Fatal(err)
		}
		e.urls[h] = "https://" + ln.Addr().String()
		go srv.Serve(tls.NewListener(ln, tc))
	}
	t.Cleanup(func() { srv.Close() })
	e.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.CAPool()}}}
	return e
}

// hubToken signs a service SAS for a hub policy.
func (e *env) hubToken(h *ferry.Hub, policy string) string {
	e.t.Helper()
	p := h.Policy(policy)
	tok, err := sas.Sign(h.HostName, p.PrimaryKey, p.KeyName, time.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// dpsToken signs a service SAS for the provisioning service.
func (e *env) dpsToken() string {
	e.t.Helper()
	p := e.dps.Policy("provisioningserviceowner")
	tok, err := sas.Sign(e.dps.HostName, p.PrimaryKey, p.KeyName, time.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

// do sends a request to host with the given Authorization and headers
// (pairs of name, value).
func (e *env) do(method, host, path, auth string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(method, e.urls[host]+path+sep+"api-version=2021-04-12", rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// owner sends a request to hub A as iothubowner.
func (e *env) owner(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	return e.do(method, hostA, path, e.hubToken(e.hubA, "iothubowner"), body, headers...)
}

// wantStatus fails unless r has the status.
func wantStatus(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

// wantHubError checks an error in IoT Hub's shape.
func wantHubError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	wantStatus(t, r, status)
	if got := r.header.Get("iothub-errorcode"); got != code {
		t.Errorf("iothub-errorcode %q, want %q", got, code)
	}
	m := r.obj(t)
	msg, _ := m["Message"].(string)
	if !strings.HasPrefix(msg, "ErrorCode:"+code+";") {
		t.Errorf("Message %q does not start with ErrorCode:%s;", msg, code)
	}
	if _, ok := m["ExceptionMessage"].(string); !ok {
		t.Errorf("no ExceptionMessage in %s", r.body)
	}
}

// createDevice registers a SAS device on hub A and returns its primary key.
func (e *env) createDevice(id string) string {
	e.t.Helper()
	r := e.owner("PUT", "/devices/"+id, map[string]any{"deviceId": id})
	wantStatus(e.t, r, 200)
	var d struct {
		Authentication struct {
			SymmetricKey struct{ PrimaryKey string }
		}
	}
	r.json(e.t, &d)
	return d.Authentication.SymmetricKey.PrimaryKey
}

// connect connects a device to hub A over MQTT and subscribes to methods,
// desired-property updates and C2D; onMsg sees every message.
func (e *env) connect(id, key string, onMsg paho.MessageHandler) paho.Client {
	e.t.Helper()
	tok, err := sas.Sign(hostA+"/devices/"+id, key, "", time.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	opts := paho.NewClientOptions().AddBroker("tcp://" + e.mqtt).SetClientID(id).
		SetUsername(hostA + "/" + id + "/?api-version=2021-04-12").SetPassword(tok).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetCleanSession(false).SetOrderMatters(false).SetProtocolVersion(4).
		SetDefaultPublishHandler(onMsg)
	c := paho.NewClient(opts)
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		e.t.Fatalf("connect %s: %v", id, t.Error())
	}
	e.t.Cleanup(func() { c.Disconnect(0) })
	for _, topic := range []string{"$iothub/methods/POST/#", "$iothub/twin/PATCH/properties/desired/#", "devices/" + id + "/messages/devicebound/#"} {
		if t := c.Subscribe(topic, 0, nil); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
			e.t.Fatalf("subscribe %s: %v", topic, t.Error())
		}
	}
	eventually(e.t, "device session", func() bool { return e.hubs.Connected(e.hubA.ID, id) })
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
