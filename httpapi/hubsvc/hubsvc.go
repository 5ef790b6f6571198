// Package hubsvc serves the service-side REST APIs of Ferry's hubs and
// provisioning services in the shapes of Azure's IoT Hub service API
// (api-version 2021-04-12) and Device Provisioning Service service API
// (api-version 2021-10-01), so that the official service SDKs and existing
// scripts work against Ferry unchanged. Under a hub's host it also serves
// device templates and device groups in the shape of the IoT Central REST
// API (api-version 2022-07-31, /api/deviceTemplates and /api/deviceGroups),
// with the registry's rights: registryRead to read, registryWrite to write.
//
// The resource is chosen by the request's Host header, as in Azure, where
// each hub and each provisioning service has its own host name: hub routes
// (/devices, /twins, /jobs, /statistics, /api) resolve a hub with Store.GetHubByHost, DPS
// routes (/enrollmentGroups, /enrollments, /registrations) resolve the
// provisioning service whose HostName matches, or else whose Name is the
// host's first label (so "my-dps.example.com" finds the service "my-dps").
// The port is ignored and the comparison is case-insensitive, so tests can
// address hubs as 127.0.0.2, 127.0.0.3, ...
//
// Callers authenticate with `Authorization: SharedAccessSignature ...`
// signed with a shared-access policy of the hub or service (rights checked
// per operation as Azure does), or with a Ferry bearer token. Bearer callers
// are accepted when Config.Authorize allows them; the default allows every
// authenticated principal until role-based access reaches this surface.
//
// Every write, allowed or refused, is recorded with Config.Audit under the
// operation ID of Azure's REST spec as the rbac operation table spells it
// ("IotHub.Devices_DeleteIdentity", "Dps.EnrollmentGroup_CreateOrUpdate");
// reads are not recorded.
package hubsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/sas"
)

// Operation names what a request does, for Config.Authorize.
type Operation string

// Operations of the hub and DPS service APIs.
const (
	OpRegistryRead      Operation = "registry/read"
	OpRegistryWrite     Operation = "registry/write"
	OpTwinRead          Operation = "twins/read"
	OpTwinWrite         Operation = "twins/write"
	OpInvokeMethod      Operation = "methods/invoke"
	OpSendC2D           Operation = "messages/send"
	OpPurgeC2D          Operation = "messages/purge"
	OpJobRead           Operation = "jobs/read"
	OpJobWrite          Operation = "jobs/write"
	OpDeviceStatistics  Operation = "statistics/devices/read"
	OpServiceStatistics Operation = "statistics/service/read"
	OpEnrollmentRead    Operation = "enrollments/read"
	OpEnrollmentWrite   Operation = "enrollments/write"
	OpRegistrationRead  Operation = "registrations/read"
	OpRegistrationWrite Operation = "registrations/write"
)

// Operations returns every operation the service APIs authorize, sorted.
func Operations() []Operation {
	ops := slices.Collect(maps.Keys(rights))
	slices.Sort(ops)
	return ops
}

// rights lists, per operation, the shared-access rights of which a policy
// needs one. RegistryWrite implies RegistryRead, as in IoT Hub.
var rights = map[Operation][]ferry.AccessRight{
	OpRegistryRead:      {ferry.RightRegistryRead, ferry.RightRegistryWrite},
	OpRegistryWrite:     {ferry.RightRegistryWrite},
	OpTwinRead:          {ferry.RightServiceConnect, ferry.RightRegistryRead, ferry.RightRegistryWrite},
	OpTwinWrite:         {ferry.RightServiceConnect},
	OpInvokeMethod:      {ferry.RightServiceConnect},
	OpSendC2D:           {ferry.RightServiceConnect},
	OpPurgeC2D:          {ferry.RightServiceConnect},
	OpJobRead:           {ferry.RightServiceConnect, ferry.RightRegistryRead, ferry.RightRegistryWrite},
	OpJobWrite:          {ferry.RightServiceConnect},
	OpDeviceStatistics:  {ferry.RightRegistryRead, ferry.RightRegistryWrite},
	OpServiceStatistics: {ferry.RightServiceConnect},
	OpEnrollmentRead:    {ferry.RightEnrollmentRead, ferry.RightEnrollmentWrite},
	OpEnrollmentWrite:   {ferry.RightEnrollmentWrite},
	OpRegistrationRead:  {ferry.RightRegistrationStatusRead, ferry.RightRegistrationStatusWrite},
	OpRegistrationWrite: {ferry.RightRegistrationStatusWrite},
}

