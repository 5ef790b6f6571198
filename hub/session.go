package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/mqttgw"
)

type methodResult struct {
	status  int
	payload []byte
}

// session is one device connection on a hub.
type session struct {
	s         *Service
	hub       *ferry.Hub // shared; never modified
	deviceID  string
	modelID   string
	announced string // a model-id from the username that the identity does not have yet
	conn      mqttgw.Conn
	will      *mqttgw.Message
	expiry    *time.Timer

	activity atomic.Int64 // Unix ns of the last message not yet noted; 0: none

	mu         sync.Mutex
	generation string // of the identity the session authenticated as
	auth       ferry.DeviceAuth
	methods    bool                         // subscribed to methods
	desired    bool                         // subscribed to desired-property updates
	c2d        bool                         // subscribed to cloud-to-device messages
	inflight   map[uint16]string            // C2D packet ID -> message ID; nil until used
	sent       map[string]bool              // C2D message IDs awaiting PUBACK; nil until used
	waiters    map[string]chan methodResult // nil until used
	nextRID    uint64
	closed     bool
	deliveryMu sync.Mutex
}

func (ss *session) Key() string { return "h\x00" + ss.hub.ID + "\x00" + ss.deviceID }

func (ss *session) k() key { return key{ss.hub.ID, ss.deviceID} }

// Established registers the session as the device's one connection.
func (ss *session) Established() {
	s := ss.s
	s.mu.Lock()
	old := s.sessions[ss.k()]
	s.sessions[ss.k()] = ss
	if old == nil {
		s.perHub[ss.hub.ID]++
	}
	s.mu.Unlock()
	if old != nil && old != ss {
		old.conn.Close(ferry.Errorf(ferry.ECONFLICT, "connection forcefully closed on new connection"))
	}
	s.note(ss.hub.ID, ss.deviceID, ferry.Connected, s.now().UTC())
	if ss.announced != "" {
		s.noteModel(ss.hub.ID, ss.deviceID, ss.announced)
	}
	s.lifecycle(ss.hub, ss.deviceID, ss.modelID, ferry.SourceDeviceConnectivity, ferry.TypeConnected, nil)
}

// Closed unregisters the session, fails waiting method calls and sends the
// Will of a connection that dropped.
func (ss *session) Closed(graceful bool) {
	s := ss.s
	if ss.expiry != nil {
		ss.expiry.Stop()
	}
	ss.mu.Lock()
	ss.closed = true
	for rid, w := range ss.waiters {
		close(w)
		delete(ss.waiters, rid)
	}
	ss.mu.Unlock()
	if !graceful && ss.will != nil {
		ss.sendWill()
	}
	s.mu.Lock()
	current := s.sessions[ss.k()] == ss
	if current {
		delete(s.sessions, ss.k())
		if s.perHub[ss.hub.ID]--; s.perHub[ss.hub.ID] <= 0 {
			delete(s.perHub, ss.hub.ID)
		}
	}
	var last time.Time
	if at := ss.activity.Swap(0); at != 0 {
		last = time.Unix(0, at).UTC()
	}
	state := ferry.ConnectionState("")
	if current {
		state = ferry.Disconnected
	}
	if current || !last.IsZero() {
		s.noteLocked(ss.hub.ID, ss.deviceID, state, last)
	}
	s.mu.Unlock()
	if current {
		s.lifecycle(ss.hub, ss.deviceID, ss.modelID, ferry.SourceDeviceConnectivity, ferry.TypeDisconnected, nil)
	}
}

func (ss *session) sendWill() {
	t, err := mqttgw.ParseTopic(ss.will.Topic)
	if err != nil || t.Kind != mqttgw.TopicTelemetry || t.DeviceID != ss.deviceID || t.ModuleID != "" {
		return // IoT Hub forwards only Wills on the device's telemetry topic
	}
	ev := ss.telemetryEvent(t.Properties, ss.will.Payload, ss.will.Retain)
	ev.Properties["iothub-MessageType"] = "Will"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ss.s.emit(ctx, true, ev); err != nil {
		ss.s.log.Warn("hub: will message lost", "hub", ss.hub.ID, "device", ss.deviceID, "error", err)
	}
}

// Subscribe admits only the device's own documented filters.
func (ss *session) Subscribe(filter string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch filter {
	case mqttgw.FilterMethods:
		ss.methods = true
	case mqttgw.FilterTwinDesired:
		ss.desired = true
	case mqttgw.FilterTwinRes, mqttgw.C2DFilter(ss.deviceID, ""):
	default:
		return false
	}
	return true
}

