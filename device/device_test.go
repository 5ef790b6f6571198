package device_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/device/devicetest"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/store/storetest"
)

func flush(t *testing.T, c *device.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, c.Stats())
	}
}

func TestTelemetrySurvivesKick(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		c, reg := p.Connect("dev-kick", device.Config{})
		if reg.AssignedHub != p.HubA.HostName || reg.DeviceID != "dev-kick" {
			t.Fatalf("registration %+v", reg)
		}
		devicetest.SendSeq(t, c, 0, 100)
		flush(t, c)
		p.CheckNoGap(t, "dev-kick", 100)

		// A second connection with the same identity makes the hub drop the
		// first, while messages are queued.
		devicetest.SendSeq(t, c, 100, 150)
		intruder, err := device.Connect(context.Background(), device.Config{Hub: reg.AssignedHub, DeviceID: reg.DeviceID, Key: reg.Key,
			Transport: device.Transport{TLS: p.ClientTLS}})
		if err != nil {
			t.Fatal(err)
		}
		devicetest.SendSeq(t, c, 150, 200)
		intruder.Close()
		devicetest.SendSeq(t, c, 200, 300)
		flush(t, c)
		p.CheckNoGap(t, "dev-kick", 300)
		if st := c.Stats(); st.Reconnects < 1 || st.Acked < 300 || st.Queued != 0 {
			t.Errorf("stats %+v: want a reconnect and 300 acks", st)
		}
	})
}

func TestProvisionX509(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx := context.Background()
		now := time.Now()
		caCert, caKey := p.AddX509Group(p.SvcA, "device-ca", "x509-group")
		leaf, key, err := pki.IssueClientCert(caCert, caKey, "dev-x509", now)
		if err != nil {
			t.Fatal(err)
		}
		cert := pki.TLSCertificate(leaf, key)
		pc := device.ProvisionConfig{Host: p.ProvHost, IDScope: p.SvcA.IDScope, RegistrationID: "dev-x509", Certificate: &cert,
			Payload: map[string]string{"modelId": "dtmi:ferry:test;1"}, Transport: device.Transport{TLS: p.ClientTLS}}
		c, reg, err := device.ProvisionAndConnect(ctx, pc, device.Config{ModelID: "dtmi:ferry:test;1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if reg.AssignedHub != p.HubA.HostName || reg.EnrollmentGroupID != "x509-group" || reg.Key != "" {
			t.Errorf("registration %+v", reg)
		}
		devicetest.SendSeq(t, c, 0, 10)
		flush(t, c)
		p.CheckNoGap(t, "dev-x509", 10)

		// A certificate from another CA is refused with EUNAUTHORIZED.
		other, otherKey, err := pki.NewSelfSignedCert("dev-x509", now)
		if err != nil {
			t.Fatal(err)
		}
		bad := pki.TLSCertificate(other, otherKey)
		pc.Certificate = &bad
		// The shared session cache must not resume the first device's
		// session, which would carry its certificate.
		if _, err := device.Provision(ctx, pc); !ferry.IsCode(err, ferry.EUNAUTHORIZED) {
			t.Errorf("foreign certificate: got %v, want EUNAUTHORIZED", err)
		}
	})
}

func TestProvisionErrors(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx := context.Background()
		for _, tc := range []struct {
			name string
			edit func(*device.ProvisionConfig)
			code string
		}{
			{"ErrWrongGroupKey", func(c *device.ProvisionConfig) { c.GroupKey = ferry.NewKey(64) }, ferry.EUNAUTHORIZED},
			{"ErrUnknownScope", func(c *device.ProvisionConfig) { c.IDScope = "0ne00000000" }, ferry.EUNAUTHORIZED},
			{"ErrNoCredentials", func(c *device.ProvisionConfig) { c.GroupKey = "" }, ferry.EINVALID},
			{"ErrTwoCredentials", func(c *device.ProvisionConfig) { c.SymmetricKey = ferry.NewKey(32) }, ferry.EINVALID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pc := p.ProvisionConfig("dev-err")
				tc.edit(&pc)
				_, err := device.Provision(ctx, pc)
				if !ferry.IsCode(err, tc.code) {
					t.Errorf("got %v, want %s", err, tc.code)
				}
			})
		}
	})
}