// Target is the resource a request addresses, for Config.Authorize: a hub
// or a provisioning service (exactly one is set).
type Target struct {
	Hub     *ferry.Hub
	Service *ferry.ProvisioningService
}

// Config holds what the handler needs.
type Config struct {
	Store        ferry.Store
	Hubs         ferry.HubService          // methods, C2D, twin updates
	Provisioning ferry.ProvisioningChanged // told of enrollment changes; may be nil
	Tokens       ferry.TokenVerifier       // Ferry bearer tokens; nil: SAS only
	// Authorize decides whether a bearer-token caller may perform op on the
	// target. Nil allows every authenticated principal. This is the hook
	// for role-based access on the device plane.
	Authorize func(ctx context.Context, c *ferry.Caller, t Target, op Operation) error
	// JobsChanged, if set, is called after a job is created or cancelled,
	// so that the job runner looks at it without waiting for its next poll.
	JobsChanged func()
	// Audit records every write of both APIs (identities, twins, methods,
	// C2D messages, jobs, device templates and groups, enrollments,
	// registrations), allowed or refused; nil records nothing.
	Audit audit.Recorder
	// Capacity, if set, reports the server's device connections, which
	// GET /statistics/service adds to IoT Hub's answer as "ferry":
	// {"openConnections", "connectionLimit"}.
	Capacity func() ConnectionCapacity
	Logger   *slog.Logger
	Now      func() time.Time
}

// server is the handler state.
type server struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	audit audit.Recorder
}

