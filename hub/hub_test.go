package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestTelemetry(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		c := e.connect("d1", key)
		tok := c.Publish("devices/d1/messages/events/%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=utf-8&site=a%20b", 1, false, []byte(`{"t":21.5}`))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		// The PUBACK came after the sink's fsync: the record is on disk now.
		recs, err := export.ReadAll(e.dir)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, r := range recs {
			b, _ := json.Marshal(r)
			if strings.Contains(string(b), `"m-1"`) && strings.Contains(string(b), `21.5`) {
				found = true
			}
		}
		if !found {
			t.Fatalf("telemetry not exported; records: %+v", recs)
		}
		var tel ferry.Event
		eventually(t, "telemetry event", func() bool {
			for _, ev := range e.eventsOf("") {
				if ev.Source == ferry.SourceTelemetry {
					tel = ev
					return true
				}
			}
			return false
		})
		if tel.ID != "m-1" || tel.System["contentType"] != "application/json" || tel.System["contentEncoding"] != "utf-8" ||
			tel.Properties["site"] != "a b" || tel.DeviceID != "d1" || tel.HubID != e.hub.ID {
			t.Errorf("event = %+v", tel)
		}
		eventually(t, "connected state", func() bool {
			d, err := s.GetDeviceIdentity(context.Background(), e.hub.ID, "d1")
			return err == nil && d.ConnectionState == ferry.Connected && !d.LastActivityAt.IsZero()
		})
		if !e.hubs.Connected(e.hub.ID, "d1") {
			t.Error("Connected = false")
		}
		c.Disconnect(100)
		eventually(t, "disconnected state", func() bool {
			d, err := s.GetDeviceIdentity(context.Background(), e.hub.ID, "d1")
			return err == nil && d.ConnectionState == ferry.Disconnected
		})
		eventually(t, "connected and disconnected events", func() bool {
			return len(e.eventsOf(ferry.TypeConnected)) == 1 && len(e.eventsOf(ferry.TypeDisconnected)) == 1
		})
	})
}

// TestModelIDFromUsername keeps the model a device announces with the
// model-id username field on its identity, where queries by $template
// (hub device groups) and a migration's preflight look for it.
func TestModelIDFromUsername(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		const model = "dtmi:ferry:thermostat;2"
		c, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour),
			username: e.hub.HostName + "/d1/?api-version=2021-04-12&model-id=" + url.QueryEscape(model)})
		if code != 0 {
			t.Fatalf("CONNACK %d", code)
		}
		eventually(t, "announced model on the identity", func() bool {
			d, err := s.GetDeviceIdentity(context.Background(), e.hub.ID, "d1")
			return err == nil && d.ModelID == model && d.ConnectionState == ferry.Connected
		})
		c.Disconnect(100)
		// A later connection that announces nothing keeps it.
		e.connect("d1", key).Disconnect(100)
		eventually(t, "disconnected", func() bool {
			d, err := s.GetDeviceIdentity(context.Background(), e.hub.ID, "d1")
			return err == nil && d.ConnectionState == ferry.Disconnected
		})
		d, err := s.GetDeviceIdentity(context.Background(), e.hub.ID, "d1")
		if err != nil || d.ModelID != model {
			t.Errorf("model after a plain reconnect = %q, %v", d.ModelID, err)
		}
	})
}

func TestConnectRefused(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		disabledKey := e.device("off")
		ctx := context.Background()
		d, _ := s.GetDeviceIdentity(ctx, e.hub.ID, "off")
		d.Status = ferry.DeviceDisabled
		if err := s.UpdateDeviceIdentity(ctx, d, d.ETag); err != nil {
			t.Fatal(err)
		}
		expired, _ := sas.Sign(e.hub.HostName+"/devices/d1", key, "", time.Now().Add(-time.Minute))
		policy := e.hub.Policy("service")
		svcTok, _ := sas.Sign(e.hub.HostName+"/devices/d1", policy.PrimaryKey, "service", time.Now().Add(time.Hour))
		tests := []struct {
			name string
			id   string
			o    clientOpts
		}{
			{"wrong key", "d1", clientOpts{password: e.token("d1", ferry.NewKey(32), time.Hour)}},
			{"expired", "d1", clientOpts{password: expired}},
			{"garbage password", "d1", clientOpts{password: "hello"}},
			{"other device's resource", "d1", clientOpts{password: e.token("d2", key, time.Hour)}},
			{"policy without DeviceConnect", "d1", clientOpts{password: svcTok}},
			{"unknown device", "nobody", clientOpts{password: e.token("nobody", key, time.Hour)}},
			{"disabled", "off", clientOpts{password: e.token("off", disabledKey, time.Hour)}},
			{"malformed username", "d1", clientOpts{username: "just-garbage", password: e.token("d1", key, time.Hour)}},
			{"client id mismatch", "d1", clientOpts{clientID: "d9", password: e.token("d1", key, time.Hour)}},
			{"unknown hub", "d1", clientOpts{username: "nohub.test/d1/?api-version=2021-04-12", password: e.token("d1", key, time.Hour)}},
			{"no password no cert", "d1", clientOpts{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, code := e.dial(tt.id, tt.o); code != mqttgw.ConnackNotAuthorized {
					t.Errorf("CONNACK %d, want %d", code, mqttgw.ConnackNotAuthorized)
				}
			})
		}
		// A DeviceConnect policy works, as for a protocol gateway.
		dev := e.hub.Policy("device")
		tok, _ := sas.Sign(e.hub.HostName+"/devices/d1", dev.PrimaryKey, "device", time.Now().Add(time.Hour))
		if _, code := e.dial("d1", clientOpts{password: tok}); code != 0 {
			t.Errorf("device policy: CONNACK %d", code)
		}
	})
}