func TestMethodTwinC2D(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx := context.Background()
		desired := make(chan map[string]any, 4)
		c2d := make(chan device.Message, 4)
		c, _ := p.Connect("dev-ops", device.Config{
			OnMethod: func(_ context.Context, r device.MethodRequest) device.MethodResponse {
				return device.MethodResponse{Status: 201, Payload: map[string]any{"method": r.Name, "got": r.Payload}}
			},
			OnDesired: func(patch map[string]any, _ int64) { desired <- patch },
			OnC2D:     func(m device.Message) { c2d <- m },
		})
		res, err := p.Hubs.InvokeMethod(ctx, p.HubA.ID, "dev-ops", ferry.MethodRequest{MethodName: "reboot",
			Payload: json.RawMessage(`{"delay":3}`), ResponseTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 201 || string(res.Payload) != `{"got":{"delay":3},"method":"reboot"}` {
			t.Errorf("method response %d %s", res.Status, res.Payload)
		}

		v, err := c.UpdateReported(ctx, map[string]any{"firmware": "1.0"})
		if err != nil || v < 1 {
			t.Fatalf("update reported: %d, %v", v, err)
		}
		if _, err := p.Hubs.UpdateTwin(ctx, p.HubA.ID, "dev-ops", ferry.TwinPatch{Desired: map[string]any{"interval": 5}}, "*"); err != nil {
			t.Fatal(err)
		}
		select {
		case patch := <-desired:
			if patch["interval"] != float64(5) {
				t.Errorf("desired patch %v", patch)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no desired patch")
		}
		tw, err := c.GetTwin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tw.Reported["firmware"] != "1.0" || tw.Desired["interval"] != float64(5) || tw.DesiredVersion < 1 {
			t.Errorf("twin %+v", tw)
		}

		if err := p.Hubs.SendC2D(ctx, &ferry.C2DMessage{ID: ferry.NewUUID(), HubID: p.HubA.ID, DeviceID: "dev-ops", MessageID: "m1",
			Properties: map[string]string{"kind": "hello world"}, Body: []byte("hi"), EnqueuedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-c2d:
			if string(m.Body) != "hi" || m.MessageID != "m1" || m.Properties["kind"] != "hello world" {
				t.Errorf("C2D %+v", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no C2D message")
		}
	})
}

// sender sends sequence numbers until stopped and returns how many.
func sender(t *testing.T, c *device.Client) (stop func() int) {
	var n atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			i := int(n.Load())
			devicetest.SendSeq(t, c, i, i+1)
			n.Add(1)
		}
	}()
	return func() int { close(done); wg.Wait(); return int(n.Load()) }
}

func TestDeviceMove(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx := context.Background()
		moved := make(chan error, 4)
		c, _ := p.Connect("dev-move", device.Config{OnMoved: func(_ *device.Registration, err error) { moved <- err }})
		stop := sender(t, c)
		time.Sleep(100 * time.Millisecond)

		move := func(hubID, method, payload string) {
			t.Helper()
			res, err := p.Hubs.InvokeMethod(ctx, hubID, "dev-move", ferry.MethodRequest{MethodName: method,
				Payload: json.RawMessage(payload), ResponseTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second})
			if err != nil || res.Status != 200 {
				t.Fatalf("%s: %d %s %v", method, res.Status, res.Payload, err)
			}
			select {
			case err := <-moved:
				if err != nil {
					t.Fatalf("move: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the device did not move")
			}
		}
		move(p.HubA.ID, "migration*DeviceMove", `{"idScope":"`+p.SvcB.IDScope+`","deviceTemplateId":"dtmi:x:y;1"}`)
		if c.Hub() != p.HubB.HostName {
			t.Fatalf("hub after the move: %s", c.Hub())
		}
		devicetest.Eventually(t, "connection at hub B", func() bool { return p.Hubs.Connected(p.HubB.ID, "dev-move") })
		time.Sleep(100 * time.Millisecond)
		// Back with the plain method name and Ferry's provisioningHost.
		move(p.HubB.ID, "DeviceMove", `{"idScope":"`+p.SvcA.IDScope+`","provisioningHost":"`+p.ProvHost+`"}`)
		if c.Hub() != p.HubA.HostName {
			t.Fatalf("hub after the second move: %s", c.Hub())
		}
		time.Sleep(100 * time.Millisecond)
		n := stop()
		flush(t, c)
		p.CheckNoGap(t, "dev-move", n)
		if st := c.Stats(); st.Moves != 2 {
			t.Errorf("stats %+v: want 2 moves", st)
		}
		if _, err := s.GetDeviceIdentity(ctx, p.HubB.ID, "dev-move"); err != nil {
			t.Errorf("identity at hub B: %v", err)
		}
	})
}

func TestDeviceMoveRefusedStaysHome(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx := context.Background()
		g, err := s.GetEnrollmentGroup(ctx, p.SvcB.ID, "group")
		if err != nil {
			t.Fatal(err)
		}
		g.Status = ferry.EnrollmentDisabled
		if err := s.PutEnrollmentGroup(ctx, g, g.ETag); err != nil {
			t.Fatal(err)
		}
		moved := make(chan error, 1)
		c, _ := p.Connect("dev-stay", device.Config{OnMoved: func(_ *device.Registration, err error) { moved <- err }})
		devicetest.SendSeq(t, c, 0, 20)
		res, err := p.Hubs.InvokeMethod(ctx, p.HubA.ID, "dev-stay", ferry.MethodRequest{MethodName: "migration*DeviceMove",
			Payload: json.RawMessage(`{"idScope":"` + p.SvcB.IDScope + `"}`), ResponseTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second})
		if err != nil || res.Status != 200 {
			t.Fatalf("move: %d %v", res.Status, err)
		}
		select {
		case err := <-moved:
			if err == nil || !strings.Contains(err.Error(), "provision") {
				t.Fatalf("move: got %v, want a refusal", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no move outcome")
		}
		devicetest.SendSeq(t, c, 20, 40)
		flush(t, c)
		if c.Hub() != p.HubA.HostName {
			t.Errorf("hub %s, want %s", c.Hub(), p.HubA.HostName)
		}
		p.CheckNoGap(t, "dev-stay", 40)

		// A move without an ID scope is refused with 400.
		res, err = p.Hubs.InvokeMethod(ctx, p.HubA.ID, "dev-stay", ferry.MethodRequest{MethodName: "DeviceMove",
			Payload: json.RawMessage(`{}`), ResponseTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second})
		if err != nil || res.Status != 400 {
			t.Errorf("empty move: %d %v", res.Status, err)
		}
	})
}

func TestSASRenewal(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		// The hub cuts a session when its token expires; the client must
		// reconnect with a fresh one before that.
		c, _ := p.Connect("dev-renew", device.Config{TokenTTL: 2 * time.Second})
		stop := sender(t, c)
		time.Sleep(4 * time.Second)
		n := stop()
		flush(t, c)
		p.CheckNoGap(t, "dev-renew", n)
		if st := c.Stats(); st.Renewals < 2 || st.Reconnects != 0 {
			t.Errorf("stats %+v: want at least 2 renewals and no lost connection", st)
		}
	})
}

