package armauthz_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/armauthz"
	"github.com/ferry-iot/ferry/store/storetest"
)

func status(err error) (int, string) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	return 0, ""
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		path string
		want bool
	}{
		{"/providers/Microsoft.Authorization/roleDefinitions", true},
		{"/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/x", true},
		{"/subscriptions/s/resourcegroups/rg/providers/microsoft.authorization/roleassignments", true},
		{"//subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c/providers/Microsoft.Authorization/roleAssignments/x", true},
		{"/subscriptions/s/providers/Microsoft.Authorization/permissions", false},
		{"/subscriptions/s/resourceGroups/rg", false},
	} {
		if got := armauthz.Match(c.path); got != c.want {
			t.Errorf("Match(%q) = %v", c.path, got)
		}
	}
}

func TestSDKRoleDefinitionsAndAssignments(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		sub := "/subscriptions/" + e.sub
		rgA, rgB := sub+"/resourceGroups/rg-a", sub+"/resourceGroups/rg-b"
		_, ownerCred := e.principal("owner", ferry.RoleOwner, "/")
		target, _ := e.principal("target", "", "")

		defs, err := armauthorization.NewRoleDefinitionsClient(ownerCred, e.opts)
		must(t, err)
		page, err := defs.NewListPager(sub, &armauthorization.RoleDefinitionsClientListOptions{Filter: to("roleName eq 'Reader'")}).NextPage(ctx)
		must(t, err)
		if len(page.Value) != 1 || *page.Value[0].Name != ferry.RoleReader || *page.Value[0].Properties.RoleType != "BuiltInRole" {
			t.Fatalf("roleName eq 'Reader' = %+v", page.Value)
		}
		readerID := *page.Value[0].ID
		if readerID != sub+"/providers/Microsoft.Authorization/roleDefinitions/"+ferry.RoleReader {
			t.Errorf("reader ID = %s", readerID)
		}
		got, err := defs.GetByID(ctx, readerID, nil)
		must(t, err)
		if *got.Properties.RoleName != "Reader" {
			t.Errorf("GetByID = %+v", got.Properties)
		}
		got2, err := defs.Get(ctx, "", ferry.RoleOwner, nil)
		must(t, err)
		if *got2.Properties.RoleName != "Owner" || *got2.ID != "/providers/Microsoft.Authorization/roleDefinitions/"+ferry.RoleOwner {
			t.Errorf("Get at / = %s %s", *got2.ID, *got2.Properties.RoleName)
		}

		t.Run("CustomRole", func(t *testing.T) {
			id := ferry.NewUUID()
			cr, err := defs.CreateOrUpdate(ctx, sub, id, armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
				RoleName: to("Device Group Deployer"), Description: to("deploys"),
				Permissions:      []*armauthorization.Permission{{Actions: []*string{to("Microsoft.AzureSphere/catalogs/products/deviceGroups/read")}}},
				AssignableScopes: []*string{to(sub)},
			}}, nil)
			must(t, err)
			if *cr.Properties.RoleType != "CustomRole" {
				t.Errorf("created = %+v", cr.Properties)
			}
			pg, err := defs.NewListPager(sub, &armauthorization.RoleDefinitionsClientListOptions{Filter: to("type eq 'CustomRole'")}).NextPage(ctx)
			must(t, err)
			if len(pg.Value) != 1 || *pg.Value[0].Name != id {
				t.Errorf("custom roles = %d", len(pg.Value))
			}
			_, err = defs.Delete(ctx, sub, id, nil)
			must(t, err)
			_, err = defs.Get(ctx, sub, id, nil)
			if st, code := status(err); st != 404 || code != "RoleDefinitionDoesNotExist" {
				t.Errorf("get deleted = %d %s", st, code)
			}
		})

		t.Run("BuiltInsAreImmutable", func(t *testing.T) {
			_, err := defs.CreateOrUpdate(ctx, sub, ferry.RoleReader, armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
				RoleName: to("Reader"), Permissions: []*armauthorization.Permission{{Actions: []*string{to("*")}}}, AssignableScopes: []*string{to("/")},
			}}, nil)
			if st, _ := status(err); st != 403 {
				t.Errorf("overwrite Reader = %v", err)
			}
			_, err = defs.Delete(ctx, "", ferry.RoleOwner, nil)
			if st, _ := status(err); st != 403 {
				t.Errorf("delete Owner = %v", err)
			}
		})

		ras, err := armauthorization.NewRoleAssignmentsClient(e.sub, ownerCred, e.opts)
		must(t, err)
		name := ferry.NewUUID()
		created, err := ras.Create(ctx, rgA, name, armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
			RoleDefinitionID: to(readerID), PrincipalID: to(target.ID)}}, nil)
		must(t, err)
		if *created.ID != rgA+"/providers/Microsoft.Authorization/roleAssignments/"+name || *created.Properties.Scope != rgA ||
			*created.Properties.PrincipalType != armauthorization.PrincipalTypeServicePrincipal {
			t.Errorf("created = %s %+v", *created.ID, created.Properties)
		}
		ga, err := ras.Get(ctx, rgA, name, nil)
		must(t, err)
		if *ga.Properties.PrincipalID != target.ID || *ga.Properties.RoleDefinitionID != readerID {
			t.Errorf("get = %+v", ga.Properties)
		}
		list := func(scope, filter string) []string {
			t.Helper()
			var o *armauthorization.RoleAssignmentsClientListForScopeOptions
			if filter != "" {
				o = &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to(filter)}
			}
			var names []string
			for pager := ras.NewListForScopePager(scope, o); pager.More(); {
				p, err := pager.NextPage(ctx)
				must(t, err)
				for _, a := range p.Value {
					if *a.Properties.PrincipalID == target.ID {
						names = append(names, *a.Name)
					}
				}
			}
			return names
		}
		for _, c := range []struct{ name, scope, filter string }{
			{"AtGroup", rgA, ""},
			{"BelowFromSubscription", sub, ""},
			{"AtScopeFromBelow", rgA + "/providers/Microsoft.Devices/IotHubs/h1", "atScope()"},
			{"AssignedTo", sub, "assignedTo('" + target.ID + "')"},
			// armauthorization/v2 sends $filter unencoded, and Go's server
			// refuses spaces in a request line: callers encode them.
			{"PrincipalEq", "/", "principalId%20eq%20'" + target.ID + "'"},
			{"AtScopeAndAssignedTo", rgA, "atScope()%20and%20assignedTo('" + target.ID + "')"},
		} {
			t.Run("List"+c.name, func(t *testing.T) {
				if got := list(c.scope, c.filter); !slices.Equal(got, []string{name}) {
					t.Errorf("= %v", got)
				}
			})
		}
		t.Run("ListAtScopeFromAboveMissesIt", func(t *testing.T) {
			if got := list(sub, "atScope()"); len(got) != 0 {
				t.Errorf("= %v", got)
			}
		})

		t.Run("ReaderCannotAssign", func(t *testing.T) {
			_, rdCred := e.principal("reader", ferry.RoleReader, sub)
			c, err := armauthorization.NewRoleAssignmentsClient(e.sub, rdCred, e.opts)
			must(t, err)
			_, err = c.Create(ctx, rgA, ferry.NewUUID(), armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
				RoleDefinitionID: to(readerID), PrincipalID: to(target.ID)}}, nil)
			if st, code := status(err); st != http.StatusForbidden || code != "AuthorizationFailed" {
				t.Errorf("reader creates = %d %s", st, code)
			}
			// It may read them, though.
			if _, err := c.Get(ctx, rgA, name, nil); err != nil {
				t.Errorf("reader reads: %v", err)
			}
		})

		t.Run("GroupOwnerAssignsOnlyInside", func(t *testing.T) {
			_, goCred := e.principal("group-owner", ferry.RoleOwner, rgA)
			c, err := armauthorization.NewRoleAssignmentsClient(e.sub, goCred, e.opts)
			must(t, err)
			grant := func(scope string) error {
				_, err := c.Create(ctx, scope, ferry.NewUUID(), armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
					RoleDefinitionID: to(sub + "/providers/Microsoft.Authorization/roleDefinitions/" + ferry.RoleContributor), PrincipalID: to(target.ID)}}, nil)
				return err
			}
			must(t, grant(rgA))
			must(t, grant(rgA+"/providers/Microsoft.AzureSphere/catalogs/cat1"))
			for _, scope := range []string{rgB, sub, "/"} {
				if st, _ := status(grant(scope)); st != http.StatusForbidden {
					t.Errorf("group owner granted at %s: %d", scope, st)
				}
			}
			// The new grant works at once: the target may now read
			// assignments in rg-a.
			if err := e.authz.Authorize(ctx, &ferry.Caller{Principal: target}, armauthz.ActionAssignmentRead, rgA); err != nil {
				t.Errorf("new grant not in force: %v", err)
			}
		})

		t.Run("BadInput", func(t *testing.T) {
			create := func(scope, name string, p armauthorization.RoleAssignmentProperties) (int, string) {
				_, err := ras.Create(ctx, scope, name, armauthorization.RoleAssignmentCreateParameters{Properties: &p}, nil)
				return status(err)
			}
			for _, c := range []struct {
				name, scope, raName string
				p                   armauthorization.RoleAssignmentProperties
				status              int
				code                string
			}{
				{"NameNotGUID", rgA, "not-a-guid", armauthorization.RoleAssignmentProperties{RoleDefinitionID: to(readerID), PrincipalID: to(target.ID)}, 400, "InvalidRoleAssignmentId"},
				{"UnknownRole", rgA, ferry.NewUUID(), armauthorization.RoleAssignmentProperties{RoleDefinitionID: to(ferry.NewUUID()), PrincipalID: to(target.ID)}, 400, "RoleDefinitionDoesNotExist"},
				{"UnknownPrincipal", rgA, ferry.NewUUID(), armauthorization.RoleAssignmentProperties{RoleDefinitionID: to(readerID), PrincipalID: to(ferry.NewUUID())}, 400, "PrincipalNotFound"},
				{"Duplicate", rgA, ferry.NewUUID(), armauthorization.RoleAssignmentProperties{RoleDefinitionID: to(readerID), PrincipalID: to(target.ID)}, 409, "RoleAssignmentExists"},
				{"BadScope", "subscriptions", ferry.NewUUID(), armauthorization.RoleAssignmentProperties{RoleDefinitionID: to(readerID), PrincipalID: to(target.ID)}, 400, "InvalidScope"},
			} {
				t.Run(c.name, func(t *testing.T) {
					if st, code := create(c.scope, c.raName, c.p); st != c.status || code != c.code {
						t.Errorf("= %d %s, want %d %s", st, code, c.status, c.code)
					}
				})
			}
		})

		_, err = ras.Delete(ctx, rgA, name, nil)
		must(t, err)
		_, err = ras.Get(ctx, rgA, name, nil)
		if st, _ := status(err); st != 404 {
			t.Errorf("get deleted = %v", err)
		}
	})
}