// Handler serves both service APIs.
type Handler struct {
	s   *server
	mux *http.ServeMux
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ServesHost reports whether a request for host (a Host header, with or
// without a port) addresses a hub or a provisioning service, so that a
// listener shared with other surfaces can send it here.
func (h *Handler) ServesHost(ctx context.Context, host string) (bool, error) {
	r := &http.Request{Host: host}
	name := requestHost(r)
	_, err := h.s.cfg.Store.GetHubByHost(ctx, name)
	if ferry.IsCode(err, ferry.ENOTFOUND) && name != strings.ToLower(host) {
		_, err = h.s.cfg.Store.GetHubByHost(ctx, host)
	}
	if err == nil {
		return true, nil
	}
	if !ferry.IsCode(err, ferry.ENOTFOUND) {
		return false, fmt.Errorf("resolve hub: %w", err)
	}
	_, err = h.s.serviceByHost(ctx, name)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return false, nil
	}
	return err == nil, err
}

// New returns the handler of both service APIs.
func New(cfg Config) *Handler {
	s := &server{cfg: cfg, log: cfg.Logger, now: cfg.Now, audit: cfg.Audit}
	if s.audit == nil {
		s.audit = audit.Discard
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	mux := http.NewServeMux()
	hub := func(pattern string, op Operation, h hubHandler) {
		mux.Handle(pattern, httpapi.Handle(s.log, s.renderHub, s.withHub(op, h)))
	}
	// Every write is audited, allowed or refused; reads are not.
	audited := func(pattern, operation, kind string, op Operation, h hubHandler) {
		mux.Handle(pattern, s.auditedHub(operation, kind, op, h))
	}
	audited("PUT /devices/{id}", auditDeviceWrite, "devices", OpRegistryWrite, s.putDevice)
	hub("GET /devices/{id}", OpRegistryRead, s.getDevice)
	audited("DELETE /devices/{id}", auditDeviceDelete, "devices", OpRegistryWrite, s.deleteDevice)
	hub("GET /devices", OpRegistryRead, s.listDevices)
	hub("GET /devices/{$}", OpRegistryRead, s.listDevices) // the Node SDK lists with a trailing slash
	hub("POST /devices/query", OpRegistryRead, s.queryDevices)
	audited("POST /devices/{id}/messages/deviceBound", auditC2DSend, "devices", OpSendC2D, s.sendC2D)
	audited("DELETE /devices/{id}/commands", auditC2DPurge, "devices", OpPurgeC2D, s.purgeC2D)
	hub("GET /twins/{id}", OpTwinRead, s.getTwin)
	audited("PATCH /twins/{id}", auditTwinUpdate, "twins", OpTwinWrite, s.patchTwin)
	audited("PUT /twins/{id}", auditTwinReplace, "twins", OpTwinWrite, s.putTwin)
	audited("POST /twins/{id}/methods", auditMethodInvoke, "devices", OpInvokeMethod, s.invokeMethod)
	audited("PUT /jobs/v2/{id}", auditJobCreate, "jobs", OpJobWrite, s.putJob)
	hub("GET /jobs/v2/query", OpJobRead, s.queryJobs)
	hub("GET /jobs/v2/{id}", OpJobRead, s.getJob)
	audited("POST /jobs/v2/{id}/cancel", auditJobCancel, "jobs", OpJobWrite, s.cancelJob)
	hub("GET /statistics/devices", OpDeviceStatistics, s.getDeviceStatistics)
	hub("GET /statistics/service", OpServiceStatistics, s.getServiceStatistics)
	audited("PUT /api/deviceTemplates/{id}", auditTemplateCreate, "deviceTemplates", OpRegistryWrite, s.putTemplate)
	hub("GET /api/deviceTemplates/{id}", OpRegistryRead, s.getTemplate)
	audited("DELETE /api/deviceTemplates/{id}", auditTemplateRemove, "deviceTemplates", OpRegistryWrite, s.deleteTemplate)
	hub("GET /api/deviceTemplates", OpRegistryRead, s.listTemplates)
	audited("PUT /api/deviceGroups/{id}", auditGroupCreate, "deviceGroups", OpRegistryWrite, s.putDeviceGroup)
	audited("PATCH /api/deviceGroups/{id}", auditGroupUpdate, "deviceGroups", OpRegistryWrite, s.patchDeviceGroup)
	hub("GET /api/deviceGroups/{id}", OpRegistryRead, s.getDeviceGroup)
	audited("DELETE /api/deviceGroups/{id}", auditGroupRemove, "deviceGroups", OpRegistryWrite, s.deleteDeviceGroup)
	hub("GET /api/deviceGroups", OpRegistryRead, s.listDeviceGroups)
	hub("GET /api/deviceGroups/{id}/devices", OpRegistryRead, s.groupDevices)

	dps := func(pattern string, op Operation, h dpsHandler) {
		mux.Handle(pattern, httpapi.Handle(s.log, s.renderDPS, s.withService(op, h)))
	}
	auditedDPS := func(pattern, operation, kind string, op Operation, h dpsHandler) {
		mux.Handle(pattern, s.auditedDPS(operation, kind, op, h))
	}
	for _, p := range []string{"enrollmentGroups", "enrollmentgroups"} {
		auditedDPS("PUT /"+p+"/{id}", auditEnrollmentGroupPut, "enrollmentGroups", OpEnrollmentWrite, s.putGroup)
		dps("GET /"+p+"/{id}", OpEnrollmentRead, s.getGroup)
		auditedDPS("DELETE /"+p+"/{id}", auditEnrollmentGroupDel, "enrollmentGroups", OpEnrollmentWrite, s.deleteGroup)
		dps("POST /"+p+"/query", OpEnrollmentRead, s.queryGroups)
		dps("POST /"+p+"/{id}/attestationmechanism", OpEnrollmentRead, s.groupAttestation)
	}
	auditedDPS("PUT /enrollments/{id}", auditEnrollmentPut, "enrollments", OpEnrollmentWrite, s.putEnrollment)
	dps("GET /enrollments/{id}", OpEnrollmentRead, s.getEnrollment)
	auditedDPS("DELETE /enrollments/{id}", auditEnrollmentDel, "enrollments", OpEnrollmentWrite, s.deleteEnrollment)
	dps("POST /enrollments/query", OpEnrollmentRead, s.queryEnrollments)
	dps("POST /enrollments/{id}/attestationmechanism", OpEnrollmentRead, s.enrollmentAttestation)
	dps("GET /registrations/{id}", OpRegistrationRead, s.getRegistration)
	auditedDPS("DELETE /registrations/{id}", auditRegistrationDel, "registrations", OpRegistrationWrite, s.deleteRegistration)
	dps("POST /registrations/{id}/query", OpRegistrationRead, s.queryRegistrations)
	return &Handler{s: s, mux: mux}
}

type hubHandler func(w http.ResponseWriter, r *http.Request, h *ferry.Hub) error

type dpsHandler func(w http.ResponseWriter, r *http.Request, ps *ferry.ProvisioningService) error

// requestHost returns the request's host without its port, lower-cased.
func requestHost(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

// withHub resolves the hub by host, authenticates and authorizes.
func (s *server) withHub(op Operation, h hubHandler) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		host := requestHost(r)
		hub, err := s.cfg.Store.GetHubByHost(r.Context(), host)
		if ferry.IsCode(err, ferry.ENOTFOUND) && host != strings.ToLower(r.Host) {
			hub, err = s.cfg.Store.GetHubByHost(r.Context(), r.Host)
		}
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return hubErr(http.StatusNotFound, "IotHubNotFound", 404001, ferry.Errorf(ferry.ENOTFOUND, "No hub answers to host %s.", host))
		}
		if err != nil {
			return fmt.Errorf("resolve hub: %w", err)
		}
		n := noteFrom(r.Context())
		if n != nil {
			n.resource = hubResource(hub)
		}
		caller, err := s.authenticate(r, hub.HostName, hub.Policy, op)
		if err != nil {
			return err
		}
		if n != nil {
			n.caller = caller
		}
		if caller.Policy == "" {
			if err := s.authorize(r.Context(), caller, Target{Hub: hub}, op); err != nil {
				return err
			}
		}
		ctx := ferry.NewContextWithCaller(r.Context(), caller)
		return h(w, r.WithContext(ctx), hub)
	}
}