func TestDeviceMoveUnreachableHubGoesBack(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		p := devicetest.NewPlane(t, s)
		ctx := context.Background()
		// Service C assigns a hub nobody listens for.
		dead := p.NewHub("hub-dead", "127.0.0.3:1")
		svcC := p.NewService("dps-c", dead)
		p.AddGroup(svcC)
		moved := make(chan error, 1)
		c, _ := p.Connect("dev-back", device.Config{MoveTimeout: time.Second,
			OnMoved: func(_ *device.Registration, err error) { moved <- err }})
		stop := sender(t, c)
		res, err := p.Hubs.InvokeMethod(ctx, p.HubA.ID, "dev-back", ferry.MethodRequest{MethodName: "migration*DeviceMove",
			Payload: json.RawMessage(`{"idScope":"` + svcC.IDScope + `"}`), ResponseTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second})
		if err != nil || res.Status != 200 {
			t.Fatalf("move: %d %v", res.Status, err)
		}
		select {
		case err := <-moved:
			if !ferry.IsCode(err, ferry.ETIMEOUT) {
				t.Fatalf("move: got %v, want ETIMEOUT", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no move outcome")
		}
		devicetest.Eventually(t, "the device back at hub A", func() bool { return c.Connected() && c.Hub() == p.HubA.HostName })
		time.Sleep(100 * time.Millisecond)
		n := stop()
		flush(t, c)
		p.CheckNoGap(t, "dev-back", n)
		if st := c.Stats(); st.Moves != 0 {
			t.Errorf("stats %+v: want no completed move", st)
		}
	})
}
