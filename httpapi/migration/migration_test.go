package migration_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/migration"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
)

type assignment struct {
	PrincipalID      string
	PrincipalName    string
	LegacyRoles      []string
	RoleAssignmentID string
	RoleDefinitionID string
	RoleName         string
	Scope            string
	Warning          string
}

type proposal struct {
	TenantID    string
	CatalogID   string
	Resources   map[string]int
	Assignments []assignment
	Warnings    []string
}

type decision struct {
	PrincipalID      string `json:"principalId"`
	Decision         string `json:"decision"`
	RoleDefinitionID string `json:"roleDefinitionId,omitempty"`
}

type integrateResult struct {
	ID              string
	Name            string
	TenantID        string
	LegacyAccess    string
	RoleAssignments []assignment
	Rejected        []string
}

// people is a legacy tenant's role holders.
type people struct {
	admin, admin2, contrib, reader, rejected *ferry.Principal
}

// setup makes a legacy tenant with an Administrator, a second Administrator, a
// Contributor, a Reader and a Contributor whose proposal will be rejected.
// The Administrator is Owner of the subscription, so may integrate.
func setup(e *env) (people, *ferry.Catalog) {
	e.t.Helper()
	ps := people{admin: e.user("admin"), admin2: e.user("admin2"), contrib: e.user("contrib"), reader: e.user("reader"), rejected: e.user("rejected")}
	c := e.legacyTenant(ps.admin, "Contoso", 1)
	e.grantLegacy(c.TenantID, ps.admin2, ferry.LegacyAdministrator)
	e.grantLegacy(c.TenantID, ps.contrib, ferry.LegacyContributor)
	e.grantLegacy(c.TenantID, ps.reader, ferry.LegacyReader)
	e.grantLegacy(c.TenantID, ps.rejected, ferry.LegacyContributor)
	e.assign(ps.admin, ferry.RoleOwner, ferry.SubscriptionScope(sub))
	return ps, c
}

