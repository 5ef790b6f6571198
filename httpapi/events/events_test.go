package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/httpapi/events"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
)

// env is a store with one hub, a reader principal and a principal without
// roles, the real authorizer and bus, and the handler on a test server
// that takes the caller's principal ID from the X-Test-Principal header.
type env struct {
	srv  *httptest.Server
	bus  *eventbus.Bus
	hub  *ferry.Hub
	peer *ferry.Hub
	h    *events.Handler
}

func setup(t *testing.T, s ferry.Store, buffer int) *env {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	hub := &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-a", HostName: "127.0.0.2", SubscriptionID: "00000000-0000-0000-0000-000000000001",
		ResourceGroup: "fleet", Location: "global", CreatedAt: now}
	peer := &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-b", HostName: "127.0.0.3", CreatedAt: now}
	for _, h := range []*ferry.Hub{hub, peer} {
		if err := s.CreateHub(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	principals := map[string]*ferry.Principal{}
	for _, name := range []string{"reader", "nobody"} {
		p := &ferry.Principal{ID: ferry.NewUUID(), Name: name, Type: ferry.PrincipalUser, CreatedAt: now, UpdatedAt: now}
		if err := s.CreatePrincipal(ctx, p); err != nil {
			t.Fatal(err)
		}
		principals[name] = p
	}
	if err := rbac.SeedBuiltIns(ctx, s); err != nil {
		t.Fatal(err)
	}
	err := s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: ferry.NewUUID(), Scope: hub.ResourceID().String(),
		RoleDefinitionID: ferry.RoleIoTHubDataReader, PrincipalID: principals["reader"].ID, PrincipalType: ferry.PrincipalUser,
		CreatedAt: now, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	authz := rbac.New(s)
	if err := authz.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	bus := eventbus.New(eventbus.Options{})
	t.Cleanup(func() { bus.Close() })
	mux := http.NewServeMux()
	h := events.New(events.Config{Hubs: s, Bus: bus, Authorizer: authz, Buffer: buffer})
	mux.Handle(events.Pattern, h)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := principals[r.Header.Get("X-Test-Principal")]; p != nil {
			r = r.WithContext(ferry.NewContextWithCaller(r.Context(), &ferry.Caller{Principal: p}))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &env{srv: srv, bus: bus, hub: hub, peer: peer, h: h}
}

// open starts a stream and returns the response once its headers arrived,
// that is once the stream is subscribed.
func (e *env) open(t *testing.T, principal, query string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/hubs/hub-a/events"+query, nil)
	req.Header.Set("X-Test-Principal", principal)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func telemetry(hub *ferry.Hub, device string, n int) ferry.Event {
	return ferry.Event{ID: fmt.Sprintf("m%d", n), Time: time.Now().UTC(), Source: ferry.SourceTelemetry, HubID: hub.ID,
		HubHost: hub.HostName, DeviceID: device, Body: []byte(fmt.Sprintf(`{"n":%d}`, n)), Properties: map[string]string{"a": "b"}}
}

// frame is one parsed Server-Sent Event, or a comment.
type frame struct {
	event, id, data, comment string
}

func readFrames(t *testing.T, resp *http.Response) []frame {
	t.Helper()
	var out []frame
	var cur frame
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur != (frame{}) {
				out = append(out, cur)
			}
			cur = frame{}
		case strings.HasPrefix(line, ":"):
			out = append(out, frame{comment: strings.TrimSpace(line[1:])})
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "event":
				cur.event = v
			case "id":
				cur.id = v
			case "data":
				cur.data = v
			}
		}
	}
	return out
}

