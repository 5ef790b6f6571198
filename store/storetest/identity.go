package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)

var _ = register("Principal", func(t *testing.T, s ferry.Store) {
	mk := func(id, name string, typ ferry.PrincipalType) *ferry.Principal {
		return &ferry.Principal{ID: id, Type: typ, Name: name, DisplayName: "D " + name, Email: name,
			Credentials: []ferry.Credential{{ID: "c1", Hash: "$argon2id$x", Hint: "abc", CreatedAt: t0}},
			CreatedAt:   t0, UpdatedAt: t0}
	}
	for i, id := range seq("p", 5) {
		typ := ferry.PrincipalUser
		if i%2 == 1 {
			typ = ferry.PrincipalServicePrincipal
		}
		must(t, s.CreatePrincipal(ctx, mk(id, "User"+id+"@Example.com", typ)))
	}
	want := mk("p000", "Userp000@Example.com", ferry.PrincipalUser)
	got, err := s.GetPrincipal(ctx, "p000")
	must(t, err)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GetPrincipal (-want +got):\n%s", d)
	}
	got, err = s.GetPrincipalByName(ctx, "USERP000@example.COM")
	must(t, err)
	if got.ID != "p000" {
		t.Errorf("GetPrincipalByName = %s", got.ID)
	}
	t.Run("Conflicts", func(t *testing.T) {
		wantCode(t, s.CreatePrincipal(ctx, mk("p000", "other", ferry.PrincipalUser)), ferry.ECONFLICT)
		wantCode(t, s.CreatePrincipal(ctx, mk("p999", "userp001@example.com", ferry.PrincipalUser)), ferry.ECONFLICT)
		wantCode(t, s.CreatePrincipal(ctx, &ferry.Principal{ID: "x"}), ferry.EINVALID)
	})
	t.Run("List", func(t *testing.T) {
		all := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Principal], error) {
			return s.ListPrincipals(ctx, ferry.PrincipalFilter{ListOptions: o})
		})
		if d := cmp.Diff(seq("p", 5), ids(all, func(p *ferry.Principal) string { return p.ID })); d != "" {
			t.Errorf("ListPrincipals (-want +got):\n%s", d)
		}
		sp := collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.Principal], error) {
			return s.ListPrincipals(ctx, ferry.PrincipalFilter{Type: ferry.PrincipalServicePrincipal, ListOptions: o})
		})
		if d := cmp.Diff([]string{"p001", "p003"}, ids(sp, func(p *ferry.Principal) string { return p.ID })); d != "" {
			t.Errorf("ListPrincipals(ServicePrincipal) (-want +got):\n%s", d)
		}
		_, err := s.ListPrincipals(ctx, ferry.PrincipalFilter{ListOptions: ferry.ListOptions{After: "%%%"}})
		wantCode(t, err, ferry.EINVALID)
	})
	t.Run("Update", func(t *testing.T) {
		p, err := s.GetPrincipal(ctx, "p001")
		must(t, err)
		p.Name, p.Disabled = "renamed", true
		must(t, s.UpdatePrincipal(ctx, p))
		got, err := s.GetPrincipalByName(ctx, "Renamed")
		must(t, err)
		if !got.Disabled {
			t.Error("update lost")
		}
		wantCode(t, s.UpdatePrincipal(ctx, mk("nope", "nope", ferry.PrincipalUser)), ferry.ENOTFOUND)
		p.ID = "p002"
		wantCode(t, s.UpdatePrincipal(ctx, p), ferry.ECONFLICT) // name taken by p001
	})
	t.Run("Delete", func(t *testing.T) {
		must(t, s.DeletePrincipal(ctx, "p004"))
		_, err := s.GetPrincipal(ctx, "p004")
		wantCode(t, err, ferry.ENOTFOUND)
		wantCode(t, s.DeletePrincipal(ctx, "p004"), ferry.ENOTFOUND)
		_, err = s.GetPrincipalByName(ctx, "nobody")
		wantCode(t, err, ferry.ENOTFOUND)
	})
})

