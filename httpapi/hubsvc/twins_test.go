package hubsvc_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

// inbox collects what a device receives.
type inbox struct {
	mu   sync.Mutex
	msgs []paho.Message
}

func (b *inbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}

func (b *inbox) find(prefix string) paho.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.msgs {
		if strings.HasPrefix(m.Topic(), prefix) {
			return m
		}
	}
	return nil
}

func TestTwins(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.createDevice("d1")
		var in inbox
		e.connect("d1", key, in.handler)

		r := e.owner("GET", "/twins/d1", nil)
		wantStatus(t, r, 200)
		etag := r.obj(t)["etag"].(string)

		r = e.owner("PATCH", "/twins/d1", map[string]any{"tags": map[string]any{"site": "berlin"},
			"properties": map[string]any{"desired": map[string]any{"fw": "2.0", "$version": 7}}}, "If-Match", `"`+etag+`"`)
		wantStatus(t, r, 200)
		tw := r.obj(t)
		if tw["tags"].(map[string]any)["site"] != "berlin" || tw["properties"].(map[string]any)["desired"].(map[string]any)["fw"] != "2.0" {
			t.Fatalf("after patch: %s", r.body)
		}
		if tw["etag"] == etag || r.header.Get("ETag") == "" {
			t.Errorf("etag did not change or is not in the header: %s", r.body)
		}
		eventually(t, "desired update on the device", func() bool { return in.find("$iothub/twin/PATCH/properties/desired/") != nil })
		var desired map[string]any
		if err := json.Unmarshal(in.find("$iothub/twin/PATCH/properties/desired/").Payload(), &desired); err != nil || desired["fw"] != "2.0" {
			t.Errorf("device got %v (%v)", desired, err)
		}

		t.Run("StaleETag", func(t *testing.T) {
			wantHubError(t, e.owner("PATCH", "/twins/d1", map[string]any{"tags": map[string]any{"a": 1}}, "If-Match", `"`+etag+`"`), 412, "PreconditionFailed")
		})
		t.Run("Reported", func(t *testing.T) {
			wantHubError(t, e.owner("PATCH", "/twins/d1", map[string]any{"properties": map[string]any{"reported": map[string]any{"a": 1}}}), 400, "ArgumentInvalid")
		})
		t.Run("BadKey", func(t *testing.T) {
			wantHubError(t, e.owner("PATCH", "/twins/d1", map[string]any{"tags": map[string]any{"a.b": 1}}), 400, "ArgumentInvalid")
		})
		t.Run("InvalidJSON", func(t *testing.T) {
			wantHubError(t, e.owner("PATCH", "/twins/d1", `{"tags":`), 400, "ArgumentInvalid")
		})
		t.Run("Missing", func(t *testing.T) {
			wantHubError(t, e.owner("PATCH", "/twins/nope", map[string]any{"tags": map[string]any{"a": 1}}), 404, "DeviceNotFound")
			wantHubError(t, e.owner("GET", "/twins/nope", nil), 404, "DeviceNotFound")
		})
		t.Run("RemoveWithNull", func(t *testing.T) {
			r := e.owner("PATCH", "/twins/d1", map[string]any{"tags": map[string]any{"site": nil, "zone": "z1"}})
			wantStatus(t, r, 200)
			tags := r.obj(t)["tags"].(map[string]any)
			if _, ok := tags["site"]; ok || tags["zone"] != "z1" {
				t.Errorf("tags = %v", tags)
			}
		})
		t.Run("Replace", func(t *testing.T) {
			r := e.owner("PUT", "/twins/d1", map[string]any{"tags": map[string]any{"only": true}, "properties": map[string]any{"desired": map[string]any{}}})
			wantStatus(t, r, 200)
			tw := r.obj(t)
			if len(tw["tags"].(map[string]any)) != 1 {
				t.Errorf("tags = %v", tw["tags"])
			}
			if _, ok := tw["properties"].(map[string]any)["desired"].(map[string]any)["fw"]; ok {
				t.Errorf("PUT kept old desired properties: %s", r.body)
			}
		})
	})
}

