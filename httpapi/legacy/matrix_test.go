package legacy_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
)

// kind is what a legacy endpoint does, which decides who may call it
// (sphere-surfaces.md §2.6).
type kind int

const (
	open   kind = iota // any signed-in principal (list own tenants, create a tenant)
	read               // Administrator, Contributor, Reader
	write              // Administrator, Contributor: claim, add, deploy, download capabilities
	remove             // Administrator only: Contributors "cannot perform any delete operations"
	manage             // Administrator only: users and roles, blocking legacy access
)

// allowed says whether a legacy role may perform a kind of call, straight
// from the role descriptions of §2.6.
func allowed(role ferry.LegacyRole, k kind) bool {
	switch k {
	case open:
		return true
	case read:
		return role != ""
	case write:
		return role == ferry.LegacyAdministrator || role == ferry.LegacyContributor
	}
	return role == ferry.LegacyAdministrator
}

// fixture is the tenant the matrix runs against, made through the API by
// its creator.
type fixture struct {
	tenant, blockable string
	product, empty    string // a product with the default groups, and one without groups
	group, spare      string // Development of product, and an empty group
	image, op         string
	device            string
	spareUser         *ferry.Principal
}

func setup(e *env, owner *ferry.Principal) fixture {
	var f fixture
	f.tenant = e.createTenant(owner, "Contoso", deviceID('F', 0))
	f.blockable = e.createTenant(owner, "Blockable", deviceID('F', 1))
	t := "/v2/tenants/" + f.tenant

	var op legacy.Operation
	e.ok(e.do(owner, "POST", t+"/products", map[string]any{"Name": "Dishwasher", "Description": "d", "CreateDefaultGroups": true}), 202, &op)
	f.op = op.OperationId
	var products legacy.Collection[legacy.Product]
	e.ok(e.do(owner, "GET", t+"/products", nil), 200, &products)
	f.product = products.Items[0].Id
	e.ok(e.do(owner, "POST", t+"/products", map[string]any{"Name": "Empty"}), 202, nil)
	e.ok(e.do(owner, "GET", t+"/products", nil), 200, &products)
	for _, p := range products.Items {
		if p.Name == "Empty" {
			f.empty = p.Id
		}
	}
	var groups legacy.Collection[legacy.DeviceGroup]
	e.ok(e.do(owner, "POST", t+"/products/"+f.product+"/devicegroups", nil), 200, &groups)
	f.group = groups.Items[0].Id
	var g legacy.DeviceGroup
	e.ok(e.do(owner, "POST", t+"/devicegroups", map[string]any{"Name": "Spare", "ProductId": f.product}), 200, &g)
	f.spare = g.Id
	e.ok(e.do(owner, "POST", t+"/images", []byte("app\n#ferry-image name=App type=Applications\n")), 200, &op)
	var imgs legacy.Collection[legacy.ImageMetadata]
	e.ok(e.do(owner, "GET", t+"/images", nil), 200, &imgs)
	f.image = imgs.Items[0].Id
	f.device = deviceID('F', 0) // consumed by the tenant's creation
	e.ok(e.do(owner, "PUT", t+"/devices/"+f.device+"/devicegroup", `"`+f.group+`"`), 200, nil)
	f.spareUser = e.user("spare")
	return f
}

// matrixCase is one legacy endpoint and how to call it with success for
// a given role (each role gets its own names so that allowed calls do not
// collide).
type matrixCase struct {
	pattern string
	kind    kind
	req     func(f fixture, n int) (method, path string, body any)
}

