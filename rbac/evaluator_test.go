package rbac_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/google/go-cmp/cmp"
)

const (
	sub     = "/subscriptions/a"
	rg      = sub + "/resourceGroups/rg"
	rg2     = sub + "/resourceGroups/rg2"
	catalog = rg + "/providers/Microsoft.AzureSphere/catalogs/c1"
	product = catalog + "/products/p1"
	group   = product + "/deviceGroups/g1"
	device  = group + "/devices/d1"
	alice   = "11111111-1111-1111-1111-111111111111"
	bob     = "22222222-2222-2222-2222-222222222222"
)

func TestMatchAction(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, action string
		want                  bool
	}{
		{"Star", "*", "Microsoft.AzureSphere/catalogs/read", true},
		{"StarEmptyAction", "*", "", false},
		{"Exact", "Microsoft.AzureSphere/catalogs/read", "Microsoft.AzureSphere/catalogs/read", true},
		{"ExactCaseInsensitive", "Microsoft.AzureSphere/catalogs/Read", "microsoft.azuresphere/CATALOGS/read", true},
		{"ExactDiffers", "Microsoft.AzureSphere/catalogs/read", "Microsoft.AzureSphere/catalogs/write", false},
		{"ProviderStar", "Microsoft.AzureSphere/*", "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/delete", true},
		{"ProviderStarOtherProvider", "Microsoft.AzureSphere/*", "Microsoft.Devices/IotHubs/Read", false},
		{"ProviderStarIsSegmentAware", "Microsoft.Compute/*", "Microsoft.ComputeSchedule/x/read", false},
		{"MiddleStar", "Microsoft.Authorization/*/read", "Microsoft.Authorization/roleAssignments/read", true},
		{"MiddleStarSpansSegments", "Microsoft.Authorization/*/read", "Microsoft.Authorization/a/b/read", true},
		{"MiddleStarVerbDiffers", "Microsoft.Authorization/*/read", "Microsoft.Authorization/roleAssignments/write", false},
		{"MiddleStarVerbSuffix", "Microsoft.Authorization/*/read", "Microsoft.Authorization/roleAssignments/readx", false},
		{"LeadingStarRead", "*/read", "Microsoft.AzureSphere/catalogs/read", true},
		{"LeadingStarReadIsSegmentAware", "*/read", "Microsoft.Foo/unread", false},
		{"LeadingStarReadCase", "*/read", "Microsoft.Devices/IotHubs/Read", true},
		{"DeleteStar", "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/roleAssignments/delete", true},
		{"TwoStars", "Microsoft.*/*/read", "Microsoft.Devices/IotHubs/Read", true},
		{"TwoStarsMiss", "Microsoft.*/*/read", "Ferry.Migration/migrations/read", false},
		{"StarBacktracks", "a*b*c", "axxbyybzc", true},
		{"StarBacktracksMiss", "a*b*c", "axxbyybzd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rbac.MatchAction(tc.pattern, tc.action); got != tc.want {
				t.Fatalf("MatchAction(%q, %q) = %v, want %v", tc.pattern, tc.action, got, tc.want)
			}
		})
	}
}

func assign(id, principal, roleID, scope string) ferry.RoleAssignment {
	return ferry.RoleAssignment{ID: id, PrincipalID: principal, RoleDefinitionID: roleID, Scope: scope, PrincipalType: ferry.PrincipalUser}
}

func custom(id, name string, scopes []string, perms ...ferry.Permission) ferry.RoleDefinition {
	return ferry.RoleDefinition{ID: id, Name: name, Type: ferry.RoleCustom, Permissions: perms, AssignableScopes: scopes}
}

