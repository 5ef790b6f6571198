package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rest is a client of Ferry's HTTPS APIs with a bearer token.
type rest struct {
	o     *options
	hc    *http.Client
	token string
}

func newREST(ctx context.Context, o *options) (*rest, error) {
	cfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	cfg.NextProtos = nil
	cfg.ServerName = ""
	r := &rest{o: o, hc: &http.Client{Timeout: o.timeout, Transport: &http.Transport{
		TLSClientConfig: cfg, MaxIdleConnsPerHost: o.concurrency + 4, ForceAttemptHTTP2: false,
	}}}
	r.token = os.Getenv("FERRY_BENCH_TOKEN")
	if r.token == "" {
		form := url.Values{"grant_type": {"password"}, "username": {o.adminUser}, "password": {os.Getenv("FERRY_ADMIN_PASSWORD")}}
		resp, err := r.hc.PostForm(o.httpsURL+"/oauth2/token", form)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
			return nil, fmt.Errorf("token: status %d (set FERRY_ADMIN_PASSWORD)", resp.StatusCode)
		}
		r.token = tok.AccessToken
	}
	return r, nil
}

func token(ctx context.Context, o *options) (string, error) {
	r, err := newREST(ctx, o)
	if err != nil {
		return "", err
	}
	return r.token, nil
}