// Subscribed records what the device listens to and delivers pending
// cloud-to-device messages.
func (ss *session) Subscribed(filters []string) {
	c2d := false
	ss.mu.Lock()
	for _, f := range filters {
		if f == mqttgw.C2DFilter(ss.deviceID, "") {
			ss.c2d, c2d = true, true
		}
	}
	ss.mu.Unlock()
	if c2d {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ss.deliverC2D(ctx); err != nil {
			ss.s.log.Warn("hub: deliver cloud-to-device messages", "hub", ss.hub.ID, "device", ss.deviceID, "error", err)
		}
	}
}

// Acked completes a delivered cloud-to-device message.
func (ss *session) Acked(packetID uint16) {
	// deliverC2D records a packet ID right after the PUBLISH is written;
	// wait for it, the PUBACK can come first.
	ss.deliveryMu.Lock()
	ss.deliveryMu.Unlock()
	ss.mu.Lock()
	id, ok := ss.inflight[packetID]
	delete(ss.inflight, packetID)
	delete(ss.sent, id)
	ss.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ss.s.cfg.Store.CompleteC2D(ctx, id); err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		ss.s.log.Warn("hub: complete cloud-to-device message", "hub", ss.hub.ID, "device", ss.deviceID, "error", err)
	}
}

// Publish handles a device's PUBLISH. An error closes the connection.
func (ss *session) Publish(ctx context.Context, m mqttgw.Message) error {
	t, err := mqttgw.ParseTopic(m.Topic)
	if err != nil {
		return err
	}
	ss.activity.Store(ss.s.now().UnixNano())
	switch t.Kind {
	case mqttgw.TopicTelemetry:
		if t.DeviceID != ss.deviceID || t.ModuleID != "" {
			return ferry.Errorf(ferry.EFORBIDDEN, "topic of another device")
		}
		ev := ss.telemetryEvent(t.Properties, m.Payload, m.Retain)
		return ss.s.emit(ctx, true, ev)
	case mqttgw.TopicTwinGet:
		return ss.twinGet(ctx, t.RID)
	case mqttgw.TopicTwinPatch:
		return ss.twinPatch(ctx, t.RID, m.Payload)
	case mqttgw.TopicMethodResponse:
		ss.mu.Lock()
		w := ss.waiters[t.RID]
		delete(ss.waiters, t.RID)
		ss.mu.Unlock()
		if w != nil {
			w <- methodResult{status: t.Status, payload: m.Payload}
		}
		return nil
	}
	return ferry.Errorf(ferry.EFORBIDDEN, "topic not allowed on a hub")
}

// systemProps maps IoT Hub's topic system properties to export names.
var systemProps = map[string]string{
	"$.mid": "messageId", "$.cid": "correlationId", "$.uid": "userId", "$.to": "to",
	"$.ct": "contentType", "$.ce": "contentEncoding", "$.ifid": "interfaceId",
	"$.exp": "expiryTimeUtc", "$.on": "outputName", "$.sub": "component",
}

func (ss *session) telemetryEvent(props map[string]string, body []byte, retain bool) ferry.Event {
	ev := ferry.Event{Time: ss.s.now().UTC(), Source: ferry.SourceTelemetry, HubID: ss.hub.ID, HubHost: ss.hub.HostName,
		DeviceID: ss.deviceID, ModelID: ss.modelID, Body: bytes.Clone(body),
		Properties: map[string]string{}, System: map[string]string{}}
	for k, v := range props {
		if name, ok := systemProps[k]; ok {
			ev.System[name] = v
			continue
		}
		if strings.HasPrefix(k, "$.") {
			continue // unknown system property
		}
		ev.Properties[k] = v
	}
	if retain {
		ev.Properties["mqtt-retain"] = "true"
	}
	ev.Component = ev.System["component"]
	ev.ID = ev.System["messageId"]
	if ev.ID == "" {
		ev.ID = ferry.NewUUID()
	}
	return ev
}

func twinBody(sec map[string]any, version int64) map[string]any {
	m := make(map[string]any, len(sec)+1)
	for k, v := range sec {
		m[k] = v
	}
	m["$version"] = version
	return m
}

func (ss *session) respond(topic string, body []byte) error {
	if err := ss.conn.Send(topic, body); err != nil {
		return fmt.Errorf("hub: respond: %w", err)
	}
	return nil
}

func errorBody(code int, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"errorCode": code, "message": msg,
		"trackingId": ferry.NewUUID(), "timestampUtc": time.Now().UTC().Format(time.RFC3339Nano)})
	return b
}

func (ss *session) twinGet(ctx context.Context, rid string) error {
	t, err := ss.s.cfg.Store.GetTwin(ctx, ss.hub.ID, ss.deviceID)
	if err != nil {
		return ss.respond("$iothub/twin/res/500/?$rid="+rid, errorBody(500001, "internal error"))
	}
	b, err := json.Marshal(map[string]any{
		"desired":  twinBody(t.Desired, t.DesiredVersion),
		"reported": twinBody(t.Reported, t.ReportedVersion),
	})
	if err != nil {
		return fmt.Errorf("hub: twin: %w", err)
	}
	return ss.respond("$iothub/twin/res/200/?$rid="+rid, b)
}