func TestEvaluatorScopes(t *testing.T) {
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), []ferry.RoleAssignment{
		assign("a1", alice, ferry.RoleAzureSphereReader, rg),
		assign("a2", bob, ferry.RoleAzureSphereContributor, product),
	})
	const read = "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/read"
	for _, tc := range []struct {
		name, principal, action, scope string
		want                           bool
	}{
		{"AtScope", alice, "Microsoft.AzureSphere/catalogs/read", rg, true},
		{"BelowScope", alice, read, device, true},
		{"AboveScope", alice, "Microsoft.AzureSphere/catalogs/read", sub, false},
		{"SiblingPrefixIsNotContained", alice, "Microsoft.AzureSphere/catalogs/read", rg2 + "/providers/Microsoft.AzureSphere/catalogs/c1", false},
		{"SiblingPrefixItself", alice, "Microsoft.Resources/subscriptions/resourceGroups/read", rg2, false},
		{"ScopeCaseInsensitive", alice, read, "/SUBSCRIPTIONS/a/resourcegroups/RG/providers/microsoft.azuresphere/catalogs/c1", true},
		{"ScopeTrailingSlash", alice, read, device + "/", true},
		{"PrincipalIDCaseInsensitive", "11111111-1111-1111-1111-111111111111", read, device, true},
		{"UnknownPrincipal", "33333333-3333-3333-3333-333333333333", read, device, false},
		{"EmptyAction", alice, "", device, false},
		{"ProductGrantCoversDevice", bob, "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/delete", device, true},
		{"ProductGrantNotOtherProduct", bob, "Microsoft.AzureSphere/catalogs/products/write", catalog + "/products/p10", false},
		{"ProductGrantNotCatalog", bob, "Microsoft.AzureSphere/catalogs/read", catalog, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.Allowed(tc.principal, tc.action, tc.scope); got != tc.want {
				t.Fatalf("Allowed(%s, %s, %s) = %v, want %v\n%s", tc.principal, tc.action, tc.scope, got, tc.want,
					e.Explain(tc.principal, tc.action, tc.scope, false).Reason)
			}
		})
	}
}

func TestEvaluatorNotActions(t *testing.T) {
	defs := append(rbac.BuiltInRoles(),
		custom("c1", "No deletes", []string{"/"}, ferry.Permission{
			Actions:    []string{"Microsoft.AzureSphere/*"},
			NotActions: []string{"Microsoft.AzureSphere/*/delete"},
		}),
		// NotActions subtract only within their own block.
		custom("c2", "Two blocks", []string{"/"},
			ferry.Permission{Actions: []string{"Microsoft.AzureSphere/*"}, NotActions: []string{"*/delete"}},
			ferry.Permission{Actions: []string{"Microsoft.AzureSphere/catalogs/images/delete"}},
		),
	)
	e := rbac.NewEvaluator(defs, []ferry.RoleAssignment{
		assign("1", alice, "c1", catalog),
		assign("2", bob, "c2", catalog),
		assign("3", "contrib", ferry.RoleContributor, sub),
		assign("4", "uaa", ferry.RoleUserAccessAdministrator, sub),
		assign("5", "owner", ferry.RoleOwner, "/"),
	})
	for _, tc := range []struct {
		name, principal, action string
		want                    bool
	}{
		{"WriteAllowed", alice, "Microsoft.AzureSphere/catalogs/products/write", true},
		{"DeleteExcluded", alice, "Microsoft.AzureSphere/catalogs/products/delete", false},
		{"DeleteExcludedCase", alice, "Microsoft.AzureSphere/catalogs/products/DELETE", false},
		{"OtherBlockGrants", bob, "Microsoft.AzureSphere/catalogs/images/delete", true},
		{"OtherBlockOnlyThatAction", bob, "Microsoft.AzureSphere/catalogs/products/delete", false},
		{"ContributorWrites", "contrib", "Microsoft.AzureSphere/catalogs/write", true},
		{"ContributorDeletes", "contrib", "Microsoft.AzureSphere/catalogs/delete", true},
		{"ContributorCannotAssignRoles", "contrib", "Microsoft.Authorization/roleAssignments/write", false},
		{"ContributorCannotDeleteAssignments", "contrib", "Microsoft.Authorization/roleAssignments/delete", false},
		{"ContributorReadsAssignments", "contrib", "Microsoft.Authorization/roleAssignments/read", true},
		{"UserAccessAdminAssigns", "uaa", "Microsoft.Authorization/roleAssignments/write", true},
		{"UserAccessAdminReads", "uaa", "Microsoft.AzureSphere/catalogs/read", true},
		{"UserAccessAdminCannotWrite", "uaa", "Microsoft.AzureSphere/catalogs/write", false},
		{"OwnerAnything", "owner", "Ferry.Migration/migrations/start/action", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.Allowed(tc.principal, tc.action, device); got != tc.want {
				t.Fatalf("Allowed(%s, %s) = %v, want %v", tc.principal, tc.action, got, tc.want)
			}
		})
	}
}

