package integrated_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/integrated"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
)

// permits says whether a role definition grants action, read straight from
// the definition: some Actions pattern matches and no NotActions pattern
// does ('*' matches any run of characters; case-insensitive).
func permits(d ferry.RoleDefinition, action string) bool {
	match := func(p string) bool {
		re := "(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$"
		return regexp.MustCompile(re).MatchString(action)
	}
	for _, p := range d.Permissions {
		if slices.ContainsFunc(p.Actions, match) && !slices.ContainsFunc(p.NotActions, match) {
			return true
		}
	}
	return false
}

// matrixBodies are request bodies that pass validation for the fixture.
func matrixBodies(devScope string) map[string]any {
	return map[string]any{
		"Catalogs_CreateOrUpdate":                     map[string]any{"location": "global"},
		"Catalogs_Update":                             map[string]any{"tags": map[string]string{"k": "v"}},
		"Catalogs_ListDeviceGroups":                   map[string]any{},
		"Catalogs_UploadImage":                        map[string]any{"properties": map[string]any{"image": "AQID"}},
		"Certificates_RetrieveProofOfPossessionNonce": map[string]any{"proofOfPossessionNonce": "ABC123"},
		"Images_CreateOrUpdate":                       map[string]any{"properties": map[string]any{"image": "AQID"}},
		"Products_CreateOrUpdate":                     map[string]any{"properties": map[string]any{"description": "x"}},
		"Products_Update":                             map[string]any{"properties": map[string]any{"description": "y"}},
		"DeviceGroups_CreateOrUpdate":                 map[string]any{"properties": map[string]any{"osFeedType": "Retail"}},
		"DeviceGroups_Update":                         map[string]any{"properties": map[string]any{"description": "x"}},
		"DeviceGroups_ClaimDevices":                   map[string]any{"deviceIdentifiers": []string{deviceID('a')}},
		"Deployments_CreateOrUpdate":                  map[string]any{},
		"Devices_CreateOrUpdate":                      map[string]any{},
		"Devices_Update":                              map[string]any{"properties": map[string]any{"deviceGroupId": devScope}},
		"Devices_GenerateCapabilityImage":             map[string]any{"capabilities": []string{"FieldServicing"}},
	}
}

func TestRBACMatrix(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		f := e.fixture()
		cat1, cat2 := scopeOf(catalogPath("cat1")), scopeOf(catalogPath("cat2"))
		dev := scopeOf(groupPath("cat1", "Dishwasher", "Development"))
		sibling := scopeOf(groupPath("cat1", "Dishwasher", "Field Test"))
		scopes := []struct{ name, scope string }{{"catalog", cat1}, {"otherCatalog", cat2}, {"group", dev}, {"siblingGroup", sibling}}

		type grant struct {
			role  ferry.RoleDefinition
			scope string
		}
		type who struct {
			name string
			p    *ferry.Principal
			g    *grant
		}
		var principals []who
		for _, d := range rbac.BuiltInRoles() {
			for _, sc := range scopes {
				name := strings.ReplaceAll(d.Name, " ", "") + "@" + sc.name
				principals = append(principals, who{name, e.user(name, d.ID, sc.scope), &grant{d, sc.scope}})
			}
		}
		principals = append(principals, who{"noRole", e.user("norole", "", ""), nil})
		must(t, e.authz.Reload(t.Context()))

		// The operations, deletes last and the catalog's delete at the end.
		ops := []rbac.Operation{}
		served := integrated.Operations()
		for _, op := range rbac.Operations() {
			if slices.Contains(served, op.ID) {
				ops = append(ops, op)
			}
		}
		rank := func(op rbac.Operation) int {
			switch {
			case op.ID == "Catalogs_Delete":
				return 3
			case op.ID == "Images_Delete":
				return 2
			case op.Method == "DELETE":
				return 1
			}
			return 0
		}
		slices.SortStableFunc(ops, func(a, b rbac.Operation) int { return rank(a) - rank(b) })
		if len(ops) != 44 {
			t.Errorf("operations = %d, want 44", len(ops))
		}
		bodies := matrixBodies(dev)
		repl := strings.NewReplacer("{subscriptionId}", sub, "{resourceGroupName}", rg, "{catalogName}", "cat1",
			"{productName}", "Dishwasher", "{deviceGroupName}", "Development", "{deploymentName}", f.deployID,
			"{deviceName}", deviceID('a'), "{imageName}", f.imageID, "{serialNumber}", ".default")
		checked, allowed := 0, 0
		for _, op := range ops {
			path := repl.Replace(op.Path)
			// Lists and actions are authorized over the parent.
			target := scopeOf(path)
			if op.Method == "POST" || strings.Contains(op.ID, "_ListBy") {
				target = target[:strings.LastIndex(target, "/")]
			}
			switch op.ID {
			case "Catalogs_ListBySubscription":
				target = ferry.SubscriptionScope(sub)
			case "Catalogs_ListByResourceGroup":
				target = ferry.ResourceGroupScope(sub, rg)
			}
			t.Run(op.ID, func(t *testing.T) {
				for _, w := range principals {
					want := w.g != nil && ferry.ScopeContains(w.g.scope, target) && permits(w.g.role, op.Action)
					r := e.do(w.p, op.Method, path, bodies[op.ID])
					checked++
					if want {
						allowed++
					}
					switch {
					case r.status >= 500 || r.status == 401:
						t.Errorf("%s: %s %s = %d %s", w.name, op.Method, path, r.status, r.raw)
					case want && r.status == 403:
						t.Errorf("%s: denied %s over %s, want allowed: %s", w.name, op.Action, target, r.raw)
					case !want && (r.status != 403 || r.errorCode() != "AuthorizationFailed"):
						t.Errorf("%s: %s over %s = %d, want 403 AuthorizationFailed", w.name, op.Action, target, r.status)
					}
				}
			})
		}
		t.Logf("checked %d operation × principal pairs, %d allowed", checked, allowed)
		if allowed == 0 || allowed == checked {
			t.Error("the matrix is one-sided")
		}
	})
}