func (ss *session) twinPatch(ctx context.Context, rid string, body []byte) error {
	var patch map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&patch); err != nil || patch == nil || d.More() {
		return ss.respond("$iothub/twin/res/400/?$rid="+rid, errorBody(400004, "invalid JSON in reported properties"))
	}
	delete(patch, "$version")
	var t *ferry.Twin
	for attempt := 0; ; attempt++ {
		var err error
		t, err = ss.s.cfg.Store.GetTwin(ctx, ss.hub.ID, ss.deviceID)
		if err != nil {
			return ss.respond("$iothub/twin/res/500/?$rid="+rid, errorBody(500001, "internal error"))
		}
		t.Reported = mergePatch(t.Reported, patch)
		if b, _ := json.Marshal(t.Reported); len(b) > MaxTwinSection {
			return ss.respond("$iothub/twin/res/400/?$rid="+rid, errorBody(400013, "reported properties too large"))
		}
		t.ReportedVersion++
		t.Version++
		err = ss.s.cfg.Store.UpdateTwin(ctx, t, t.ETag)
		if err == nil {
			break
		}
		if !ferry.IsCode(err, ferry.EPRECONDITION) || attempt >= 5 {
			return ss.respond("$iothub/twin/res/500/?$rid="+rid, errorBody(500001, "internal error"))
		}
	}
	data, _ := json.Marshal(patch)
	ss.s.lifecycle(ss.hub, ss.deviceID, ss.modelID, ferry.SourceProperties, ferry.TypeDevicePropertyReportedChange, data)
	return ss.respond("$iothub/twin/res/204/?$rid="+rid+"&$version="+strconv.FormatInt(t.ReportedVersion, 10), nil)
}

// mergePatch applies a JSON merge patch (RFC 7396) to a section.
func mergePatch(dst map[string]any, patch map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range patch {
		if v == nil {
			delete(dst, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			cur, _ := dst[k].(map[string]any)
			dst[k] = mergePatch(cur, pm)
			continue
		}
		dst[k] = v
	}
	return dst
}

// deliverC2D sends the pending cloud-to-device messages not yet in flight.
func (ss *session) deliverC2D(ctx context.Context) error {
	ss.deliveryMu.Lock()
	defer ss.deliveryMu.Unlock()
	ss.mu.Lock()
	ok := ss.c2d && !ss.closed
	ss.mu.Unlock()
	if !ok {
		return nil
	}
	msgs, err := ss.s.cfg.Store.ListPendingC2D(ctx, ss.hub.ID, ss.deviceID)
	if err != nil {
		return fmt.Errorf("hub: list messages: %w", err)
	}
	for _, m := range msgs {
		ss.mu.Lock()
		sent := ss.sent[m.ID]
		ss.mu.Unlock()
		if sent {
			continue
		}
		if !m.ExpiresAt.IsZero() && ss.s.now().After(m.ExpiresAt) {
			if err := ss.s.cfg.Store.CompleteC2D(ctx, m.ID); err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
				return fmt.Errorf("hub: expire message: %w", err)
			}
			continue
		}
		id, err := ss.conn.SendQoS1(c2dTopic(m), m.Body)
		if err != nil {
			return fmt.Errorf("hub: send message: %w", err)
		}
		ss.mu.Lock()
		if ss.inflight == nil {
			ss.inflight, ss.sent = map[uint16]string{}, map[string]bool{}
		}
		ss.inflight[id] = m.ID
		ss.sent[m.ID] = true
		ss.mu.Unlock()
	}
	return nil
}

// c2dTopic builds devices/{id}/messages/devicebound/{bag} with system
// properties first.
func c2dTopic(m *ferry.C2DMessage) string {
	props := map[string]string{}
	var keys []string
	add := func(k, v string) {
		if v != "" {
			props[k] = v
			keys = append(keys, k)
		}
	}
	add("$.mid", m.MessageID)
	add("$.to", "/devices/"+m.DeviceID+"/messages/devicebound")
	add("$.cid", m.CorrelationID)
	add("$.uid", m.UserID)
	add("$.ct", m.ContentType)
	add("$.ce", m.ContentEncoding)
	if !m.ExpiresAt.IsZero() {
		add("$.exp", m.ExpiresAt.UTC().Format(time.RFC3339))
	}
	app := make([]string, 0, len(m.Properties))
	for k := range m.Properties {
		app = append(app, k)
	}
	sort.Strings(app)
	for _, k := range app {
		props[k] = m.Properties[k]
		keys = append(keys, k)
	}
	return "devices/" + m.DeviceID + "/messages/devicebound/" + mqttgw.EncodePropertyBag(keys, props)
}
