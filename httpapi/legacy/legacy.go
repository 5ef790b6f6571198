// Package legacy serves the legacy management surface: the Azure Sphere
// Public API (PAPI) v2 at /v2/tenants/..., with PascalCase fields, integer
// enums, Sphere-Continuation paging, Operation objects for long-running
// calls and the legacy error codes (sphere-surfaces.md §2). It works on
// the same sphere.Service and store as the integrated surface, so a change
// on either is visible on the other at once.
//
// Every call is authorized with the tenant-wide legacy roles (an Authorizer
// such as rbac.NewLegacy) by the ARM action rbac's operation table gives
// its request, refused while the tenant's legacy access is paused or
// blocked, and audited with surface "legacy" (principal, user agent,
// operation, time), which the legacy usage report is computed from.
//
// The handler expects identity middleware in front of it to have put the
// ferry.Caller in the request context; without one it answers 401 in the
// legacy error shape.
package legacy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
)

// Config configures the handler.
type Config struct {
	Sphere     *sphere.Service  // required
	Store      ferry.Store      // required: principals, legacy roles, operations
	Authorizer ferry.Authorizer // required: the legacy roles (rbac.NewLegacy)
	Audit      audit.Recorder   // nil records nothing
	Logger     *slog.Logger     // nil discards
	Now        func() time.Time // nil is time.Now
}

// api holds the handlers.
type api struct {
	svc   *sphere.Service
	store ferry.Store
	authz ferry.Authorizer
	audit audit.Recorder
	log   *slog.Logger
	now   func() time.Time
}

// route is one legacy request and what serves it.
type route struct {
	pattern string // ServeMux method pattern
	opID    string // rbac operation ID, recorded in the audit log
	action  string // ARM action checked over the tenant; "" for tenant-free calls
	h       httpapi.HandlerFunc
}

// New returns the handler of every legacy (PAPI v2) endpoint.
func New(cfg Config) http.Handler {
	a := &api{svc: cfg.Sphere, store: cfg.Store, authz: cfg.Authorizer, audit: cfg.Audit, log: cfg.Logger, now: cfg.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.audit == nil {
		a.audit = audit.Discard
	}
	if a.now == nil {
		a.now = time.Now
	}
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		mux.Handle(rt.pattern, a.wrap(rt))
	}
	mux.Handle("/v2/", a.wrap(route{opID: "NotFound", h: func(w http.ResponseWriter, r *http.Request) error {
		return ferry.Errorf(ferry.ENOTFOUND, "No legacy API operation matches %s %s.", r.Method, r.URL.Path)
	}}))
	return mux
}

// Endpoints returns the method patterns the surface serves, with the
// operation ID each is audited under.
func Endpoints() map[string]string {
	out := map[string]string{}
	for _, rt := range (&api{}).routes() {
		out[rt.pattern] = rt.opID
	}
	return out
}

// routes joins the handlers to rbac's operation table: each legacy request
// listed there is served with its operation's action. A request without a
// handler is a programming error caught by the tests (Endpoints).
func (a *api) routes() []route {
	hs := a.handlers()
	var out []route
	for _, op := range rbac.Operations() {
		for _, req := range op.Legacy {
			h, ok := hs[req]
			if !ok {
				continue
			}
			rt := route{pattern: req, opID: op.ID, action: op.Action, h: h}
			if !strings.Contains(req, "{tenantId}") {
				rt.action = ""
			}
			out = append(out, rt)
		}
	}
	return out
}

const t = "/v2/tenants/{tenantId}"

func (a *api) handlers() map[string]httpapi.HandlerFunc {
	return map[string]httpapi.HandlerFunc{
		"GET /v2/tenants":         a.listTenants,
		"POST /v2/tenants/create": a.createTenant,
		"GET " + t:                a.getTenant,
		"PATCH " + t:              a.patchTenant,
		"POST " + t + "/blocklegacyauthorization":                 a.blockLegacy,
		"GET " + t + "/certificates":                              a.listCertificates,
		"GET " + t + "/cert":                                      a.getCertificate,
		"GET " + t + "/certchain":                                 a.getCertificateChain,
		"GET " + t + "/certs":                                     a.listCertificatesPKCS7,
		"GET " + t + "/certchains":                                a.listCertificatesPKCS7,
		"GET " + t + "/users":                                     a.listUsers,
		"GET " + t + "/users/{username}/role":                     a.listUserRoles,
		"POST " + t + "/users/{userId}/role/{roleName}/assign":    a.assignRole,
		"POST " + t + "/users/{userId}/role/{roleName}/unassign":  a.unassignRole,
		"GET " + t + "/products":                                  a.listProducts,
		"POST " + t + "/products":                                 a.createProduct,
		"GET " + t + "/products/{productId}":                      a.getProduct,
		"DELETE " + t + "/products/{productId}":                   a.deleteProduct,
		"POST " + t + "/products/{productId}/devicegroups":        a.createDefaultGroups,
		"GET " + t + "/devicegroups":                              a.listDeviceGroups,
		"POST " + t + "/devicegroups":                             a.createDeviceGroup,
		"GET " + t + "/devicegroups/{deviceGroupId}":              a.getDeviceGroup,
		"DELETE " + t + "/devicegroups/{deviceGroupId}":           a.deleteDeviceGroup,
		"GET " + t + "/devicegroups/{deviceGroupId}/deployments":  a.listDeployments,
		"POST " + t + "/devicegroups/{deviceGroupId}/deployments": a.createDeployment,
		"GET " + t + "/devices":                                   a.listDevices,
		"PUT " + t + "/devices":                                   a.bulkClaim,
		"GET " + t + "/devices/{deviceId}":                        a.getDevice,
		"PUT " + t + "/devices/{deviceId}/claim":                  a.claimDevice,
		"PUT " + t + "/devices/{deviceId}/devicegroup":            a.moveDevice,
		"POST " + t + "/images":                                   a.uploadImage,
		"GET " + t + "/images":                                    a.listImages,
		"GET " + t + "/images/{imageId}/metadata":                 a.getImageMetadata,
		"POST " + t + "/deviceCapabilityImage":                    a.deviceCapabilityImage,
		"GET " + t + "/getDeviceInsights":                         a.listDeviceInsights,
		"GET " + t + "/operations/{operationId}":                  a.getOperation,
	}
}

