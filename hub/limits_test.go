package hub_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
	"github.com/mochi-mqtt/server/v2/packets"
)

func waitLost(t *testing.T, lost chan error, what string) {
	t.Helper()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatalf("connection not closed: %s", what)
	}
}

func TestLimits(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnvWith(t, s, mqttgw.Config{MaxConnections: 2, MaxPacketSize: 4096, MaxSubscriptions: 2}, "127.0.0.1:0")
		key := e.device("d1")
		key2 := e.device("d2")
		e.device("d3")

		t.Run("oversized payload", func(t *testing.T) {
			lost := make(chan error, 1)
			c, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour), lost: lost})
			if code != 0 {
				t.Fatal(code)
			}
			c.Publish("devices/d1/messages/events/", 1, false, bytes.Repeat([]byte("x"), 8192))
			waitLost(t, lost, "oversized publish")
		})
		t.Run("more subscriptions than allowed", func(t *testing.T) {
			c := e.connect("d1", key)
			tok := c.SubscribeMultiple(map[string]byte{mqttgw.FilterMethods: 0, mqttgw.FilterTwinRes: 0}, nil)
			tok.WaitTimeout(5 * time.Second)
			tok = c.Subscribe(mqttgw.FilterTwinDesired, 0, nil)
			tok.WaitTimeout(5 * time.Second)
			if got := tok.(*paho.SubscribeToken).Result()[mqttgw.FilterTwinDesired]; got != 0x80 {
				t.Errorf("third subscription granted: %x", got)
			}
			// Re-subscribing to a held filter is not a new subscription.
			tok = c.Subscribe(mqttgw.FilterMethods, 0, nil)
			tok.WaitTimeout(5 * time.Second)
			if got := tok.(*paho.SubscribeToken).Result()[mqttgw.FilterMethods]; got != 0 {
				t.Errorf("re-subscription refused: %x", got)
			}
			c.Disconnect(100)
			eventually(t, "offline", func() bool { return !e.hubs.Connected(e.hub.ID, "d1") })
		})
		t.Run("shed load with CONNACK 3", func(t *testing.T) {
			eventually(t, "earlier sessions gone", func() bool { return e.gw.Connections() == 0 })
			e.connect("d1", key)
			e.connect("d2", key2)
			eventually(t, "two sessions", func() bool { return e.gw.Connections() == 2 })
			if _, code := e.dial("d3", clientOpts{password: e.token("d3", key, time.Hour)}); code != mqttgw.ConnackServerUnavailable {
				t.Errorf("CONNACK %d, want 3", code)
			}
		})
	})
}

// rawConnect sends a CONNECT with the given keep-alive and returns the
// connection after reading the CONNACK.
func rawConnect(t *testing.T, addr, username, password, clientID string, keepalive uint16) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepalive, ClientIdentifier: clientID,
			UsernameFlag: true, Username: []byte(username), PasswordFlag: true, Password: []byte(password)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}
	return c
}

func TestKeepAliveEnforced(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		c := rawConnect(t, e.addr, e.hub.HostName+"/d1/?api-version=2021-04-12", e.token("d1", key, time.Hour), "d1", 1)
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if err == nil {
			t.Fatal("server sent data instead of closing")
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("silent connection not closed after %v", time.Since(start))
		}
		eventually(t, "disconnected", func() bool { return !e.hubs.Connected(e.hub.ID, "d1") })
	})
}

func TestIdentityChangedClosesSession(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		key := e.device("d1")
		lost := make(chan error, 1)
		if _, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour), lost: lost}); code != 0 {
			t.Fatal(code)
		}
		eventually(t, "online", func() bool { return e.hubs.Connected(e.hub.ID, "d1") })
		d, _ := s.GetDeviceIdentity(ctx, e.hub.ID, "d1")
		d.Status = ferry.DeviceDisabled
		if err := s.UpdateDeviceIdentity(ctx, d, d.ETag); err != nil {
			t.Fatal(err)
		}
		if err := e.hubs.IdentityChanged(ctx, e.hub.ID, "d1"); err != nil {
			t.Fatal(err)
		}
		waitLost(t, lost, "disabled identity")
	})
}

