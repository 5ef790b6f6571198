package rbac_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ferry.ErrorCode(err); got != code {
		t.Fatalf("err = %v, want code %q", err, code)
	}
}

func listDefinitions(t *testing.T, s ferry.RBACStore) []*ferry.RoleDefinition {
	t.Helper()
	p, err := s.ListRoleDefinitions(context.Background(), ferry.RoleDefinitionFilter{ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}})
	must(t, err)
	return p.Items
}

var ignoreTimes = cmpopts.IgnoreFields(ferry.RoleDefinition{}, "CreatedAt", "UpdatedAt")

func TestSeedBuiltIns(t *testing.T) {
	ctx := context.Background()
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		must(t, rbac.SeedBuiltIns(ctx, s))
		want := map[string]ferry.RoleDefinition{}
		for _, d := range rbac.BuiltInRoles() {
			want[d.ID] = d
		}
		check := func(t *testing.T) {
			t.Helper()
			got := map[string]ferry.RoleDefinition{}
			for _, d := range listDefinitions(t, s) {
				got[d.ID] = *d
			}
			if diff := cmp.Diff(want, got, ignoreTimes, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("stored built-ins (-want +got):\n%s", diff)
			}
		}
		check(t)

		t.Run("Idempotent", func(t *testing.T) {
			must(t, rbac.SeedBuiltIns(ctx, s))
			check(t)
		})
		t.Run("RestoresChangedBuiltIn", func(t *testing.T) {
			d, err := s.GetRoleDefinition(ctx, ferry.RoleReader)
			must(t, err)
			d.Permissions = []ferry.Permission{{Actions: []string{"*"}}}
			must(t, s.PutRoleDefinition(ctx, d))
			must(t, rbac.SeedBuiltIns(ctx, s))
			check(t)
		})
		t.Run("KeepsCustomRoles", func(t *testing.T) {
			c := custom("aaaaaaaa-0000-0000-0000-000000000001", "Catalog auditor", []string{"/"}, ferry.Permission{Actions: []string{"Microsoft.AzureSphere/*/read"}})
			must(t, s.PutRoleDefinition(ctx, &c))
			must(t, rbac.SeedBuiltIns(ctx, s))
			if n := len(listDefinitions(t, s)); n != len(want)+1 {
				t.Fatalf("%d definitions after seeding with a custom role, want %d", n, len(want)+1)
			}
		})
	})
}

func TestSeedBuiltInsNameTaken(t *testing.T) {
	ctx := context.Background()
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		c := custom("bbbbbbbb-0000-0000-0000-000000000001", "owner", []string{"/"}, ferry.Permission{Actions: []string{"*/read"}})
		must(t, s.PutRoleDefinition(ctx, &c))
		wantCode(t, rbac.SeedBuiltIns(ctx, s), ferry.ECONFLICT)
	})
}

func caller(id string) *ferry.Caller {
	return &ferry.Caller{Principal: &ferry.Principal{ID: id, Name: id + "@example.com", Type: ferry.PrincipalUser}}
}

