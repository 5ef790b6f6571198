package arm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
	"github.com/google/go-cmp/cmp"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"NotFound", ferry.Errorf(ferry.ENOTFOUND, "gone"), 404, "ResourceNotFound"},
		{"Invalid", ferry.Errorf(ferry.EINVALID, "bad"), 400, "BadRequest"},
		{"Conflict", ferry.Errorf(ferry.ECONFLICT, "taken"), 409, "Conflict"},
		{"Precondition", ferry.Errorf(ferry.EPRECONDITION, "etag"), 412, "PreconditionFailed"},
		{"Unauthorized", ferry.Errorf(ferry.EUNAUTHORIZED, "who"), 401, "InvalidAuthenticationToken"},
		{"Forbidden", ferry.Errorf(ferry.EFORBIDDEN, "no"), 403, "AuthorizationFailed"},
		{"Internal", fmt.Errorf("boom"), 500, "InternalServerError"},
		{"ARMCode", arm.InvalidName("a b", "^x$"), 400, "InvalidResourceName"},
		{"Wrapped", fmt.Errorf("op: %w", arm.InvalidContent("properties.x", "bad x")), 400, "InvalidRequestContent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			arm.Render(w, httptest.NewRequest("GET", "/", nil), tt.err)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			var body map[string]map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if got := body["error"]["code"]; got != tt.code {
				t.Errorf("code = %v, want %s", got, tt.code)
			}
			if _, ok := body["error"]["details"]; !ok {
				t.Errorf("details missing: %s", w.Body)
			}
			if tt.status == 500 && strings.Contains(w.Body.String(), "boom") {
				t.Errorf("internal detail shown: %s", w.Body)
			}
		})
	}
}