func TestACL(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		e.device("d2")

		t.Run("subscribe another device's topic", func(t *testing.T) {
			c := e.connect("d1", key)
			tok := c.SubscribeMultiple(map[string]byte{"devices/d2/messages/devicebound/#": 1, "devices/d1/messages/devicebound/#": 1, "#": 0}, nil)
			tok.WaitTimeout(5 * time.Second)
			got := tok.(*paho.SubscribeToken).Result()
			if got["devices/d2/messages/devicebound/#"] != 0x80 || got["#"] != 0x80 || got["devices/d1/messages/devicebound/#"] != 1 {
				t.Errorf("SUBACK %v", got)
			}
			c.Disconnect(0)
		})
		cases := []struct {
			name  string
			topic string
			qos   byte
		}{
			{"publish to another device", "devices/d2/messages/events/", 1},
			{"unknown topic", "foo/bar", 1},
			{"qos 2", "devices/d1/messages/events/", 2},
			{"dps topic on hub", "$dps/registrations/PUT/iotdps-register/?$rid=1", 0},
		}
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				lost := make(chan error, 1)
				c, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour), lost: lost})
				if code != 0 {
					t.Fatalf("CONNACK %d", code)
				}
				c.Publish(tt.topic, tt.qos, false, []byte("{}"))
				select {
				case <-lost:
				case <-time.After(5 * time.Second):
					t.Fatal("connection not closed")
				}
			})
		}
		t.Run("undocumented filter after the four allowed", func(t *testing.T) {
			c := e.connect("d1", key)
			for _, f := range []string{mqttgw.FilterMethods, mqttgw.FilterTwinRes, mqttgw.FilterTwinDesired, "devices/d1/messages/devicebound/#"} {
				c.Subscribe(f, 0, nil).WaitTimeout(5 * time.Second)
			}
			tok := c.Subscribe("devices/d1/messages/devicebound/x", 0, nil)
			tok.WaitTimeout(5 * time.Second)
			if got := tok.(*paho.SubscribeToken).Result()["devices/d1/messages/devicebound/x"]; got != 0x80 {
				t.Errorf("SUBACK %x", got)
			}
		})
	})
}

func TestTakeoverAndExpiry(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		lost := make(chan error, 1)
		_, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour), lost: lost})
		if code != 0 {
			t.Fatal(code)
		}
		e.connect("d1", key)
		select {
		case <-lost:
		case <-time.After(5 * time.Second):
			t.Fatal("first connection not dropped by the second")
		}
		eventually(t, "second connection registered", func() bool { return e.hubs.Connected(e.hub.ID, "d1") })
		if n := e.hubs.ConnectedDevices(e.hub.ID); n != 1 {
			t.Errorf("connected devices after a takeover: %d, want 1", n)
		}

		lost2 := make(chan error, 1)
		short, _ := sas.Sign(e.hub.HostName+"/devices/d1", key, "", time.Now().Add(2*time.Second))
		if _, code := e.dial("d1", clientOpts{password: short, lost: lost2}); code != 0 {
			t.Fatal(code)
		}
		select {
		case <-lost2:
		case <-time.After(10 * time.Second):
			t.Fatal("connection with an expired SAS not closed")
		}
		eventually(t, "no device connected", func() bool { return e.hubs.ConnectedDevices(e.hub.ID) == 0 })
	})
}