func TestMethods(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.createDevice("d1")
		e.createDevice("offline")
		invoke := func(id string, body map[string]any) resp {
			t.Helper()
			return e.do("POST", hostA, "/twins/"+id+"/methods", e.hubToken(e.hubA, "service"), body)
		}

		t.Run("NotOnline", func(t *testing.T) {
			r := invoke("offline", map[string]any{"methodName": "reboot", "responseTimeoutInSeconds": 5})
			wantHubError(t, r, 404, "DeviceNotOnline")
			if n := r.obj(t)["errorCode"]; n != float64(404103) {
				t.Errorf("errorCode %v, want 404103", n)
			}
		})
		t.Run("UnknownDevice", func(t *testing.T) {
			wantHubError(t, invoke("nope", map[string]any{"methodName": "reboot"}), 404, "DeviceNotFound")
		})
		bad := []struct {
			name string
			body map[string]any
		}{
			{"NoName", map[string]any{"payload": 1}},
			{"BadName", map[string]any{"methodName": "a/b"}},
			{"ShortTimeout", map[string]any{"methodName": "m", "responseTimeoutInSeconds": 1}},
			{"LongTimeout", map[string]any{"methodName": "m", "responseTimeoutInSeconds": 301}},
			{"NegativeConnect", map[string]any{"methodName": "m", "connectTimeoutInSeconds": -1}},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				wantHubError(t, invoke("d1", b.body), 400, "ArgumentInvalid")
			})
		}

		var c paho.Client
		c = e.connect("d1", key, func(_ paho.Client, m paho.Message) {
			// $iothub/methods/POST/{name}/?$rid={rid}
			topic := m.Topic()
			if !strings.HasPrefix(topic, "$iothub/methods/POST/") {
				return
			}
			name := strings.Split(strings.TrimPrefix(topic, "$iothub/methods/POST/"), "/")[0]
			rid := topic[strings.Index(topic, "$rid=")+5:]
			if name == "silent" {
				return
			}
			body, _ := json.Marshal(map[string]any{"echo": json.RawMessage(m.Payload()), "method": name})
			c.Publish("$iothub/methods/res/201/?$rid="+rid, 0, false, body)
		})

		t.Run("RoundTrip", func(t *testing.T) {
			r := invoke("d1", map[string]any{"methodName": "reboot", "payload": map[string]any{"delay": 3}, "responseTimeoutInSeconds": 10})
			wantStatus(t, r, 200)
			var out struct {
				Status  int
				Payload struct {
					Echo   map[string]any
					Method string
				}
			}
			r.json(t, &out)
			if out.Status != 201 || out.Payload.Method != "reboot" || out.Payload.Echo["delay"] != float64(3) {
				t.Errorf("response %s", r.body)
			}
		})
		t.Run("Timeout", func(t *testing.T) {
			r := invoke("d1", map[string]any{"methodName": "silent", "responseTimeoutInSeconds": 5})
			wantHubError(t, r, 504, "GatewayTimeout")
			if n := r.obj(t)["errorCode"]; n != float64(504101) {
				t.Errorf("errorCode %v, want 504101", n)
			}
		})
	})
}

func TestC2D(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.createDevice("d1")
		var in inbox
		e.connect("d1", key, in.handler)
		send := func(id, body string, headers ...string) resp {
			t.Helper()
			return e.do("POST", hostA, "/devices/"+id+"/messages/deviceBound", e.hubToken(e.hubA, "service"), body, headers...)
		}
		r := send("d1", "hello", "iothub-messageid", "m-1", "iothub-app-color", "blue", "Content-Type", "text/plain")
		wantStatus(t, r, 204)
		eventually(t, "C2D on the device", func() bool { return in.find("devices/d1/messages/devicebound/") != nil })
		m := in.find("devices/d1/messages/devicebound/")
		if string(m.Payload()) != "hello" || !strings.Contains(m.Topic(), "color=blue") || !strings.Contains(m.Topic(), "m-1") {
			t.Errorf("device got %s on %s", m.Payload(), m.Topic())
		}
		t.Run("UnknownDevice", func(t *testing.T) {
			wantHubError(t, send("nope", "x"), 404, "DeviceNotFound")
		})
		t.Run("TooLarge", func(t *testing.T) {
			wantStatus(t, send("d1", strings.Repeat("x", 64*1024+1)), 413)
		})
		t.Run("QueueFull", func(t *testing.T) {
			e.createDevice("offline")
			for i := range ferry.MaxPendingC2D {
				wantStatus(t, send("offline", fmt.Sprint(i)), 204)
			}
			wantHubError(t, send("offline", "one too many"), 403, "DeviceMaximumQueueDepthExceeded")
		})
		t.Run("RegistryReadCannotSend", func(t *testing.T) {
			wantStatus(t, e.do("POST", hostA, "/devices/d1/messages/deviceBound", e.hubToken(e.hubA, "registryRead"), "x"), 401)
		})
	})
}
