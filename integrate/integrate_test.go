package integrate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/integrate"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
	"github.com/ferry-iot/ferry/store/storetest"
)

const (
	sub = "6f1e1c4e-6a6b-4b8e-9d42-3c3b1f0e0003"
	rg  = "rg1"
)

type fixture struct {
	store ferry.Store
	svc   *sphere.Service
	authz *rbac.Authorizer
	ig    *integrate.Service
	admin string // principal IDs
	contr string
	read  string
	c     *ferry.Catalog
}

func newFixture(t *testing.T, s ferry.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{store: s, svc: sphere.New(sphere.Config{Store: s}), authz: rbac.New(s)}
	must(t, rbac.SeedBuiltIns(ctx, s))
	must(t, f.authz.Reload(ctx))
	f.ig = integrate.New(integrate.Config{Store: s, Sphere: f.svc, Authorizer: f.authz})
	now := time.Now().UTC()
	must(t, s.PutSubscription(ctx, &ferry.Subscription{ID: sub, DisplayName: "Test", State: "Enabled", CreatedAt: now}))
	must(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: sub, Name: rg, Location: "global", CreatedAt: now}))
	f.admin, f.contr, f.read = ferry.NewUUID(), ferry.NewUUID(), ferry.NewUUID()
	var err error
	_, f.c, err = legacy.CreateTenant(ctx, f.svc, s, f.admin, "Contoso", strings.Repeat("B", 120)+"00000001")
	must(t, err)
	for id, r := range map[string]ferry.LegacyRole{f.contr: ferry.LegacyContributor, f.read: ferry.LegacyReader} {
		must(t, s.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: f.c.TenantID, PrincipalID: id, Role: r, CreatedAt: now}))
	}
	return f
}

func acceptAll(p *integrate.Proposal) []integrate.Decision {
	var ds []integrate.Decision
	for _, a := range p.Assignments {
		ds = append(ds, integrate.Decision{PrincipalID: a.PrincipalID, Verdict: integrate.Accept})
	}
	return ds
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if ferry.ErrorCode(err) != code {
		t.Errorf("error = %v, want %s", err, code)
	}
}

func TestApplyIsAtomic(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFixture(t, s)
		p, err := f.ig.Propose(ctx, f.c.TenantID, sub, rg, "cat1")
		must(t, err)
		if len(p.Assignments) != 3 {
			t.Fatalf("proposal = %+v", p.Assignments)
		}
		// An assignment that already holds the ID of the last proposed one
		// makes Apply fail after the catalog and the first assignments.
		last := p.Assignments[len(p.Assignments)-1].Assignment
		blocker := &ferry.RoleAssignment{ID: last.ID, Scope: ferry.ResourceGroupScope(sub, rg), RoleDefinitionID: ferry.RoleReader,
			PrincipalID: ferry.NewUUID(), PrincipalType: ferry.PrincipalUser, CreatedAt: time.Now()}
		must(t, s.CreateRoleAssignment(ctx, blocker))

		_, err = f.ig.Apply(ctx, p, acceptAll(p))
		wantCode(t, err, ferry.ECONFLICT)
		c, err := s.GetCatalog(ctx, f.c.TenantID)
		must(t, err)
		if c.Integrated() || !c.IntegratedAt.IsZero() {
			t.Errorf("catalog after a failed Apply = %+v", c)
		}
		as, err := s.ListRoleAssignments(ctx, ferry.RoleAssignmentFilter{ScopePrefix: p.CatalogID})
		must(t, err)
		if len(as.Items) != 0 {
			t.Errorf("assignments after a failed Apply = %d", len(as.Items))
		}
		if _, err := s.GetCatalogByName(ctx, sub, rg, "cat1"); !ferry.IsCode(err, ferry.ENOTFOUND) {
			t.Errorf("catalog by name after a failed Apply: %v", err)
		}

		// Without the blocker the same proposal applies.
		must(t, s.DeleteRoleAssignment(ctx, blocker.ID))
		res, err := f.ig.Apply(ctx, p, acceptAll(p))
		must(t, err)
		if len(res.Assignments) != 3 || res.Catalog.ResourceID().String() != p.CatalogID {
			t.Errorf("result = %+v", res)
		}
		// The authorizer was reloaded: the Reader may read the catalog.
		if !f.authz.Evaluator().Allowed(f.read, "Microsoft.AzureSphere/catalogs/read", p.CatalogID) {
			t.Error("the accepted Reader cannot read the catalog")
		}
		if f.authz.Evaluator().Allowed(f.read, "Microsoft.AzureSphere/catalogs/products/write", p.CatalogID+"/products/x") {
			t.Error("the accepted Reader can write")
		}
		// Applying again is refused.
		_, err = f.ig.Apply(ctx, p, acceptAll(p))
		wantCode(t, err, ferry.ECONFLICT)
	})
}

