// Package armtest gives the ARM providers' tests a real Ferry ARM endpoint
// over TLS: a store-backed identity service issuing tokens in the Entra
// shape, the RBAC authorizer, the provider's handler, and Azure SDK for Go
// client options pointed at it. It is for tests only.
package armtest

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
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/pki"
	"github.com/ferry-iot/ferry/rbac"
)

// Audience is the token audience of the endpoint, and of the Azure SDK's
// resource-manager service configuration.
const Audience = "api://ferry"

// Provider builds the handler under test once the authorizer and the
// tenant exist, and says which paths it serves; the rest go to the
// identity endpoints.
type Provider func(authz *rbac.Authorizer, tenantID string) (h http.Handler, match func(path string) bool)

// Env is the running endpoint.
type Env struct {
	T        *testing.T
	Store    ferry.Store
	IDs      *identity.Service
	Authz    *rbac.Authorizer
	URL      string
	Opts     *azarm.ClientOptions
	TenantID string
}

// New starts the endpoint on s; it stops when the test ends.
func New(t *testing.T, s ferry.Store, provider Provider) *Env {
	t.Helper()
	ctx := context.Background()
	ca, err := pki.LoadOrCreate(t.TempDir(), nil, time.Now())
	must(t, err)
	mux := http.NewServeMux()
	var (
		arm   http.Handler
		match func(string) bool
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match(r.URL.Path) {
			arm.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	srv.TLS = ca.ServerTLSConfig(pki.TLSOptions{NextProtos: []string{"http/1.1"}})
	srv.StartTLS()
	t.Cleanup(srv.Close)

	ids, err := identity.New(identity.Config{Store: s, Issuer: srv.URL, Audience: Audience})
	must(t, err)
	boot, err := ids.Bootstrap(ctx, "")
	must(t, err)
	must(t, rbac.SeedBuiltIns(ctx, s))
	authz := rbac.New(s)
	must(t, authz.Reload(ctx))
	ids.Register(mux)
	h, m := provider(authz, boot.TenantID)
	arm, match = ids.RequireAuth(h), m

	transport := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CAPool()}}}
	opts := &azarm.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud: cloud.Configuration{
				ActiveDirectoryAuthorityHost: srv.URL + "/",
				Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
					cloud.ResourceManager: {Endpoint: srv.URL, Audience: Audience},
				},
			},
			Transport: transport,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
	return &Env{T: t, Store: s, IDs: ids, Authz: authz, URL: srv.URL, Opts: opts, TenantID: boot.TenantID}
}

// Principal creates a service principal holding role at scope (no role if
// role is ""), and returns it with a ClientSecretCredential for it.
func (e *Env) Principal(name, role, scope string) (*ferry.Principal, azcore.TokenCredential) {
	e.T.Helper()
	sp, secret, err := e.IDs.CreateServicePrincipal(context.Background(), name)
	must(e.T, err)
	if role != "" {
		e.Assign(sp.ID, role, scope)
	}
	cred, err := azidentity.NewClientSecretCredential(e.TenantID, sp.Name, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: e.Opts.ClientOptions, DisableInstanceDiscovery: true,
	})
	must(e.T, err)
	return sp, cred
}

// Assign gives a service principal role at scope, through the authorizer's
// store so that the authorizer reloads.
func (e *Env) Assign(principalID, role, scope string) {
	e.T.Helper()
	must(e.T, e.Authz.Store().CreateRoleAssignment(context.Background(), &ferry.RoleAssignment{
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