// call is what the wrapper knows of the request in progress.
type call struct {
	opID    string
	action  string
	catalog *ferry.Catalog
	tenant  string // tenant ID for audit, set once known
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		return &call{}
	}
	return c
}

// tenant returns the catalog the request addresses (checked by wrap).
func tenant(r *http.Request) *ferry.Catalog { return callFrom(r.Context()).catalog }

// wrap checks the caller, the tenant and its legacy access state, and the
// caller's legacy role, runs h, renders its error and records the call.
func (a *api) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := &call{opID: rt.opID, action: rt.action}
		ctx := context.WithValue(r.Context(), callKey{}, c)
		corr := httpapi.CorrelationID(ctx)
		if corr == "" {
			corr = ferry.NewUUID()
			ctx = httpapi.WithCorrelationID(ctx, corr)
		}
		r = r.WithContext(ctx)
		sw := &httpapi.StatusWriter{ResponseWriter: w}
		err := a.admit(r, rt, c)
		if err == nil {
			err = rt.h(sw, r)
		}
		if err != nil {
			if ferry.ErrorCode(err) == ferry.EINTERNAL {
				a.log.ErrorContext(ctx, "request failed", "operation", rt.opID, "method", r.Method, "path", r.URL.Path, "correlation_id", corr, "err", err)
			}
			if sw.Status == 0 {
				Render(sw, r, err)
			}
		}
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		a.record(r, c, sw.Status, err, time.Since(start), corr)
	})
}

// admit runs the checks every call passes before its handler.
func (a *api) admit(r *http.Request, rt route, c *call) error {
	ctx := r.Context()
	caller := ferry.CallerFromContext(ctx)
	if caller == nil || caller.Principal == nil {
		return ferry.Errorf(ferry.EUNAUTHORIZED, "The access token is missing or invalid.")
	}
	tid := r.PathValue("tenantId")
	if tid == "" {
		return nil
	}
	if !ferry.IsUUID(tid) {
		return badRequest("The tenant ID '%s' is not a GUID.", truncate(tid, 40))
	}
	cat, err := a.svc.GetCatalog(ctx, tid)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return ferry.Errorf(ferry.ENOTFOUND, "The tenant '%s' was not found.", tid)
	}
	if err != nil {
		return err
	}
	c.catalog, c.tenant = cat, cat.TenantID
	if err := CheckAccess(cat); err != nil {
		return err
	}
	if rt.action == "" {
		return nil
	}
	return a.authz.Authorize(ctx, caller, rt.action, "/v2/tenants/"+cat.TenantID)
}

func (a *api) record(r *http.Request, c *call, status int, err error, d time.Duration, corr string) {
	ctx := r.Context()
	e := &ferry.AuditEvent{
		Time: a.now().UTC(), Surface: ferry.SurfaceLegacy, Operation: c.opID, Action: c.action,
		ResourceID: r.URL.Path, CatalogID: c.tenant, UserAgent: r.UserAgent(), StatusCode: status,
		CorrelationID: corr, Duration: d, Result: ferry.ResultSuccess,
		ResultDescription: c.opID + " succeeded: " + r.Method + " " + r.URL.Path,
	}
	if caller := ferry.CallerFromContext(ctx); caller != nil {
		e.PrincipalID, e.PrincipalName, e.ClientIP = caller.ID(), caller.Name(), caller.ClientIP
		if caller.Principal != nil {
			e.PrincipalType = caller.Principal.Type
		}
	}
	if status >= 400 {
		e.Result = ferry.ResultFailure
		body, _ := Detail(err)
		e.ResultDescription = fmt.Sprintf("%s failed: %s %s: code %d: %s", c.opID, r.Method, r.URL.Path, body.Code, body.Message)
	}
	if aerr := a.audit.Record(ctx, e); aerr != nil {
		a.log.ErrorContext(ctx, "audit record failed", "operation", c.opID, "correlation_id", corr, "err", aerr)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
