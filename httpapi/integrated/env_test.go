package integrated_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/integrated"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
)

const (
	audience = "api://ferry"
	sub      = "6f1e1c4e-6a6b-4b8e-9d42-3c3b1f0e0001"
	rg       = "rg1"
	api      = "?api-version=" + integrated.APIVersion
	// testPrincipal names the header of the test middleware that stands
	// in for token authentication in the table and matrix tests. The SDK
	// test uses real tokens.
	testPrincipal = "X-Test-Principal"
)

// env is a real Ferry integrated endpoint over TLS: store, identity
// service issuing Entra-shaped tokens, RBAC authorizer, audit log, sphere
// service and the handler under test.
type env struct {
	t     *testing.T
	store ferry.Store
	svc   *sphere.Service
	ids   *identity.Service
	authz *rbac.Authorizer
	url   string
	http  *http.Client
	opts  *azarm.ClientOptions
	tid   string
	known map[string]*ferry.Principal
}

func newEnv(t *testing.T, s ferry.Store) *env {
	t.Helper()
	ctx := context.Background()
	ca, err := pki.LoadOrCreate(t.TempDir(), nil, time.Now())
	must(t, err)
	e := &env{t: t, store: s, known: map[string]*ferry.Principal{}}
	var h http.Handler
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/subscriptions/") || strings.HasPrefix(r.URL.Path, "/providers/") {
			h.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	srv.TLS = ca.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"http/1.1"}})
	srv.StartTLS()
	t.Cleanup(srv.Close)

	e.ids, err = identity.New(identity.Config{Store: s, Issuer: srv.URL, Audience: audience})
	must(t, err)
	boot, err := e.ids.Bootstrap(ctx, "")
	must(t, err)
	e.tid = boot.TenantID
	e.ids.Register(mux)
	must(t, rbac.SeedBuiltIns(ctx, s))
	e.authz = rbac.New(s)
	must(t, e.authz.Reload(ctx))
	must(t, s.PutSubscription(ctx, &ferry.Subscription{ID: sub, DisplayName: "Test", State: "Enabled", CreatedAt: time.Now()}))
	must(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: sub, Name: rg, Location: "westeurope", CreatedAt: time.Now()}))
	e.svc = sphere.New(sphere.Config{Store: s})
	api := integrated.New(integrated.Config{Sphere: e.svc, Authorizer: e.authz, Audit: audit.NewStoreRecorder(s)})
	authed := e.ids.RequireAuth(api)
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(testPrincipal); id != "" {
			p := e.known[id]
			if p == nil {
				http.Error(w, "unknown test principal", http.StatusTeapot)
				return
			}
			r = r.WithContext(ferry.NewContextWithCaller(r.Context(), &ferry.Caller{Principal: p, UserAgent: r.UserAgent()}))
			api.ServeHTTP(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
	e.url = srv.URL
	e.http = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CAPool()}}}
	e.opts = &azarm.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud: cloud.Configuration{
				ActiveDirectoryAuthorityHost: srv.URL + "/",
				Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
					cloud.ResourceManager: {Endpoint: srv.URL, Audience: audience},
				},
			},
			Transport: e.http,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
	return e
}

// user returns a test principal (for the test middleware) holding role at
// scope; no role when role is "".
func (e *env) user(name, role, scope string) *ferry.Principal {
	e.t.Helper()
	p := &ferry.Principal{ID: ferry.NewUUID(), Type: ferry.PrincipalUser, Name: name + "@example.com"}
	e.known[p.ID] = p
	if role != "" {
		e.assign(p.ID, role, scope)
	}
	return p
}

func (e *env) assign(principalID, role, scope string) {
	e.t.Helper()
	must(e.t, e.authz.Store().CreateRoleAssignment(context.Background(), &ferry.RoleAssignment{
		ID: ferry.NewUUID(), Scope: scope, RoleDefinitionID: role, PrincipalID: principalID,
		PrincipalType: ferry.PrincipalUser, CreatedAt: time.Now(),
	}))
}

// servicePrincipal creates a real service principal holding role at scope
// and returns a ClientSecretCredential for it.
func (e *env) servicePrincipal(name, role, scope string) (*ferry.Principal, azcore.TokenCredential) {
	e.t.Helper()
	sp, secret, err := e.ids.CreateServicePrincipal(context.Background(), name)
	must(e.t, err)
	if role != "" {
		e.assign(sp.ID, role, scope)
	}
	cred, err := azidentity.NewClientSecretCredential(e.tid, sp.Name, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: e.opts.ClientOptions, DisableInstanceDiscovery: true,
	})
	must(e.t, err)
	return sp, cred
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r response) errorCode() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

// do sends a request as p (nil: no caller). path may carry its own query;
// without one the api-version is added. body is JSON-encoded unless it is
// a string or []byte.
func (e *env) do(p *ferry.Principal, method, path string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		must(e.t, err)
		rd = bytes.NewReader(j)
	}
	u := path
	if !strings.HasPrefix(u, "https://") {
		if !strings.Contains(u, "?") {
			u += api
		}
		u = e.url + u
	}
	req, err := http.NewRequest(method, u, rd)
	must(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p != nil {
		req.Header.Set(testPrincipal, p.ID)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.http.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(e.t, err)
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.body)
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Paths.

func catalogPath(name string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.AzureSphere/catalogs/" + name
}

func productPath(cat, product string) string {
	return catalogPath(cat) + "/products/" + url.PathEscape(product)
}

func groupPath(cat, product, group string) string {
	return productPath(cat, product) + "/deviceGroups/" + url.PathEscape(group)
}

func scopeOf(path string) string {
	u, _ := url.PathUnescape(path)
	return u
}

func deviceID(c byte) string { return strings.Repeat(string(c), 128) }

func to[T any](v T) *T { return &v }
