package migration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/ferry-iot/ferry/httpapi/integrated"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/httpapi/migration"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/integrate"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
)

const (
	sub = "6f1e1c4e-6a6b-4b8e-9d42-3c3b1f0e0002"
	rg  = "rg1"
	api = "?api-version=" + migration.APIVersion
)

// env is a real Ferry endpoint with the three surfaces the migration
// steps touch: legacy (/v2/), Ferry.Migration and Microsoft.AzureSphere,
// routed as cmd/ferry routes them, behind real bearer tokens.
type env struct {
	t      *testing.T
	store  ferry.Store
	svc    *sphere.Service
	ids    *identity.Service
	authz  *rbac.Authorizer
	mig    *migrate.Orchestrator
	url    string
	tokens map[string]string
}

func newEnv(t *testing.T, s ferry.Store) *env {
	t.Helper()
	return newEnvRemote(t, s, nil)
}

// newEnvRemote is newEnv with an orchestrator that reaches other Ferry
// deployments through remote.
func newEnvRemote(t *testing.T, s ferry.Store, remote migrate.RemoteDialer) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: s, tokens: map[string]string{}}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var err error
	e.ids, err = identity.New(identity.Config{Store: s, Issuer: srv.URL, Audience: "api://ferry"})
	must(t, err)
	_, err = e.ids.Bootstrap(ctx, "")
	must(t, err)
	must(t, rbac.SeedBuiltIns(ctx, s))
	e.authz = rbac.New(s)
	must(t, e.authz.Reload(ctx))
	e.svc = sphere.New(sphere.Config{Store: s})
	rec := audit.NewStoreRecorder(s)
	legacyAPI := legacy.New(legacy.Config{Sphere: e.svc, Store: s, Authorizer: rbac.NewLegacy(s), Audit: rec})
	bus := eventbus.New(eventbus.Options{})
	hubs, err := hub.New(hub.Config{Store: s, Bus: bus})
	must(t, err)
	t.Cleanup(func() { hubs.Close() })
	// Not started: Create, Preflight and the state changes run inline,
	// and nothing commands devices in the background.
	e.mig, err = migrate.New(migrate.Config{Store: s, Hubs: hubs, Bus: bus, Remote: remote})
	must(t, err)
	migAPI := migration.New(migration.Config{Store: s, Authorizer: e.authz, Audit: rec, Migrations: e.mig,
		Integrate: integrate.New(integrate.Config{Store: s, Sphere: e.svc, Authorizer: e.authz})})
	sphereAPI := integrated.New(integrated.Config{Sphere: e.svc, Authorizer: e.authz, Audit: rec})
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := e.ids.Authenticate(r); err == nil {
			r = r.WithContext(ferry.NewContextWithCaller(r.Context(), c))
		}
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/v2/"):
			legacyAPI.ServeHTTP(w, r)
		case migration.Match(p):
			migAPI.ServeHTTP(w, r)
		default:
			sphereAPI.ServeHTTP(w, r)
		}
	})
	e.url = srv.URL
	now := time.Now().UTC()
	must(t, s.PutSubscription(ctx, &ferry.Subscription{ID: sub, DisplayName: "Test", State: "Enabled", CreatedAt: now}))
	must(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: sub, Name: rg, Location: "global", CreatedAt: now}))
	return e
}

// user creates a principal and a real token for it.
func (e *env) user(name string) *ferry.Principal {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	p := &ferry.Principal{ID: ferry.NewUUID(), Type: ferry.PrincipalUser, Name: name + "@example.com",
		DisplayName: name, Email: name + "@example.com", CreatedAt: now, UpdatedAt: now}
	must(e.t, e.store.CreatePrincipal(ctx, p))
	tok, err := e.ids.IssueToken(ctx, p)
	must(e.t, err)
	e.tokens[p.ID] = tok.AccessToken
	return p
}

// grantLegacy gives p a legacy role in a tenant.
func (e *env) grantLegacy(tenantID string, p *ferry.Principal, role ferry.LegacyRole) {
	e.t.Helper()
	must(e.t, e.store.AddLegacyRole(context.Background(), &ferry.LegacyRoleAssignment{CatalogID: tenantID, PrincipalID: p.ID, Role: role, CreatedAt: time.Now()}))
}

// assign gives p a role at scope and reloads the authorizer.
func (e *env) assign(p *ferry.Principal, roleID, scope string) {
	e.t.Helper()
	must(e.t, e.authz.Store().CreateRoleAssignment(context.Background(), &ferry.RoleAssignment{
		ID: ferry.NewUUID(), Scope: scope, RoleDefinitionID: roleID, PrincipalID: p.ID, PrincipalType: ferry.PrincipalUser, CreatedAt: time.Now()}))
}

type response struct {
	status int
	raw    []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.raw, v); err != nil {
		t.Fatalf("decode %s: %v", r.raw, err)
	}
}

// legacyCode returns the legacy error code of an answer, or -1.
func (r response) legacyCode() int {
	var e struct{ Code *int }
	if json.Unmarshal(r.raw, &e) != nil || e.Code == nil {
		return -1
	}
	return *e.Code
}

// armCode returns the ARM error code of an answer.
func (r response) armCode() string {
	var e struct{ Error struct{ Code string } }
	_ = json.Unmarshal(r.raw, &e)
	return e.Error.Code
}

// do sends a request as p (nil: no token) with a user agent.
func (e *env) do(p *ferry.Principal, agent, method, path string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		must(e.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	must(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", agent)
	if p != nil {
		req.Header.Set("Authorization", "Bearer "+e.tokens[p.ID])
	}
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(e.t, err)
	return response{status: resp.StatusCode, raw: raw}
}

// ok fails the test unless the answer has the given status, and decodes it.
func (e *env) ok(t *testing.T, r response, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.raw)
	}
	if v != nil {
		r.decode(t, v)
	}
}

// legacyTenant creates a legacy-only tenant with admin as its
// Administrator and one product with its default device groups.
func (e *env) legacyTenant(admin *ferry.Principal, name string, n int) *ferry.Catalog {
	e.t.Helper()
	ctx := context.Background()
	_, c, err := legacy.CreateTenant(ctx, e.svc, e.store, admin.ID, name, deviceID('A', n))
	must(e.t, err)
	_, err = e.svc.CreateProduct(ctx, &ferry.Product{CatalogID: c.TenantID, Name: "Widget"}, true)
	must(e.t, err)
	return c
}

func rgPath() string { return "/subscriptions/" + sub + "/resourceGroups/" + rg }

func catalogPath(name string) string {
	return rgPath() + "/providers/Microsoft.AzureSphere/catalogs/" + name
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// deviceID returns a 128-character device ID, unique per (c, n).
func deviceID(c byte, n int) string {
	return strings.Repeat(string(c), 120) + fmt.Sprintf("%08d", n)
}
