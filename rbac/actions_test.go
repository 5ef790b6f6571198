package rbac_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/rbac"
)

// readExcerpt returns the reference excerpt (sphere-surfaces.md §1.3, §4.2).
func readExcerpt(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/sphere-surfaces-excerpt.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOperationsCoverReference checks that every operationId of the
// reference's operations table (§1.3) is in the table, with a path that
// ends the way the reference's does.
func TestOperationsCoverReference(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| ([A-Za-z]+_[A-Za-z]+)(?: / ([A-Za-z]+))? \\| `([A-Z]+)(?: / `?([A-Z]+))?[^|]*?`? ?([^|`]*)`")
	n := 0
	for _, m := range row.FindAllStringSubmatch(readExcerpt(t), -1) {
		ids := []string{m[1]}
		if m[2] != "" { // "Products_Get / CreateOrUpdate"
			ids = append(ids, m[1][:strings.IndexByte(m[1], '_')+1]+m[2])
		}
		for _, id := range ids {
			n++
			o, ok := rbac.OperationByID(id)
			if !ok {
				t.Errorf("operation %s of the reference is missing", id)
				continue
			}
			if o.Action == "" || o.Method == "" || !strings.HasPrefix(o.Path, "/") {
				t.Errorf("operation %s is incomplete: %+v", id, o)
			}
		}
	}
	t.Logf("%d operations in the reference", n)
	if n < 40 {
		t.Fatalf("parsed only %d operations from the reference excerpt", n)
	}
}

// TestConfirmedActions checks that every action string the reference
// confirms verbatim (§4.2) is used by some operation, spelled exactly.
func TestConfirmedActions(t *testing.T) {
	ex := readExcerpt(t)
	i := strings.Index(ex, "Confirmed verbatim")
	if i < 0 {
		t.Fatal("no §4.2 in the excerpt")
	}
	block := ex[i:]
	block = block[strings.Index(block, "```")+3:]
	block = block[:strings.Index(block, "```")]
	used := map[string]bool{}
	for _, o := range rbac.Operations() {
		used[o.Action] = true
	}
	n := 0
	for line := range strings.Lines(block) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasSuffix(line, "register/action") {
			continue // provider registration is not an API operation of Ferry
		}
		for _, a := range expand(line) {
			n++
			if !used[a] {
				t.Errorf("confirmed action %s is not in the operation table", a)
			}
		}
	}
	if n < 15 {
		t.Fatalf("read only %d actions", n)
	}
}

// expand turns "Microsoft.AzureSphere/catalogs/read | write | delete" into
// three actions.
func expand(line string) []string {
	parts := strings.Split(line, "|")
	first := strings.TrimSpace(parts[0])
	base := first[:strings.LastIndexByte(first, '/')+1]
	out := []string{first}
	for _, p := range parts[1:] {
		out = append(out, base+strings.TrimSpace(p))
	}
	return out
}

func TestOperationTable(t *testing.T) {
	ids := map[string]bool{}
	for _, o := range rbac.Operations() {
		if ids[strings.ToLower(o.ID)] {
			t.Errorf("duplicate operation %s", o.ID)
		}
		ids[strings.ToLower(o.ID)] = true
		if !strings.Contains(o.Action, "/") || strings.ContainsAny(o.Action, " *") {
			t.Errorf("%s: action %q is not an ARM action", o.ID, o.Action)
		}
		verb := strings.ToLower(o.Action[strings.LastIndexByte(o.Action, '/')+1:])
		switch verb {
		case "read", "write", "delete", "action":
		default:
			t.Errorf("%s: action %q does not end in read, write, delete or action", o.ID, o.Action)
		}
		if o.Method == "GET" && verb != "read" {
			t.Errorf("%s: GET needs a read action, has %q", o.ID, o.Action)
		}
		if o.Method == "DELETE" && verb != "delete" && !o.DataAction {
			t.Errorf("%s: DELETE needs a delete action, has %q", o.ID, o.Action)
		}
		for _, l := range o.Legacy {
			if !strings.Contains(l, " /v2/tenants") {
				t.Errorf("%s: legacy request %q is not a PAPI path", o.ID, l)
			}
		}
	}
	o, ok := rbac.OperationByID("catalogs_get")
	if !ok || o.Action != "Microsoft.AzureSphere/catalogs/read" || o.Legacy[0] != "GET /v2/tenants/{tenantId}" {
		t.Fatalf("OperationByID(catalogs_get) = %+v, %v", o, ok)
	}
	if _, ok := rbac.OperationByID("Nope_Nothing"); ok {
		t.Fatal("OperationByID found an unknown operation")
	}
	if rbac.Action("Migrations_Start") != "Ferry.Migration/migrations/start/action" || rbac.Action("x") != "" {
		t.Fatal("Action is wrong")
	}
	o.Legacy[0] = "changed"
	if again, _ := rbac.OperationByID("Catalogs_Get"); again.Legacy[0] == "changed" {
		t.Fatal("OperationByID shares the table")
	}
}

