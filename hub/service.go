package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// session returns the device's live session, or nil.
func (s *Service) session(hubID, deviceID string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[key{hubID, deviceID}]
}

// Connected reports whether a device holds a session on the hub.
func (s *Service) Connected(hubID, deviceID string) bool { return s.session(hubID, deviceID) != nil }

// ConnectedDevices returns how many devices hold a session on the hub in
// this process, for the service statistics.
func (s *Service) ConnectedDevices(hubID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perHub[hubID]
}

// InvokeMethod calls a direct method on a connected device.
func (s *Service) InvokeMethod(ctx context.Context, hubID, deviceID string, req ferry.MethodRequest) (ferry.MethodResponse, error) {
	name := req.MethodName
	if name == "" || len(name) > 128 || strings.ContainsAny(name, "/#+? \x00") {
		return ferry.MethodResponse{}, ferry.Errorf(ferry.EINVALID, "invalid method name")
	}
	payload := []byte(req.Payload)
	if len(payload) == 0 {
		payload = []byte("null")
	} else if !json.Valid(payload) {
		return ferry.MethodResponse{}, ferry.Errorf(ferry.EINVALID, "method payload is not JSON")
	}
	if len(payload) > 128*1024 {
		return ferry.MethodResponse{}, ferry.Errorf(ferry.EINVALID, "method payload exceeds 128 KB")
	}
	if _, err := s.cfg.Store.GetDeviceIdentity(ctx, hubID, deviceID); err != nil {
		return ferry.MethodResponse{}, fmt.Errorf("hub: invoke method: %w", err)
	}
	ss := s.methodSession(ctx, hubID, deviceID, req.ConnectTimeout)
	if ss == nil {
		return ferry.MethodResponse{}, ferry.ErrDeviceNotOnline
	}
	wait := req.ResponseTimeout
	if wait <= 0 {
		wait = DefaultMethodWait
	}
	ch := make(chan methodResult, 1)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return ferry.MethodResponse{}, ferry.ErrDeviceNotOnline
	}
	ss.nextRID++
	rid := strconv.FormatUint(ss.nextRID, 10)
	if ss.waiters == nil {
		ss.waiters = map[string]chan methodResult{}
	}
	ss.waiters[rid] = ch
	ss.mu.Unlock()
	drop := func() {
		ss.mu.Lock()
		delete(ss.waiters, rid)
		ss.mu.Unlock()
	}
	if err := ss.conn.Send("$iothub/methods/POST/"+name+"/?$rid="+rid, payload); err != nil {
		drop()
		return ferry.MethodResponse{}, ferry.ErrDeviceNotOnline
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case r, ok := <-ch:
		if !ok {
			return ferry.MethodResponse{}, ferry.ErrDeviceNotOnline
		}
		out := r.payload
		if len(out) == 0 {
			out = []byte("null")
		} else if !json.Valid(out) {
			out, _ = json.Marshal(string(out))
		}
		return ferry.MethodResponse{Status: r.status, Payload: out}, nil
	case <-t.C:
		drop()
		return ferry.MethodResponse{}, ferry.ErrMethodTimeout
	case <-ctx.Done():
		drop()
		return ferry.MethodResponse{}, fmt.Errorf("hub: invoke method: %w", ctx.Err())
	}
}