// withService resolves the provisioning service by host, authenticates and
// authorizes.
func (s *server) withService(op Operation, h dpsHandler) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ps, err := s.serviceByHost(r.Context(), requestHost(r))
		if err != nil {
			return err
		}
		host := ps.HostName
		if host == "" {
			host = requestHost(r)
		}
		n := noteFrom(r.Context())
		if n != nil {
			n.resource = serviceResource(ps, host)
		}
		caller, err := s.authenticate(r, host, ps.Policy, op)
		if err != nil {
			return err
		}
		if n != nil {
			n.caller = caller
		}
		if caller.Policy == "" {
			if err := s.authorize(r.Context(), caller, Target{Service: ps}, op); err != nil {
				return err
			}
		}
		ctx := ferry.NewContextWithCaller(r.Context(), caller)
		return h(w, r.WithContext(ctx), ps)
	}
}

// serviceByHost finds the provisioning service whose HostName is host
// (without its port), or else whose name is the host's first label.
func (s *server) serviceByHost(ctx context.Context, host string) (*ferry.ProvisioningService, error) {
	opt := ferry.ListOptions{Limit: ferry.MaxPageSize}
	for {
		page, err := s.cfg.Store.ListProvisioningServices(ctx, ferry.ProvisioningServiceFilter{ListOptions: opt})
		if err != nil {
			return nil, fmt.Errorf("resolve provisioning service: %w", err)
		}
		for _, ps := range page.Items {
			h := ps.HostName
			if hh, _, err := net.SplitHostPort(h); err == nil {
				h = hh
			}
			if h != "" && strings.EqualFold(h, host) {
				return ps, nil
			}
		}
		if page.Next == "" {
			break
		}
		opt.After = page.Next
	}
	label, _, _ := strings.Cut(host, ".")
	ps, err := s.cfg.Store.GetProvisioningServiceByName(ctx, label)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, dpsErr(http.StatusNotFound, 404001, ferry.Errorf(ferry.ENOTFOUND, "No provisioning service answers to host %s.", host))
	}
	if err != nil {
		return nil, fmt.Errorf("resolve provisioning service: %w", err)
	}
	return ps, nil
}

