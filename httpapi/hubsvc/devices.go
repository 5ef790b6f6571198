package hubsvc

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
)

// deviceJSON is a device identity in the IoT Hub service API's shape.
type deviceJSON struct {
	DeviceID                   string          `json:"deviceId"`
	GenerationID               string          `json:"generationId,omitempty"`
	ETag                       string          `json:"etag,omitempty"`
	ConnectionState            string          `json:"connectionState,omitempty"`
	Status                     string          `json:"status,omitempty"`
	StatusReason               *string         `json:"statusReason"`
	ConnectionStateUpdatedTime string          `json:"connectionStateUpdatedTime,omitempty"`
	StatusUpdatedTime          string          `json:"statusUpdatedTime,omitempty"`
	LastActivityTime           string          `json:"lastActivityTime,omitempty"`
	CloudToDeviceMessageCount  int             `json:"cloudToDeviceMessageCount"`
	Authentication             *authJSON       `json:"authentication,omitempty"`
	Capabilities               *capabilityJSON `json:"capabilities,omitempty"`
}

type authJSON struct {
	SymmetricKey   *symmetricKeyJSON `json:"symmetricKey,omitempty"`
	X509Thumbprint *thumbprintJSON   `json:"x509Thumbprint,omitempty"`
	Type           string            `json:"type,omitempty"`
}

type symmetricKeyJSON struct {
	PrimaryKey   *string `json:"primaryKey"`
	SecondaryKey *string `json:"secondaryKey"`
}

type thumbprintJSON struct {
	PrimaryThumbprint   *string `json:"primaryThumbprint"`
	SecondaryThumbprint *string `json:"secondaryThumbprint"`
}

