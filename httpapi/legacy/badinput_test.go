package legacy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestBadInput checks that bad requests get the legacy error shape with
// the right code, and change nothing.
func TestBadInput(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		admin := e.user("admin")
		contributor := e.user("contributor")
		tid := e.createTenant(admin, "Contoso", deviceID('A', 0))
		other := e.createTenant(admin, "Fabrikam", deviceID('A', 1))
		e.grant(tid, contributor, ferry.LegacyContributor)
		tp := "/v2/tenants/" + tid

		e.ok(e.do(admin, "POST", tp+"/products", map[string]any{"Name": "Washer", "CreateDefaultGroups": true}), 202, nil)
		e.ok(e.do(admin, "POST", tp+"/products", map[string]any{"Name": "Dryer"}), 202, nil)
		e.ok(e.do(admin, "POST", tp+"/products", map[string]any{"Name": "Oven"}), 202, nil)
		var products legacy.Collection[legacy.Product]
		e.ok(e.do(admin, "GET", tp+"/products", nil), 200, &products)
		var washer string
		for _, p := range products.Items {
			if p.Name == "Washer" {
				washer = p.Id
			}
		}

		t.Run("NoToken", func(t *testing.T) {
			r := e.do(nil, "GET", tp+"/products", nil)
			wantCode(t, r, 401, legacy.CodeForbidden)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		})
		t.Run("UnknownTenant", func(t *testing.T) {
			wantCode(t, e.do(admin, "GET", "/v2/tenants/"+ferry.NewUUID()+"/products", nil), 404, legacy.CodeNotFound)
		})
		t.Run("TenantNotAGUID", func(t *testing.T) {
			wantCode(t, e.do(admin, "GET", "/v2/tenants/contoso/products", nil), 400, legacy.CodeBadRequest)
		})
		t.Run("UnknownEndpoint", func(t *testing.T) {
			wantCode(t, e.do(admin, "GET", tp+"/gadgets", nil), 404, legacy.CodeNotFound)
		})
		t.Run("Paging", func(t *testing.T) {
			var p1, p2 legacy.Collection[legacy.Product]
			e.ok(e.do(admin, "GET", tp+"/products?maxPageSize=2", nil), 200, &p1)
			if len(p1.Items) != 2 || p1.ContinuationToken == nil {
				t.Fatalf("first page = %+v", p1)
			}
			e.ok(e.do(admin, "GET", tp+"/products?maxPageSize=2", nil, legacy.ContinuationHeader, *p1.ContinuationToken), 200, &p2)
			if len(p2.Items) != 1 || p2.ContinuationToken != nil || p2.Items[0].Id == p1.Items[0].Id || p2.Items[0].Id == p1.Items[1].Id {
				t.Fatalf("second page = %+v", p2)
			}
			// A token belongs to one list of one tenant.
			wantCode(t, e.do(admin, "GET", tp+"/devicegroups", nil, legacy.ContinuationHeader, *p1.ContinuationToken), 400, legacy.CodeBadRequest)
			wantCode(t, e.do(admin, "GET", "/v2/tenants/"+other+"/products", nil, legacy.ContinuationHeader, *p1.ContinuationToken), 400, legacy.CodeBadRequest)
		})
		t.Run("BadPagingInput", func(t *testing.T) {
			for _, q := range []string{"?maxPageSize=0", "?maxPageSize=-3", "?maxPageSize=ten", "?maxPageSize=99999999999"} {
				wantCode(t, e.do(admin, "GET", tp+"/devices"+q, nil), 400, legacy.CodeBadRequest)
			}
			for _, tok := range []string{"garbage!", "eyJsIjoiZGV2aWNlcyJ9", strings.Repeat("A", 64)} {
				wantCode(t, e.do(admin, "GET", tp+"/devices", nil, legacy.ContinuationHeader, tok), 400, legacy.CodeBadRequest)
			}
		})
		t.Run("BadEnums", func(t *testing.T) {
			for name, body := range map[string]map[string]any{
				"OsFeedTypeOutOfRange":   {"Name": "X", "ProductId": washer, "OsFeedType": 2},
				"OsFeedTypeString":       {"Name": "X", "ProductId": washer, "OsFeedType": "Retail"},
				"UpdatePolicyNegative":   {"Name": "X", "ProductId": washer, "UpdatePolicy": -1},
				"UpdatePolicyOutOfRange": {"Name": "X", "ProductId": washer, "UpdatePolicy": 3},
				"CrashDumpsString":       {"Name": "X", "ProductId": washer, "AllowCrashDumpsCollection": "Enabled"},
				"MissingProduct":         {"Name": "X"},
				"MissingName":            {"ProductId": washer},
				"SystemName":             {"Name": ".default", "ProductId": washer},
			} {
				t.Run(name, func(t *testing.T) {
					wantCode(t, e.do(admin, "POST", tp+"/devicegroups", body), 400, legacy.CodeBadRequest)
				})
			}
			wantCode(t, e.do(admin, "POST", tp+"/deviceCapabilityImage", map[string]any{"Capabilities": []int{9}, "DeviceId": deviceID('A', 0)}), 400, legacy.CodeBadRequest)
			wantCode(t, e.do(admin, "POST", tp+"/products", "{not json"), 400, legacy.CodeBadRequest)
			wantCode(t, e.do(admin, "POST", tp+"/products", nil), 400, legacy.CodeBadRequest)
		})
		t.Run("ClaimLimits", func(t *testing.T) {
			many := make([]string, 1001)
			for i := range many {
				many[i] = deviceID('M', i)
			}
			wantCode(t, e.do(admin, "PUT", tp+"/devices", many), 400, legacy.CodeBadRequest)
			var op legacy.Operation
			e.ok(e.do(admin, "PUT", tp+"/devices", many[:1000]), 202, &op)
			if op.OperationType != int(ferry.OpBulkDeviceClaim) {
				t.Errorf("bulk claim operation = %+v", op)
			}
			n, err := e.svc.CountDevices(ctx, ferry.DeviceFilter{CatalogID: tid})
			must(t, err)
			if n != 1001 { // 1,000 and the device the tenant was made with
				t.Errorf("devices = %d, want 1001", n)
			}
			wantCode(t, e.do(admin, "PUT", tp+"/devices", []string{}), 400, legacy.CodeBadRequest)
			wantCode(t, e.do(admin, "PUT", tp+"/devices/short/claim", nil), 400, legacy.CodeBadRequest)
		})
		t.Run("ClaimedElsewhere", func(t *testing.T) {
			theirs := deviceID('A', 1) // Fabrikam was made with it
			wantCode(t, e.do(admin, "PUT", tp+"/devices/"+theirs+"/claim", nil), 409, legacy.CodeConflict)
			fresh := deviceID('N', 0)
			wantCode(t, e.do(admin, "PUT", tp+"/devices", []string{fresh, theirs}), 409, legacy.CodeConflict)
			if _, err := e.svc.GetDevice(ctx, fresh); !ferry.IsCode(err, ferry.ENOTFOUND) {
				t.Errorf("half-written bulk claim: %v", err)
			}
			wantCode(t, e.do(admin, "GET", tp+"/devices/"+theirs, nil), 404, legacy.CodeNotFound)
			wantCode(t, e.do(admin, "POST", "/v2/tenants/create", map[string]string{"DeviceId": theirs, "TenantFriendlyName": "Again"}), 409, legacy.CodeConflict)
			// Claiming one's own device again changes nothing.
			var op legacy.Operation
			e.ok(e.do(admin, "PUT", tp+"/devices/"+deviceID('A', 0)+"/claim", nil), 202, &op)
			if op.OperationType != int(ferry.OpDeviceClaim) {
				t.Errorf("claim operation = %+v", op)
			}
		})
		t.Run("OtherTenantsResources", func(t *testing.T) {
			wantCode(t, e.do(admin, "GET", "/v2/tenants/"+other+"/products/"+washer, nil), 404, legacy.CodeNotFound)
			wantCode(t, e.do(admin, "GET", tp+"/products/not-a-guid", nil), 400, legacy.CodeBadRequest)
			wantCode(t, e.do(admin, "GET", tp+"/operations/"+ferry.NewUUID(), nil), 404, legacy.CodeNotFound)
		})
		t.Run("Deletes", func(t *testing.T) {
			wantCode(t, e.do(contributor, "DELETE", tp+"/products/"+washer, nil), 403, legacy.CodeForbidden)
			wantCode(t, e.do(admin, "DELETE", tp+"/products/"+washer, nil), 409, legacy.CodeConflict)
		})
		t.Run("Roles", func(t *testing.T) {
			wantCode(t, e.do(admin, "POST", tp+"/users/"+contributor.ID+"/role/Owner/assign", nil), 400, legacy.CodeBadRequest)
			wantCode(t, e.do(admin, "POST", tp+"/users/nobody@example.com/role/Reader/assign", nil), 404, legacy.CodeNotFound)
			wantCode(t, e.do(contributor, "POST", tp+"/users/"+contributor.ID+"/role/Administrator/assign", nil), 403, legacy.CodeForbidden)
			// The last Administrator stays while legacy access is not blocked.
			wantCode(t, e.do(admin, "POST", tp+"/users/"+admin.ID+"/role/Administrator/unassign", nil), 409, legacy.CodeConflict)
			e.ok(e.do(admin, "POST", tp+"/users/contributor@example.com/role/Administrator/assign", nil), 200, nil)
			e.ok(e.do(admin, "POST", tp+"/users/"+admin.ID+"/role/administrator/unassign", nil), 200, nil)
			var users legacy.Users
			e.ok(e.do(contributor, "GET", tp+"/users", nil), 200, &users)
			if len(users.Principals) != 1 || users.Principals[0].PrincipalId != contributor.ID || strings.Join(users.Principals[0].Roles, ",") != "Administrator,Contributor" {
				t.Errorf("users = %+v", users)
			}
			wantCode(t, e.do(contributor, "POST", tp+"/users/"+admin.ID+"/role/Reader/unassign", nil), 404, legacy.CodeNotFound)
			e.ok(e.do(contributor, "POST", tp+"/users/"+admin.ID+"/role/Administrator/assign", nil), 200, nil)
		})
		t.Run("PausedAndBlocked", func(t *testing.T) {
			must(t, legacy.SetAccess(ctx, e.svc, other, ferry.LegacyPaused))
			op := "/v2/tenants/" + other + "/products"
			wantCode(t, e.do(admin, "GET", op, nil), 403, legacy.CodeTenantInMigration)
			wantCode(t, e.do(admin, "POST", op, map[string]any{"Name": "X"}), 403, legacy.CodeTenantInMigration)
			must(t, legacy.SetAccess(ctx, e.svc, other, ferry.LegacyEnabled))
			e.ok(e.do(admin, "GET", op, nil), 200, nil)
			e.ok(e.do(admin, "POST", "/v2/tenants/"+other+"/blocklegacyauthorization", nil), 200, nil)
			wantCode(t, e.do(admin, "GET", op, nil), 410, legacy.CodeTenantMigrationRequired)
			wantCode(t, e.do(admin, "GET", "/v2/tenants/"+other, nil), 410, legacy.CodeTenantMigrationRequired)
			if err := legacy.SetAccess(ctx, e.svc, other, ferry.LegacyEnabled); !ferry.IsCode(err, ferry.ECONFLICT) {
				t.Errorf("enable after block: %v, want ECONFLICT", err)
			}
			if err := legacy.SetAccess(ctx, e.svc, other, "Open"); !ferry.IsCode(err, ferry.EINVALID) {
				t.Errorf("unknown state: %v, want EINVALID", err)
			}
			var tenants []legacy.Tenant
			e.ok(e.do(admin, "GET", "/v2/tenants", nil), 200, &tenants)
			if len(tenants) != 1 || tenants[0].Id != tid {
				t.Errorf("tenants = %+v, want only %s", tenants, tid)
			}
			// Once blocked, the last Administrator may go.
			must(t, legacy.RemoveRole(ctx, s, other, admin.ID, ferry.LegacyAdministrator))
		})
	})
}