// TestSphereRoleMatrix checks the built-in Azure Sphere roles against the
// per-operation matrix of sphere-surfaces.md §4.3.
func TestSphereRoleMatrix(t *testing.T) {
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), []ferry.RoleAssignment{
		assign("r", "reader", ferry.RoleAzureSphereReader, catalog),
		assign("p", "publisher", ferry.RoleAzureSpherePublisher, catalog),
		assign("c", "contributor", ferry.RoleAzureSphereContributor, catalog),
		assign("g", "generic-reader", ferry.RoleReader, catalog),
	})
	type row struct{ reader, publisher, contributor bool }
	for _, tc := range []struct {
		op string
		row
	}{
		{"Catalogs_Get", row{true, true, true}},
		{"Devices_Get", row{true, true, true}},
		{"Certificates_ListByCatalog", row{true, true, true}},
		{"Catalogs_CountDevices", row{true, true, true}},
		{"Catalogs_ListDevices", row{true, true, true}},
		{"Catalogs_ListDeviceGroups", row{true, true, true}},
		{"Catalogs_ListDeviceInsights", row{true, true, true}},
		{"Catalogs_ListDeployments", row{true, false, true}},
		{"Products_CountDevices", row{true, true, true}},
		{"DeviceGroups_CountDevices", row{true, true, true}},
		{"Certificates_RetrieveCertChain", row{true, true, true}},
		{"Certificates_RetrieveProofOfPossessionNonce", row{false, true, true}},
		{"Images_CreateOrUpdate", row{false, true, true}},
		{"Catalogs_UploadImage", row{false, true, true}},
		{"DeviceGroups_ClaimDevices", row{false, false, true}},
		{"Deployments_CreateOrUpdate", row{false, false, true}},
		{"Products_CreateOrUpdate", row{false, false, true}},
		{"DeviceGroups_Delete", row{false, false, true}},
		{"Devices_GenerateCapabilityImage", row{false, false, true}},
		{"Images_Delete", row{false, false, true}},
		{"RoleAssignments_ListForScope", row{true, true, true}},
		{"RoleAssignments_Create", row{false, false, false}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			o, ok := rbac.OperationByID(tc.op)
			if !ok {
				t.Fatalf("no operation %s", tc.op)
			}
			got := row{
				e.Allowed("reader", o.Action, device),
				e.Allowed("publisher", o.Action, device),
				e.Allowed("contributor", o.Action, device),
			}
			if got != tc.row {
				t.Fatalf("%s (%s): got %+v, want %+v", tc.op, o.Action, got, tc.row)
			}
			if readOnly := o.Method == "GET"; e.Allowed("generic-reader", o.Action, device) != readOnly {
				t.Fatalf("Reader on %s (%s): want %v", tc.op, o.Action, readOnly)
			}
		})
	}
}

func TestEvaluatorAssignableScopes(t *testing.T) {
	defs := []ferry.RoleDefinition{
		custom("narrow", "Catalog operator", []string{catalog}, ferry.Permission{Actions: []string{"Microsoft.AzureSphere/*"}}),
	}
	e := rbac.NewEvaluator(defs, []ferry.RoleAssignment{
		assign("in", alice, "narrow", product),
		assign("out", bob, "narrow", rg), // outside the role's assignable scopes: grants nothing
		assign("gone", "carol", "missing-role", "/"),
	})
	if !e.Allowed(alice, "Microsoft.AzureSphere/catalogs/products/write", product) {
		t.Error("assignment inside the assignable scope does not grant")
	}
	if e.Allowed(bob, "Microsoft.AzureSphere/catalogs/products/write", product) {
		t.Error("assignment outside the assignable scopes grants")
	}
	if e.Allowed("carol", "Microsoft.AzureSphere/catalogs/read", catalog) {
		t.Error("assignment of a missing role grants")
	}
	d := defs[0]
	if !rbac.Assignable(&d, device) || rbac.Assignable(&d, rg) {
		t.Error("Assignable is wrong")
	}
}

