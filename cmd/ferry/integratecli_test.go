package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry/store/storetest"
)

// TestIntegrateCLI takes legacy tenants made with `ferry legacy` through
// `ferry integrate` (reviewed by prompts, with --yes and with
// --decisions), then through the legacy shutdown: pause, enable, block,
// the usage and sidestep reports and the audit log; on both databases.
func TestIntegrateCLI(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var extra []string
			if backend == "postgres" {
				extra = []string{"--db", storetest.NewPostgresSchema(t)}
			}
			testIntegrateCLI(t, loginCLI(t, extra...))
		})
	}
}

// runIn runs the CLI with stdin.
func (ce *cliEnv) runIn(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb, ce.getenv)
	return code, out.String(), errb.String()
}

func testIntegrateCLI(t *testing.T, ce *cliEnv) {
	ctx := context.Background()
	var me struct{ ObjectID string }
	if _, err := ce.client(t).Do(ctx, http.MethodGet, "/api/me", nil, &me); err != nil {
		t.Fatal(err)
	}
	contrib, _, err := ce.m.Identity.CreateServicePrincipal(ctx, "legacy contributor")
	if err != nil {
		t.Fatal(err)
	}
	reader, _, err := ce.m.Identity.CreateServicePrincipal(ctx, "legacy reader")
	if err != nil {
		t.Fatal(err)
	}
	ce.ok(t, nil, "group", "create", "-n", "fleet")

	// A legacy tenant with an Administrator (the creator), a Contributor
	// and a Reader, and a product.
	var tn map[string]any
	ce.ok(t, &tn, "legacy", "tenant", "create", "--name", "Contoso", "--device", deviceID('c'))
	tenantID := str(tn, "Id")
	ce.ok(t, nil, "legacy", "role", "add", "-t", "Contoso", "--user", contrib.ID, "--role", "Contributor")
	ce.ok(t, nil, "legacy", "role", "add", "-t", "Contoso", "--user", reader.ID, "--role", "Reader")
	ce.ok(t, nil, "legacy", "product", "create", "-t", "Contoso", "-n", "Dishwasher")
	integrateArgs := []string{"integrate", "-t", "Contoso", "-g", "fleet", "--catalog-name", "Contoso"}

	var p proposal
	ce.ok(t, &p, append(integrateArgs, "--dry-run")...)
	if len(p.Assignments) != 3 || p.TenantID != tenantID || p.Resources["Microsoft.AzureSphere/catalogs/products"] != 1 {
		t.Fatalf("proposal: %+v", p)
	}
	roles := map[string]string{}
	for _, a := range p.Assignments {
		roles[a.PrincipalID] = a.RoleName
		if (a.PrincipalID == contrib.ID) != (a.Warning != "") {
			t.Errorf("warning of %s: %q", a.PrincipalID, a.Warning)
		}
	}
	if roles[me.ObjectID] != "Owner" || roles[contrib.ID] != "Azure Sphere Contributor" || roles[reader.ID] != "Azure Sphere Reader" {
		t.Errorf("proposed roles: %v", roles)
	}
	t.Run("DryRunTable", func(t *testing.T) {
		out := ce.ok(t, nil, append(integrateArgs, "--dry-run", "-o", "table")...)
		for _, want := range []string{p.CatalogID, contrib.ID, "Azure Sphere Contributor", "can delete", "Contributor"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry-run table lacks %q:\n%s", want, out)
			}
		}
		if code, _, _ := ce.run(t, "sphere", "catalog", "show", "-g", "fleet", "-n", "Contoso"); code != 1 {
			t.Errorf("a dry run made the catalog: exit %d", code)
		}
	})
	t.Run("ErrNotTerminal", func(t *testing.T) {
		code, _, errs := ce.run(t, integrateArgs...)
		if code != 2 || !strings.Contains(errs, "--yes") || !strings.Contains(errs, "--decisions") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		script := strings.Repeat("a\n", 3) + "n\n"
		code, _, errs := ce.runIn(t, script, append(integrateArgs, "--interactive")...)
		if code != 1 || !strings.Contains(errs, "nothing changed") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})

	// The review: accept the Administrator's Owner, change the
	// Contributor to Reader (after a role that does not exist), reject the
	// Reader, in the order of the proposal; a wrong answer is asked again.
	var script strings.Builder
	script.WriteString("maybe\n")
	for _, a := range p.Assignments {
		switch a.PrincipalID {
		case me.ObjectID:
			script.WriteString("a\n")
		case contrib.ID:
			script.WriteString("c\nChief Wizard\nReader\n")
		case reader.ID:
			script.WriteString("r\n")
		}
	}
	script.WriteString("y\n")
	code, out, errs := ce.runIn(t, script.String(), append(integrateArgs, "--interactive", "-o", "table")...)
	if code != 0 {
		t.Fatalf("integrate: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "Answer a, c or r") || !strings.Contains(errs, "RoleDefinitionDoesNotExist") || !strings.Contains(errs, "Apply?") {
		t.Errorf("prompts:\n%s", errs)
	}
	if !strings.Contains(out, "Integrated tenant "+tenantID) || !strings.Contains(out, "Rejected") {
		t.Errorf("integrate output:\n%s", out)
	}
	var as []map[string]any
	ce.ok(t, &as, "role", "assignment", "list", "--scope", p.CatalogID)
	got := map[string]string{}
	for _, a := range as {
		if strings.EqualFold(str(a, "properties.scope"), p.CatalogID) {
			got[str(a, "properties.principalId")] = str(a, "roleName")
		}
	}
	if got[me.ObjectID] != "Owner" || got[contrib.ID] != "Reader" || got[reader.ID] != "" || len(got) != 2 {
		t.Errorf("assignments at the catalog: %v", got)
	}
	var cat map[string]any
	ce.ok(t, &cat, "sphere", "catalog", "show", "-g", "fleet", "-n", "Contoso")
	if !strings.EqualFold(str(cat, "id"), p.CatalogID) {
		t.Errorf("catalog: %v", cat)
	}

	t.Run("Sidestep", func(t *testing.T) {
		// The Contributor now holds only Reader, and the Reader was
		// rejected: their legacy roles grant more than their assignments.
		var rows []map[string]any
		ce.ok(t, &rows, "legacy", "sidestep", "-g", "fleet", "-c", "Contoso")
		seen := map[string]bool{}
		for _, r := range rows {
			seen[str(r, "principalId")] = true
		}
		if !seen[contrib.ID] || !seen[reader.ID] || seen[me.ObjectID] {
			t.Errorf("sidestep: %v", rows)
		}
		table := ce.ok(t, nil, "legacy", "sidestep", "-g", "fleet", "-c", "Contoso", "-o", "table")
		if !strings.HasPrefix(table, "PrincipalId") || !strings.Contains(table, contrib.ID) {
			t.Errorf("sidestep table:\n%s", table)
		}
	})
	t.Run("Yes", func(t *testing.T) {
		ce.ok(t, nil, "legacy", "tenant", "create", "--name", "Fabrikam", "--device", deviceID('d'))
		var res map[string]any
		ce.ok(t, &res, "integrate", "-t", "Fabrikam", "-g", "fleet", "--catalog-name", "Fabrikam", "--yes")
		if str(res, "legacyAccess") != "Enabled" || !strings.Contains(str(res, "roleAssignments"), me.ObjectID) {
			t.Fatalf("integrate --yes: %v", res)
		}
		table := ce.ok(t, nil, "role", "assignment", "list", "--scope", str(res, "id"), "--assignee", me.ObjectID, "-o", "table")
		if !strings.Contains(table, "Owner") {
			t.Errorf("assignments:\n%s", table)
		}
	})
	t.Run("Decisions", func(t *testing.T) {
		var nt map[string]any
		ce.ok(t, &nt, "legacy", "tenant", "create", "--name", "Northwind", "--device", deviceID('e'))
		ce.ok(t, nil, "legacy", "role", "add", "-t", "Northwind", "--user", reader.ID, "--role", "Reader")
		file := filepath.Join(t.TempDir(), "decisions.json")
		b, _ := json.Marshal([]map[string]string{{"principalId": reader.ID, "decision": "Change", "roleDefinitionId": "Azure Sphere Contributor"}})
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"integrate", "-t", "Northwind", "-g", "fleet", "--catalog-name", "Northwind"}
		if code, _, errs := ce.run(t, append(args, "--decisions", file)...); code != 2 || !strings.Contains(errs, me.ObjectID) {
			t.Errorf("decisions without the administrator's: exit %d: %s", code, errs)
		}
		var res map[string]any
		ce.ok(t, &res, append(args, "--decisions", file, "--yes")...)
		var as []map[string]any
		ce.ok(t, &as, "role", "assignment", "list", "--scope", str(res, "id"), "--assignee", reader.ID)
		if len(as) != 1 || str(as[0], "roleName") != "Azure Sphere Contributor" {
			t.Errorf("changed by --decisions: %v", as)
		}
		if code, _, errs := ce.runIn(t, "[{]", "integrate", "-t", tenantID, "-g", "fleet", "--catalog-name", "X", "--decisions", "-"); code != 2 {
			t.Errorf("bad decisions JSON: exit %d: %s", code, errs)
		}
	})

	// The legacy shutdown of Contoso.
	cat1 := []string{"-g", "fleet", "-c", "Contoso"}
	legacyCall := []string{"legacy", "product", "list", "-t", tenantID}
	ce.ok(t, nil, legacyCall...)
	var acc map[string]any
	ce.ok(t, &acc, append([]string{"legacy", "access", "pause"}, cat1...)...)
	if acc["legacyAccess"] != "Paused" {
		t.Errorf("pause: %v", acc)
	}
	if code, _, errs := ce.run(t, legacyCall...); code != 1 || !strings.Contains(errs, "legacy code 1") {
		t.Errorf("legacy call while paused: exit %d: %s", code, errs)
	}
	ce.ok(t, nil, append([]string{"legacy", "access", "enable"}, cat1...)...)
	ce.ok(t, nil, legacyCall...)

	var removed map[string]any
	ce.ok(t, &removed, append([]string{"legacy", "role", "remove-all", "--assignee", contrib.ID}, cat1...)...)
	if !strings.Contains(str(removed, "removedLegacyRoles"), "Contributor") {
		t.Errorf("remove-all: %v", removed)
	}
	if users := ce.ok(t, nil, "legacy", "role", "list", "-t", tenantID, "-o", "table"); strings.Contains(users, contrib.ID) {
		t.Errorf("the contributor keeps legacy roles:\n%s", users)
	}
	if code, _, errs := ce.run(t, append([]string{"legacy", "access", "block"}, cat1...)...); code != 2 || !strings.Contains(errs, "--yes") {
		t.Errorf("block without --yes: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.runIn(t, "n\n", append([]string{"legacy", "access", "block", "--interactive"}, cat1...)...); code != 1 || !strings.Contains(errs, "unchanged") {
		t.Errorf("block declined: exit %d: %s", code, errs)
	}
	ce.ok(t, nil, legacyCall...)
	ce.ok(t, nil, append([]string{"legacy", "access", "block", "--yes"}, cat1...)...)
	if code, _, errs := ce.run(t, legacyCall...); code != 1 || !strings.Contains(errs, "HTTP 410") {
		t.Errorf("legacy call after block: exit %d: %s", code, errs)
	}

	t.Run("Usage", func(t *testing.T) {
		var rows []map[string]any
		ce.ok(t, &rows, append([]string{"legacy", "usage", "--from", "1h"}, cat1...)...)
		found := false
		for _, r := range rows {
			if r["principalId"] == me.ObjectID && strings.Contains(str(r, "operations"), "roduct") {
				found = true
				if n, _ := r["count"].(float64); n < 3 {
					t.Errorf("count %v, want at least 3 product lists", n)
				}
			}
		}
		if !found {
			t.Errorf("usage lacks the product lists:\n%v", rows)
		}
		table := ce.ok(t, nil, append([]string{"legacy", "usage", "-o", "table"}, cat1...)...)
		if !strings.HasPrefix(table, "PrincipalId") || !strings.Contains(table, me.ObjectID) {
			t.Errorf("usage table:\n%s", table)
		}
	})
	t.Run("Audit", func(t *testing.T) {
		var recs []map[string]any
		ce.ok(t, &recs, append([]string{"audit", "list", "--operation", "Catalogs_PauseLegacyAccess"}, cat1...)...)
		if len(recs) != 1 || str(recs[0], "resultType") != "Success" {
			t.Errorf("catalog audit of the pause: %v", recs)
		}
		ce.ok(t, &recs, "audit", "list", "--surface", "legacy", "--result", "failure", "--principal", me.ObjectID)
		if len(recs) < 2 {
			t.Errorf("deployment-wide audit of the refused legacy calls: %v", recs)
		}
		for _, r := range recs {
			if str(r, "resultType") != "Failure" || !strings.EqualFold(str(r, "properties.Surface"), "Legacy") {
				t.Errorf("filtered record: %v", r)
			}
		}
		ce.ok(t, &recs, "audit", "list", "--top", "2")
		if len(recs) != 2 {
			t.Errorf("--top 2: %d records", len(recs))
		}
		table := ce.ok(t, nil, "audit", "list", "--operation", "Catalogs_BlockLegacyAccess", "-o", "table")
		if !strings.HasPrefix(table, "Time") || !strings.Contains(table, "Catalogs_BlockLegacyAccess") {
			t.Errorf("audit table:\n%s", table)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, c := range []struct {
			name string
			args []string
			code int
			want string
		}{
			{"ErrIntegrateNoTenant", []string{"integrate", "-g", "fleet", "--catalog-name", "X", "--yes"}, 2, "--tenant"},
			{"ErrIntegrateNoCatalogName", []string{"integrate", "-t", "Contoso", "--yes"}, 2, "--catalog-name"},
			{"ErrIntegrateNoGroup", []string{"integrate", "-t", "Contoso", "--catalog-name", "X", "--yes"}, 2, "--resource-group"},
			{"ErrUnknownTenant", []string{"integrate", "-t", "Nowhere", "-g", "fleet", "--catalog-name", "X", "--yes"}, 1, "Nowhere"},
			{"ErrIntegratedAgain", []string{"integrate", "-t", tenantID, "-g", "fleet", "--catalog-name", "Again", "--dry-run"}, 1, "HTTP"},
			{"ErrAccessNoCatalog", []string{"legacy", "access", "pause", "-g", "fleet"}, 2, "--catalog"},
			{"ErrUnknownCatalog", []string{"legacy", "access", "pause", "-g", "fleet", "-c", "Nowhere"}, 1, "HTTP 404"},
			{"ErrRemoveAllNoAssignee", append([]string{"legacy", "role", "remove-all"}, cat1...), 2, "--assignee"},
			{"ErrBadResult", []string{"audit", "list", "--result", "Maybe"}, 2, "--result"},
			{"ErrBadFrom", []string{"audit", "list", "--from", "yesterday"}, 2, "--from"},
			{"ErrBadOutput", []string{"integrate", "-t", "Contoso", "-g", "fleet", "--catalog-name", "X", "--dry-run", "-o", "yaml"}, 2, "yaml"},
			{"ErrStrayArgument", []string{"audit", "list", "everything"}, 2, "unexpected argument"},
		} {
			t.Run(c.name, func(t *testing.T) {
				code, _, errs := ce.run(t, c.args...)
				if code != c.code || !strings.Contains(errs, c.want) {
					t.Errorf("ferry %s: exit %d, want %d with %q: %s", strings.Join(c.args, " "), code, c.code, c.want, errs)
				}
			})
		}
	})
}