// TestProductionGroup checks the Production device-group case: a Reader of
// the catalog who contributes to the Production group only can deploy and
// claim there, and nowhere else.
func TestProductionGroup(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		f := e.fixture()
		prod := groupPath("cat1", "Dishwasher", "Production")
		p := e.user("release", ferry.RoleAzureSphereReader, scopeOf(catalogPath("cat1")))
		e.assign(p.ID, ferry.RoleAzureSphereContributor, scopeOf(prod))
		must(t, e.authz.Reload(t.Context()))
		deploy := map[string]any{"properties": map[string]any{"deployedImages": []any{map[string]any{"properties": map[string]any{"imageId": f.imageID}}}}}
		claim := func(c byte) map[string]any { return map[string]any{"deviceIdentifiers": []string{deviceID(c)}} }
		tests := []struct {
			name, method, path string
			body               any
			status             int
		}{
			{"ReadCatalog", "GET", catalogPath("cat1"), nil, 200},
			{"ReadDevelopment", "GET", groupPath("cat1", "Dishwasher", "Development"), nil, 200},
			{"DeployProduction", "PUT", prod + "/deployments/.default", deploy, 201},
			{"DeployDevelopment", "PUT", groupPath("cat1", "Dishwasher", "Development") + "/deployments/.default", deploy, 403},
			{"ClaimProduction", "POST", prod + "/claimDevices", claim('p'), 202},
			{"ClaimFieldTest", "POST", groupPath("cat1", "Dishwasher", "Field Test") + "/claimDevices", claim('q'), 403},
			{"UpdateProduction", "PATCH", prod, map[string]any{"properties": map[string]any{"description": "release"}}, 200},
			{"UpdateProduct", "PATCH", productPath("cat1", "Dishwasher"), map[string]any{"properties": map[string]any{"description": "x"}}, 403},
			{"CountProduction", "POST", prod + "/countDevices", nil, 200},
			{"UploadImage", "POST", catalogPath("cat1") + "/uploadImage", map[string]any{"properties": map[string]any{"image": "AQID"}}, 403},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if r := e.do(p, tt.method, tt.path, tt.body); r.status != tt.status {
					t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.raw, tt.status)
				}
			})
		}
		if r := e.do(p, "POST", prod+"/countDevices", nil); r.body["value"] != float64(1) {
			t.Errorf("Production devices = %v, want 1", r.body["value"])
		}
	})
}