var _ = register("SigningKey", func(t *testing.T, s ferry.Store) {
	for i, id := range []string{"k1", "k2", "k3"} {
		must(t, s.CreateSigningKey(ctx, &ferry.SigningKey{ID: id, Algorithm: "ES256", PrivateKey: []byte{1, 2, byte(i)}, CreatedAt: t0.Add(time.Duration(i) * time.Hour)}))
	}
	wantCode(t, s.CreateSigningKey(ctx, &ferry.SigningKey{ID: "k1", CreatedAt: t0}), ferry.ECONFLICT)
	must(t, s.RetireSigningKey(ctx, "k1", t0.Add(time.Minute)))
	wantCode(t, s.RetireSigningKey(ctx, "nope", t0), ferry.ENOTFOUND)
	keys, err := s.ListSigningKeys(ctx)
	must(t, err)
	if d := cmp.Diff([]string{"k3", "k2", "k1"}, ids(keys, func(k *ferry.SigningKey) string { return k.ID })); d != "" {
		t.Errorf("ListSigningKeys (-want +got):\n%s", d)
	}
	if !keys[2].RetiredAt.Equal(t0.Add(time.Minute)) || !slices.Equal(keys[2].PrivateKey, []byte{1, 2, 0}) {
		t.Errorf("k1 = %+v", keys[2])
	}
})

var _ = register("Setting", func(t *testing.T, s ferry.Store) {
	_, err := s.GetSetting(ctx, "tenant")
	wantCode(t, err, ferry.ENOTFOUND)
	v, err := s.PutSettingIfAbsent(ctx, "tenant", "a")
	must(t, err)
	if v != "a" {
		t.Errorf("PutSettingIfAbsent = %q, want a", v)
	}
	v, err = s.PutSettingIfAbsent(ctx, "tenant", "b")
	must(t, err)
	if v != "a" {
		t.Errorf("second PutSettingIfAbsent = %q, want a", v)
	}
	must(t, s.PutSetting(ctx, "tenant", "c"))
	v, err = s.GetSetting(ctx, "tenant")
	must(t, err)
	if v != "c" {
		t.Errorf("GetSetting = %q, want c", v)
	}
})