func TestApplyRefuses(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFixture(t, s)
		p, err := f.ig.Propose(ctx, f.c.TenantID, sub, rg, "cat1")
		must(t, err)
		ds := acceptAll(p)
		tests := []struct {
			name string
			ds   []integrate.Decision
			code string
		}{
			{"ErrMissingDecision", ds[:2], ferry.EINVALID},
			{"ErrUnknownPrincipal", append(acceptAll(p), integrate.Decision{PrincipalID: ferry.NewUUID(), Verdict: integrate.Accept}), ferry.EINVALID},
			{"ErrDuplicate", append(acceptAll(p), ds[0]), ferry.EINVALID},
			{"ErrBadVerdict", []integrate.Decision{{PrincipalID: ds[0].PrincipalID, Verdict: "Maybe"}, ds[1], ds[2]}, ferry.EINVALID},
			{"ErrChangeWithoutRole", []integrate.Decision{{PrincipalID: ds[0].PrincipalID, Verdict: integrate.Change}, ds[1], ds[2]}, ferry.EINVALID},
			{"ErrChangeToUnknownRole", []integrate.Decision{{PrincipalID: ds[0].PrincipalID, Verdict: integrate.Change, RoleDefinitionID: ferry.NewUUID()}, ds[1], ds[2]}, ferry.EINVALID},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.ig.Apply(ctx, p, tc.ds)
				wantCode(t, err, tc.code)
			})
		}
		t.Run("ErrStaleProposal", func(t *testing.T) {
			extra := ferry.NewUUID()
			must(t, s.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: f.c.TenantID, PrincipalID: extra, Role: ferry.LegacyReader}))
			_, err := f.ig.Apply(ctx, p, ds)
			wantCode(t, err, ferry.ECONFLICT)
			must(t, s.RemoveLegacyRole(ctx, f.c.TenantID, extra, ferry.LegacyReader))
		})
		t.Run("ErrNameTaken", func(t *testing.T) {
			must(t, f.svc.CreateCatalog(ctx, &ferry.Catalog{SubscriptionID: sub, ResourceGroup: rg, Name: "CAT1"}))
			_, err := f.ig.Apply(ctx, p, ds)
			wantCode(t, err, ferry.ECONFLICT)
			_, err = f.ig.Propose(ctx, f.c.TenantID, sub, rg, "cat1")
			wantCode(t, err, ferry.ECONFLICT)
		})
		t.Run("ErrProposeInput", func(t *testing.T) {
			for _, tc := range []struct {
				tenant, rg, name, code string
			}{
				{f.c.TenantID, "missing", "cat2", ferry.ENOTFOUND},
				{f.c.TenantID, rg, "bad name!", ferry.EINVALID},
				{ferry.NewUUID(), rg, "cat2", ferry.ENOTFOUND},
				{"not-a-guid", rg, "cat2", ferry.EINVALID},
			} {
				_, err := f.ig.Propose(ctx, tc.tenant, sub, tc.rg, tc.name)
				wantCode(t, err, tc.code)
			}
		})
		t.Run("ChangeAndReject", func(t *testing.T) {
			p, err := f.ig.Propose(ctx, f.c.TenantID, sub, rg, "cat2")
			must(t, err)
			var ds []integrate.Decision
			for _, a := range p.Assignments {
				d := integrate.Decision{PrincipalID: a.PrincipalID, Verdict: integrate.Accept}
				switch a.PrincipalID {
				case f.contr:
					d = integrate.Decision{PrincipalID: a.PrincipalID, Verdict: integrate.Change, RoleDefinitionID: ferry.RoleAzureSpherePublisher}
				case f.read:
					d.Verdict = integrate.Reject
				}
				ds = append(ds, d)
			}
			res, err := f.ig.Apply(ctx, p, ds)
			must(t, err)
			got := map[string]string{}
			for _, a := range res.Assignments {
				got[a.PrincipalID] = a.RoleDefinitionID
			}
			if got[f.admin] != ferry.RoleOwner || got[f.contr] != ferry.RoleAzureSpherePublisher || len(got) != 2 {
				t.Errorf("assignments = %v", got)
			}
			if f.authz.Evaluator().Allowed(f.read, "Microsoft.AzureSphere/catalogs/read", p.CatalogID) {
				t.Error("the rejected Reader can read the catalog")
			}
		})
	})
}

