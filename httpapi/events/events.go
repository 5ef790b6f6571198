// Package events streams a hub's device events to operators over HTTP as
// Server-Sent Events: GET /api/hubs/{hubName}/events[?deviceId=&timeout=]
// answers text/event-stream with one event per telemetry message or
// lifecycle change that the device plane publishes on the events bus. It is
// what `ferry hub monitor-events` tails.
//
// The caller needs the data action Microsoft.Devices/IotHubs/devices/read on
// the hub (or at the root scope for a hub without an ARM resource ID), as for
// reading the hub's device registry.
//
// Each stream has a bounded buffer. The bus never waits for a stream, and a
// stream never waits for a slow client beyond its buffer: events that do not
// fit are dropped, and the stream says how many in a comment line
// (": dropped N events") before the next event it sends and when it ends.
package events

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// Pattern is the ServeMux pattern the handler serves.
const Pattern = "GET /api/hubs/{hubName}/events"

// ActionRead is the data action a caller needs on the hub.
const ActionRead = "Microsoft.Devices/IotHubs/devices/read"

// Defaults of Config.
const (
	DefaultBuffer    = 256
	DefaultHeartbeat = 15 * time.Second
)

// HubLookup finds hubs by name; ferry.Store satisfies it.
type HubLookup interface {
	// GetHubByName returns a hub by name (case-insensitive). Returns ENOTFOUND.
	GetHubByName(ctx context.Context, name string) (*ferry.Hub, error)
}