var _ = register("RBAC", func(t *testing.T, s ferry.Store) {
	def := func(id, name string, typ ferry.RoleType) *ferry.RoleDefinition {
		return &ferry.RoleDefinition{ID: id, Name: name, Type: typ, Description: "d",
			Permissions:      []ferry.Permission{{Actions: []string{"*/read"}, NotActions: []string{"x"}}},
			AssignableScopes: []string{"/"}, CreatedAt: t0, UpdatedAt: t0}
	}
	must(t, s.PutRoleDefinition(ctx, def("r1", "Reader", ferry.RoleBuiltIn)))
	must(t, s.PutRoleDefinition(ctx, def("r2", "Owner", ferry.RoleBuiltIn)))
	must(t, s.PutRoleDefinition(ctx, def("r3", "Mine", ferry.RoleCustom)))
	must(t, s.PutRoleDefinition(ctx, def("r3", "Mine2", ferry.RoleCustom))) // replace
	wantCode(t, s.PutRoleDefinition(ctx, def("r4", "reader", ferry.RoleCustom)), ferry.ECONFLICT)
	got, err := s.GetRoleDefinition(ctx, "r3")
	must(t, err)
	if d := cmp.Diff(def("r3", "Mine2", ferry.RoleCustom), got); d != "" {
		t.Errorf("GetRoleDefinition (-want +got):\n%s", d)
	}
	_, err = s.GetRoleDefinition(ctx, "r9")
	wantCode(t, err, ferry.ENOTFOUND)
	listDefs := func(f ferry.RoleDefinitionFilter) []string {
		return ids(collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.RoleDefinition], error) {
			f.ListOptions = o
			return s.ListRoleDefinitions(ctx, f)
		}), func(d *ferry.RoleDefinition) string { return d.ID })
	}
	for name, c := range map[string]struct {
		f    ferry.RoleDefinitionFilter
		want []string
	}{
		"All":    {ferry.RoleDefinitionFilter{}, []string{"r1", "r2", "r3"}},
		"ByName": {ferry.RoleDefinitionFilter{Name: "OWNER"}, []string{"r2"}},
		"ByType": {ferry.RoleDefinitionFilter{Type: ferry.RoleCustom}, []string{"r3"}},
	} {
		if d := cmp.Diff(c.want, listDefs(c.f)); d != "" {
			t.Errorf("ListRoleDefinitions %s (-want +got):\n%s", name, d)
		}
	}

	const sub = "/subscriptions/s1"
	as := []*ferry.RoleAssignment{
		{ID: "a1", Scope: sub, RoleDefinitionID: "r1", PrincipalID: "u1", PrincipalType: ferry.PrincipalUser, CreatedAt: t0, CreatedBy: "me"},
		{ID: "a2", Scope: sub + "/resourceGroups/RG", RoleDefinitionID: "r2", PrincipalID: "u1", CreatedAt: t0},
		{ID: "a3", Scope: sub + "/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c", RoleDefinitionID: "r3", PrincipalID: "u2", CreatedAt: t0},
		{ID: "a4", Scope: "/subscriptions/s10", RoleDefinitionID: "r1", PrincipalID: "u2", CreatedAt: t0},
		{ID: "a5", Scope: "/", RoleDefinitionID: "r2", PrincipalID: "u3", CreatedAt: t0},
	}
	for _, a := range as {
		must(t, s.CreateRoleAssignment(ctx, a))
	}
	wantCode(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: "a1", Scope: "/x", RoleDefinitionID: "r1", PrincipalID: "u9"}), ferry.ECONFLICT)
	wantCode(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: "a9", Scope: "/SUBSCRIPTIONS/S1", RoleDefinitionID: "r1", PrincipalID: "u1"}), ferry.ECONFLICT)
	wantCode(t, s.CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: "a9", Scope: sub, RoleDefinitionID: "nope", PrincipalID: "u1"}), ferry.ENOTFOUND)
	a, err := s.GetRoleAssignment(ctx, "a1")
	must(t, err)
	if d := cmp.Diff(as[0], a); d != "" {
		t.Errorf("GetRoleAssignment (-want +got):\n%s", d)
	}
	listAs := func(f ferry.RoleAssignmentFilter) []string {
		return ids(collect(t, func(o ferry.ListOptions) (ferry.Page[*ferry.RoleAssignment], error) {
			f.ListOptions = o
			return s.ListRoleAssignments(ctx, f)
		}), func(a *ferry.RoleAssignment) string { return a.ID })
	}
	for name, c := range map[string]struct {
		f    ferry.RoleAssignmentFilter
		want []string
	}{
		"All":         {ferry.RoleAssignmentFilter{}, []string{"a1", "a2", "a3", "a4", "a5"}},
		"Principal":   {ferry.RoleAssignmentFilter{PrincipalID: "u1"}, []string{"a1", "a2"}},
		"Role":        {ferry.RoleAssignmentFilter{RoleDefinitionID: "r1"}, []string{"a1", "a4"}},
		"ScopePrefix": {ferry.RoleAssignmentFilter{ScopePrefix: sub}, []string{"a1", "a2", "a3"}},
		"ScopeRG":     {ferry.RoleAssignmentFilter{ScopePrefix: sub + "/resourcegroups/rg/"}, []string{"a2", "a3"}},
		"AtScope":     {ferry.RoleAssignmentFilter{AtScope: sub + "/resourcegroups/rg"}, []string{"a2"}},
		"Root":        {ferry.RoleAssignmentFilter{AtScope: "/"}, []string{"a5"}},
		"Combined":    {ferry.RoleAssignmentFilter{PrincipalID: "u2", ScopePrefix: sub}, []string{"a3"}},
	} {
		if d := cmp.Diff(c.want, listAs(c.f)); d != "" {
			t.Errorf("ListRoleAssignments %s (-want +got):\n%s", name, d)
		}
	}
	wantCode(t, s.DeleteRoleDefinition(ctx, "r3"), ferry.ECONFLICT)
	must(t, s.DeleteRoleAssignment(ctx, "a3"))
	wantCode(t, s.DeleteRoleAssignment(ctx, "a3"), ferry.ENOTFOUND)
	_, err = s.GetRoleAssignment(ctx, "a3")
	wantCode(t, err, ferry.ENOTFOUND)
	must(t, s.DeleteRoleDefinition(ctx, "r3"))
	wantCode(t, s.DeleteRoleDefinition(ctx, "r3"), ferry.ENOTFOUND)
})