func TestEvaluatorDataActions(t *testing.T) {
	hub := rg + "/providers/Microsoft.Devices/IotHubs/h1"
	defs := append(rbac.BuiltInRoles(),
		custom("hubdata", "Hub data reader", []string{"/"}, ferry.Permission{
			DataActions:    []string{"Microsoft.Devices/IotHubs/*"},
			NotDataActions: []string{"Microsoft.Devices/IotHubs/*/write", "Microsoft.Devices/IotHubs/*/delete"},
		}))
	e := rbac.NewEvaluator(defs, []ferry.RoleAssignment{
		assign("1", alice, "hubdata", hub),
		assign("2", bob, ferry.RoleOwner, "/"),
	})
	for _, tc := range []struct {
		name, principal, action string
		data, want              bool
	}{
		{"DataRead", alice, "Microsoft.Devices/IotHubs/twins/read", true, true},
		{"DataWriteExcluded", alice, "Microsoft.Devices/IotHubs/twins/write", true, false},
		{"DataInvoke", alice, "Microsoft.Devices/IotHubs/directMethods/invoke/action", true, true},
		{"DataActionsDoNotGrantControlPlane", alice, "Microsoft.Devices/IotHubs/Read", false, false},
		{"OwnerStarIsNotData", bob, "Microsoft.Devices/IotHubs/twins/read", true, false},
		{"OwnerControlPlane", bob, "Microsoft.Devices/IotHubs/Read", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.Allowed(tc.principal, tc.action, hub)
			if tc.data {
				got = e.DataAllowed(tc.principal, tc.action, hub)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if !rbac.IsDataAction("microsoft.devices/iothubs/TWINS/read") || rbac.IsDataAction("Microsoft.Devices/IotHubs/Read") {
		t.Error("IsDataAction is wrong")
	}
}

func TestExplain(t *testing.T) {
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), []ferry.RoleAssignment{
		assign("narrow", alice, ferry.RoleAzureSphereContributor, catalog),
		assign("broad", alice, ferry.RoleAzureSphereReader, sub),
	})
	d := e.Explain(alice, "Microsoft.AzureSphere/catalogs/read", device, false)
	if !d.Allowed || d.Assignment.ID != "broad" || d.Role.ID != ferry.RoleAzureSphereReader {
		t.Fatalf("Explain read = %+v, want the broad Reader assignment", d)
	}
	d = e.Explain(alice, "Microsoft.AzureSphere/catalogs/write", device, false)
	if !d.Allowed || d.Assignment.ID != "narrow" || d.Role.Name != "Azure Sphere Contributor" {
		t.Fatalf("Explain write = %+v, want the catalog Contributor assignment", d)
	}
	d = e.Explain(alice, "Microsoft.AzureSphere/catalogs/write", rg2, false)
	if d.Allowed || d.Assignment != nil || d.Reason == "" {
		t.Fatalf("Explain denied = %+v", d)
	}
}

func TestEffectivePermissionsAndListPermitted(t *testing.T) {
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), []ferry.RoleAssignment{
		assign("1", alice, ferry.RoleReader, sub),
		assign("2", alice, ferry.RoleAzureSphereContributor, catalog),
		assign("3", alice, ferry.RoleAzureSphereContributor, product), // same role again: listed once
	})
	got := e.EffectivePermissions(alice, device)
	want := []ferry.Permission{{Actions: []string{"*/read"}}}
	for _, d := range rbac.BuiltInRoles() {
		if d.ID == ferry.RoleAzureSphereContributor {
			want = append(want, d.Permissions...)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("EffectivePermissions (-want +got):\n%s", diff)
	}
	if got := e.EffectivePermissions(alice, rg2); len(got) != 1 {
		t.Fatalf("EffectivePermissions at rg2 = %v, want only Reader", got)
	}
	if got := e.EffectivePermissions(bob, device); got != nil {
		t.Fatalf("EffectivePermissions of a stranger = %v", got)
	}
	scopes := []string{catalog, rg2 + "/providers/Microsoft.AzureSphere/catalogs/c2", product, sub}
	gotScopes := e.ListPermitted(alice, "Microsoft.AzureSphere/catalogs/write", scopes)
	if diff := cmp.Diff([]string{catalog, product}, gotScopes); diff != "" {
		t.Fatalf("ListPermitted (-want +got):\n%s", diff)
	}
}

