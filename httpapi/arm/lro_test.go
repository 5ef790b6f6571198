package arm_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestOperations(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rbac.SeedBuiltIns(ctx, db))
	owner := &ferry.Principal{ID: ferry.NewUUID(), Type: ferry.PrincipalUser, Name: "owner@example.com"}
	stranger := &ferry.Principal{ID: ferry.NewUUID(), Type: ferry.PrincipalUser, Name: "stranger@example.com"}
	must(db.CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: ferry.NewUUID(), Scope: catalogID, RoleDefinitionID: ferry.RoleAzureSphereReader, PrincipalID: owner.ID}))
	az := rbac.New(db)
	must(az.Reload(ctx))
	mux := http.NewServeMux()
	srv := arm.NewServer(mux, arm.Config{Provider: ferry.ProviderSphere, APIVersions: []string{"2024-04-01"}, Authorizer: az, Operations: db})
	srv.HandleOperations()
	now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	ok := &ferry.Operation{Name: "x/action", CatalogID: "t", ResourceID: catalogID}
	must(arm.RunOperation(ctx, db, now, ok, func(context.Context) error { return nil }))
	failed := &ferry.Operation{Name: "x/action", CatalogID: "t", ResourceID: catalogID}
	must(arm.RunOperation(ctx, db, now, failed, func(context.Context) error {
		return ferry.Errorf(ferry.ECONFLICT, "The device is claimed elsewhere.")
	}))
	running := &ferry.Operation{ID: ferry.NewUUID(), CatalogID: "t", ResourceID: catalogID, State: ferry.OpInProgress}
	must(db.CreateOperation(ctx, running))

	get := func(p *ferry.Principal, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://ferry.test"+path+"?api-version=2024-04-01", nil)
		r = r.WithContext(ferry.NewContextWithCaller(r.Context(), &ferry.Caller{Principal: p}))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	base := "/providers/Microsoft.AzureSphere/locations/global/"
	tests := []struct {
		name   string
		who    *ferry.Principal
		path   string
		status int
		want   string // operation status or error code
	}{
		{"Succeeded", owner, base + "operationStatuses/" + ok.ID, 200, "Succeeded"},
		{"Failed", owner, base + "operationStatuses/" + failed.ID, 200, "Failed"},
		{"InProgress", owner, "/subscriptions/s" + base + "operationStatuses/" + running.ID, 200, "InProgress"},
		{"ResultSucceeded", owner, base + "operationResults/" + ok.ID, 204, ""},
		{"ResultFailed", owner, base + "operationResults/" + failed.ID, 409, "Conflict"},
		{"ResultRunning", owner, base + "operationResults/" + running.ID, 202, ""},
		{"Unknown", owner, base + "operationStatuses/" + ferry.NewUUID(), 404, "OperationNotFound"},
		{"NotAUUID", owner, base + "operationStatuses/abc", 404, "OperationNotFound"},
		{"Stranger", stranger, base + "operationStatuses/" + ok.ID, 403, "AuthorizationFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(tt.who, tt.path)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			var body struct {
				Status string
				Error  *arm.ErrorDetail
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			got := body.Status
			if body.Error != nil && got == "" {
				got = body.Error.Code
			}
			if got != tt.want {
				t.Errorf("got %q, want %q: %s", got, tt.want, w.Body)
			}
			if tt.want == "Failed" && (body.Error == nil || body.Error.Code != "Conflict" || body.Error.Message != "The device is claimed elsewhere.") {
				t.Errorf("failed operation error = %+v", body.Error)
			}
			if tt.status == 202 && (w.Header().Get("Location") == "" || w.Header().Get("Retry-After") == "") {
				t.Errorf("202 headers = %v", w.Header())
			}
		})
	}
}