func TestCheckAPIVersion(t *testing.T) {
	tests := []struct{ name, query, code string }{
		{"Supported", "api-version=2024-04-01", ""},
		{"Missing", "", "MissingApiVersionParameter"},
		{"Unsupported", "api-version=2020-01-01", "InvalidApiVersionParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := arm.CheckAPIVersion(httptest.NewRequest("GET", "/x?"+tt.query, nil), "2024-04-01", "2022-09-01-preview")
			d, _ := arm.Detail(err)
			if err == nil {
				d.Code = ""
			}
			if d.Code != tt.code {
				t.Errorf("code = %q, want %q", d.Code, tt.code)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	type body struct {
		Properties struct {
			Description string `json:"description"`
			Count       int    `json:"count"`
		} `json:"properties"`
	}
	tests := []struct {
		name, in string
		required bool
		target   string
		ok       bool
	}{
		{"Valid", `{"properties":{"description":"x"}}`, true, "", true},
		{"EmptyOptional", ``, false, "", true},
		{"EmptyRequired", ``, true, "", false},
		{"Malformed", `{"properties":`, true, "", false},
		{"WrongType", `{"properties":{"description":5}}`, true, "properties.description", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b body
			err := arm.Decode(httptest.NewRequest("PUT", "/", strings.NewReader(tt.in)), &b, tt.required)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				d, status := arm.Detail(err)
				if status != 400 || d.Code != "InvalidRequestContent" || d.Target != tt.target {
					t.Errorf("got %d %+v, want 400 InvalidRequestContent target %q", status, d, tt.target)
				}
			}
		})
	}
	t.Run("Enum", func(t *testing.T) {
		v, err := arm.Enum("properties.osFeedType", "retail", "Retail", "RetailEval")
		if err != nil || v != "Retail" {
			t.Errorf("Enum = %q, %v", v, err)
		}
		if _, err := arm.Enum("properties.osFeedType", "Beta", "Retail", "RetailEval"); err == nil || !strings.Contains(err.Error(), "Retail, RetailEval") {
			t.Errorf("Enum(Beta) = %v", err)
		}
	})
}

func TestScopeOf(t *testing.T) {
	const cat = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c"
	tests := []struct{ name, path, want string }{
		{"Resource", cat, cat},
		{"Collection", cat + "/products", cat},
		{"Action", cat + "/countDevices", cat},
		{"NestedAction", cat + "/products/p/deviceGroups/g/claimDevices", cat + "/products/p/deviceGroups/g"},
		{"Escaped", cat + "/products/My%20Product", cat + "/products/My Product"},
		{"SubscriptionList", "/subscriptions/s/providers/Microsoft.AzureSphere/catalogs", "/subscriptions/s"},
		{"ResourceGroupList", "/subscriptions/s/resourceGroups", "/subscriptions/s"},
		{"ResourceGroup", "/subscriptions/s/resourcegroups/rg", "/subscriptions/s/resourceGroups/rg"},
		{"NotARM", "/providers/Microsoft.AzureSphere/operations", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := arm.ScopeOf(tt.path); got != tt.want {
				t.Errorf("ScopeOf(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name, in string
		want     arm.Filter
		ok       bool
	}{
		{"Empty", "", nil, true},
		{"Eq", "properties/deviceGroupId eq 'abc'", arm.Filter{{Field: "properties/deviceGroupId", Op: "eq", Value: "abc"}}, true},
		{"And", "name eq 'a''b' and chipSku ne 'MT3620'", arm.Filter{{"name", "eq", "a'b"}, {"chipSku", "ne", "MT3620"}}, true},
		{"StartsWith", "startswith(name,'Dev')", arm.Filter{{"name", "startswith", "Dev"}}, true},
		{"Bare", "hasDeployment eq true", arm.Filter{{"hasDeployment", "eq", "true"}}, true},
		{"BadOp", "name gt 'a'", nil, false},
		{"Dangling", "name eq 'a' and", nil, false},
		{"Unterminated", "name eq 'a", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := arm.ParseFilter(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
		})
	}
	f, _ := arm.ParseFilter("properties/name eq 'DEV' and startswith(chipSku,'mt')")
	get := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	if !f.Match(get(map[string]string{"name": "dev", "chipsku": "MT3620"})) {
		t.Error("Match = false, want true")
	}
	if f.Match(get(map[string]string{"name": "prod", "chipsku": "MT3620"})) {
		t.Error("Match = true, want false")
	}
}

// list is a keyset-paged list over sorted strings, as the store pages.
func list(all []string) func(ferry.ListOptions) (ferry.Page[string], error) {
	return func(o ferry.ListOptions) (ferry.Page[string], error) {
		i, _ := slices.BinarySearch(all, o.After)
		if o.After != "" && i < len(all) && all[i] == o.After {
			i++
		}
		end := min(i+o.PageLimit(), len(all))
		p := ferry.Page[string]{Items: all[i:end]}
		if end < len(all) {
			p.Next = all[end-1]
		}
		return p, nil
	}
}

func TestPaginate(t *testing.T) {
	var all []string
	for i := range 25 {
		all = append(all, fmt.Sprintf("item%02d", i))
	}
	even := func(s string) bool { return (s[len(s)-1]-'0')%2 == 0 }
	tests := []struct {
		name  string
		query string
		keep  func(string) bool
		pages [][]int // indexes of all, per page
	}{
		{"Default", "", nil, [][]int{seq(0, 25)}},
		{"MaxPageSize", "$maxpagesize=10", nil, [][]int{seq(0, 10), seq(10, 20), seq(20, 25)}},
		{"Top", "$top=12&$maxpagesize=5", nil, [][]int{seq(0, 5), seq(5, 10), seq(10, 12)}},
		{"Skip", "$skip=20&$maxpagesize=3", nil, [][]int{seq(20, 23), seq(23, 25)}},
		{"SkipTop", "$skip=3&$top=4", nil, [][]int{seq(3, 7)}},
		{"Filtered", "$maxpagesize=4&$skip=1", even, [][]int{{2, 4, 6, 8}, {10, 12, 14, 16}, {18, 20, 22, 24}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := "http://ferry.test/x?api-version=1&" + tt.query
			var got [][]string
			for u != "" {
				r := httptest.NewRequest("GET", u, nil)
				p, err := arm.ParsePaging(r)
				if err != nil {
					t.Fatal(err)
				}
				items, next, err := arm.Paginate(r, p, list(all), tt.keep)
				if err != nil {
					t.Fatal(err)
				}
				if len(items) > 0 || next != "" {
					got = append(got, items)
				}
				u = next
				if len(got) > 30 {
					t.Fatal("no end")
				}
			}
			var want [][]string
			for _, pg := range tt.pages {
				var w []string
				for _, i := range pg {
					w = append(w, all[i])
				}
				want = append(want, w)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pages (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("BadValues", func(t *testing.T) {
		for _, q := range []string{"$top=0", "$top=x", "$skip=-1", "$maxpagesize=0", "$skipToken=!!"} {
			if _, err := arm.ParsePaging(httptest.NewRequest("GET", "/x?"+q, nil)); err == nil {
				t.Errorf("ParsePaging(%s) = nil error", q)
			}
		}
	})
}

func seq(a, b int) []int {
	var s []int
	for i := a; i < b; i++ {
		s = append(s, i)
	}
	return s
}

const catalogID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c"

func TestServer(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	if err := rbac.SeedBuiltIns(ctx, db); err != nil {
		t.Fatal(err)
	}
	reader := &ferry.Principal{ID: ferry.NewUUID(), Type: ferry.PrincipalUser, Name: "reader@example.com"}
	if err := db.CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: ferry.NewUUID(), Scope: catalogID,
		RoleDefinitionID: ferry.RoleAzureSphereReader, PrincipalID: reader.ID, PrincipalType: ferry.PrincipalUser}); err != nil {
		t.Fatal(err)
	}
	az := rbac.New(db)
	if err := az.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []*ferry.AuditEvent
	rec := audit.RecorderFunc(func(_ context.Context, e *ferry.AuditEvent) error {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
		return nil
	})
	mux := http.NewServeMux()
	srv := arm.NewServer(mux, arm.Config{Provider: ferry.ProviderSphere, APIVersions: []string{"2024-04-01"}, Authorizer: az, Audit: rec})
	srv.Handle("GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.AzureSphere/catalogs/{c}",
		arm.Op{ID: "Catalogs_Get", Action: "Microsoft.AzureSphere/catalogs/read"},
		func(w http.ResponseWriter, r *http.Request) error {
			arm.SetCatalog(r.Context(), "tenant-1")
			return json.NewEncoder(w).Encode(map[string]string{"name": r.PathValue("c")})
		})
	srv.Handle("DELETE /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.AzureSphere/catalogs/{c}",
		arm.Op{ID: "Catalogs_Delete", Action: "Microsoft.AzureSphere/catalogs/delete"},
		func(w http.ResponseWriter, r *http.Request) error { return nil })
	// A tiny middleware stands in for identity.RequireAuth: the caller
	// named in a test header.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Caller") == "reader" {
			r = r.WithContext(ferry.NewContextWithCaller(r.Context(), &ferry.Caller{Principal: reader}))
		}
		mux.ServeHTTP(w, r)
	}))
	defer ts.Close()

	tests := []struct {
		name, method, path, caller string
		status                     int
		code, message              string
	}{
		{"Allowed", "GET", catalogID + "?api-version=2024-04-01", "reader", 200, "", ""},
		{"NoCaller", "GET", catalogID + "?api-version=2024-04-01", "", 401, "InvalidAuthenticationToken", ""},
		{"MissingAPIVersion", "GET", catalogID, "reader", 400, "MissingApiVersionParameter", ""},
		{"Denied", "DELETE", catalogID + "?api-version=2024-04-01", "reader", 403, "AuthorizationFailed",
			"The client 'reader@example.com' with object id '" + reader.ID + "' does not have authorization to perform action 'Microsoft.AzureSphere/catalogs/delete' over scope '" + catalogID + "' or the scope is invalid. If access was recently granted, please refresh your credentials."},
		{"OtherCatalog", "GET", strings.TrimSuffix(catalogID, "/c") + "/d?api-version=2024-04-01", "reader", 403, "AuthorizationFailed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
			req.Header.Set("X-Test-Caller", tt.caller)
			req.Header.Set("x-ms-correlation-request-id", "corr-"+tt.name)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.code != "" {
				var e arm.ErrorResponse
				if err := json.Unmarshal(b, &e); err != nil {
					t.Fatal(err)
				}
				if e.Error.Code != tt.code || (tt.message != "" && e.Error.Message != tt.message) {
					t.Errorf("error = %+v, want %s %q", e.Error, tt.code, tt.message)
				}
			}
			mu.Lock()
			last := events[len(events)-1]
			mu.Unlock()
			wantResult := ferry.ResultSuccess
			if tt.status >= 400 {
				wantResult = ferry.ResultFailure
			}
			if last.StatusCode != tt.status || last.Result != wantResult || last.CorrelationID != "corr-"+tt.name ||
				last.Surface != ferry.SurfaceIntegrated || last.UserAgent == "" {
				t.Errorf("audit = %+v", last)
			}
			if tt.caller == "reader" && last.PrincipalID != reader.ID {
				t.Errorf("audit principal = %q", last.PrincipalID)
			}
		})
	}
	if e := events[0]; e.CatalogID != "tenant-1" || e.Operation != "Catalogs_Get" || e.ResourceID != catalogID || e.Action != "Microsoft.AzureSphere/catalogs/read" {
		t.Errorf("first audit event = %+v", e)
	}
}