// Config is what the handler needs.
type Config struct {
	Hubs       HubLookup
	Bus        ferry.EventBus
	Authorizer ferry.Authorizer
	// Buffer is how many events a stream holds for a slow client before
	// it drops them. 0 means DefaultBuffer.
	Buffer int
	// Heartbeat is how often an idle stream sends a comment line, so that
	// proxies and clients see it is alive. 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to the client; 0 means 30 s.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Message is the data of one streamed event, as JSON.
type Message struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"enqueuedTime"`
	Source   string    `json:"messageSource"`         // telemetry, deviceConnectivity, deviceLifecycle, properties
	Type     string    `json:"messageType,omitempty"` // "" for telemetry
	HubHost  string    `json:"hubHost"`
	DeviceID string    `json:"deviceId"`
	ModelID  string    `json:"modelId,omitempty"`
	Module   string    `json:"module,omitempty"`
	// Component is the telemetry's component name, if any.
	Component string `json:"component,omitempty"`
	// Payload is the telemetry body: its JSON if it is JSON, else a string
	// (base64 when PayloadEncoding says so).
	Payload          json.RawMessage   `json:"payload,omitempty"`
	PayloadEncoding  string            `json:"payloadEncoding,omitempty"` // "base64" for binary bodies
	Properties       map[string]string `json:"properties,omitempty"`
	SystemProperties map[string]string `json:"systemProperties,omitempty"`
	Data             json.RawMessage   `json:"data,omitempty"` // detail of lifecycle events
}

// NewMessage renders an event for the stream.
func NewMessage(e ferry.Event) Message {
	m := Message{ID: e.ID, Time: e.Time, Source: e.Source, Type: e.Type, HubHost: e.HubHost, DeviceID: e.DeviceID,
		ModelID: e.ModelID, Module: e.Module, Component: e.Component, Properties: e.Properties,
		SystemProperties: e.System, Data: e.Data}
	switch {
	case len(e.Body) == 0:
	case json.Valid(e.Body):
		m.Payload = json.RawMessage(e.Body)
	case utf8.Valid(e.Body):
		m.Payload, _ = json.Marshal(string(e.Body))
	default:
		m.Payload, _ = json.Marshal(base64.StdEncoding.EncodeToString(e.Body))
		m.PayloadEncoding = "base64"
	}
	return m
}

// Handler serves Pattern.
type Handler struct {
	cfg  Config
	log  *slog.Logger
	http http.Handler
	done chan struct{}
	once sync.Once
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.http.ServeHTTP(w, r) }

// Shutdown ends every open stream with its final comment line, so that a
// graceful server shutdown (http.Server.RegisterOnShutdown) need not wait
// for clients that would otherwise read forever. Later requests are
// refused.
func (h *Handler) Shutdown() { h.once.Do(func() { close(h.done) }) }

// New returns the handler for Pattern.
func New(cfg Config) *Handler {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: log.With("subsystem", "events-api"), done: make(chan struct{})}
	h.http = httpapi.Handle(h.log, httpapi.RenderPlain, h.serve)
	return h
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	select {
	case <-h.done:
		return ferry.Errorf(ferry.EPRECONDITION, "The server is shutting down.")
	default:
	}
	caller := ferry.CallerFromContext(ctx)
	if caller == nil {
		return ferry.Errorf(ferry.EUNAUTHORIZED, "authentication required")
	}
	name := r.PathValue("hubName")
	q := r.URL.Query()
	deviceID := q.Get("deviceId")
	var timeout time.Duration
	if v := q.Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return ferry.Errorf(ferry.EINVALID, "timeout must be a whole number of seconds, 0 for none")
		}
		timeout = time.Duration(n) * time.Second
	}
	hub, err := h.cfg.Hubs.GetHubByName(ctx, name)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return ferry.Errorf(ferry.ENOTFOUND, "The IoT hub %q was not found.", name)
	}
	if err != nil {
		return fmt.Errorf("events: get hub: %w", err)
	}
	scope := hub.ResourceID().String() // "/" for a hub made outside ARM
	if err := h.cfg.Authorizer.Authorize(ctx, caller, ActionRead, scope); err != nil {
		if ferry.IsCode(err, ferry.EFORBIDDEN) {
			// Say as little as ARM does about what exists.
			return ferry.Errorf(ferry.EFORBIDDEN, "The caller may not read the events of IoT hub %q.", hub.Name)
		}
		return err
	}

	// Subscribe before answering: once the client has the headers, every
	// later event reaches it (or is counted as dropped).
	ch := make(chan ferry.Event, h.cfg.Buffer)
	var dropped atomic.Uint64
	cancel := h.cfg.Bus.Subscribe("events-api", func(e ferry.Event) {
		if e.HubID != hub.ID || (deviceID != "" && e.DeviceID != deviceID) {
			return
		}
		select {
		case ch <- e:
		default:
			dropped.Add(1)
		}
	})
	defer cancel()

	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		if _, err := w.Write([]byte(s)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(fmt.Sprintf(": streaming events of hub %s\n\n", hub.Name)) {
		return nil
	}
	h.log.InfoContext(ctx, "event stream opened", "hub_id", hub.ID, "device_id", deviceID, "caller", caller.Name())

	var end <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		end = t.C
	}
	beat := time.NewTicker(h.cfg.Heartbeat)
	defer beat.Stop()
	var reported uint64
	reportDrops := func() bool {
		if n := dropped.Load(); n > reported {
			reported = n
			return write(fmt.Sprintf(": dropped %d events\n", n))
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.done:
			write(fmt.Sprintf(": end; dropped %d events\n\n", dropped.Load()))
			return nil
		case <-end:
			write(fmt.Sprintf(": end; dropped %d events\n\n", dropped.Load()))
			return nil
		case <-beat.C:
			if !reportDrops() || !write(": keep-alive\n\n") {
				return nil
			}
		case e := <-ch:
			if !reportDrops() {
				return nil
			}
			data, err := json.Marshal(NewMessage(e))
			if err != nil {
				h.log.ErrorContext(ctx, "encode event", "err", err)
				continue
			}
			if !write(fmt.Sprintf("event: %s\nid: %s\ndata: %s\n\n", oneLine(e.Source), oneLine(e.ID), data)) {
				return nil
			}
		}
	}
}

// oneLine removes line breaks, which would end an SSE field early; a device
// chooses its message IDs.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}