func TestLegacyAccessAndRoles(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFixture(t, s)
		state := func() ferry.LegacyAccess {
			c, err := s.GetCatalog(ctx, f.c.TenantID)
			must(t, err)
			return c.LegacyAccess
		}
		must(t, f.ig.Pause(ctx, f.c.TenantID))
		if got := state(); got != ferry.LegacyPaused {
			t.Errorf("after Pause: %s", got)
		}
		must(t, f.ig.Enable(ctx, f.c.TenantID))
		if got := state(); got != ferry.LegacyEnabled {
			t.Errorf("after Enable: %s", got)
		}
		_, err := f.ig.RemoveLegacyRoles(ctx, f.c.TenantID, f.admin)
		wantCode(t, err, ferry.ECONFLICT)
		removed, err := f.ig.RemoveLegacyRoles(ctx, f.c.TenantID, f.contr)
		must(t, err)
		if fmt.Sprint(removed) != "[Contributor]" {
			t.Errorf("removed = %v", removed)
		}
		_, err = f.ig.RemoveLegacyRoles(ctx, f.c.TenantID, f.contr)
		wantCode(t, err, ferry.ENOTFOUND)
		must(t, f.ig.Block(ctx, f.c.TenantID))
		wantCode(t, f.ig.Enable(ctx, f.c.TenantID), ferry.ECONFLICT)
		wantCode(t, f.ig.Pause(ctx, f.c.TenantID), ferry.ECONFLICT)
		if got := state(); got != ferry.LegacyBlocked {
			t.Errorf("after Block and Enable: %s", got)
		}
		// Blocked: the last Administrator may go.
		_, err = f.ig.RemoveLegacyRoles(ctx, f.c.TenantID, f.admin)
		must(t, err)
		wantCode(t, f.ig.Pause(ctx, ferry.NewUUID()), ferry.ENOTFOUND)
	})
}

func TestReportsRefuse(t *testing.T) {
	s := storetest.OpenSQLite(t)
	ctx := context.Background()
	f := newFixture(t, s)
	_, err := f.ig.Sidestep(ctx, f.c.TenantID)
	wantCode(t, err, ferry.ECONFLICT)
	now := time.Now()
	_, err = f.ig.Usage(ctx, f.c.TenantID, now, now.Add(-time.Hour))
	wantCode(t, err, ferry.EINVALID)
	rows, err := f.ig.Usage(ctx, f.c.TenantID, time.Time{}, time.Time{})
	must(t, err)
	if len(rows) != 0 {
		t.Errorf("usage without legacy calls = %+v", rows)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