func cases() []matrixCase {
	t := func(f fixture) string { return "/v2/tenants/" + f.tenant }
	get := func(suffix func(f fixture) string) func(fixture, int) (string, string, any) {
		return func(f fixture, _ int) (string, string, any) { return "GET", t(f) + suffix(f), nil }
	}
	lit := func(s string) func(fixture) string { return func(fixture) string { return s } }
	return []matrixCase{
		{"GET /v2/tenants", open, func(fixture, int) (string, string, any) { return "GET", "/v2/tenants", nil }},
		{"POST /v2/tenants/create", open, func(_ fixture, n int) (string, string, any) {
			return "POST", "/v2/tenants/create", map[string]string{"DeviceId": deviceID('C', n), "TenantFriendlyName": fmt.Sprintf("T%d", n)}
		}},
		{"GET /v2/tenants/{tenantId}", read, get(lit(""))},
		{"PATCH /v2/tenants/{tenantId}", write, func(f fixture, n int) (string, string, any) {
			return "PATCH", t(f), map[string]string{"Name": fmt.Sprintf("Contoso %d", n)}
		}},
		{"POST /v2/tenants/{tenantId}/blocklegacyauthorization", manage, func(f fixture, _ int) (string, string, any) {
			return "POST", "/v2/tenants/" + f.blockable + "/blocklegacyauthorization", nil
		}},
		{"GET /v2/tenants/{tenantId}/certificates", read, get(lit("/certificates"))},
		{"GET /v2/tenants/{tenantId}/cert", read, get(lit("/cert"))},
		{"GET /v2/tenants/{tenantId}/certchain", read, get(lit("/certchain"))},
		{"GET /v2/tenants/{tenantId}/certs", read, get(lit("/certs"))},
		{"GET /v2/tenants/{tenantId}/certchains", read, get(lit("/certchains"))},
		{"GET /v2/tenants/{tenantId}/users", read, get(lit("/users"))},
		{"GET /v2/tenants/{tenantId}/users/{username}/role", read, get(lit("/users/spare@example.com/role"))},
		{"POST /v2/tenants/{tenantId}/users/{userId}/role/{roleName}/assign", manage, func(f fixture, _ int) (string, string, any) {
			return "POST", t(f) + "/users/" + f.spareUser.ID + "/role/Contributor/assign", nil
		}},
		{"POST /v2/tenants/{tenantId}/users/{userId}/role/{roleName}/unassign", manage, func(f fixture, _ int) (string, string, any) {
			return "POST", t(f) + "/users/spare@example.com/role/Reader/unassign", nil
		}},
		{"GET /v2/tenants/{tenantId}/products", read, get(lit("/products"))},
		{"POST /v2/tenants/{tenantId}/products", write, func(f fixture, n int) (string, string, any) {
			return "POST", t(f) + "/products", map[string]any{"Name": fmt.Sprintf("Oven %d", n)}
		}},
		{"GET /v2/tenants/{tenantId}/products/{productId}", read, get(func(f fixture) string { return "/products/" + f.product })},
		{"DELETE /v2/tenants/{tenantId}/products/{productId}", remove, func(f fixture, _ int) (string, string, any) {
			return "DELETE", t(f) + "/products/" + f.empty, nil
		}},
		{"POST /v2/tenants/{tenantId}/products/{productId}/devicegroups", write, func(f fixture, _ int) (string, string, any) {
			return "POST", t(f) + "/products/" + f.product + "/devicegroups", nil
		}},
		{"GET /v2/tenants/{tenantId}/devicegroups", read, get(lit("/devicegroups"))},
		{"POST /v2/tenants/{tenantId}/devicegroups", write, func(f fixture, n int) (string, string, any) {
			return "POST", t(f) + "/devicegroups", map[string]any{"Name": fmt.Sprintf("Lab %d", n), "ProductId": f.product, "OsFeedType": 1, "UpdatePolicy": 2}
		}},
		{"GET /v2/tenants/{tenantId}/devicegroups/{deviceGroupId}", read, get(func(f fixture) string { return "/devicegroups/" + f.group })},
		{"DELETE /v2/tenants/{tenantId}/devicegroups/{deviceGroupId}", remove, func(f fixture, _ int) (string, string, any) {
			return "DELETE", t(f) + "/devicegroups/" + f.spare, nil
		}},
		{"GET /v2/tenants/{tenantId}/devicegroups/{deviceGroupId}/deployments", read, get(func(f fixture) string { return "/devicegroups/" + f.group + "/deployments" })},
		{"POST /v2/tenants/{tenantId}/devicegroups/{deviceGroupId}/deployments", write, func(f fixture, _ int) (string, string, any) {
			return "POST", t(f) + "/devicegroups/" + f.group + "/deployments", []string{f.image}
		}},
		{"GET /v2/tenants/{tenantId}/devices", read, get(lit("/devices"))},
		{"PUT /v2/tenants/{tenantId}/devices", write, func(f fixture, n int) (string, string, any) {
			return "PUT", t(f) + "/devices", []string{deviceID('B', 2*n), deviceID('B', 2*n+1)}
		}},
		{"GET /v2/tenants/{tenantId}/devices/{deviceId}", read, get(func(f fixture) string { return "/devices/" + f.device })},
		{"PUT /v2/tenants/{tenantId}/devices/{deviceId}/claim", write, func(f fixture, n int) (string, string, any) {
			return "PUT", t(f) + "/devices/" + deviceID('D', n) + "/claim", nil
		}},
		{"PUT /v2/tenants/{tenantId}/devices/{deviceId}/devicegroup", write, func(f fixture, _ int) (string, string, any) {
			return "PUT", t(f) + "/devices/" + f.device + "/devicegroup", `"` + f.group + `"`
		}},
		{"POST /v2/tenants/{tenantId}/images", write, func(f fixture, n int) (string, string, any) {
			return "POST", t(f) + "/images", []byte(fmt.Sprintf("image %d", n))
		}},
		{"GET /v2/tenants/{tenantId}/images", read, get(lit("/images"))},
		{"GET /v2/tenants/{tenantId}/images/{imageId}/metadata", read, get(func(f fixture) string { return "/images/" + f.image + "/metadata" })},
		{"POST /v2/tenants/{tenantId}/deviceCapabilityImage", write, func(f fixture, _ int) (string, string, any) {
			return "POST", t(f) + "/deviceCapabilityImage", map[string]any{"Capabilities": []int{1}, "DeviceId": f.device}
		}},
		{"GET /v2/tenants/{tenantId}/getDeviceInsights", read, get(lit("/getDeviceInsights"))},
		{"GET /v2/tenants/{tenantId}/operations/{operationId}", read, get(func(f fixture) string { return "/operations/" + f.op })},
	}
}