// TestLegacyRoles checks the legacy roles (sphere-surfaces.md §2.6) over
// every legacy request of the operation table.
func TestLegacyRoles(t *testing.T) {
	admin := []ferry.LegacyRole{ferry.LegacyAdministrator}
	contrib := []ferry.LegacyRole{ferry.LegacyContributor}
	reader := []ferry.LegacyRole{ferry.LegacyReader}
	for _, o := range rbac.Operations() {
		if len(o.Legacy) == 0 {
			continue
		}
		t.Run(o.ID, func(t *testing.T) {
			verb := strings.ToLower(o.Action[strings.LastIndexByte(o.Action, '/')+1:])
			accessMgmt := strings.HasPrefix(o.Action, "Microsoft.Authorization/") && verb != "read"
			adminOnly := accessMgmt || strings.HasPrefix(o.Action, "Ferry.Migration/catalogs/")
			if !rbac.LegacyAllowed(admin, o.Action) {
				t.Errorf("Administrator may not %s", o.Action)
			}
			if got, want := rbac.LegacyAllowed(contrib, o.Action), verb != "delete" && !adminOnly; got != want {
				t.Errorf("Contributor on %s = %v, want %v", o.Action, got, want)
			}
			readLike := verb == "read" || strings.Contains(o.Action, "/list") ||
				strings.Contains(o.Action, "/count") || strings.HasSuffix(o.Action, "retrieveCertChain/action")
			if got := rbac.LegacyAllowed(reader, o.Action); got != readLike {
				t.Errorf("Reader on %s = %v, want %v", o.Action, got, readLike)
			}
		})
	}
	if rbac.LegacyAllowed(nil, "Microsoft.AzureSphere/catalogs/read") || rbac.LegacyAllowed([]ferry.LegacyRole{"Owner"}, "Microsoft.AzureSphere/catalogs/read") {
		t.Fatal("no role or an unknown role allows something")
	}
	if !rbac.LegacyAllowed([]ferry.LegacyRole{ferry.LegacyReader, ferry.LegacyContributor}, "Microsoft.AzureSphere/catalogs/products/write") {
		t.Fatal("several roles do not combine")
	}
}

func TestLegacyTenantID(t *testing.T) {
	for in, want := range map[string]string{
		"6f0c8a3e-1111-2222-3333-444444444444":      "6f0c8a3e-1111-2222-3333-444444444444",
		"/v2/tenants/t1":                            "t1",
		"/v2/tenants/t1/devices/d1":                 "t1",
		"/tenants/t1/":                              "t1",
		"/v2/Tenants/t1/users/u/role/Reader/assign": "t1",
		"":                 "",
		"/subscriptions/a": "",
		"/v2/tenants/":     "",
		"/subscriptions/a/resourceGroups/rg/providers/x/tenants/t9": "t9",
	} {
		if got := rbac.LegacyTenantID(in); got != want {
			t.Errorf("LegacyTenantID(%q) = %q, want %q", in, got, want)
		}
	}
}
