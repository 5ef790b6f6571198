package ferry_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
)

// The domain must depend on the standard library only (STYLE.md, habit 1).
func TestDomainImportsOnlyStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/ferry-iot/ferry" {
			t.Errorf("the domain package imports %s; it may import only the standard library", p)
		}
	}
}

// Every package says what it is for (STYLE.md, habit 9).
func TestEveryPackageHasADocComment(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Name}}\t{{.Doc}}", "github.com/ferry-iot/ferry/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) < 3 || strings.TrimSpace(f[2]) == "" {
			t.Errorf("package %s has no doc comment", f[0])
		}
	}
}

func TestScopeContains(t *testing.T) {
	cat := "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c1"
	tests := []struct {
		scope, id string
		want      bool
	}{
		{"/", cat, true},
		{"", cat, true},
		{"/subscriptions/s1", cat, true},
		{"/SUBSCRIPTIONS/S1/resourcegroups/RG", cat, true},
		{cat, cat, true},
		{cat, cat + "/products/p1", true},
		{cat + "/", cat + "/products/p1", true},
		{"/subscriptions/s", cat, false}, // whole segments only
		{cat + "2", cat, false},
		{cat, "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c10", false},
		{cat + "/products/p1", cat, false},
	}
	for _, tt := range tests {
		if got := ferry.ScopeContains(tt.scope, tt.id); got != tt.want {
			t.Errorf("ScopeContains(%q, %q) = %v, want %v", tt.scope, tt.id, got, tt.want)
		}
	}
}

func TestParseResourceID(t *testing.T) {
	id := "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.AzureSphere/catalogs/c1/products/My%20Product/deviceGroups/.default"
	r, err := ferry.ParseResourceID(id)
	if err != nil {
		t.Fatal(err)
	}
	if r.SubscriptionID != "s1" || r.ResourceGroup != "rg1" || r.Provider != ferry.ProviderSphere {
		t.Errorf("parsed %+v", r)
	}
	if got, want := r.Type(), ferry.TypeDeviceGroup; got != want {
		t.Errorf("Type() = %q, want %q", got, want)
	}
	if r.Names[1] != "My Product" || r.Name() != ".default" {
		t.Errorf("names %q", r.Names)
	}
	if got := r.Child("devices", "D1").String(); !strings.HasSuffix(got, "/deviceGroups/.default/devices/D1") {
		t.Errorf("Child = %q", got)
	}
	for _, bad := range []string{"", "subscriptions/s1", "/tenants/x", "/subscriptions", "/subscriptions/s1/providers", "/subscriptions/s1/providers/P/catalogs", "/subscriptions/s1/resourceGroups"} {
		t.Run(fmt.Sprintf("Invalid%q", bad), func(t *testing.T) {
			if _, err := ferry.ParseResourceID(bad); ferry.ErrorCode(err) != ferry.EINVALID {
				t.Errorf("ParseResourceID(%q) error = %v, want EINVALID", bad, err)
			}
		})
	}
	root, err := ferry.ParseResourceID("/")
	if err != nil || root.String() != "/" {
		t.Errorf("root scope: %v %q", err, root.String())
	}
}

func TestErrors(t *testing.T) {
	cause := errors.New("disk on fire")
	err := fmt.Errorf("claim device: %w", ferry.WrapError(ferry.ECONFLICT, "The device is already claimed.", cause))
	if got := ferry.ErrorCode(err); got != ferry.ECONFLICT {
		t.Errorf("ErrorCode = %q", got)
	}
	if got := ferry.ErrorMessage(err); got != "The device is already claimed." {
		t.Errorf("ErrorMessage = %q", got)
	}
	if !errors.Is(err, cause) {
		t.Error("the cause is lost")
	}
	plain := errors.New("secret detail")
	if ferry.ErrorCode(plain) != ferry.EINTERNAL || strings.Contains(ferry.ErrorMessage(plain), "secret") {
		t.Errorf("a plain error must be internal and hidden: %q", ferry.ErrorMessage(plain))
	}
	if ferry.ErrorCode(nil) != "" {
		t.Error("nil has a code")
	}
}

func TestETagMatches(t *testing.T) {
	tests := []struct {
		ifMatch, current string
		want             bool
	}{
		{"", "abc", true},
		{"*", "abc", true},
		{`"abc"`, "abc", true},
		{"abc", `"abc"`, true},
		{"abd", "abc", false},
	}
	for _, tt := range tests {
		if got := ferry.ETagMatches(tt.ifMatch, tt.current); got != tt.want {
			t.Errorf("ETagMatches(%q, %q) = %v", tt.ifMatch, tt.current, got)
		}
	}
}

func TestNewUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		u := ferry.NewUUID()
		if !ferry.IsUUID(u) || u[14] != '4' || seen[u] {
			t.Fatalf("bad or repeated UUID %q", u)
		}
		seen[u] = true
	}
	if ferry.IsUUID("not-a-uuid") {
		t.Error("IsUUID accepted garbage")
	}
}

func TestImageTypeNames(t *testing.T) {
	typ, err := ferry.ParseImageType("applications")
	if err != nil || typ != 10 || typ.String() != "Applications" {
		t.Errorf("ParseImageType = %v, %v", typ, err)
	}
	if _, err := ferry.ParseImageType("Bogus"); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Errorf("unknown type: %v", err)
	}
}
