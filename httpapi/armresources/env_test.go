package armresources_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/armresources"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/rbac"
)

const audience = "api://ferry"

// env is a real Ferry ARM endpoint over TLS: the store, the identity
// service issuing tokens in the Entra shape, the RBAC authorizer and the
// handler under test.
type env struct {
	t     *testing.T
	store ferry.Store
	ids   *identity.Service
	authz *rbac.Authorizer
	url   string
	opts  *azarm.ClientOptions
	tid   string
	sub   string // the default subscription
}

func newEnv(t *testing.T, s ferry.Store) *env {
	t.Helper()
	ctx := context.Background()
	ca, err := pki.LoadOrCreate(t.TempDir(), nil, time.Now())
	must(t, err)
	mux := http.NewServeMux()
	var arm http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if armresources.Match(r.URL.Path) {
			arm.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	srv.TLS = ca.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"http/1.1"}})
	srv.StartTLS()
	t.Cleanup(srv.Close)

	ids, err := identity.New(identity.Config{Store: s, Issuer: srv.URL, Audience: audience})
	must(t, err)
	boot, err := ids.Bootstrap(ctx, "")
	must(t, err)
	must(t, rbac.SeedBuiltIns(ctx, s))
	authz := rbac.New(s)
	must(t, authz.Reload(ctx))
	ids.Register(mux)
	h := armresources.New(armresources.Config{Store: s, Authorizer: authz, Audit: audit.NewStoreRecorder(s), TenantID: boot.TenantID})
	arm = ids.RequireAuth(h)
	def, err := armresources.DefaultSubscription(ctx, s, time.Now())
	must(t, err)

	transport := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CAPool()}}}
	opts := &azarm.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud: cloud.Configuration{
				ActiveDirectoryAuthorityHost: srv.URL + "/",
				Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
					cloud.ResourceManager: {Endpoint: srv.URL, Audience: audience},
				},
			},
			Transport: transport,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
	return &env{t: t, store: s, ids: ids, authz: authz, url: srv.URL, opts: opts, tid: boot.TenantID, sub: def.ID}
}

// principal creates a service principal holding role at scope (no role if
// role is ""), and returns it with a ClientSecretCredential for it.
func (e *env) principal(name, role, scope string) (*ferry.Principal, azcore.TokenCredential) {
	e.t.Helper()
	ctx := context.Background()
	sp, secret, err := e.ids.CreateServicePrincipal(ctx, name)
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

func (e *env) assign(principalID, role, scope string) {
	e.t.Helper()
	ctx := context.Background()
	must(e.t, e.authz.Store().CreateRoleAssignment(ctx, &ferry.RoleAssignment{
		ID: ferry.NewUUID(), Scope: scope, RoleDefinitionID: role, PrincipalID: principalID,
		PrincipalType: ferry.PrincipalServicePrincipal, CreatedAt: time.Now(),
	}))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func to[T any](v T) *T { return &v }