var _ = register("LegacyRole", func(t *testing.T, s ferry.Store) {
	add := func(c, p string, r ferry.LegacyRole) {
		t.Helper()
		must(t, s.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: c, PrincipalID: p, Role: r, CreatedAt: t0}))
	}
	add("t1", "u1", ferry.LegacyAdministrator)
	add("t1", "u1", ferry.LegacyAdministrator) // again: no error
	add("t1", "u2", ferry.LegacyReader)
	add("t2", "u1", ferry.LegacyContributor)
	key := func(a *ferry.LegacyRoleAssignment) string {
		return a.CatalogID + "/" + a.PrincipalID + "/" + string(a.Role)
	}
	got, err := s.ListLegacyRoles(ctx, "t1", "")
	must(t, err)
	if d := cmp.Diff([]string{"t1/u1/Administrator", "t1/u2/Reader"}, ids(got, key)); d != "" {
		t.Errorf("by tenant (-want +got):\n%s", d)
	}
	got, err = s.ListLegacyRoles(ctx, "", "u1")
	must(t, err)
	if d := cmp.Diff([]string{"t1/u1/Administrator", "t2/u1/Contributor"}, ids(got, key)); d != "" {
		t.Errorf("by principal (-want +got):\n%s", d)
	}
	_, err = s.ListLegacyRoles(ctx, "", "")
	wantCode(t, err, ferry.EINVALID)
	must(t, s.RemoveLegacyRole(ctx, "t1", "u1", ferry.LegacyAdministrator))
	wantCode(t, s.RemoveLegacyRole(ctx, "t1", "u1", ferry.LegacyAdministrator), ferry.ENOTFOUND)
})

var _ = register("WithTx", func(t *testing.T, s ferry.Store) {
	boom := errors.New("boom")
	err := s.WithTx(ctx, func(tx ferry.Tx) error {
		must(t, tx.CreatePrincipal(ctx, &ferry.Principal{ID: "x1", Name: "x1", Type: ferry.PrincipalUser}))
		must(t, tx.PutSetting(ctx, "k", "v"))
		if _, err := tx.GetPrincipal(ctx, "x1"); err != nil {
			t.Errorf("read own write: %v", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want boom", err)
	}
	_, err = s.GetPrincipal(ctx, "x1")
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetSetting(ctx, "k")
	wantCode(t, err, ferry.ENOTFOUND)
	must(t, s.WithTx(ctx, func(tx ferry.Tx) error {
		if err := tx.CreatePrincipal(ctx, &ferry.Principal{ID: "x1", Name: "x1", Type: ferry.PrincipalUser}); err != nil {
			return err
		}
		return tx.PutSetting(ctx, "k", "v")
	}))
	_, err = s.GetPrincipal(ctx, "x1")
	must(t, err)
	must(t, s.Ping(ctx))
})