// call sends a JSON request with Host header host and decodes the answer
// into out (if not nil). It fails unless the status is one of want.
func (r *rest) call(ctx context.Context, method, host, path string, in, out any, want ...int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.o.httpsURL+path, body)
	if err != nil {
		return err
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	ok := false
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// setup creates (idempotently) a resource group, a hub at --hub-host whose
// iothubowner key is the group key, a provisioning service at --dps-host
// linked to it and an enrollment group "bench" with the group key, and
// prints {"idScope": ...}.
func setup(ctx context.Context, o *options, out io.Writer) error {
	r, err := newREST(ctx, o)
	if err != nil {
		return err
	}
	var subs struct {
		Value []struct {
			SubscriptionID string `json:"subscriptionId"`
		} `json:"value"`
	}
	// ARM is addressed at "localhost": requests for the hub's host go to
	// the hub's service API only by path, but keep them apart anyway.
	const arm = "localhost"
	if err := r.call(ctx, "GET", arm, "/subscriptions?api-version=2022-12-01", nil, &subs, 200); err != nil {
		return err
	}
	if len(subs.Value) == 0 {
		return errors.New("no subscription")
	}
	rg := "/subscriptions/" + subs.Value[0].SubscriptionID + "/resourceGroups/bench"
	if err := r.call(ctx, "PUT", arm, rg+"?api-version=2021-04-01", map[string]any{"location": "global"}, nil, 200, 201); err != nil {
		return err
	}
	if err := r.call(ctx, "PUT", arm, rg+"/providers/Microsoft.Devices/IotHubs/bench-hub?api-version=2023-06-30", map[string]any{
		"location": "global", "sku": map[string]any{"name": "S1", "capacity": 1},
		"properties": map[string]any{"hostName": o.hubHost, "authorizationPolicies": []map[string]any{
			{"keyName": "iothubowner", "primaryKey": o.masterKey, "rights": "RegistryWrite, ServiceConnect, DeviceConnect"},
		}},
	}, nil, 200, 201); err != nil {
		return err
	}
	var dps struct {
		Properties struct {
			IDScope string `json:"idScope"`
		} `json:"properties"`
	}
	if err := r.call(ctx, "PUT", arm, rg+"/providers/Microsoft.Devices/provisioningServices/bench-dps?api-version=2022-02-05", map[string]any{
		"location": "global", "sku": map[string]any{"name": "S1", "capacity": 1},
		"properties": map[string]any{"serviceOperationsHostName": o.dpsHost, "allocationPolicy": "Hashed", "iotHubs": []map[string]any{
			{"connectionString": "HostName=" + o.hubHost + ";SharedAccessKeyName=iothubowner;SharedAccessKey=" + o.masterKey},
		}},
	}, &dps, 200, 201); err != nil {
		return err
	}
	if err := r.call(ctx, "PUT", o.dpsHost, "/enrollmentGroups/bench?api-version=2021-10-01", map[string]any{
		"enrollmentGroupId": "bench", "attestation": map[string]any{"type": "symmetricKey",
			"symmetricKey": map[string]any{"primaryKey": o.masterKey, "secondaryKey": o.masterKey}},
		"provisioningStatus": "enabled",
	}, nil, 200, 201); err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(map[string]string{"idScope": dps.Properties.IDScope})
}

// create registers devices --offset..--offset+n on the hub with parallel
// PUT /devices/{id}, each with its group-derived key.
func create(ctx context.Context, o *options) (*result, error) {
	r, err := newREST(ctx, o)
	if err != nil {
		return nil, err
	}
	res := newResult(o)
	res.begin()
	forEach(ctx, o, res, func(i int) error {
		id := o.deviceID(i)
		key, err := o.deviceKey(id)
		if err != nil {
			return err
		}
		t0 := time.Now()
		err = r.call(ctx, "PUT", o.hubHost, "/devices/"+id+"?api-version=2021-04-12", map[string]any{
			"deviceId": id, "authentication": map[string]any{"type": "sas", "symmetricKey": map[string]any{"primaryKey": key, "secondaryKey": key}},
		}, nil, 200)
		if err != nil && strings.Contains(err.Error(), "409") {
			err = nil // already there: a rerun
		}
		if err == nil {
			res.observe(time.Since(t0))
		}
		return err
	})
	res.end()
	return res, nil
}

// connectMode opens every device's session (after DPS registration with
// --dps) and reports sessions per second; with --reconnect it then drops
// them all and reconnects with TLS session resumption. The workers of a
// run start each pass together (ph), and with --server-pid each pass
// reports the server's CPU time from its start to its last session (not
// the closing of the sessions).
func connectMode(ctx context.Context, o *options, ph *phases) (*result, error) {
	d, err := newDialer(o)
	if err != nil {
		return nil, err
	}
	res := newResult(o)
	clients := make([]*client, o.n)
	cfgs := make([]*tls.Config, o.n) // with --reconnect: each device's own session cache
	tried := make([]bool, o.n)       // reached the hub CONNECT (after DPS, if any)
	cpu0, err := ph.reach("start")
	if err != nil {
		return nil, err
	}
	res.begin()
	forEach(ctx, o, res, func(i int) error {
		id, hub := o.deviceID(i), o.hubHost
		t0 := time.Now()
		if o.dps {
			var err error
			hub, id, err = d.register(ctx, id)
			if err != nil {
				return fmt.Errorf("register: %w", err)
			}
		}
		if o.reconnect {
			cfgs[i-o.offset] = d.deviceTLS()
		}
		tried[i-o.offset] = true
		c, _, err := d.connectHub(ctx, id, hub, cfgs[i-o.offset], nil)
		if err != nil {
			return err
		}
		clients[i-o.offset] = c
		res.observe(time.Since(t0))
		return nil
	})
	res.end()
	cpu1, err := ph.reach("connected")
	if err != nil {
		return nil, err
	}
	res.ServerCPU = cpuSpent(cpu0, cpu1)
	closeAll(clients)
	if !o.reconnect {
		return res, nil
	}
	// A reconnect storm: the same devices, now with a session ticket each.
	cpu2, err := ph.reach("closed")
	if err != nil {
		return nil, err
	}
	second := newResult(o)
	second.begin()
	forEach(ctx, o, second, func(i int) error {
		if !tried[i-o.offset] {
			return nil
		}
		t0 := time.Now()
		c, resumed, err := d.connectHub(ctx, o.deviceID(i), o.hubHost, cfgs[i-o.offset], nil)
		if err != nil {
			return err
		}
		if resumed {
			second.mu.Lock()
			second.Resumed++
			second.mu.Unlock()
		}
		clients[i-o.offset] = c
		second.observe(time.Since(t0))
		return nil
	})
	second.end()
	cpu3, err := ph.reach("reconnected")
	if err != nil {
		return nil, err
	}
	second.ServerCPU = cpuSpent(cpu2, cpu3)
	closeAll(clients)
	res.Second = second
	return res, nil
}

// cpuSpent is the CPU time between two serverCPU readings, or 0 if either
// is unknown.
func cpuSpent(from, to int64) int64 {
	if from < 0 || to < 0 {
		return 0
	}
	return to - from
}

// connectAll opens every device's hub session, with onPub for device i.
// The callback's pointer is set once the session is up, so a PUBLISH
// that arrives before that finds it nil.
func connectAll(ctx context.Context, o *options, d *dialer, res *result, onPub func(i int, c *atomic.Pointer[client]) func(string, []byte)) []*client {
	clients := make([]*client, o.n)
	forEach(ctx, o, res, func(i int) error {
		var (
			cb   func(string, []byte)
			self atomic.Pointer[client]
		)
		if onPub != nil {
			cb = onPub(i, &self)
		}
		c, _, err := d.connectHub(ctx, o.deviceID(i), o.hubHost, nil, cb)
		if err != nil {
			return err
		}
		self.Store(c)
		clients[i-o.offset] = c
		return nil
	})
	return clients
}

// telemetry connects every device, then has each publish QoS 1 telemetry
// for --duration (closed loop, or at --rate per device) and reports the
// messages acknowledged per second and the PUBACK latency.
func telemetry(ctx context.Context, o *options) (*result, error) {
	d, err := newDialer(o)
	if err != nil {
		return nil, err
	}
	conn := newResult(o)
	clients := connectAll(ctx, o, d, conn, nil)
	defer closeAll(clients)
	if conn.Failed > 0 {
		return nil, fmt.Errorf("%d devices failed to connect: %v", conn.Failed, conn.Errors)
	}
	payload := []byte(`{"temperature":21.5,"humidity":40,"pad":"` + strings.Repeat("x", max(o.payload-44, 0)) + `"}`)
	res := newResult(o)
	stop := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	res.begin()
	for k, c := range clients {
		id := o.deviceID(o.offset + k)
		topic := "devices/" + id + "/messages/events/seq=1&%24.ct=application%2Fjson"
		wg.Add(1)
		go func() {
			defer wg.Done()
			var interval time.Duration
			next := time.Now()
			if o.rate > 0 {
				interval = time.Duration(float64(time.Second) / o.rate)
				next = next.Add(time.Duration(rand.Int64N(int64(interval)))) // spread the devices
			}
			for time.Now().Before(stop) && ctx.Err() == nil {
				if interval > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(interval)
				}
				t0 := time.Now()
				if err := c.Publish(topic, 1, payload, o.timeout); err != nil {
					res.addError(err)
					return
				}
				res.observe(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	res.end()
	return res, nil
}

// idle connects every device, prints {"type":"ready"} and holds the
// connections for --hold (or until SIGTERM).
func idle(ctx context.Context, o *options, out io.Writer) (*result, error) {
	d, err := newDialer(o)
	if err != nil {
		return nil, err
	}
	res := newResult(o)
	res.begin()
	clients := connectAll(ctx, o, d, res, nil)
	res.end()
	for _, c := range clients {
		if c != nil {
			res.OK++
		}
	}
	fmt.Fprintf(out, "{\"type\":\"ready\",\"devices\":%d,\"ok\":%d}\n", o.n, res.OK)
	if f, ok := out.(*os.File); ok {
		_ = f.Sync()
	}
	t := time.NewTimer(o.hold)
	defer t.Stop()
	ping := time.NewTicker(time.Duration(o.keepAlive) * time.Second / 2)
	defer ping.Stop()
	for done := false; !done; {
		select {
		case <-t.C:
			done = true
		case <-ctx.Done():
			done = true
		case <-ping.C:
			for _, c := range clients {
				if c != nil {
					_ = c.Ping()
				}
			}
		}
	}
	alive := int64(0)
	for _, c := range clients {
		if c != nil {
			select {
			case <-c.done:
			default:
				alive++
			}
		}
	}
	if alive < res.OK {
		res.addError(fmt.Errorf("%d connections dropped while idle", res.OK-alive))
	}
	closeAll(clients)
	return res, nil
}

// method connects every device, subscribed to direct methods and answering
// each with 200, then invokes --calls methods through the hub service API
// (-c at a time, on devices in turn) and reports the round trip.
func method(ctx context.Context, o *options) (*result, error) {
	d, err := newDialer(o)
	if err != nil {
		return nil, err
	}
	r, err := newREST(ctx, o)
	if err != nil {
		return nil, err
	}
	conn := newResult(o)
	clients := connectAll(ctx, o, d, conn, func(i int, self *atomic.Pointer[client]) func(string, []byte) {
		return func(topic string, payload []byte) {
			// $iothub/methods/POST/{name}/?$rid={rid}
			j := strings.Index(topic, "$rid=")
			c := self.Load()
			if j < 0 || c == nil {
				return
			}
			go c.Publish("$iothub/methods/res/200/?$rid="+topic[j+5:], 0, []byte(`{"ok":true}`), o.timeout)
		}
	})
	defer closeAll(clients)
	if conn.Failed > 0 {
		return nil, fmt.Errorf("%d devices failed to connect: %v", conn.Failed, conn.Errors)
	}
	for _, c := range clients {
		if err := c.Subscribe("$iothub/methods/POST/#", 0, o.timeout); err != nil {
			return nil, err
		}
	}
	res := newResult(o)
	calls := make(chan int)
	var wg sync.WaitGroup
	res.begin()
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range calls {
				id := o.deviceID(o.offset + k%o.n)
				var out struct {
					Status int `json:"status"`
				}
				t0 := time.Now()
				err := r.call(ctx, "POST", o.hubHost, "/twins/"+id+"/methods?api-version=2021-04-12",
					map[string]any{"methodName": "ping", "payload": map[string]any{"k": k}, "responseTimeoutInSeconds": 10}, &out, 200)
				if err == nil && out.Status != 200 {
					err = fmt.Errorf("method status %d", out.Status)
				}
				if err != nil {
					res.addError(err)
					continue
				}
				res.observe(time.Since(t0))
			}
		}()
	}
	for k := 0; k < o.calls && ctx.Err() == nil; k++ {
		calls <- k
	}
	close(calls)
	wg.Wait()
	res.end()
	return res, nil
}