// authenticate checks the Authorization header: a SAS signed with one of
// the resource's policies that has a right op needs, with a resource that
// covers the host; or a Ferry bearer token.
func (s *server) authenticate(r *http.Request, host string, policy func(string) *ferry.AccessPolicy, op Operation) (*ferry.Caller, error) {
	caller := &ferry.Caller{UserAgent: r.UserAgent(), ClientIP: clientIP(r)}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "The request has no Authorization header.")
	case strings.HasPrefix(auth, sas.Prefix):
		tok, err := sas.Parse(auth)
		if err != nil {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "The shared access signature is not valid.")
		}
		p := policy(tok.KeyName)
		if tok.KeyName == "" || p == nil {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "The shared access signature is not valid.")
		}
		if !sas.ResourceCovers(tok.SignedResource, host) && !sas.ResourceCovers(tok.SignedResource, r.Host) &&
			!sas.ResourceCovers(tok.SignedResource, requestHost(r)) {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "The shared access signature is not valid.")
		}
		now := s.now()
		if err := sas.Verify(tok, p.PrimaryKey, now); err != nil {
			if p.SecondaryKey == "" || sas.Verify(tok, p.SecondaryKey, now) != nil {
				return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "The shared access signature is not valid.")
			}
		}
		ok := false
		for _, right := range rights[op] {
			ok = ok || p.Has(right)
		}
		if !ok {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "The policy %s does not grant this operation.", p.KeyName)
		}
		caller.Policy = p.KeyName
		return caller, nil
	case len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer "):
		if s.cfg.Tokens == nil {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "Bearer tokens are not accepted here.")
		}
		claims, err := s.cfg.Tokens.VerifyToken(r.Context(), strings.TrimSpace(auth[7:]))
		if err != nil {
			return nil, err
		}
		caller.Claims = claims
		caller.Principal = &ferry.Principal{ID: claims.ObjectID, Name: claims.Name, Type: claims.Type}
		return caller, nil
	}
	return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "The Authorization header is not a shared access signature or a bearer token.")
}

func (s *server) authorize(ctx context.Context, c *ferry.Caller, t Target, op Operation) error {
	if s.cfg.Authorize == nil {
		return nil
	}
	return s.cfg.Authorize(ctx, c, t, op)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// maxBody bounds request bodies; IoT Hub's largest documents (twins) are
// far smaller.
const maxBody = 1 << 20

// decode reads a JSON body into v.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return ferry.WrapError(ferry.EINVALID, "The request body could not be read.", err)
	}
	if len(body) > maxBody {
		return ferry.Errorf(ferry.EINVALID, "The request body is larger than %d bytes.", maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return ferry.WrapError(ferry.EINVALID, "The request body is not valid JSON for this operation.", err)
	}
	return nil
}

// ifMatch returns the If-Match header without quotes.
func ifMatch(r *http.Request) string {
	return strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
}

// timeString renders a time as IoT Hub does, with the zero time as
// 0001-01-01T00:00:00Z.
func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// writeJSON writes v with an ETag header when etag is set.
func writeJSON(w http.ResponseWriter, status int, etag string, v any) error {
	if etag != "" {
		w.Header().Set("ETag", `"`+etag+`"`)
	}
	return httpapi.WriteJSON(w, status, v)
}
