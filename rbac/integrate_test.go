package rbac_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
	"github.com/google/go-cmp/cmp"
)

func TestIntegratedRole(t *testing.T) {
	for r, want := range map[ferry.LegacyRole]string{
		ferry.LegacyAdministrator: ferry.RoleOwner,
		ferry.LegacyContributor:   ferry.RoleAzureSphereContributor,
		ferry.LegacyReader:        ferry.RoleAzureSphereReader,
	} {
		if got, ok := rbac.IntegratedRole(r); !ok || got != want {
			t.Errorf("IntegratedRole(%s) = %q, %v, want %q", r, got, ok, want)
		}
	}
	if _, ok := rbac.IntegratedRole("Owner"); ok {
		t.Error("IntegratedRole accepts an unknown legacy role")
	}
}

// TestIntegrateKeepsEveryPermission checks, over every legacy request of
// the operation table, that the integrated assignment allows at least what
// the legacy role allowed: nobody loses access by the Integrate step.
func TestIntegrateKeepsEveryPermission(t *testing.T) {
	const tenant = "30000000-0000-0000-0000-000000000003"
	legacy := []*ferry.LegacyRoleAssignment{
		{CatalogID: tenant, PrincipalID: "admin", Role: ferry.LegacyAdministrator},
		{CatalogID: tenant, PrincipalID: "contrib", Role: ferry.LegacyContributor},
		{CatalogID: tenant, PrincipalID: "reader", Role: ferry.LegacyReader},
	}
	as := rbac.IntegrateAssignments(legacy, catalog, "integrator", time.Unix(0, 0))
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), as)
	for _, o := range rbac.Operations() {
		if len(o.Legacy) == 0 || o.ID == "Catalogs_ListBySubscription" || o.ID == "Catalogs_CreateOrUpdate" {
			continue // not scoped to one tenant
		}
		for _, l := range legacy {
			if rbac.LegacyAllowed([]ferry.LegacyRole{l.Role}, o.Action) && !e.Allowed(l.PrincipalID, o.Action, device) {
				t.Errorf("%s (%s) loses %s (%s)", l.PrincipalID, l.Role, o.ID, o.Action)
			}
		}
	}
}

func TestIntegrateAssignments(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	legacy := []*ferry.LegacyRoleAssignment{
		{PrincipalID: bob, Role: ferry.LegacyReader},
		{PrincipalID: alice, Role: ferry.LegacyReader},
		{PrincipalID: alice, Role: ferry.LegacyAdministrator},
		{PrincipalID: bob, Role: ferry.LegacyContributor},
		{PrincipalID: "carol", Role: "Unknown"},
	}
	got := rbac.IntegrateAssignments(legacy, catalog, "admin@example.com", now)
	if len(got) != 2 {
		t.Fatalf("got %d assignments, want 2: %+v", len(got), got)
	}
	want := []ferry.RoleAssignment{
		{ID: got[0].ID, Scope: catalog, RoleDefinitionID: ferry.RoleOwner, PrincipalID: alice, PrincipalType: ferry.PrincipalUser,
			Description: "Integrated from the legacy Administrator role.", CreatedAt: now, CreatedBy: "admin@example.com"},
		{ID: got[1].ID, Scope: catalog, RoleDefinitionID: ferry.RoleAzureSphereContributor, PrincipalID: bob, PrincipalType: ferry.PrincipalUser,
			Description: "Integrated from the legacy Contributor role.", CreatedAt: now, CreatedBy: "admin@example.com"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("IntegrateAssignments (-want +got):\n%s", diff)
	}
	again := rbac.IntegrateAssignments(legacy, catalog, "someone else", now.Add(time.Hour))
	if again[0].ID != got[0].ID || again[1].ID != got[1].ID || got[0].ID == got[1].ID {
		t.Fatalf("IDs are not stable: %s %s / %s %s", got[0].ID, got[1].ID, again[0].ID, again[1].ID)
	}
	if _, err := ferry.ParseResourceID(catalog + "/providers/Microsoft.Authorization/roleAssignments/" + got[0].ID); err != nil {
		t.Fatal(err)
	}

	// A resumed Integrate finds the assignments it already made.
	ctx := context.Background()
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		must(t, rbac.SeedBuiltIns(ctx, s))
		for _, a := range got {
			must(t, s.CreateRoleAssignment(ctx, &a))
		}
		wantCode(t, s.CreateRoleAssignment(ctx, &again[0]), ferry.ECONFLICT)
	})
}