// TestMigrationGuideCase is the case from the migration guide: a user who
// can view the Production device group and create deployments in it, but
// can neither move devices in or out of it nor see other device groups.
// A custom role at the Production group grants exactly that.
func TestMigrationGuideCase(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		f := e.fixture()
		ctx := t.Context()
		devel := groupPath("cat1", "Dishwasher", "Development")
		prod := groupPath("cat1", "Dishwasher", "Production")
		// One device in Production, to try to move out.
		if r := e.do(f.admin, "POST", prod+"/claimDevices", map[string]any{"deviceIdentifiers": []string{deviceID('p')}}); r.status != 202 {
			t.Fatalf("claim = %d %s", r.status, r.raw)
		}
		role := &ferry.RoleDefinition{ID: ferry.NewUUID(), Name: "Production Deployer", Type: ferry.RoleCustom, AssignableScopes: []string{"/"},
			Permissions: []ferry.Permission{{Actions: []string{
				"Microsoft.AzureSphere/catalogs/products/deviceGroups/read",
				"Microsoft.AzureSphere/catalogs/products/deviceGroups/deployments/*",
				"Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/read",
				"Microsoft.AzureSphere/catalogs/products/deviceGroups/countDevices/action",
			}}}}
		must(t, e.authz.Store().PutRoleDefinition(ctx, role))
		u := e.user("deployer", role.ID, scopeOf(prod))
		// A second user may write devices in Development but only read
		// Production: it cannot move devices into or out of Production.
		v := e.user("developer", ferry.RoleAzureSphereContributor, scopeOf(devel))
		e.assign(v.ID, ferry.RoleAzureSphereReader, scopeOf(prod))
		must(t, e.authz.Reload(ctx))
		deploy := map[string]any{"properties": map[string]any{"deployedImages": []any{map[string]any{"properties": map[string]any{"imageId": f.imageID}}}}}
		move := func(to string) map[string]any {
			return map[string]any{"properties": map[string]any{"deviceGroupId": scopeOf(to)}}
		}
		tests := []struct {
			name   string
			who    *ferry.Principal
			method string
			path   string
			body   any
			status int
		}{
			{"ViewProduction", u, "GET", prod, nil, 200},
			{"ListProductionDevices", u, "GET", prod + "/devices", nil, 200},
			{"CountProductionDevices", u, "POST", prod + "/countDevices", nil, 200},
			{"DeployToProduction", u, "PUT", prod + "/deployments/.default", deploy, 201},
			{"ReadProductionDeployments", u, "GET", prod + "/deployments", nil, 200},
			{"MoveOutOfProduction", u, "PATCH", prod + "/devices/" + deviceID('p'), move(devel), 403},
			{"MoveIntoProduction", u, "PATCH", devel + "/devices/" + deviceID('a'), move(prod), 403},
			{"ClaimIntoProduction", u, "POST", prod + "/claimDevices", map[string]any{"deviceIdentifiers": []string{deviceID('a')}}, 403},
			{"ViewDevelopment", u, "GET", devel, nil, 403},
			{"ListGroupsOfProduct", u, "GET", productPath("cat1", "Dishwasher") + "/deviceGroups", nil, 403},
			{"ListGroupsOfCatalog", u, "POST", catalogPath("cat1") + "/listDeviceGroups", map[string]any{}, 403},
			{"DeployToDevelopment", u, "PUT", devel + "/deployments/.default", deploy, 403},
			// The destination and the source both need the right.
			{"DeveloperMovesIntoProduction", v, "PATCH", devel + "/devices/" + deviceID('a'), move(prod), 403},
			{"DeveloperClaimsOutOfProduction", v, "PUT", devel + "/devices/" + deviceID('p'), map[string]any{}, 403},
			{"DeveloperBulkClaimsOutOfProduction", v, "POST", devel + "/claimDevices", map[string]any{"deviceIdentifiers": []string{deviceID('p')}}, 403},
			{"DeveloperMovesWithinDevelopment", v, "PATCH", devel + "/devices/" + deviceID('a'), move(devel), 200},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if r := e.do(tt.who, tt.method, tt.path, tt.body); r.status != tt.status {
					t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.raw, tt.status)
				}
			})
		}
		// Nothing moved.
		if r := e.do(f.admin, "GET", prod+"/devices/"+deviceID('p'), nil); r.status != 200 {
			t.Errorf("device left Production: %d", r.status)
		}
	})
}
