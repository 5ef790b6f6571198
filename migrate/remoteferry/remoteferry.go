// Package remoteferry lets the migration orchestrator use a provisioning
// service that lives on another Ferry deployment. It signs in there as a
// service principal (the OAuth2 client-credentials grant), reads the
// provisioning service through the ARM surface, its enrollment groups and
// registrations through the DPS service API, its hubs' device registries,
// statistics and direct methods through the IoT Hub service API, and follows the
// hubs' device events through their Server-Sent Events stream.
//
// It implements migrate.RemoteTarget; cmd/ferry wires Dial into the
// orchestrator.
package remoteferry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/client"
	"github.com/ferry-iot/ferry/migrate"
)

// API versions of the remote surfaces.
const (
	apiDPS           = "2022-12-12"
	apiHubs          = "2023-06-30"
	apiDPSService    = "2021-10-01"
	apiHubService    = "2021-04-12"
	tokenRefreshSkew = time.Minute
)

// Target is a provisioning service on another Ferry, seen through its APIs.
type Target struct {
	rf        ferry.RemoteFerry
	serviceID string // ARM resource ID on the remote

	c      *client.Client
	stream *http.Client // no overall timeout: streams last

	mu       sync.Mutex
	expires  time.Time
	dpsHost  string            // service-operations host of the DPS
	hubNames map[string]string // hub host name → hub name
}

var _ migrate.RemoteTarget = (*Target)(nil)

// Dial returns the remote provisioning service serviceID (an ARM resource
// ID) on the Ferry rf describes. It does not contact the remote yet.
// Returns EINVALID for an unusable endpoint or CA certificate.
func Dial(_ context.Context, rf *ferry.RemoteFerry, serviceID string) (migrate.RemoteTarget, error) {
	u, err := url.Parse(rf.APIEndpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, ferry.Errorf(ferry.EINVALID, "The target Ferry's API endpoint must be an https:// URL.")
	}
	c, err := client.New(rf.APIEndpoint, rf.CACertPEM)
	if err != nil {
		return nil, ferry.Errorf(ferry.EINVALID, "The target Ferry's CA certificate is not usable: %v.", err)
	}
	c.UserAgent = "ferry-migrate"
	c.HTTPClient.Timeout = 90 * time.Second // a direct method may take 30 s and more
	stream := *c.HTTPClient
	stream.Timeout = 0
	return &Target{rf: *rf, serviceID: serviceID, c: c, stream: &stream, hubNames: map[string]string{}}, nil
}

// token signs in when there is no token or it is about to expire.
func (t *Target) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c.Token != "" && time.Until(t.expires) > tokenRefreshSkew {
		return t.c.Token, nil
	}
	tok, err := t.c.Login(ctx, client.Grant{ClientID: t.rf.ClientID, ClientSecret: t.rf.ClientSecret})
	if err != nil {
		return "", remoteErr("sign in", err)
	}
	t.expires = tok.ExpiresAt
	return tok.AccessToken, nil
}