// TestRoleMatrix calls every legacy endpoint as an Administrator, a
// Contributor, a Reader and a principal without a role, and checks each is
// allowed (a 2xx answer) or denied (403 with legacy code 6) exactly as the
// legacy roles say; then that every call was audited on surface "legacy".
func TestRoleMatrix(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		owner := e.user("owner")
		f := setup(e, owner)
		roles := []ferry.LegacyRole{"", ferry.LegacyReader, ferry.LegacyContributor, ferry.LegacyAdministrator}
		users := map[ferry.LegacyRole]*ferry.Principal{}
		for _, r := range roles {
			name := "none"
			if r != "" {
				name = string(r)
			}
			users[r] = e.user(name)
			if r != "" {
				e.grant(f.tenant, users[r], r)
				e.grant(f.blockable, users[r], r)
			}
		}
		e.grant(f.tenant, f.spareUser, ferry.LegacyReader)

		ctx := context.Background()
		before, err := audit.Find(ctx, s, audit.Query{Surface: ferry.SurfaceLegacy, ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}})
		must(t, err)
		calls := 0
		covered := map[string]bool{}
		for _, c := range cases() {
			covered[c.pattern] = true
			t.Run(c.pattern, func(t *testing.T) {
				for i, r := range roles {
					method, path, body := c.req(f, i)
					resp := e.do(users[r], method, path, body)
					calls++
					name := string(r)
					if name == "" {
						name = "none"
					}
					switch {
					case allowed(r, c.kind) && (resp.status < 200 || resp.status > 299):
						t.Errorf("%s: %s %s = %d %s, want success", name, method, path, resp.status, resp.raw)
					case !allowed(r, c.kind) && (resp.status != http.StatusForbidden || resp.code() != legacy.CodeForbidden):
						t.Errorf("%s: %s %s = %d %s, want 403 with Code 6", name, method, path, resp.status, resp.raw)
					}
				}
			})
		}
		for pattern := range legacy.Endpoints() {
			if !covered[pattern] {
				t.Errorf("endpoint %s is not in the matrix", pattern)
			}
		}

		after, err := audit.Find(ctx, s, audit.Query{Surface: ferry.SurfaceLegacy, ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}})
		must(t, err)
		if got := len(after.Items) - len(before.Items); got != calls {
			t.Errorf("legacy audit records = %d, want one per call (%d)", got, calls)
		}
		denied, err := audit.Find(ctx, s, audit.Query{Surface: ferry.SurfaceLegacy, PrincipalID: users[ferry.LegacyContributor].ID,
			Operation: "Products_Delete", Result: ferry.ResultFailure})
		must(t, err)
		if len(denied.Items) != 1 {
			t.Fatalf("denied Contributor delete records = %d, want 1", len(denied.Items))
		}
		d := denied.Items[0]
		if d.StatusCode != 403 || d.UserAgent != "azsphere-test/1.0" || d.CatalogID != f.tenant || d.Action != "Microsoft.AzureSphere/catalogs/products/delete" {
			t.Errorf("audit record = %+v", d)
		}
	})
}

// TestEveryLegacyRequestServed checks that each legacy request of rbac's
// operation table has a handler, under that operation's ID.
func TestEveryLegacyRequestServed(t *testing.T) {
	served := legacy.Endpoints()
	for _, op := range rbac.Operations() {
		for _, req := range op.Legacy {
			if got, ok := served[req]; !ok || got != op.ID {
				t.Errorf("%s (%s) is served as %q, %v", req, op.ID, got, ok)
			}
		}
	}
}
