package hubsvc

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
	"github.com/ferry-iot/ferry/jobs"
)

// twinDoc loads an identity and its twin and renders them.
func (s *server) twinDoc(r *http.Request, hub *ferry.Hub, id string) (map[string]any, error) {
	d, err := s.cfg.Store.GetDeviceIdentity(r.Context(), hub.ID, id)
	if err != nil {
		return nil, deviceErr(id, err)
	}
	t, err := s.cfg.Store.GetTwin(r.Context(), hub.ID, id)
	if err != nil {
		return nil, deviceErr(id, err)
	}
	return hubquery.TwinDocument(d, t), nil
}

func (s *server) getTwin(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	tj, err := s.twinDoc(r, hub, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tj["etag"].(string), tj)
}

// twinPatch reads {"tags":{...},"properties":{"desired":{...}}}. Reported
// properties belong to the device and are refused.
func twinPatch(r *http.Request) (ferry.TwinPatch, error) {
	var raw json.RawMessage
	if err := decode(r, &raw); err != nil {
		return ferry.TwinPatch{}, err
	}
	var in struct {
		DeviceID string `json:"deviceId"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return ferry.TwinPatch{}, ferry.WrapError(ferry.EINVALID, "The twin is not a JSON object.", err)
	}
	if in.DeviceID != "" && in.DeviceID != r.PathValue("id") {
		return ferry.TwinPatch{}, ferry.Errorf(ferry.EINVALID, "The deviceId in the body does not match the one in the URI.")
	}
	return jobs.ParseTwinPatch(raw)
}

func (s *server) hubs() (ferry.HubService, error) {
	if s.cfg.Hubs == nil {
		return nil, ferry.Errorf(ferry.EINTERNAL, "No hub service is configured.")
	}
	return s.cfg.Hubs, nil
}

func (s *server) patchTwin(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	return s.writeTwin(w, r, hub, false)
}

func (s *server) putTwin(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	return s.writeTwin(w, r, hub, true)
}

func (s *server) writeTwin(w http.ResponseWriter, r *http.Request, hub *ferry.Hub, replace bool) error {
	id := r.PathValue("id")
	p, err := twinPatch(r)
	if err != nil {
		return err
	}
	hs, err := s.hubs()
	if err != nil {
		return err
	}
	if replace {
		if p.Tags == nil {
			p.Tags = map[string]any{}
		}
		if p.Desired == nil {
			p.Desired = map[string]any{}
		}
		_, err = hs.ReplaceTwin(r.Context(), hub.ID, id, p, ifMatch(r))
	} else {
		_, err = hs.UpdateTwin(r.Context(), hub.ID, id, p, ifMatch(r))
	}
	if err != nil {
		return deviceErr(id, err)
	}
	tj, err := s.twinDoc(r, hub, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tj["etag"].(string), tj)
}

// methodRequest is the body of POST /twins/{id}/methods.
type methodRequest struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds *int            `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  *int            `json:"connectTimeoutInSeconds"`
}

// toDomain validates a method call: a name without the characters IoT Hub
// forbids, a response timeout of 5 to 300 s (default 30) and a connect
// timeout of 0 to 300 s.
func (m methodRequest) toDomain() (ferry.MethodRequest, error) {
	if m.MethodName == "" || len(m.MethodName) > 128 || strings.ContainsAny(m.MethodName, "$()<>@,;:\\\"/[]?={} \t") {
		return ferry.MethodRequest{}, ferry.Errorf(ferry.EINVALID, "The method name is missing or holds a character IoT Hub does not allow.")
	}
	rt, ct := 30, 0
	if m.ResponseTimeoutInSeconds != nil {
		rt = *m.ResponseTimeoutInSeconds
	}
	if m.ConnectTimeoutInSeconds != nil {
		ct = *m.ConnectTimeoutInSeconds
	}
	if rt < 5 || rt > 300 || ct < 0 || ct > 300 {
		return ferry.MethodRequest{}, ferry.Errorf(ferry.EINVALID, "responseTimeoutInSeconds must be 5 to 300 and connectTimeoutInSeconds 0 to 300.")
	}
	payload := m.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	if len(payload) > 128*1024 {
		return ferry.MethodRequest{}, ferry.Errorf(ferry.EINVALID, "A method payload is at most 128 KiB.")
	}
	return ferry.MethodRequest{MethodName: m.MethodName, Payload: payload,
		ResponseTimeout: time.Duration(rt) * time.Second, ConnectTimeout: time.Duration(ct) * time.Second}, nil
}

func (s *server) invokeMethod(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	var in methodRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	req, err := in.toDomain()
	if err != nil {
		return err
	}
	hs, err := s.hubs()
	if err != nil {
		return err
	}
	resp, err := hs.InvokeMethod(r.Context(), hub.ID, id, req)
	switch {
	case ferry.IsDeviceNotOnline(err):
		return hubErr(http.StatusNotFound, "DeviceNotOnline", 404103, err)
	case ferry.IsMethodTimeout(err):
		return hubErr(http.StatusGatewayTimeout, "GatewayTimeout", 504101, err)
	case err != nil:
		return deviceErr(id, err)
	}
	payload := resp.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	return writeJSON(w, http.StatusOK, "", map[string]any{"status": resp.Status, "payload": payload})
}

// sendC2D serves POST /devices/{id}/messages/deviceBound: the body is the
// message; iothub-messageid, iothub-correlationid, iothub-userid,
// iothub-expiry and iothub-app-* headers carry its properties.
func (s *server) sendC2D(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	body, err := io.ReadAll(io.LimitReader(r.Body, 64*1024+1))
	if err != nil {
		return ferry.WrapError(ferry.EINVALID, "The request body could not be read.", err)
	}
	if len(body) > 64*1024 {
		return hubErr(http.StatusRequestEntityTooLarge, "MessageTooLarge", 413001, ferry.Errorf(ferry.EINVALID, "A cloud-to-device message is at most 64 KiB."))
	}
	now := s.now()
	m := &ferry.C2DMessage{
		HubID: hub.ID, DeviceID: id, MessageID: r.Header.Get("iothub-messageid"),
		CorrelationID: r.Header.Get("iothub-correlationid"), UserID: r.Header.Get("iothub-userid"),
		ContentType: r.Header.Get("Content-Type"), ContentEncoding: r.Header.Get("Content-Encoding"),
		Body: body, EnqueuedAt: now, Properties: map[string]string{},
	}
	if m.MessageID == "" {
		m.MessageID = ferry.NewUUID()
	}
	if v := r.Header.Get("iothub-expiry"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return ferry.Errorf(ferry.EINVALID, "iothub-expiry must be an RFC 3339 time.")
		}
		m.ExpiresAt = t
	}
	for k, v := range r.Header {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "iothub-app-"); ok && len(v) > 0 {
			m.Properties[name] = v[0]
		}
	}
	hs, err := s.hubs()
	if err != nil {
		return err
	}
	if err := hs.SendC2D(r.Context(), m); err != nil {
		if ferry.IsCode(err, ferry.ETHROTTLED) {
			return hubErr(http.StatusForbidden, "DeviceMaximumQueueDepthExceeded", 403004, err)
		}
		return deviceErr(id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// purgeC2D serves DELETE /devices/{id}/commands: it drops the device's
// pending cloud-to-device messages and says how many, as IoT Hub's
// PurgeMessageQueueResult.
func (s *server) purgeC2D(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	if _, err := s.cfg.Store.GetDeviceIdentity(r.Context(), hub.ID, id); err != nil {
		return deviceErr(id, err)
	}
	n, err := s.cfg.Store.PurgeC2D(r.Context(), hub.ID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, "", map[string]any{"totalMessagesPurged": n, "deviceId": id, "moduleId": nil})
}