type capabilityJSON struct {
	IoTEdge bool `json:"iotEdge"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// deviceOut renders an identity; keys only when withKeys is set.
func deviceOut(d *ferry.DeviceIdentity, withKeys bool) deviceJSON {
	out := deviceJSON{
		DeviceID: d.DeviceID, GenerationID: d.GenerationID, ETag: d.ETag,
		ConnectionState: string(orDisconnected(d.ConnectionState)), Status: string(d.Status),
		StatusReason:               strp(d.StatusReason),
		ConnectionStateUpdatedTime: timeString(d.ConnectionUpdatedAt),
		StatusUpdatedTime:          timeString(d.StatusUpdatedAt),
		LastActivityTime:           timeString(d.LastActivityAt),
		CloudToDeviceMessageCount:  d.C2DMessageCount,
		Authentication: &authJSON{
			Type:           string(d.Auth.Type),
			SymmetricKey:   &symmetricKeyJSON{},
			X509Thumbprint: &thumbprintJSON{PrimaryThumbprint: strp(d.Auth.PrimaryThumbprint), SecondaryThumbprint: strp(d.Auth.SecondaryThumbprint)},
		},
		Capabilities: &capabilityJSON{IoTEdge: d.IoTEdge},
	}
	if withKeys {
		out.Authentication.SymmetricKey = &symmetricKeyJSON{PrimaryKey: strp(d.Auth.PrimaryKey), SecondaryKey: strp(d.Auth.SecondaryKey)}
	}
	return out
}

func orDisconnected(c ferry.ConnectionState) ferry.ConnectionState {
	if c == "" {
		return ferry.Disconnected
	}
	return c
}

// validDeviceID applies IoT Hub's rule: at most 128 ASCII letters, digits
// and - . % _ * ? ! ( ) , : = @ $ '.
func validDeviceID(id string) error {
	if id == "" || len(id) > 128 {
		return ferry.Errorf(ferry.EINVALID, "A device ID has 1 to 128 characters.")
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.%_*?!(),:=@$'", c) >= 0
		if !ok {
			return ferry.Errorf(ferry.EINVALID, "The device ID %q holds a character IoT Hub does not allow.", id)
		}
	}
	return nil
}

// validKey checks a symmetric key: base64 of 16 to 64 bytes.
func validKey(k string) error {
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(b) < 16 || len(b) > 64 {
		return ferry.Errorf(ferry.EINVALID, "A symmetric key must be base64 of 16 to 64 bytes.")
	}
	return nil
}

// normThumbprint checks a SHA-1 or SHA-256 thumbprint and upper-cases it.
func normThumbprint(t string) (string, error) {
	t = strings.ToUpper(strings.ReplaceAll(t, ":", ""))
	if t == "" {
		return "", nil
	}
	if b, err := hex.DecodeString(t); err != nil || len(b) != 20 && len(b) != 32 {
		return "", ferry.Errorf(ferry.EINVALID, "A thumbprint is the hex SHA-1 or SHA-256 of a certificate.")
	}
	return t, nil
}

// applyAuth fills d.Auth from the request, generating missing keys; the old
// credentials of an update are kept when the request leaves them empty.
func applyAuth(d *ferry.DeviceIdentity, in *authJSON, old *ferry.DeviceIdentity) error {
	if in == nil {
		in = &authJSON{}
	}
	typ := ferry.AuthType(in.Type)
	if typ == "" {
		switch {
		case in.X509Thumbprint != nil && str(in.X509Thumbprint.PrimaryThumbprint) != "":
			typ = ferry.AuthSelfSigned
		case old != nil:
			typ = old.Auth.Type
		default:
			typ = ferry.AuthSAS
		}
	}
	d.Auth = ferry.DeviceAuth{Type: typ}
	switch typ {
	case ferry.AuthSAS:
		var p, s string
		if in.SymmetricKey != nil {
			p, s = str(in.SymmetricKey.PrimaryKey), str(in.SymmetricKey.SecondaryKey)
		}
		if old != nil && old.Auth.Type == ferry.AuthSAS {
			if p == "" {
				p = old.Auth.PrimaryKey
			}
			if s == "" {
				s = old.Auth.SecondaryKey
			}
		}
		if p == "" {
			p = ferry.NewKey(32)
		}
		if s == "" {
			s = ferry.NewKey(32)
		}
		for _, k := range []string{p, s} {
			if err := validKey(k); err != nil {
				return err
			}
		}
		d.Auth.PrimaryKey, d.Auth.SecondaryKey = p, s
	case ferry.AuthSelfSigned:
		var p, s string
		if in.X509Thumbprint != nil {
			p, s = str(in.X509Thumbprint.PrimaryThumbprint), str(in.X509Thumbprint.SecondaryThumbprint)
		}
		var err error
		if d.Auth.PrimaryThumbprint, err = normThumbprint(p); err != nil {
			return err
		}
		if d.Auth.SecondaryThumbprint, err = normThumbprint(s); err != nil {
			return err
		}
		if d.Auth.PrimaryThumbprint == "" {
			return ferry.Errorf(ferry.EINVALID, "A selfSigned device needs a primary thumbprint.")
		}
	case ferry.AuthCertificateAuthority, ferry.AuthNone:
	default:
		return ferry.Errorf(ferry.EINVALID, "Unknown authentication type %q.", in.Type)
	}
	return nil
}

func (s *server) putDevice(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	if err := validDeviceID(id); err != nil {
		return err
	}
	var in deviceJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.DeviceID != "" && in.DeviceID != id {
		return ferry.Errorf(ferry.EINVALID, "The deviceId in the body does not match the one in the URI.")
	}
	status := ferry.DeviceStatus(in.Status)
	switch status {
	case "", ferry.DeviceEnabled, ferry.DeviceDisabled:
	default:
		return ferry.Errorf(ferry.EINVALID, "The status must be enabled or disabled.")
	}
	ctx := r.Context()
	match := ifMatch(r)
	now := s.now()
	var d *ferry.DeviceIdentity
	if match == "" {
		// A PUT without If-Match creates, as in IoT Hub.
		d = &ferry.DeviceIdentity{
			HubID: hub.ID, DeviceID: id, GenerationID: strconv.FormatInt(now.UnixNano()/100, 10),
			Status: ferry.DeviceEnabled, StatusUpdatedAt: now, ConnectionState: ferry.Disconnected,
			ConnectionUpdatedAt: now, CreatedAt: now,
		}
		if err := applyAuth(d, in.Authentication, nil); err != nil {
			return err
		}
		if status != "" {
			d.Status = status
		}
		d.StatusReason = str(in.StatusReason)
		if in.Capabilities != nil {
			d.IoTEdge = in.Capabilities.IoTEdge
		}
		err := s.cfg.Store.CreateDeviceIdentity(ctx, d)
		if ferry.IsCode(err, ferry.ECONFLICT) {
			return hubErr(http.StatusConflict, "DeviceAlreadyExists", 409001, ferry.Errorf(ferry.ECONFLICT, "A device with ID '%s' is already registered.", id))
		}
		if err != nil {
			return fmt.Errorf("create device: %w", err)
		}
	} else {
		old, err := s.cfg.Store.GetDeviceIdentity(ctx, hub.ID, id)
		if err != nil {
			return deviceErr(id, err)
		}
		if !ferry.ETagMatches(match, old.ETag) {
			return ferry.Errorf(ferry.EPRECONDITION, "The etag does not match the device's.")
		}
		nd := *old
		d = &nd
		if err := applyAuth(d, in.Authentication, old); err != nil {
			return err
		}
		if status != "" && status != old.Status {
			d.Status, d.StatusUpdatedAt = status, now
		}
		d.StatusReason = str(in.StatusReason)
		if in.Capabilities != nil {
			d.IoTEdge = in.Capabilities.IoTEdge
		}
		if err := s.cfg.Store.UpdateDeviceIdentity(ctx, d, old.ETag); err != nil {
			return deviceErr(id, err)
		}
	}
	if err := s.identityChanged(r, hub, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "device identity written", "hub_id", hub.ID, "device_id", id, "caller", ferry.CallerFromContext(ctx).Name())
	return writeJSON(w, http.StatusOK, d.ETag, deviceOut(d, true))
}

// identityChanged tells the hubs about a registry change.
func (s *server) identityChanged(r *http.Request, hub *ferry.Hub, id string) error {
	if s.cfg.Hubs == nil {
		return nil
	}
	if err := s.cfg.Hubs.IdentityChanged(r.Context(), hub.ID, id); err != nil {
		return fmt.Errorf("reload identity: %w", err)
	}
	return nil
}

// deviceErr names a missing device as IoT Hub does.
func deviceErr(id string, err error) error {
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return hubErr(http.StatusNotFound, "DeviceNotFound", 404001, ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("Device %s not registered.", id), err))
	}
	if ferry.IsCode(err, ferry.EPRECONDITION) {
		return ferry.WrapError(ferry.EPRECONDITION, "The etag does not match the device's.", err)
	}
	return err
}

func (s *server) getDevice(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	d, err := s.cfg.Store.GetDeviceIdentity(r.Context(), hub.ID, id)
	if err != nil {
		return deviceErr(id, err)
	}
	return writeJSON(w, http.StatusOK, d.ETag, deviceOut(d, true))
}

func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	if err := s.cfg.Store.DeleteDeviceIdentity(r.Context(), hub.ID, id, ifMatch(r)); err != nil {
		return deviceErr(id, err)
	}
	if err := s.identityChanged(r, hub, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listDevices serves GET /devices?top=N: the first N identities (at most
// 1000, as in IoT Hub), without keys.
func (s *server) listDevices(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	top := 1000
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return ferry.Errorf(ferry.EINVALID, "top must be between 1 and 1000.")
		}
		top = n
	}
	page, err := s.cfg.Store.ListDeviceIdentities(r.Context(), ferry.DeviceIdentityFilter{HubID: hub.ID, ListOptions: ferry.ListOptions{Limit: top}})
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	out := make([]deviceJSON, 0, len(page.Items))
	for _, d := range page.Items {
		out = append(out, deviceOut(d, false))
	}
	return writeJSON(w, http.StatusOK, "", out)
}

// pageSize reads x-ms-max-item-count (default 100, at most 10000).
func pageSize(r *http.Request) (int, error) {
	v := r.Header.Get("x-ms-max-item-count")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > ferry.MaxPageSize {
		return 0, ferry.Errorf(ferry.EINVALID, "x-ms-max-item-count must be between 1 and %d.", ferry.MaxPageSize)
	}
	return n, nil
}

// queryDevices serves POST /devices/query for devices (twins) and
// devices.jobs, paged by x-ms-max-item-count and x-ms-continuation.
func (s *server) queryDevices(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	var in struct {
		Query string `json:"query"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	q, err := hubquery.Parse(in.Query)
	if err != nil {
		return err
	}
	size, err := pageSize(r)
	if err != nil {
		return err
	}
	cont := r.Header.Get("x-ms-continuation")
	var items []any
	var next string
	switch q.Source {
	case hubquery.Devices:
		w.Header().Set("x-ms-item-type", "DeviceTwin")
		items, next, err = s.matchTwins(r, hub, q.Where, size, cont)
	default:
		w.Header().Set("x-ms-item-type", "DeviceJob")
		items, next, err = s.matchDeviceJobs(r, hub, q, size, cont)
	}
	if err != nil {
		return err
	}
	if next != "" {
		w.Header().Set("x-ms-continuation", next)
	}
	if items == nil {
		items = []any{}
	}
	return writeJSON(w, http.StatusOK, "", items)
}