// integrateAll integrates the tenant as "cat1": admin accepted (Owner),
// admin2 changed to Reader, contrib accepted (Azure Sphere Contributor),
// reader accepted (Azure Sphere Reader), rejected rejected.
func integrateAll(e *env, ps people, c *ferry.Catalog) integrateResult {
	e.t.Helper()
	body := map[string]any{"tenantId": c.TenantID, "catalogName": "cat1", "decisions": []decision{
		{PrincipalID: ps.admin.ID, Decision: "Accept"},
		{PrincipalID: ps.admin2.ID, Decision: "Change", RoleDefinitionID: "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + ferry.RoleReader},
		{PrincipalID: ps.contrib.ID, Decision: "accept"},
		{PrincipalID: ps.reader.ID, Decision: "Accept"},
		{PrincipalID: ps.rejected.ID, Decision: "Reject"},
	}}
	var res integrateResult
	e.ok(e.t, e.do(ps.admin, "portal", "POST", rgPath()+"/providers/Ferry.Migration/integrate"+api, body), 200, &res)
	return res
}

func TestIntegrate(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ps, c := setup(e)
		scope := catalogPath("cat1")

		t.Run("Proposal", func(t *testing.T) {
			var p proposal
			e.ok(t, e.do(ps.admin, "portal", "POST", rgPath()+"/providers/Ferry.Migration/proposeIntegration"+api,
				map[string]string{"tenantId": c.TenantID, "catalogName": "cat1"}), 200, &p)
			if p.CatalogID != scope || p.TenantID != c.TenantID {
				t.Errorf("proposal catalog = %s (%s), want %s", p.CatalogID, p.TenantID, scope)
			}
			want := map[string]string{
				ps.admin.ID: ferry.RoleOwner, ps.admin2.ID: ferry.RoleOwner, ps.contrib.ID: ferry.RoleAzureSphereContributor,
				ps.reader.ID: ferry.RoleAzureSphereReader, ps.rejected.ID: ferry.RoleAzureSphereContributor,
			}
			got := map[string]string{}
			for _, a := range p.Assignments {
				got[a.PrincipalID] = a.RoleDefinitionID[strings.LastIndex(a.RoleDefinitionID, "/")+1:]
				if a.Scope != scope {
					t.Errorf("%s: scope = %s", a.PrincipalName, a.Scope)
				}
				if hasWarning := a.Warning != ""; hasWarning != (got[a.PrincipalID] == ferry.RoleAzureSphereContributor) {
					t.Errorf("%s (%s): warning = %q", a.PrincipalName, a.RoleName, a.Warning)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("proposed roles (-want +got):\n%s", diff)
			}
			if p.Resources[ferry.TypeProduct] != 1 || p.Resources[ferry.TypeDeviceGroup] != 5 || p.Resources[ferry.TypeDevice] != 1 {
				t.Errorf("resources = %v", p.Resources)
			}
			// Proposing changes nothing.
			cur, err := s.GetCatalog(t.Context(), c.TenantID)
			must(t, err)
			if cur.Integrated() {
				t.Error("the proposal integrated the tenant")
			}
		})

		t.Run("NotLegacyAdministrator", func(t *testing.T) {
			e.assign(ps.contrib, ferry.RoleOwner, ferry.ResourceGroupScope(sub, rg))
			r := e.do(ps.contrib, "portal", "POST", rgPath()+"/providers/Ferry.Migration/proposeIntegration"+api,
				map[string]string{"tenantId": c.TenantID, "catalogName": "cat1"})
			if r.status != 403 || r.armCode() != "AuthorizationFailed" {
				t.Errorf("answer = %d %s, want 403 AuthorizationFailed", r.status, r.raw)
			}
			// No RBAC right at the resource group: refused before the handler.
			r = e.do(ps.admin2, "portal", "POST", rgPath()+"/providers/Ferry.Migration/proposeIntegration"+api,
				map[string]string{"tenantId": c.TenantID, "catalogName": "cat1"})
			if r.status != 403 {
				t.Errorf("answer = %d %s, want 403", r.status, r.raw)
			}
		})

		t.Run("MissingDecision", func(t *testing.T) {
			r := e.do(ps.admin, "portal", "POST", rgPath()+"/providers/Ferry.Migration/integrate"+api, map[string]any{
				"tenantId": c.TenantID, "catalogName": "cat1", "decisions": []decision{{PrincipalID: ps.admin.ID, Decision: "Accept"}}})
			if r.status != 400 || r.armCode() != "InvalidRequestContent" {
				t.Errorf("answer = %d %s, want 400 InvalidRequestContent", r.status, r.raw)
			}
		})

		t.Run("MissingResourceGroup", func(t *testing.T) {
			r := e.do(ps.admin, "portal", "POST", "/subscriptions/"+sub+"/resourceGroups/nope/providers/Ferry.Migration/proposeIntegration"+api,
				map[string]string{"tenantId": c.TenantID, "catalogName": "cat1"})
			if r.status != 404 {
				t.Errorf("answer = %d %s, want 404", r.status, r.raw)
			}
		})

		res := integrateAll(e, ps, c)
		t.Run("Applied", func(t *testing.T) {
			if res.ID != scope || res.LegacyAccess != "Enabled" {
				t.Errorf("result = %+v", res)
			}
			if !slices.Equal(res.Rejected, []string{ps.rejected.ID}) {
				t.Errorf("rejected = %v", res.Rejected)
			}
			as, err := s.ListRoleAssignments(t.Context(), ferry.RoleAssignmentFilter{AtScope: scope})
			must(t, err)
			got := map[string]string{}
			for _, a := range as.Items {
				got[a.PrincipalID] = a.RoleDefinitionID
			}
			want := map[string]string{ps.admin.ID: ferry.RoleOwner, ps.admin2.ID: ferry.RoleReader,
				ps.contrib.ID: ferry.RoleAzureSphereContributor, ps.reader.ID: ferry.RoleAzureSphereReader}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("assignments at the catalog (-want +got):\n%s", diff)
			}
		})

		t.Run("IntegratedAccess", func(t *testing.T) {
			api := "?api-version=2024-04-01"
			for _, tc := range []struct {
				name string
				p    *ferry.Principal
				want int
			}{
				{"Owner", ps.admin, 200}, {"ChangedToReader", ps.admin2, 200}, {"Contributor", ps.contrib, 200},
				{"Reader", ps.reader, 200}, {"Rejected", ps.rejected, 403},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if r := e.do(tc.p, "az", "GET", scope+api, nil); r.status != tc.want {
						t.Errorf("GET catalog = %d %s, want %d", r.status, r.raw, tc.want)
					}
				})
			}
			// Every resource has its ARM ID: the legacy product is reachable.
			if r := e.do(ps.reader, "az", "GET", scope+"/products/Widget/deviceGroups/Development"+api, nil); r.status != 200 {
				t.Errorf("GET device group = %d %s", r.status, r.raw)
			}
			// The changed Administrator (now Reader) cannot write.
			if r := e.do(ps.admin2, "az", "PUT", scope+"/products/Gadget"+api, map[string]any{"properties": map[string]string{}}); r.status != 403 {
				t.Errorf("PUT product as Reader = %d %s, want 403", r.status, r.raw)
			}
		})

		t.Run("AlreadyIntegrated", func(t *testing.T) {
			r := e.do(ps.admin, "portal", "POST", rgPath()+"/providers/Ferry.Migration/proposeIntegration"+api,
				map[string]string{"tenantId": c.TenantID, "catalogName": "cat2"})
			if r.status != 409 {
				t.Errorf("answer = %d %s, want 409", r.status, r.raw)
			}
		})

		t.Run("Sidestep", func(t *testing.T) {
			var out struct {
				Value []struct {
					PrincipalID string
					LegacyRoles []string
					Roles       []string
					Actions     []string
				}
			}
			e.ok(t, e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/legacySidestep"+api, nil), 200, &out)
			rows := map[string]int{}
			for i, v := range out.Value {
				rows[v.PrincipalID] = i
			}
			i, ok := rows[ps.admin2.ID]
			if !ok {
				t.Fatalf("the legacy Administrator with only Reader is not flagged: %+v", out.Value)
			}
			row := out.Value[i]
			if !slices.Equal(row.LegacyRoles, []string{"Administrator"}) || !slices.Equal(row.Roles, []string{"Reader"}) {
				t.Errorf("admin2 row = %+v", row)
			}
			for _, want := range []string{"Microsoft.AzureSphere/catalogs/products/delete", "Microsoft.AzureSphere/catalogs/products/write", "Microsoft.Authorization/roleAssignments/write"} {
				if !slices.Contains(row.Actions, want) {
					t.Errorf("admin2 actions lack %s: %v", want, row.Actions)
				}
			}
			if _, ok := rows[ps.rejected.ID]; !ok {
				t.Error("the rejected legacy Contributor is not flagged")
			}
			for _, p := range []*ferry.Principal{ps.admin, ps.contrib} {
				if _, ok := rows[p.ID]; ok {
					t.Errorf("%s is flagged: %+v", p.Name, out.Value[rows[p.ID]])
				}
			}
		})
	})
}

