package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/armauthz"
	"github.com/ferry-iot/ferry/httpapi/armdevices"
	"github.com/ferry-iot/ferry/httpapi/armresources"
	"github.com/ferry-iot/ferry/httpapi/events"
	"github.com/ferry-iot/ferry/httpapi/integrated"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/httpapi/migration"
	"github.com/ferry-iot/ferry/integrate"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
)

// routes returns the handler both HTTP listeners serve. ARM paths carry
// scopes of any depth, and the hub service API is addressed by host, so
// neither fits ServeMux patterns: they are picked out by path first, and
// everything else goes to mux.
func (m *Main) routes(ctx context.Context, mux *http.ServeMux) (http.Handler, error) {
	tenant, err := m.Identity.TenantID(ctx)
	if err != nil {
		return nil, fmt.Errorf("read tenant ID: %w", err)
	}
	store := audit.NewStoreRecorder(m.Store)
	store.Logger = m.logger
	// Calls refused before their handler ran name their catalog only by
	// ARM ID; fill it in so the catalog's audit query sees them too.
	rec := audit.WithCatalog(store, m.Store)
	dp := m.devices

	authz := m.withCaller(armauthz.New(armauthz.Config{Store: m.Store, Authorizer: m.Authorizer, Audit: rec, Logger: m.logger}))
	devices := m.withCaller(armdevices.New(armdevices.Config{Store: m.Store, Authorizer: m.Authorizer, Audit: rec, Logger: m.logger,
		Hubs: dp.hubs, Provisioning: dp.prov}))
	resources := m.withCaller(armresources.New(armresources.Config{Store: m.Store, Authorizer: m.Authorizer, Audit: rec, Logger: m.logger,
		TenantID: tenant, HubChanged: dp.hubs.HubChanged, ServiceChanged: dp.prov.ServiceChanged}))
	sphereSvc := sphere.New(sphere.Config{Store: m.Store, Logger: m.logger})
	sphereAPI := m.withCaller(integrated.New(integrated.Config{Sphere: sphereSvc, Authorizer: m.Authorizer, Audit: rec, Logger: m.logger}))
	legacyAPI := m.withCaller(legacy.New(legacy.Config{Sphere: sphereSvc, Store: m.Store, Authorizer: rbac.NewLegacy(m.Store),
		Audit: rec, Logger: m.logger}))
	migrationAPI := m.withCaller(migration.New(migration.Config{Store: m.Store, Authorizer: m.Authorizer, Audit: rec, Logger: m.logger,
		Migrations: dp.migrations,
		Integrate:  integrate.New(integrate.Config{Store: m.Store, Sphere: sphereSvc, Authorizer: m.Authorizer, Logger: m.logger})}))
	hubAPI := m.hubServiceAPI(rec)

	mux.Handle("/$iothub/websocket", dp.gw.WebSocketHandler())
	ev := events.New(events.Config{Hubs: m.Store, Bus: m.Bus, Authorizer: m.Authorizer, Logger: m.logger})
	mux.Handle(events.Pattern, m.withCaller(ev))
	// Event streams never end on their own: end them before the HTTP
	// servers wait for in-flight requests.
	m.beforeShutdown = append(m.beforeShutdown, ev.Shutdown)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case armauthz.Match(p):
			authz.ServeHTTP(w, r)
		case migration.Match(p): // before the Sphere paths: some sit under a catalog
			migrationAPI.ServeHTTP(w, r)
		case isSpherePath(p):
			sphereAPI.ServeHTTP(w, r)
		case armdevices.Match(p):
			devices.ServeHTTP(w, r)
		case armresources.Match(p):
			resources.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/v2/"):
			legacyAPI.ServeHTTP(w, r)
		case isHubServicePath(p):
			hubAPI.ServeHTTP(w, r)
		default:
			mux.ServeHTTP(w, r)
		}
	}), nil
}

// withCaller authenticates a bearer token if one is sent and passes the
// request on either way: the ARM handlers answer a missing caller with
// their own 401 (InvalidAuthenticationToken), in ARM's error shape.
func (m *Main) withCaller(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := m.Identity.Authenticate(r); err == nil {
			r = r.WithContext(ferry.NewContextWithCaller(r.Context(), c))
		}
		h.ServeHTTP(w, r)
	})
}

// isSpherePath reports whether p belongs to the Microsoft.AzureSphere
// provider (ARM matches provider names case-insensitively).
func isSpherePath(p string) bool {
	return strings.Contains(strings.ToLower(p), "/providers/microsoft.azuresphere/") ||
		strings.HasSuffix(strings.ToLower(p), "/providers/microsoft.azuresphere")
}

// hubServicePrefixes are the first path segments of the IoT Hub and DPS
// service APIs, and of the IoT Central-shaped device templates and groups
// a hub's host serves.
var hubServicePrefixes = []string{"/devices", "/twins/", "/jobs/v2", "/statistics/", "/enrollmentGroups/", "/enrollmentgroups/", "/enrollments/", "/registrations/",
	"/api/deviceTemplates", "/api/deviceGroups"}

func isHubServicePath(p string) bool {
	for _, pre := range hubServicePrefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}