// methodSession returns the device's session once it listens to methods,
// waiting up to connectTimeout for it.
func (s *Service) methodSession(ctx context.Context, hubID, deviceID string, connectTimeout time.Duration) *session {
	deadline := time.Now().Add(connectTimeout)
	for {
		if ss := s.session(hubID, deviceID); ss != nil {
			ss.mu.Lock()
			ok := ss.methods && !ss.closed
			ss.mu.Unlock()
			if ok {
				return ss
			}
		}
		if !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SendC2D queues a cloud-to-device message and delivers it if the device
// listens.
func (s *Service) SendC2D(ctx context.Context, m *ferry.C2DMessage) error {
	if len(m.Body) > 64*1024 {
		return ferry.Errorf(ferry.EINVALID, "message exceeds 64 KB")
	}
	if m.ID == "" {
		m.ID = ferry.NewUUID()
	}
	if m.MessageID == "" {
		m.MessageID = ferry.NewUUID()
	}
	if m.EnqueuedAt.IsZero() {
		m.EnqueuedAt = s.now().UTC()
	}
	if err := s.cfg.Store.EnqueueC2D(ctx, m); err != nil {
		return fmt.Errorf("hub: send message: %w", err)
	}
	if ss := s.session(m.HubID, m.DeviceID); ss != nil {
		if err := ss.deliverC2D(ctx); err != nil {
			s.log.Warn("hub: deliver cloud-to-device message", "hub", m.HubID, "device", m.DeviceID, "error", err)
		}
	}
	return nil
}

// UpdateTwin merges a service-side patch into a twin.
func (s *Service) UpdateTwin(ctx context.Context, hubID, deviceID string, patch ferry.TwinPatch, ifMatch string) (*ferry.Twin, error) {
	return s.changeTwin(ctx, hubID, deviceID, ifMatch, func(t *ferry.Twin) map[string]any {
		if patch.Tags != nil {
			t.Tags = mergePatch(t.Tags, patch.Tags)
		}
		if len(patch.Desired) == 0 {
			return nil
		}
		t.Desired = mergePatch(t.Desired, patch.Desired)
		return patch.Desired
	})
}

// ReplaceTwin replaces tags and desired properties.
func (s *Service) ReplaceTwin(ctx context.Context, hubID, deviceID string, patch ferry.TwinPatch, ifMatch string) (*ferry.Twin, error) {
	return s.changeTwin(ctx, hubID, deviceID, ifMatch, func(t *ferry.Twin) map[string]any {
		t.Tags = patch.Tags
		if t.Tags == nil {
			t.Tags = map[string]any{}
		}
		desired := patch.Desired
		if desired == nil {
			desired = map[string]any{}
		}
		if reflect.DeepEqual(normalize(t.Desired), normalize(desired)) {
			return nil
		}
		diff := map[string]any{}
		for k := range t.Desired {
			if _, ok := desired[k]; !ok {
				diff[k] = nil
			}
		}
		for k, v := range desired {
			diff[k] = v
		}
		t.Desired = desired
		return diff
	})
}

// normalize round-trips a section through JSON so values compare equal.
func normalize(m map[string]any) any {
	b, _ := json.Marshal(m)
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

// changeTwin applies change to a twin; change returns the desired patch
// to notify the device of, or nil.
func (s *Service) changeTwin(ctx context.Context, hubID, deviceID, ifMatch string, change func(*ferry.Twin) map[string]any) (*ferry.Twin, error) {
	t, err := s.cfg.Store.GetTwin(ctx, hubID, deviceID)
	if err != nil {
		return nil, fmt.Errorf("hub: update twin: %w", err)
	}
	if !ferry.ETagMatches(ifMatch, t.ETag) {
		return nil, ferry.Errorf(ferry.EPRECONDITION, "twin etag does not match")
	}
	desired := change(t)
	if b, _ := json.Marshal(t.Desired); len(b) > MaxTwinSection {
		return nil, ferry.Errorf(ferry.EINVALID, "desired properties exceed 32 KB")
	}
	if b, _ := json.Marshal(t.Tags); len(b) > 8*1024 {
		return nil, ferry.Errorf(ferry.EINVALID, "tags exceed 8 KB")
	}
	if desired != nil {
		t.DesiredVersion++
	}
	t.Version++
	if err := s.cfg.Store.UpdateTwin(ctx, t, t.ETag); err != nil {
		return nil, fmt.Errorf("hub: update twin: %w", err)
	}
	if desired != nil {
		body, err := json.Marshal(twinBody(desired, t.DesiredVersion))
		if err != nil {
			return nil, fmt.Errorf("hub: update twin: %w", err)
		}
		if ss := s.session(hubID, deviceID); ss != nil {
			ss.mu.Lock()
			listening := ss.desired && !ss.closed
			ss.mu.Unlock()
			if listening {
				_ = ss.conn.Send("$iothub/twin/PATCH/properties/desired/?$version="+strconv.FormatInt(t.DesiredVersion, 10), body)
			}
		}
		if hub, err := s.cfg.Store.GetHub(ctx, hubID); err == nil {
			data, _ := json.Marshal(desired)
			s.lifecycle(hub, deviceID, "", ferry.SourceProperties, ferry.TypeDevicePropertyDesiredChange, data)
		}
	}
	return t, nil
}

// IdentityChanged reloads an identity and closes a session it no longer admits.
func (s *Service) IdentityChanged(ctx context.Context, hubID, deviceID string) error {
	s.cache.dropIdentity(hubID, deviceID)
	ss := s.session(hubID, deviceID)
	if ss == nil {
		return nil
	}
	id, err := s.cfg.Store.GetDeviceIdentity(ctx, hubID, deviceID)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		ss.conn.Close(ferry.Errorf(ferry.ENOTFOUND, "device identity deleted"))
		return nil
	}
	if err != nil {
		return fmt.Errorf("hub: identity changed: %w", err)
	}
	ss.mu.Lock()
	changed := id.GenerationID != ss.generation || id.Auth != ss.auth
	ss.mu.Unlock()
	if id.Status == ferry.DeviceDisabled || changed {
		ss.conn.Close(ferry.Errorf(ferry.EUNAUTHORIZED, "device identity changed"))
	}
	return nil
}

// HubChanged closes the sessions of a deleted hub, or of a hub whose host
// name changed.
func (s *Service) HubChanged(ctx context.Context, hubID string) error {
	s.cache.dropHub(hubID)
	h, err := s.cfg.Store.GetHub(ctx, hubID)
	if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return fmt.Errorf("hub: hub changed: %w", err)
	}
	s.mu.Lock()
	var drop []*session
	for k, ss := range s.sessions {
		if k.hubID != hubID {
			continue
		}
		if h == nil || !strings.EqualFold(h.HostName, ss.hub.HostName) {
			drop = append(drop, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range drop {
		ss.conn.Close(ferry.Errorf(ferry.ENOTFOUND, "hub changed"))
	}
	return nil
}