func TestShutdownAndUsage(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ps, c := setup(e)
		start := time.Now().UTC().Add(-time.Second)
		integrateAll(e, ps, c)
		scope := catalogPath("cat1")
		products := "/v2/tenants/" + c.TenantID + "/products"

		// A test script: two clients of the legacy surface.
		for range 3 {
			e.ok(t, e.do(ps.contrib, "nightly-build/1.4", "GET", products, nil), 200, nil)
		}
		e.ok(t, e.do(ps.contrib, "azsphere/23.05", "GET", "/v2/tenants/"+c.TenantID+"/devices", nil), 200, nil)
		e.ok(t, e.do(ps.reader, "azsphere/23.05", "GET", products, nil), 200, nil)

		access := func(p *ferry.Principal, verb string) response {
			return e.do(p, "portal", "POST", scope+"/providers/Ferry.Migration/"+verb+"LegacyAccess"+api, nil)
		}
		t.Run("ReaderCannotPause", func(t *testing.T) {
			if r := access(ps.reader, "pause"); r.status != 403 {
				t.Errorf("pause as Azure Sphere Reader = %d %s, want 403", r.status, r.raw)
			}
		})
		t.Run("Pause", func(t *testing.T) {
			// ARM paths are case-insensitive.
			path := strings.ToLower(scope + "/providers/Ferry.Migration/pauseLegacyAccess")
			e.ok(t, e.do(ps.admin, "portal", "POST", path+api, nil), 200, nil)
			r := e.do(ps.contrib, "nightly-build/1.4", "GET", products, nil)
			if r.status != 403 || r.legacyCode() != 1 {
				t.Errorf("legacy call while paused = %d %s, want 403 with Code 1", r.status, r.raw)
			}
			// The integrated side is unaffected.
			e.ok(t, e.do(ps.contrib, "az", "GET", scope+"?api-version=2024-04-01", nil), 200, nil)
		})
		t.Run("Enable", func(t *testing.T) {
			e.ok(t, access(ps.admin, "enable"), 200, nil)
			e.ok(t, e.do(ps.contrib, "nightly-build/1.4", "GET", products, nil), 200, nil)
		})
		t.Run("Usage", func(t *testing.T) {
			var out struct {
				Value []struct {
					PrincipalID, UserAgent string
					Count                  int
					LastCall               time.Time
					Operations             []string
				}
			}
			q := url.Values{"api-version": {migration.APIVersion}, "from": {start.Format(time.RFC3339Nano)}}
			e.ok(t, e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/legacyUsage?"+q.Encode(), nil), 200, &out)
			type row struct {
				who, agent string
				count      int
				ops        string
			}
			var got []row
			names := map[string]string{ps.contrib.ID: "contrib", ps.reader.ID: "reader"}
			for _, v := range out.Value {
				if v.LastCall.Before(start) {
					t.Errorf("last call %v before the script started", v.LastCall)
				}
				got = append(got, row{names[v.PrincipalID], v.UserAgent, v.Count, strings.Join(v.Operations, ",")})
			}
			want := []row{
				{"contrib", "azsphere/23.05", 1, "Catalogs_ListDevices"},
				// 3 before the pause, 1 refused while paused, 1 after.
				{"contrib", "nightly-build/1.4", 5, "Products_ListByCatalog"},
				{"reader", "azsphere/23.05", 1, "Products_ListByCatalog"},
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(row{})); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			// A window that ends before the script saw nothing.
			q.Set("from", start.Add(-time.Hour).Format(time.RFC3339))
			q.Set("to", start.Format(time.RFC3339Nano))
			e.ok(t, e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/legacyUsage?"+q.Encode(), nil), 200, &out)
			if len(out.Value) != 0 {
				t.Errorf("usage before the script = %+v", out.Value)
			}
		})
		t.Run("AuditQuery", func(t *testing.T) {
			var out struct {
				Value    []audit.Record
				NextLink string
			}
			q := url.Values{"api-version": {migration.APIVersion}, "principalId": {ps.contrib.ID}, "result": {"Failure"}, "surface": {"legacy"}}
			e.ok(t, e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/auditLogs?"+q.Encode(), nil), 200, &out)
			if len(out.Value) != 1 || out.Value[0].ResultType != ferry.ResultFailure || out.Value[0].Properties["UserAgent"] != "nightly-build/1.4" {
				t.Fatalf("failed legacy calls of contrib = %+v", out.Value)
			}
			// Every surface the audit log records can be asked for; others are refused.
			q.Set("surface", "hub")
			e.ok(t, e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/auditLogs?"+q.Encode(), nil), 200, &out)
			if len(out.Value) != 0 {
				t.Errorf("hub calls of contrib in the catalog = %+v", out.Value)
			}
			q.Set("surface", "nowhere")
			if r := e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/auditLogs?"+q.Encode(), nil); r.status != 400 {
				t.Errorf("audit query with surface=nowhere = %d %s, want 400", r.status, r.raw)
			}
			// The pause itself is in the log, as an integrated call.
			q = url.Values{"api-version": {migration.APIVersion}, "operation": {"Catalogs_PauseLegacyAccess"}, "$top": {"1"}}
			e.ok(t, e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/auditLogs?"+q.Encode(), nil), 200, &out)
			if len(out.Value) != 1 || out.Value[0].Category != "AuditLogs" || out.Value[0].CorrelationID == "" {
				t.Fatalf("pause records = %+v", out.Value)
			}
			if out.NextLink == "" {
				t.Error("no nextLink with $top=1 and two pause calls (one denied)")
			}
			// Paging: the next link gives the other pause call.
			u, err := url.Parse(out.NextLink)
			must(t, err)
			e.ok(t, e.do(ps.admin, "portal", "GET", u.RequestURI(), nil), 200, &out)
			if len(out.Value) != 1 || out.Value[0].ResultType != ferry.ResultFailure {
				t.Errorf("second page = %+v", out.Value)
			}
			// An Azure Sphere Reader of the catalog has no audit rights.
			if r := e.do(ps.reader, "az", "GET", scope+"/providers/Ferry.Migration/auditLogs"+api, nil); r.status != 403 {
				t.Errorf("audit query as Azure Sphere Reader = %d %s, want 403", r.status, r.raw)
			}
			// The deployment-wide query needs a role at the root scope.
			q = url.Values{"api-version": {migration.APIVersion}, "operation": {"Catalogs_PauseLegacyAccess"}, "catalogId": {c.TenantID}}
			if r := e.do(ps.admin, "portal", "GET", "/providers/Ferry.Migration/auditLogs?"+q.Encode(), nil); r.status != 403 {
				t.Errorf("root audit query as subscription Owner = %d %s, want 403", r.status, r.raw)
			}
			e.assign(ps.admin, ferry.RoleReader, "/")
			e.ok(t, e.do(ps.admin, "portal", "GET", "/providers/ferry.migration/AUDITLOGS?"+q.Encode(), nil), 200, &out)
			if len(out.Value) != 2 {
				t.Errorf("root audit query = %d records, want 2", len(out.Value))
			}
			r := e.do(ps.admin, "portal", "GET", scope+"/providers/Ferry.Migration/auditLogs"+api+"&result=Maybe", nil)
			if r.status != 400 {
				t.Errorf("bad result filter = %d %s", r.status, r.raw)
			}
		})
		t.Run("RemoveLegacyRoles", func(t *testing.T) {
			path := scope + "/providers/Ferry.Migration/removeLegacyRoles" + api
			e.ok(t, e.do(ps.admin, "portal", "POST", path, map[string]string{"principalId": ps.admin2.ID}), 200, nil)
			r := e.do(ps.admin, "portal", "POST", path, map[string]string{"principalId": ps.admin.ID})
			if r.status != 409 {
				t.Errorf("removing the last Administrator = %d %s, want 409", r.status, r.raw)
			}
		})
		t.Run("Block", func(t *testing.T) {
			e.ok(t, access(ps.admin, "block"), 200, nil)
			for range 2 {
				r := e.do(ps.admin, "azsphere/23.05", "GET", products, nil)
				if r.status != http.StatusGone || r.legacyCode() != 2 {
					t.Errorf("legacy call when blocked = %d %s, want 410 with Code 2", r.status, r.raw)
				}
			}
			if r := access(ps.admin, "enable"); r.status != 409 {
				t.Errorf("enable after block = %d %s, want 409", r.status, r.raw)
			}
			if r := access(ps.admin, "pause"); r.status != 409 {
				t.Errorf("pause after block = %d %s, want 409", r.status, r.raw)
			}
			if r := e.do(ps.admin, "azsphere/23.05", "GET", products, nil); r.status != http.StatusGone {
				t.Errorf("legacy call after enable was refused = %d", r.status)
			}
			// Blocked: the last Administrator may go.
			e.ok(t, e.do(ps.admin, "portal", "POST", scope+"/providers/Ferry.Migration/removeLegacyRoles"+api, map[string]string{"principalId": ps.admin.ID}), 200, nil)
		})
	})
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/subscriptions/s/resourceGroups/r/providers/Ferry.Migration/integrate", true},
		{"/subscriptions/s/resourceGroups/r/providers/ferry.migration/proposeIntegration", true},
		{"/subscriptions/s/resourceGroups/r/providers/Microsoft.AzureSphere/catalogs/c/providers/Ferry.Migration/pauseLegacyAccess", true},
		{"/subscriptions/s/resourceGroups/r/providers/Microsoft.AzureSphere/catalogs/c/products/p", false},
		{"/subscriptions/s/resourceGroups/r/providers/Ferry.Migration/migrations/m", true},
		{"/subscriptions/s/resourceGroups/r/providers/ferry.migration/migrations", true},
		{"/subscriptions/s/resourceGroups/r/providers/Ferry.Migration/migrations/m/waves", true},
		{"/subscriptions/s/resourceGroups/r/providers/Ferry.Migrations", false},
	} {
		if got := migration.Match(tc.path); got != tc.want {
			t.Errorf("Match(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if _, ok := rbac.OperationByID("Catalogs_Integrate"); !ok {
		t.Error("rbac's table lacks Catalogs_Integrate")
	}
}