func TestAuthorizer(t *testing.T) {
	ctx := context.Background()
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		must(t, rbac.SeedBuiltIns(ctx, s))
		a := rbac.New(s)
		const write = "Microsoft.AzureSphere/catalogs/products/write"

		// Denies everything before the first Reload.
		wantCode(t, a.Authorize(ctx, caller(alice), write, product), ferry.EFORBIDDEN)

		must(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{
			ID: "cccccccc-0000-0000-0000-000000000001", Scope: catalog, PrincipalID: alice,
			RoleDefinitionID: ferry.RoleAzureSphereContributor, PrincipalType: ferry.PrincipalUser,
		}))
		// A change is invisible until Reload...
		wantCode(t, a.Authorize(ctx, caller(alice), write, product), ferry.EFORBIDDEN)
		must(t, a.Reload(ctx))
		// ...and visible after it.
		must(t, a.Authorize(ctx, caller(alice), write, product))
		wantCode(t, a.Authorize(ctx, caller(alice), write, rg2), ferry.EFORBIDDEN)
		wantCode(t, a.Authorize(ctx, caller(bob), write, product), ferry.EFORBIDDEN)

		if d := a.Evaluator().Explain(alice, write, product, false); d.Assignment == nil || d.Assignment.ID != "cccccccc-0000-0000-0000-000000000001" {
			t.Fatalf("Explain = %+v", d)
		}

		must(t, s.DeleteRoleAssignment(ctx, "cccccccc-0000-0000-0000-000000000001"))
		must(t, a.Reload(ctx))
		wantCode(t, a.Authorize(ctx, caller(alice), write, product), ferry.EFORBIDDEN)

		t.Run("Callers", func(t *testing.T) {
			must(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{
				ID: "cccccccc-0000-0000-0000-000000000002", Scope: "/", PrincipalID: bob,
				RoleDefinitionID: ferry.RoleOwner, PrincipalType: ferry.PrincipalUser,
			}))
			must(t, a.Reload(ctx))
			must(t, a.Authorize(ctx, caller(bob), write, product))
			wantCode(t, a.Authorize(ctx, nil, write, product), ferry.EUNAUTHORIZED)
			wantCode(t, a.Authorize(ctx, &ferry.Caller{}, write, product), ferry.EUNAUTHORIZED)
			wantCode(t, a.Authorize(ctx, &ferry.Caller{Policy: "iothubowner"}, write, product), ferry.EFORBIDDEN)
			disabled := caller(bob)
			disabled.Principal.Disabled = true
			wantCode(t, a.Authorize(ctx, disabled, write, product), ferry.EFORBIDDEN)
			// Owner's "*" covers control-plane actions only, not data actions.
			wantCode(t, a.Authorize(ctx, caller(bob), "Microsoft.Devices/IotHubs/twins/read", rg), ferry.EFORBIDDEN)
		})

		t.Run("DataActions", func(t *testing.T) {
			d := custom("dddddddd-0000-0000-0000-000000000001", "Hub twin reader", []string{"/"},
				ferry.Permission{DataActions: []string{"Microsoft.Devices/IotHubs/twins/read"}})
			must(t, s.PutRoleDefinition(ctx, &d))
			must(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{
				ID: "cccccccc-0000-0000-0000-000000000003", Scope: rg, PrincipalID: alice,
				RoleDefinitionID: d.ID, PrincipalType: ferry.PrincipalUser,
			}))
			must(t, a.Reload(ctx))
			hub := rg + "/providers/Microsoft.Devices/IotHubs/h1"
			must(t, a.Authorize(ctx, caller(alice), "Microsoft.Devices/IotHubs/twins/read", hub))
			wantCode(t, a.Authorize(ctx, caller(alice), "Microsoft.Devices/IotHubs/twins/write", hub), ferry.EFORBIDDEN)
		})

		t.Run("ForbiddenMessage", func(t *testing.T) {
			err := a.Authorize(ctx, caller("eeeeeeee-0000-0000-0000-000000000001"), write, product)
			want := "The client 'eeeeeeee-0000-0000-0000-000000000001@example.com' with object id 'eeeeeeee-0000-0000-0000-000000000001' does not have authorization to perform action '" +
				write + "' over scope '" + product + "' or the scope is invalid. If access was recently granted, please refresh your credentials."
			if got := ferry.ErrorMessage(err); got != want {
				t.Fatalf("message = %q\nwant %q", got, want)
			}
		})
	})
}

// TestAuthorizerConcurrentReload runs checks while assignments change and
// Reload swaps evaluators; run it with -race.
func TestAuthorizerConcurrentReload(t *testing.T) {
	ctx := context.Background()
	s := storetest.OpenSQLite(t)
	must(t, rbac.SeedBuiltIns(ctx, s))
	must(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{
		ID: "ffffffff-0000-0000-0000-000000000000", Scope: sub, PrincipalID: alice,
		RoleDefinitionID: ferry.RoleReader, PrincipalType: ferry.PrincipalUser,
	}))
	a := rbac.New(s)
	must(t, a.Reload(ctx))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Alice's Reader assignment never changes: she must always pass.
				if err := a.Authorize(ctx, caller(alice), "Microsoft.AzureSphere/catalogs/read", catalog); err != nil {
					t.Errorf("Authorize during reload: %v", err)
					return
				}
				_ = a.Authorize(ctx, caller(bob), "Microsoft.AzureSphere/catalogs/write", catalog)
			}
		})
	}
	for i := range 20 {
		must(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{
			ID: fmt.Sprintf("ffffffff-0000-0000-0000-%012d", i+1), Scope: fmt.Sprintf("%s/resourceGroups/rg%d", sub, i),
			PrincipalID: bob, RoleDefinitionID: ferry.RoleContributor, PrincipalType: ferry.PrincipalUser,
		}))
		must(t, a.Reload(ctx))
	}
	close(stop)
	wg.Wait()
	must(t, a.Authorize(ctx, caller(bob), "Microsoft.AzureSphere/catalogs/write", sub+"/resourceGroups/rg19/providers/Microsoft.AzureSphere/catalogs/c"))
}

