package integrated_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/integrated"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
	"github.com/ferry-iot/ferry/store/storetest"
)

// BenchmarkGetDevice measures one Devices_Get through the whole handler
// (api-version check, RBAC, three lookups, rendering, audit write) on
// SQLite, without the network.
func BenchmarkGetDevice(b *testing.B) {
	ctx := context.Background()
	s := storetest.OpenSQLite(b)
	must(b, rbac.SeedBuiltIns(ctx, s))
	az := rbac.New(s)
	svc := sphere.New(sphere.Config{Store: s})
	must(b, s.PutSubscription(ctx, &ferry.Subscription{ID: sub, State: "Enabled"}))
	must(b, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: sub, Name: rg}))
	c := &ferry.Catalog{SubscriptionID: sub, ResourceGroup: rg, Name: "cat1"}
	must(b, svc.CreateCatalog(ctx, c))
	p := &ferry.Product{CatalogID: c.TenantID, Name: "Dishwasher"}
	_, err := svc.CreateProduct(ctx, p, true)
	must(b, err)
	g, err := svc.GetDeviceGroupByName(ctx, p.ID, "Development")
	must(b, err)
	_, err = svc.ClaimDevices(ctx, sphere.Claim{CatalogID: c.TenantID, DeviceGroupID: g.ID}, []string{deviceID('a')})
	must(b, err)
	user := &ferry.Principal{ID: ferry.NewUUID(), Type: ferry.PrincipalUser, Name: "reader@example.com"}
	must(b, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: ferry.NewUUID(), Scope: c.ResourceID().String(), RoleDefinitionID: ferry.RoleAzureSphereReader, PrincipalID: user.ID}))
	must(b, az.Reload(ctx))
	for _, rec := range []struct {
		name string
		a    audit.Recorder
	}{{"audited", audit.NewStoreRecorder(s)}, {"unaudited", audit.Discard}} {
		h := integrated.New(integrated.Config{Sphere: svc, Authorizer: az, Audit: rec.a})
		req := httptest.NewRequest("GET", groupPath("cat1", "Dishwasher", "Development")+"/devices/"+deviceID('a')+api, nil)
		req = req.WithContext(ferry.NewContextWithCaller(ctx, &ferry.Caller{Principal: user}))
		b.Run(rec.name, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