func TestWill(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.device("d1")
		c, code := e.dial("d1", clientOpts{password: e.token("d1", key, time.Hour),
			will: &mqttgw.Message{Topic: "devices/d1/messages/events/%24.mid=will-1", Payload: []byte(`"bye"`), QoS: 1}})
		if code != 0 {
			t.Fatal(code)
		}
		_ = c
		// Drop the connection without DISCONNECT by taking it over.
		e.connect("d1", key)
		eventually(t, "will telemetry", func() bool {
			for _, ev := range e.eventsOf("") {
				if ev.ID == "will-1" && ev.Properties["iothub-MessageType"] == "Will" {
					return true
				}
			}
			return false
		})
	})
}

func TestMethods(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		key := e.device("d1")
		_, err := e.hubs.InvokeMethod(ctx, e.hub.ID, "d1", ferry.MethodRequest{MethodName: "reboot"})
		if !ferry.IsDeviceNotOnline(err) {
			t.Fatalf("offline: %v", err)
		}
		if _, err := e.hubs.InvokeMethod(ctx, e.hub.ID, "ghost", ferry.MethodRequest{MethodName: "x"}); ferry.ErrorCode(err) != ferry.ENOTFOUND {
			t.Fatalf("unknown device: %v", err)
		}
		c := e.connect("d1", key)
		answer := true
		c.Subscribe(mqttgw.FilterMethods, 0, func(c paho.Client, m paho.Message) {
			if !answer {
				return
			}
			// $iothub/methods/POST/{name}/?$rid={rid}
			parts := strings.Split(m.Topic(), "/")
			rid := strings.TrimPrefix(parts[4], "?$rid=")
			body, _ := json.Marshal(map[string]any{"method": parts[3], "got": json.RawMessage(m.Payload())})
			c.Publish("$iothub/methods/res/201/?$rid="+rid, 0, false, body)
		}).WaitTimeout(5 * time.Second)
		r, err := e.hubs.InvokeMethod(ctx, e.hub.ID, "d1", ferry.MethodRequest{MethodName: "migration*DeviceMove", Payload: json.RawMessage(`{"a":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 201 || string(r.Payload) != `{"got":{"a":1},"method":"migration*DeviceMove"}` {
			t.Errorf("response %d %s", r.Status, r.Payload)
		}
		answer = false
		_, err = e.hubs.InvokeMethod(ctx, e.hub.ID, "d1", ferry.MethodRequest{MethodName: "slow", ResponseTimeout: 300 * time.Millisecond})
		if !ferry.IsMethodTimeout(err) {
			t.Errorf("timeout: %v", err)
		}
		if _, err := e.hubs.InvokeMethod(ctx, e.hub.ID, "d1", ferry.MethodRequest{MethodName: "a/b"}); ferry.ErrorCode(err) != ferry.EINVALID {
			t.Errorf("bad name: %v", err)
		}
	})
}

func TestTwin(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		key := e.device("d1")
		c := e.connect("d1", key)
		res := make(chan paho.Message, 10)
		desired := make(chan paho.Message, 10)
		c.Subscribe(mqttgw.FilterTwinRes, 0, func(_ paho.Client, m paho.Message) { res <- m }).WaitTimeout(5 * time.Second)
		c.Subscribe(mqttgw.FilterTwinDesired, 0, func(_ paho.Client, m paho.Message) { desired <- m }).WaitTimeout(5 * time.Second)
		next := func() paho.Message {
			t.Helper()
			select {
			case m := <-res:
				return m
			case <-time.After(5 * time.Second):
				t.Fatal("no twin response")
				return nil
			}
		}
		c.Publish("$iothub/twin/PATCH/properties/reported/?$rid=p1", 0, false, []byte(`{"fw":"1.0","nested":{"a":1}}`))
		if m := next(); m.Topic() != "$iothub/twin/res/204/?$rid=p1&$version=2" {
			t.Errorf("patch response %s", m.Topic())
		}
		c.Publish("$iothub/twin/PATCH/properties/reported/?$rid=p2", 0, false, []byte(`{"nested":{"a":null,"b":2}}`))
		if m := next(); m.Topic() != "$iothub/twin/res/204/?$rid=p2&$version=3" {
			t.Errorf("patch response %s", m.Topic())
		}
		c.Publish("$iothub/twin/PATCH/properties/reported/?$rid=p3", 0, false, []byte(`{"fw":`))
		if m := next(); m.Topic() != "$iothub/twin/res/400/?$rid=p3" || !strings.Contains(string(m.Payload()), "errorCode") {
			t.Errorf("bad patch response %s %s", m.Topic(), m.Payload())
		}
		tw, err := e.hubs.UpdateTwin(ctx, e.hub.ID, "d1", ferry.TwinPatch{Desired: map[string]any{"interval": 5}, Tags: map[string]any{"site": "x"}}, "*")
		if err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-desired:
			if m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=2" || string(m.Payload()) != `{"$version":2,"interval":5}` {
				t.Errorf("desired %s %s", m.Topic(), m.Payload())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no desired notification")
		}
		if _, err := e.hubs.UpdateTwin(ctx, e.hub.ID, "d1", ferry.TwinPatch{Tags: map[string]any{"a": 1}}, `"stale"`); ferry.ErrorCode(err) != ferry.EPRECONDITION {
			t.Errorf("stale etag: %v", err)
		}
		c.Publish("$iothub/twin/GET/?$rid=g1", 0, false, []byte(" "))
		m := next()
		if m.Topic() != "$iothub/twin/res/200/?$rid=g1" {
			t.Fatalf("get response %s", m.Topic())
		}
		var doc map[string]map[string]any
		if err := json.Unmarshal(m.Payload(), &doc); err != nil {
			t.Fatal(err)
		}
		if doc["desired"]["interval"] != 5.0 || doc["desired"]["$version"] != 2.0 || doc["reported"]["$version"] != 3.0 ||
			doc["reported"]["fw"] != "1.0" || doc["reported"]["nested"].(map[string]any)["b"] != 2.0 || doc["reported"]["nested"].(map[string]any)["a"] != nil {
			t.Errorf("twin %s", m.Payload())
		}
		stored, _ := s.GetTwin(ctx, e.hub.ID, "d1")
		if stored.ETag != tw.ETag && stored.ReportedVersion != 2 {
			t.Errorf("stored twin %+v", stored)
		}
		if len(e.eventsOf(ferry.TypeDevicePropertyReportedChange)) != 2 || len(e.eventsOf(ferry.TypeDevicePropertyDesiredChange)) != 1 {
			eventually(t, "twin events", func() bool {
				return len(e.eventsOf(ferry.TypeDevicePropertyReportedChange)) == 2 && len(e.eventsOf(ferry.TypeDevicePropertyDesiredChange)) == 1
			})
		}
	})
}

func TestC2D(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		key := e.device("d1")
		if err := e.hubs.SendC2D(ctx, &ferry.C2DMessage{HubID: e.hub.ID, DeviceID: "d1", MessageID: "c-1",
			ContentType: "text/plain", Properties: map[string]string{"k": "v 1"}, Body: []byte("hello")}); err != nil {
			t.Fatal(err)
		}
		if err := e.hubs.SendC2D(ctx, &ferry.C2DMessage{HubID: e.hub.ID, DeviceID: "ghost", Body: []byte("x")}); ferry.ErrorCode(err) != ferry.ENOTFOUND {
			t.Errorf("unknown device: %v", err)
		}
		got := make(chan paho.Message, 10)
		c := e.connect("d1", key)
		c.Subscribe("devices/d1/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) { got <- m }).WaitTimeout(5 * time.Second)
		select {
		case m := <-got:
			if m.Topic() != "devices/d1/messages/devicebound/%24.mid=c-1&%24.to=%2Fdevices%2Fd1%2Fmessages%2Fdevicebound&%24.ct=text%2Fplain&k=v%201" || string(m.Payload()) != "hello" || m.Qos() != 1 {
				t.Errorf("message %s %q q%d", m.Topic(), m.Payload(), m.Qos())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pending message not delivered on subscribe")
		}
		eventually(t, "completion on PUBACK", func() bool {
			p, err := s.ListPendingC2D(ctx, e.hub.ID, "d1")
			return err == nil && len(p) == 0
		})
		if err := e.hubs.SendC2D(ctx, &ferry.C2DMessage{HubID: e.hub.ID, DeviceID: "d1", Body: []byte("live")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if string(m.Payload()) != "live" {
				t.Errorf("payload %q", m.Payload())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("live message not delivered")
		}
		eventually(t, "completion of the live message", func() bool {
			p, err := s.ListPendingC2D(ctx, e.hub.ID, "d1")
			return err == nil && len(p) == 0
		})
		c.Disconnect(100)
		eventually(t, "offline", func() bool { return !e.hubs.Connected(e.hub.ID, "d1") })
		for i := 0; i < ferry.MaxPendingC2D; i++ {
			if err := e.hubs.SendC2D(ctx, &ferry.C2DMessage{HubID: e.hub.ID, DeviceID: "d1", Body: []byte("q")}); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		err := e.hubs.SendC2D(ctx, &ferry.C2DMessage{HubID: e.hub.ID, DeviceID: "d1", Body: []byte("q")})
		if ferry.ErrorCode(err) != ferry.ETHROTTLED {
			t.Errorf("51st message: %v", err)
		}
		var fe *ferry.Error
		_ = errors.As(err, &fe)
	})
}