func TestStream(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := setup(t, s, 0)
		resp := e.open(t, "reader", "?deviceId=sensor-1&timeout=1")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(e.bus.Publish(ctx, telemetry(e.hub, "sensor-1", 1)))
		must(e.bus.Publish(ctx, telemetry(e.hub, "sensor-2", 2)))  // another device
		must(e.bus.Publish(ctx, telemetry(e.peer, "sensor-1", 3))) // another hub
		must(e.bus.Publish(ctx, ferry.Event{ID: "c1", Source: ferry.SourceDeviceConnectivity, Type: ferry.TypeDisconnected,
			HubID: e.hub.ID, DeviceID: "sensor-1", Data: json.RawMessage(`{"reason":"gone"}`)}))
		must(e.bus.Publish(ctx, ferry.Event{ID: "m4", Source: ferry.SourceTelemetry, HubID: e.hub.ID, DeviceID: "sensor-1", Body: []byte("plain text")}))

		frames := readFrames(t, resp) // the stream ends after timeout=1
		var got []events.Message
		var last string
		for _, f := range frames {
			if f.comment != "" {
				last = f.comment
				continue
			}
			var m events.Message
			if err := json.Unmarshal([]byte(f.data), &m); err != nil {
				t.Fatalf("data %q: %v", f.data, err)
			}
			if f.event != m.Source || f.id != m.ID {
				t.Errorf("frame %+v does not match its data", f)
			}
			got = append(got, m)
		}
		if len(got) != 3 {
			t.Fatalf("got %d events, want 3: %+v", len(got), got)
		}
		if got[0].ID != "m1" || string(got[0].Payload) != `{"n":1}` || got[0].Properties["a"] != "b" || got[0].HubHost != "127.0.0.2" {
			t.Errorf("telemetry %+v", got[0])
		}
		if got[1].Type != ferry.TypeDisconnected || string(got[1].Data) != `{"reason":"gone"}` {
			t.Errorf("lifecycle %+v", got[1])
		}
		if string(got[2].Payload) != `"plain text"` {
			t.Errorf("text payload %s", got[2].Payload)
		}
		if last != "end; dropped 0 events" {
			t.Errorf("last comment %q", last)
		}
	})
}

// TestSlowClientDrops floods a stream whose buffer holds one event: every
// event is either delivered or counted in the final comment line.
func TestSlowClientDrops(t *testing.T) {
	s := storetest.OpenSQLite(t)
	e := setup(t, s, 1)
	resp := e.open(t, "reader", "?timeout=1")
	const sent = 2000
	for i := range sent {
		if err := e.bus.Publish(context.Background(), telemetry(e.hub, "sensor-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	received, dropped := 0, -1
	for _, f := range readFrames(t, resp) {
		switch {
		case f.data != "":
			received++
		case strings.HasPrefix(f.comment, "end; dropped "):
			fmt.Sscanf(f.comment, "end; dropped %d events", &dropped)
		}
	}
	if dropped < 0 || received+dropped != sent {
		t.Errorf("received %d + dropped %d, want %d in all", received, dropped, sent)
	}
	if st := e.bus.Stats(); st.Dropped != 0 {
		t.Errorf("the bus itself dropped %d events", st.Dropped)
	}
}

func TestErrors(t *testing.T) {
	s := storetest.OpenSQLite(t)
	e := setup(t, s, 0)
	for _, c := range []struct {
		name, principal, path string
		status                int
	}{
		{"ErrNoCaller", "", "/api/hubs/hub-a/events", http.StatusUnauthorized},
		{"ErrNoRole", "nobody", "/api/hubs/hub-a/events", http.StatusForbidden},
		{"ErrRoleElsewhere", "reader", "/api/hubs/hub-b/events", http.StatusForbidden},
		{"ErrUnknownHub", "reader", "/api/hubs/nope/events", http.StatusNotFound},
		{"ErrBadTimeout", "reader", "/api/hubs/hub-a/events?timeout=soon", http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+c.path, nil)
			req.Header.Set("X-Test-Principal", c.principal)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != c.status || body.Error.Message == "" {
				t.Errorf("got %d %+v, want %d with a message", resp.StatusCode, body, c.status)
			}
		})
	}
}

// TestShutdown ends open streams, so that a graceful server shutdown does
// not wait for them, and refuses new ones.
func TestShutdown(t *testing.T) {
	e := setup(t, storetest.OpenSQLite(t), 0)
	resp := e.open(t, "reader", "")
	e.h.Shutdown()
	frames := readFrames(t, resp) // returns once the stream ends
	if len(frames) == 0 || frames[len(frames)-1].comment != "end; dropped 0 events" {
		t.Errorf("frames %+v", frames)
	}
	if resp := e.open(t, "reader", ""); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("a stream opened after Shutdown: %d", resp.StatusCode)
	}
}
