package armresources_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/arm/armtest"
	"github.com/ferry-iot/ferry/httpapi/armresources"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/rbac"
)

const audience = armtest.Audience

// env is a real Ferry ARM endpoint over TLS (armtest.Env) serving the
// handler under test, with the short names these tests use.
type env struct {
	t     *testing.T
	store ferry.Store
	ids   *identity.Service
	authz *rbac.Authorizer
	url   string
	opts  *azarm.ClientOptions
	tid   string
	sub   string // the default subscription
	arm   *armtest.Env
}

func newEnv(t *testing.T, s ferry.Store) *env {
	t.Helper()
	a := armtest.New(t, s, func(authz *rbac.Authorizer, tenantID string) (http.Handler, func(string) bool) {
		return armresources.New(armresources.Config{Store: s, Authorizer: authz, Audit: audit.NewStoreRecorder(s), TenantID: tenantID}), armresources.Match
	})
	def, err := armresources.DefaultSubscription(context.Background(), s, time.Now())
	must(t, err)
	sub := def.ID
	return &env{t: t, store: s, ids: a.IDs, authz: a.Authz, url: a.URL, opts: a.Opts, tid: a.TenantID, sub: sub, arm: a}
}

// principal creates a service principal holding role at scope (no role if
// role is ""), and returns it with a ClientSecretCredential for it.
func (e *env) principal(name, role, scope string) (*ferry.Principal, azcore.TokenCredential) {
	e.t.Helper()
	return e.arm.Principal(name, role, scope)
}

func (e *env) assign(principalID, role, scope string) {
	e.t.Helper()
	e.arm.Assign(principalID, role, scope)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func to[T any](v T) *T { return &v }