func TestValidateRoleDefinition(t *testing.T) {
	good := custom("x", "Ok", []string{"/", sub}, ferry.Permission{Actions: []string{"*/read"}})
	if err := rbac.ValidateRoleDefinition(&good); err != nil {
		t.Fatalf("valid definition: %v", err)
	}
	for _, b := range rbac.BuiltInRoles() {
		if err := rbac.ValidateRoleDefinition(&b); err != nil {
			t.Fatalf("built-in %s: %v", b.Name, err)
		}
	}
	for _, tc := range []struct {
		name string
		d    ferry.RoleDefinition
	}{
		{"ErrNoName", custom("x", " ", []string{"/"}, ferry.Permission{Actions: []string{"*"}})},
		{"ErrNoPermissions", custom("x", "n", []string{"/"})},
		{"ErrEmptyBlock", custom("x", "n", []string{"/"}, ferry.Permission{NotActions: []string{"*"}})},
		{"ErrEmptyAction", custom("x", "n", []string{"/"}, ferry.Permission{Actions: []string{""}})},
		{"ErrNoScopes", custom("x", "n", nil, ferry.Permission{Actions: []string{"*"}})},
		{"ErrBadScope", custom("x", "n", []string{"subscriptions/a"}, ferry.Permission{Actions: []string{"*"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := rbac.ValidateRoleDefinition(&tc.d); !ferry.IsCode(err, ferry.EINVALID) {
				t.Fatalf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestDataRoles(t *testing.T) {
	const hub = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/h"
	as := []ferry.RoleAssignment{
		{ID: "1", Scope: "/subscriptions/s", RoleDefinitionID: ferry.RoleOwner, PrincipalID: "owner"},
		{ID: "2", Scope: hub, RoleDefinitionID: ferry.RoleIoTHubDataReader, PrincipalID: "reader"},
		{ID: "3", Scope: "/subscriptions/s/resourceGroups/rg", RoleDefinitionID: ferry.RoleIoTHubDataContributor, PrincipalID: "writer"},
	}
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), as)
	for _, c := range []struct {
		principal, action string
		want              bool
	}{
		{"owner", "Microsoft.Devices/IotHubs/devices/read", false}, // Owner grants no data actions, as in Azure
		{"reader", "Microsoft.Devices/IotHubs/devices/read", true},
		{"reader", "Microsoft.Devices/IotHubs/devices/write", false},
		{"reader", "Microsoft.Devices/IotHubs/directMethods/invoke/action", false},
		{"writer", "Microsoft.Devices/IotHubs/directMethods/invoke/action", true},
		{"writer", "Microsoft.Devices/provisioningServices/enrollments/write", false},
	} {
		if got := e.DataAllowed(c.principal, c.action, hub); got != c.want {
			t.Errorf("%s %s: got %v, want %v", c.principal, c.action, got, c.want)
		}
	}
}

func TestBuiltInRoles(t *testing.T) {
	want := map[string]string{
		ferry.RoleOwner:                   "Owner",
		ferry.RoleContributor:             "Contributor",
		ferry.RoleReader:                  "Reader",
		ferry.RoleUserAccessAdministrator: "User Access Administrator",
		ferry.RoleAzureSphereContributor:  "Azure Sphere Contributor",
		ferry.RoleAzureSphereReader:       "Azure Sphere Reader",
		ferry.RoleAzureSpherePublisher:    "Azure Sphere Publisher",
		ferry.RoleIoTHubDataContributor:   "IoT Hub Data Contributor",
		ferry.RoleIoTHubDataReader:        "IoT Hub Data Reader",
		ferry.RoleDPSDataContributor:      "Device Provisioning Service Data Contributor",
		ferry.RoleDPSDataReader:           "Device Provisioning Service Data Reader",
	}
	got := map[string]string{}
	for _, d := range rbac.BuiltInRoles() {
		got[d.ID] = d.Name
		if d.Type != ferry.RoleBuiltIn || !rbac.IsBuiltIn(d.ID) {
			t.Errorf("%s is not marked built-in", d.Name)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("built-in roles (-want +got):\n%s", diff)
	}
	// Callers may change what they get without changing the next call's.
	a := rbac.BuiltInRoles()
	a[0].Permissions[0].Actions[0] = "changed"
	if rbac.BuiltInRoles()[0].Permissions[0].Actions[0] != "*" {
		t.Fatal("BuiltInRoles shares state between calls")
	}
}

// BenchmarkAllowed runs Allowed against 10,000 assignments: 2,000
// principals with five assignments each, at catalog, product and device
// group scopes across 100 resource groups.
func BenchmarkAllowed(b *testing.B) {
	roles := []string{ferry.RoleAzureSphereReader, ferry.RoleAzureSphereContributor, ferry.RoleAzureSpherePublisher, ferry.RoleReader, ferry.RoleContributor}
	var as []ferry.RoleAssignment
	for i := range 10000 {
		p := fmt.Sprintf("%08d-0000-0000-0000-000000000000", i%2000)
		scope := fmt.Sprintf("/subscriptions/s/resourceGroups/rg%d/providers/Microsoft.AzureSphere/catalogs/c%d", i%100, i%7)
		switch i % 3 {
		case 1:
			scope += "/products/p1"
		case 2:
			scope += "/products/p1/deviceGroups/g1"
		}
		as = append(as, assign(fmt.Sprint(i), p, roles[i%len(roles)], scope))
	}
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), as)
	p := "00000042-0000-0000-0000-000000000000"
	target := "/subscriptions/s/resourceGroups/rg42/providers/Microsoft.AzureSphere/catalogs/c0/products/p1/deviceGroups/g1/devices/d1"
	for _, c := range []struct {
		name, action string
		want         bool
	}{
		{"Granted", "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/read", true},
		{"Denied", "Microsoft.Authorization/roleAssignments/write", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			if got := e.Allowed(p, c.action, target); got != c.want {
				b.Fatalf("Allowed = %v, want %v", got, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.Allowed(p, c.action, target)
			}
		})
	}
}

// TestCacheAgreesWithPatterns checks that the per-role answers cached for
// the operation table equal what the patterns say for another spelling of
// the same action (which misses the cache).
func TestCacheAgreesWithPatterns(t *testing.T) {
	var as []ferry.RoleAssignment
	for _, d := range rbac.BuiltInRoles() {
		as = append(as, assign(d.ID, d.ID, d.ID, "/"))
	}
	e := rbac.NewEvaluator(rbac.BuiltInRoles(), as)
	for _, d := range rbac.BuiltInRoles() {
		for _, o := range rbac.Operations() {
			upper := strings.ToUpper(o.Action)
			if o.DataAction {
				if e.DataAllowed(d.ID, o.Action, device) != e.DataAllowed(d.ID, upper, device) {
					t.Errorf("%s on %s: cache and patterns disagree", d.Name, o.Action)
				}
				continue
			}
			if e.Allowed(d.ID, o.Action, device) != e.Allowed(d.ID, upper, device) {
				t.Errorf("%s on %s: cache and patterns disagree", d.Name, o.Action)
			}
		}
	}
}