// TestDeviceOnTwoHubs connects the same device ID to two hubs at once, as
// during a migration; each hub is reached by its own address.
func TestDeviceOnTwoHubs(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		e := newEnvWith(t, s, mqttgw.Config{}, "127.0.0.2:0")
		probe, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Skipf("127.0.0.2 is not usable here: %v", err)
		}
		probe.Close()
		other := &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-ip", HostName: "127.0.0.2", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
		if err := s.CreateHub(ctx, other); err != nil {
			t.Fatal(err)
		}
		keyA := e.device("dup")
		keyB := ferry.NewKey(32)
		if err := s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: other.ID, DeviceID: "dup", GenerationID: ferry.NewUUID(),
			Status: ferry.DeviceEnabled, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: keyB}}); err != nil {
			t.Fatal(err)
		}
		lostA := make(chan error, 1)
		if _, code := e.dial("dup", clientOpts{password: e.token("dup", keyA, time.Hour), lost: lostA}); code != 0 {
			t.Fatalf("hub A: CONNACK %d", code)
		}
		// A name no hub has: the local address 127.0.0.2 picks the hub.
		tokB, _ := sas.Sign("gateway.invalid/devices/dup", keyB, "", time.Now().Add(time.Hour))
		if _, code := e.dial("dup", clientOpts{username: "gateway.invalid/dup/?api-version=2021-04-12", password: tokB}); code != 0 {
			t.Fatalf("hub B by local address: CONNACK %d", code)
		}
		eventually(t, "both online", func() bool { return e.hubs.Connected(e.hub.ID, "dup") && e.hubs.Connected(other.ID, "dup") })
		select {
		case <-lostA:
			t.Fatal("the session on hub A was dropped by one on hub B")
		case <-time.After(300 * time.Millisecond):
		}
		// Hub B's key does not open hub A.
		if _, code := e.dial("dup", clientOpts{password: e.token("dup", keyB, time.Hour)}); code != mqttgw.ConnackNotAuthorized {
			t.Errorf("hub B's key on hub A: CONNACK %d", code)
		}
	})
}

func TestWebSocket(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		mux := http.NewServeMux()
		mux.Handle("/$iothub/websocket", e.gw.WebSocketHandler())
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		c, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour),
			broker: "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/$iothub/websocket"})
		if code != 0 {
			t.Fatalf("CONNACK %d", code)
		}
		res := make(chan paho.Message, 1)
		c.Subscribe(mqttgw.FilterTwinRes, 0, func(_ paho.Client, m paho.Message) { res <- m }).WaitTimeout(5 * time.Second)
		c.Publish("$iothub/twin/GET/?$rid=ws", 0, false, []byte(" "))
		select {
		case m := <-res:
			if m.Topic() != "$iothub/twin/res/200/?$rid=ws" {
				t.Errorf("topic %s", m.Topic())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no twin over WebSocket")
		}
		resp, err := http.Get(srv.URL + "/$iothub/websocket")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain GET: %d", resp.StatusCode)
		}
	})
}

// TestCachedIdentityRefusedAfterChange connects once (caching the identity),
// then disables, re-keys or deletes it: after IdentityChanged the next
// CONNECT is refused at once.
func TestCachedIdentityRefusedAfterChange(t *testing.T) {
	cases := []struct {
		name   string
		change func(ctx context.Context, s ferry.Store, d *ferry.DeviceIdentity) error
	}{
		{"disabled", func(ctx context.Context, s ferry.Store, d *ferry.DeviceIdentity) error {
			d.Status = ferry.DeviceDisabled
			return s.UpdateDeviceIdentity(ctx, d, d.ETag)
		}},
		{"rekeyed", func(ctx context.Context, s ferry.Store, d *ferry.DeviceIdentity) error {
			d.Auth.PrimaryKey, d.Auth.SecondaryKey = ferry.NewKey(32), ferry.NewKey(32)
			return s.UpdateDeviceIdentity(ctx, d, d.ETag)
		}},
		{"deleted", func(ctx context.Context, s ferry.Store, d *ferry.DeviceIdentity) error {
			return s.DeleteDeviceIdentity(ctx, d.HubID, d.DeviceID, "*")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
				e := newEnv(t, s)
				ctx := context.Background()
				key := e.device("d1")
				c := e.connect("d1", key)
				c.Disconnect(100)
				eventually(t, "offline", func() bool { return !e.hubs.Connected(e.hub.ID, "d1") })
				d, err := s.GetDeviceIdentity(ctx, e.hub.ID, "d1")
				if err != nil {
					t.Fatal(err)
				}
				if err := tc.change(ctx, s, d); err != nil {
					t.Fatal(err)
				}
				if err := e.hubs.IdentityChanged(ctx, e.hub.ID, "d1"); err != nil {
					t.Fatal(err)
				}
				if _, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour)}); code != 5 {
					t.Fatalf("CONNACK %d, want 5", code)
				}
			})
		})
	}
}

// TestCachedHubDroppedOnHubChanged renames a hub whose host a CONNECT has
// cached: after HubChanged the old host name no longer reaches it.
func TestCachedHubDroppedOnHubChanged(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		key := e.device("d1")
		c := e.connect("d1", key)
		c.Disconnect(100)
		eventually(t, "offline", func() bool { return !e.hubs.Connected(e.hub.ID, "d1") })
		h, err := s.GetHub(ctx, e.hub.ID)
		if err != nil {
			t.Fatal(err)
		}
		h.HostName = "hub-renamed.test"
		if err := s.UpdateHub(ctx, h, h.ETag); err != nil {
			t.Fatal(err)
		}
		if err := e.hubs.HubChanged(ctx, e.hub.ID); err != nil {
			t.Fatal(err)
		}
		if _, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour)}); code != 5 {
			t.Fatalf("old host name: CONNACK %d, want 5", code)
		}
	})
}