func TestLegacyAuthorizer(t *testing.T) {
	ctx := context.Background()
	const t1, t2 = "10000000-0000-0000-0000-000000000001", "20000000-0000-0000-0000-000000000002"
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		for _, x := range []ferry.LegacyRoleAssignment{
			{CatalogID: t1, PrincipalID: alice, Role: ferry.LegacyAdministrator},
			{CatalogID: t1, PrincipalID: bob, Role: ferry.LegacyContributor},
			{CatalogID: t2, PrincipalID: bob, Role: ferry.LegacyReader},
		} {
			must(t, s.AddLegacyRole(ctx, &x))
		}
		l := rbac.NewLegacy(s)
		del := rbac.Action("Products_Delete")
		create := rbac.Action("Products_CreateOrUpdate")
		assignRole := rbac.Action("RoleAssignments_Create")
		for _, tc := range []struct {
			name      string
			principal string
			action    string
			ref       string
			code      string
		}{
			{"AdminDeletes", alice, del, "/v2/tenants/" + t1 + "/products/p", ""},
			{"AdminAssignsRoles", alice, assignRole, t1, ""},
			{"AdminPausesLegacyAccess", alice, rbac.ActionPauseLegacyAccess, t1, ""},
			{"AdminOtherTenant", alice, create, "/v2/tenants/" + t2, ferry.EFORBIDDEN},
			{"ContributorCreates", bob, create, "/v2/tenants/" + t1 + "/products", ""},
			{"ContributorCannotDelete", bob, del, "/v2/tenants/" + t1 + "/products/p", ferry.EFORBIDDEN},
			{"ContributorCannotAssignRoles", bob, assignRole, t1, ferry.EFORBIDDEN},
			{"ContributorCannotIntegrate", bob, rbac.ActionIntegrate, t1, ferry.EFORBIDDEN},
			{"ReaderReads", bob, rbac.Action("Catalogs_ListDevices"), "/v2/tenants/" + t2 + "/devices", ""},
			{"ReaderCannotCreate", bob, create, "/v2/tenants/" + t2, ferry.EFORBIDDEN},
			{"Stranger", "99999999-0000-0000-0000-000000000000", rbac.Action("Catalogs_Get"), t1, ferry.EFORBIDDEN},
			{"NoTenant", alice, create, "/subscriptions/a", ferry.EINVALID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, l.Authorize(ctx, caller(tc.principal), tc.action, tc.ref), tc.code)
			})
		}
		wantCode(t, l.Authorize(ctx, nil, create, t1), ferry.EUNAUTHORIZED)
		wantCode(t, l.Authorize(ctx, &ferry.Caller{Policy: "x"}, create, t1), ferry.EUNAUTHORIZED)

		// Removing a role takes effect on the next call.
		must(t, s.RemoveLegacyRole(ctx, t1, bob, ferry.LegacyContributor))
		wantCode(t, l.Authorize(ctx, caller(bob), create, t1), ferry.EFORBIDDEN)
		roles, err := l.Roles(ctx, t2, bob)
		must(t, err)
		if diff := cmp.Diff([]ferry.LegacyRole{ferry.LegacyReader}, roles); diff != "" {
			t.Fatalf("Roles (-want +got):\n%s", diff)
		}
	})
}

func TestAuthorizerStoreReloadsOnWrite(t *testing.T) {
	ctx := context.Background()
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		a := rbac.New(s)
		w := a.Store()
		must(t, rbac.SeedBuiltIns(ctx, w))
		const read = "Microsoft.AzureSphere/catalogs/read"
		must(t, w.CreateRoleAssignment(ctx, &ferry.RoleAssignment{
			ID: "abababab-0000-0000-0000-000000000001", Scope: catalog, PrincipalID: alice,
			RoleDefinitionID: ferry.RoleAzureSphereReader, PrincipalType: ferry.PrincipalUser,
		}))
		must(t, a.Authorize(ctx, caller(alice), read, catalog))

		// Narrowing the role through the wrapper takes effect at once.
		d, err := w.GetRoleDefinition(ctx, ferry.RoleAzureSphereReader)
		must(t, err)
		d.Permissions = []ferry.Permission{{Actions: []string{"Microsoft.AzureSphere/catalogs/images/read"}}}
		must(t, w.PutRoleDefinition(ctx, d))
		wantCode(t, a.Authorize(ctx, caller(alice), read, catalog), ferry.EFORBIDDEN)
		must(t, rbac.SeedBuiltIns(ctx, w))
		must(t, a.Authorize(ctx, caller(alice), read, catalog))

		must(t, w.DeleteRoleAssignment(ctx, "abababab-0000-0000-0000-000000000001"))
		wantCode(t, a.Authorize(ctx, caller(alice), read, catalog), ferry.EFORBIDDEN)
		// A failed write does not reload and returns the store's error.
		wantCode(t, w.DeleteRoleAssignment(ctx, "abababab-0000-0000-0000-000000000001"), ferry.ENOTFOUND)
	})
}