// do sends a request to the remote with a fresh token. host, when set, is
// the Host header that picks a hub or provisioning service.
func (t *Target) do(ctx context.Context, host, method, path string, in, out any) error {
	tok, err := t.token(ctx)
	if err != nil {
		return err
	}
	req, err := t.c.NewRequest(ctx, method, path, in)
	if err != nil {
		return err
	}
	if host != "" {
		req.Host = host
	}
	// Not t.c.Send: it reads the client's token, which token() may be
	// renewing for another request.
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", t.c.UserAgent)
	resp, err := t.c.HTTPClient.Do(req)
	if err != nil {
		return remoteErr(method+" "+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return remoteErr(method+" "+path, err)
	}
	if resp.StatusCode >= 300 {
		return statusErr(resp.StatusCode, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return nil
}

// statusErr turns an error answer of any of the remote's surfaces into a
// domain error whose message says what the remote said.
func statusErr(status int, data []byte) error {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Msg     string          `json:"Message"`
	}
	_ = json.Unmarshal(data, &v)
	msg := v.Message
	if msg == "" {
		msg = v.Msg
	}
	var arm struct{ Message string }
	if msg == "" && json.Unmarshal(v.Error, &arm) == nil {
		msg = arm.Message
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	if _, rest, ok := strings.Cut(msg, ";"); ok && strings.HasPrefix(msg, "ErrorCode:") {
		msg = strings.TrimSpace(rest)
	}
	code := ferry.EINTERNAL
	switch {
	case status == http.StatusUnauthorized:
		code = ferry.EUNAUTHORIZED
	case status == http.StatusForbidden:
		code = ferry.EFORBIDDEN
	case status == http.StatusNotFound:
		code = ferry.ENOTFOUND
	case status == http.StatusConflict:
		code = ferry.ECONFLICT
	case status == http.StatusTooManyRequests:
		code = ferry.ETHROTTLED
	case status == http.StatusGatewayTimeout:
		code = ferry.ETIMEOUT
	case status == http.StatusPreconditionFailed:
		code = ferry.EPRECONDITION
	case status < 500:
		code = ferry.EINVALID
	}
	return ferry.Errorf(code, "The target Ferry answered %d: %s", status, strings.TrimSpace(msg))
}

// remoteErr reports a failure to reach the remote or to sign in there.
func remoteErr(op string, err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		code := ferry.EINTERNAL
		switch {
		case ce.Status == http.StatusUnauthorized || ce.Status == http.StatusBadRequest && (ce.Code == "invalid_client" || ce.Code == "unauthorized_client"):
			code = ferry.EUNAUTHORIZED
		case ce.Status == http.StatusForbidden:
			code = ferry.EFORBIDDEN
		}
		return ferry.WrapError(code, fmt.Sprintf("The target Ferry refused to %s: %s", op, ce.Message), err)
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		return ferry.WrapError(ferry.ETIMEOUT, fmt.Sprintf("The target Ferry is unreachable (%s): %v", op, unwrapURL(err)), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

type armResource struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		IDScope                    string `json:"idScope"`
		HostName                   string `json:"hostName"`
		ServiceOperationsHostName  string `json:"serviceOperationsHostName"`
		DeviceProvisioningHostName string `json:"deviceProvisioningHostName"`
		State                      string `json:"state"`
		IotHubs                    []struct {
			Name string `json:"name"`
		} `json:"iotHubs"`
	} `json:"properties"`
}

// Service reads the remote provisioning service and the names of its
// linked hubs. Linked hubs are keyed by migrate.RemoteHubID of their host
// names. HostName is the host devices provision at.
func (t *Target) Service(ctx context.Context) (*ferry.ProvisioningService, error) {
	rid, err := ferry.ParseResourceID(t.serviceID)
	if err != nil || !strings.EqualFold(rid.Provider+"/"+strings.Join(rid.Types, "/"), ferry.TypeProvisioningService) {
		return nil, ferry.Errorf(ferry.EINVALID, "The target provisioning service must be given by its resource ID on the target Ferry.")
	}
	var dps armResource
	if err := t.do(ctx, "", http.MethodGet, t.serviceID+"?api-version="+apiDPS, nil, &dps); err != nil {
		return nil, fmt.Errorf("read the target provisioning service: %w", err)
	}
	names := map[string]string{}
	next := "/subscriptions/" + url.PathEscape(rid.SubscriptionID) + "/providers/Microsoft.Devices/IotHubs?api-version=" + apiHubs
	for next != "" {
		var page struct {
			Value    []armResource `json:"value"`
			NextLink string        `json:"nextLink"`
		}
		if err := t.do(ctx, "", http.MethodGet, next, nil, &page); err != nil {
			return nil, fmt.Errorf("list the target's hubs: %w", err)
		}
		for _, h := range page.Value {
			names[strings.ToLower(h.Properties.HostName)] = h.Name
		}
		next = ""
		if u, err := url.Parse(page.NextLink); err == nil && page.NextLink != "" {
			next = u.RequestURI()
		}
	}
	svc := &ferry.ProvisioningService{ID: dps.ID, Name: dps.Name, IDScope: dps.Properties.IDScope,
		HostName: dps.Properties.DeviceProvisioningHostName, SubscriptionID: rid.SubscriptionID, ResourceGroup: rid.ResourceGroup}
	for _, l := range dps.Properties.IotHubs {
		host := strings.ToLower(l.Name)
		if _, ok := names[host]; !ok {
			return nil, ferry.Errorf(ferry.EFORBIDDEN, "The target's linked hub %s is not visible to the migration's service principal; it needs read access to the target hubs.", l.Name)
		}
		svc.LinkedHubs = append(svc.LinkedHubs, ferry.LinkedHub{HubID: migrate.RemoteHubID(host), HostName: host})
	}
	t.mu.Lock()
	t.dpsHost, t.hubNames = dps.Properties.ServiceOperationsHostName, names
	t.mu.Unlock()
	return svc, nil
}

func (t *Target) serviceHost(ctx context.Context) (string, error) {
	t.mu.Lock()
	h := t.dpsHost
	t.mu.Unlock()
	if h != "" {
		return h, nil
	}
	if _, err := t.Service(ctx); err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dpsHost, nil
}

type groupJSON struct {
	EnrollmentGroupID string `json:"enrollmentGroupId"`
	Attestation       struct {
		Type         string `json:"type"`
		SymmetricKey *struct {
			PrimaryKey   string `json:"primaryKey,omitempty"`
			SecondaryKey string `json:"secondaryKey,omitempty"`
		} `json:"symmetricKey,omitempty"`
	} `json:"attestation"`
	ProvisioningStatus string `json:"provisioningStatus,omitempty"`
	ReprovisionPolicy  *struct {
		UpdateHubAssignment bool `json:"updateHubAssignment"`
		MigrateDeviceData   bool `json:"migrateDeviceData"`
	} `json:"reprovisionPolicy,omitempty"`
}

// GetEnrollmentGroup reads an enrollment group. Returns ENOTFOUND.
func (t *Target) GetEnrollmentGroup(ctx context.Context, id string) (*ferry.EnrollmentGroup, error) {
	host, err := t.serviceHost(ctx)
	if err != nil {
		return nil, err
	}
	var g groupJSON
	if err := t.do(ctx, host, http.MethodGet, "/enrollmentGroups/"+url.PathEscape(id)+"?api-version="+apiDPSService, nil, &g); err != nil {
		return nil, err
	}
	out := &ferry.EnrollmentGroup{ID: g.EnrollmentGroupID, Status: ferry.EnrollmentEnabled}
	if strings.EqualFold(g.ProvisioningStatus, "disabled") {
		out.Status = ferry.EnrollmentDisabled
	}
	out.Attestation.Type = ferry.AttestationType(g.Attestation.Type)
	if strings.EqualFold(g.Attestation.Type, "symmetricKey") {
		out.Attestation.Type = ferry.AttestSymmetricKey
	}
	if k := g.Attestation.SymmetricKey; k != nil {
		out.Attestation.PrimaryKey, out.Attestation.SecondaryKey = k.PrimaryKey, k.SecondaryKey
	}
	return out, nil
}

// CreateEnrollmentGroup creates a symmetric-key enrollment group with g's
// keys. Returns ECONFLICT if it exists.
func (t *Target) CreateEnrollmentGroup(ctx context.Context, g *ferry.EnrollmentGroup) error {
	host, err := t.serviceHost(ctx)
	if err != nil {
		return err
	}
	var in groupJSON
	in.EnrollmentGroupID = g.ID
	in.Attestation.Type = "symmetricKey"
	in.Attestation.SymmetricKey = &struct {
		PrimaryKey   string `json:"primaryKey,omitempty"`
		SecondaryKey string `json:"secondaryKey,omitempty"`
	}{g.Attestation.PrimaryKey, g.Attestation.SecondaryKey}
	in.ProvisioningStatus = "enabled"
	in.ReprovisionPolicy = &struct {
		UpdateHubAssignment bool `json:"updateHubAssignment"`
		MigrateDeviceData   bool `json:"migrateDeviceData"`
	}{true, true}
	return t.do(ctx, host, http.MethodPut, "/enrollmentGroups/"+url.PathEscape(g.ID)+"?api-version="+apiDPSService, in, nil)
}

// GetRegistration reads a device's registration record. Returns ENOTFOUND.
func (t *Target) GetRegistration(ctx context.Context, registrationID string) (*ferry.RegistrationRecord, error) {
	host, err := t.serviceHost(ctx)
	if err != nil {
		return nil, err
	}
	var r struct {
		RegistrationID string `json:"registrationId"`
		AssignedHub    string `json:"assignedHub"`
		DeviceID       string `json:"deviceId"`
		Status         string `json:"status"`
		LastUpdated    string `json:"lastUpdatedDateTimeUtc"`
	}
	if err := t.do(ctx, host, http.MethodGet, "/registrations/"+url.PathEscape(registrationID)+"?api-version="+apiDPSService, nil, &r); err != nil {
		return nil, err
	}
	at, _ := time.Parse(time.RFC3339Nano, r.LastUpdated)
	return &ferry.RegistrationRecord{RegistrationID: r.RegistrationID, AssignedHub: r.AssignedHub, DeviceID: r.DeviceID,
		Status: ferry.RegistrationStatus(r.Status), UpdatedAt: at}, nil
}

// Connected reports whether a device holds a session at a hub, by its
// identity's connection state.
func (t *Target) Connected(ctx context.Context, hubHost, deviceID string) (bool, error) {
	var d struct {
		ConnectionState string `json:"connectionState"`
	}
	err := t.do(ctx, hubHost, http.MethodGet, "/devices/"+url.PathEscape(deviceID)+"?api-version="+apiHubService, nil, &d)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return d.ConnectionState == string(ferry.Connected), nil
}

// HubStatistics reads a hub's registry statistics and its service
// statistics, whose "ferry" member (Ferry's extension, absent from Azure's
// answer) gives the serving process's device connections and their limit.
func (t *Target) HubStatistics(ctx context.Context, hubHost string) (migrate.HubStatistics, error) {
	var dev struct {
		TotalDeviceCount int64 `json:"totalDeviceCount"`
	}
	if err := t.do(ctx, hubHost, http.MethodGet, "/statistics/devices?api-version="+apiHubService, nil, &dev); err != nil {
		return migrate.HubStatistics{}, fmt.Errorf("read the device statistics of %s: %w", hubHost, err)
	}
	var svc struct {
		Ferry *struct {
			OpenConnections int64 `json:"openConnections"`
			ConnectionLimit int64 `json:"connectionLimit"`
		} `json:"ferry"`
	}
	if err := t.do(ctx, hubHost, http.MethodGet, "/statistics/service?api-version="+apiHubService, nil, &svc); err != nil {
		return migrate.HubStatistics{}, fmt.Errorf("read the service statistics of %s: %w", hubHost, err)
	}
	out := migrate.HubStatistics{Devices: dev.TotalDeviceCount}
	if svc.Ferry != nil {
		out.OpenConnections, out.ConnectionLimit = svc.Ferry.OpenConnections, svc.Ferry.ConnectionLimit
	}
	return out, nil
}

// InvokeMethod calls a direct method on a device connected to a hub.
// Errors are those of the local hub service: a device not online, a
// method timeout.
func (t *Target) InvokeMethod(ctx context.Context, hubHost, deviceID string, req ferry.MethodRequest) (ferry.MethodResponse, error) {
	in := map[string]any{"methodName": req.MethodName, "payload": json.RawMessage(req.Payload),
		"responseTimeoutInSeconds": max(int(req.ResponseTimeout/time.Second), 5)}
	if len(req.Payload) == 0 {
		in["payload"] = nil
	}
	var out struct {
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
	}
	err := t.do(ctx, hubHost, http.MethodPost, "/twins/"+url.PathEscape(deviceID)+"/methods?api-version="+apiHubService, in, &out)
	switch {
	case err == nil:
		return ferry.MethodResponse{Status: out.Status, Payload: out.Payload}, nil
	case ferry.IsCode(err, ferry.ENOTFOUND):
		// The hub answers 404 for a device that is not online (404103)
		// as for one it does not know: either way it is not there.
		return ferry.MethodResponse{}, fmt.Errorf("%s at %s: %w", deviceID, hubHost, ferry.ErrDeviceNotOnline)
	case ferry.IsCode(err, ferry.ETIMEOUT):
		return ferry.MethodResponse{}, fmt.Errorf("%s at %s: %w", deviceID, hubHost, ferry.ErrMethodTimeout)
	}
	return ferry.MethodResponse{}, err
}

// Follow streams the device events of the hub at hubHost to fn until ctx
// ends or the stream breaks. resync is called once the stream is
// established (every event after it reaches fn, unless the remote drops
// some) and again after each ": dropped N events" comment of the stream.
func (t *Target) Follow(ctx context.Context, hubHost string, resync func(), fn func(ferry.Event)) error {
	t.mu.Lock()
	name := t.hubNames[strings.ToLower(hubHost)]
	t.mu.Unlock()
	if name == "" {
		return ferry.Errorf(ferry.ENOTFOUND, "The target hub %s is not known; read the service first.", hubHost)
	}
	tok, err := t.token(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.c.BaseURL+"/api/hubs/"+url.PathEscape(name)+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := t.stream.Do(req)
	if err != nil {
		return remoteErr("stream events", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return statusErr(resp.StatusCode, data)
	}
	resync()
	hubID := migrate.RemoteHubID(hubHost)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 {
				if ev, ok := decodeEvent(data, hubID); ok {
					fn(ev)
				}
			}
			data = data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimSpace(line[5:])...)
		case bytes.HasPrefix(line, []byte(": dropped ")):
			resync()
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return remoteErr("stream events", err)
	}
	return ctx.Err()
}

// decodeEvent reads one streamed event (httpapi/events.Message).
func decodeEvent(data []byte, hubID string) (ferry.Event, bool) {
	var m struct {
		ID       string          `json:"id"`
		Time     time.Time       `json:"enqueuedTime"`
		Source   string          `json:"messageSource"`
		Type     string          `json:"messageType"`
		HubHost  string          `json:"hubHost"`
		DeviceID string          `json:"deviceId"`
		ModelID  string          `json:"modelId"`
		Payload  json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &m) != nil || m.DeviceID == "" {
		return ferry.Event{}, false
	}
	return ferry.Event{ID: m.ID, Time: m.Time, Source: m.Source, Type: m.Type, HubID: hubID, HubHost: m.HubHost,
		DeviceID: m.DeviceID, ModelID: m.ModelID, Body: m.Payload}, true
}