// matchTwins pages through the hub's identities in device-ID order and
// keeps the twins that match. Each store page is sized to what is still
// missing, so that the store's cursor after a page is exactly where the
// next request resumes.
func (s *server) matchTwins(r *http.Request, hub *ferry.Hub, where hubquery.Expr, size int, cont string) ([]any, string, error) {
	ctx := r.Context()
	var out []any
	after := cont
	for len(out) < size {
		page, err := s.cfg.Store.ListDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: hub.ID,
			ListOptions: ferry.ListOptions{After: after, Limit: size - len(out)}})
		if err != nil {
			return nil, "", continuationErr(err)
		}
		for _, d := range page.Items {
			t, err := s.cfg.Store.GetTwin(ctx, hub.ID, d.DeviceID)
			if ferry.IsCode(err, ferry.ENOTFOUND) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, "", fmt.Errorf("query devices: %w", err)
			}
			doc := hubquery.TwinDocument(d, t)
			if where != nil && !where.Match(doc) {
				continue
			}
			out = append(out, doc)
		}
		after = page.Next
		if after == "" {
			break
		}
	}
	return out, after, nil
}

func continuationErr(err error) error {
	if ferry.IsCode(err, ferry.EINVALID) {
		return ferry.WrapError(ferry.EINVALID, "The continuation token is not valid.", err)
	}
	return fmt.Errorf("query: %w", err)
}
