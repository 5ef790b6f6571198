package audit_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestOperationName(t *testing.T) {
	tests := []struct {
		id     string
		status int
		want   string
	}{
		{"Products_CreateOrUpdate", 201, "ProductCreate"},
		{"Products_CreateOrUpdate", 200, "ProductUpdate"},
		{"Catalogs_Update", 200, "CatalogUpdate"},
		{"Products_Delete", 202, "ProductDelete"},
		{"DeviceGroups_ClaimDevices", 202, "DeviceClaim"},
		{"Images_ListByCatalog", 200, "ImageList"},
		{"Catalogs_UploadImage", 202, "CatalogUploadImage"},
		{"RoleAssignments_Create", 201, "RoleAssignments_Create"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := audit.OperationName(tt.id, tt.status); got != tt.want {
				t.Errorf("OperationName(%s, %d) = %s, want %s", tt.id, tt.status, got, tt.want)
			}
		})
	}
}

func TestRecorderAndFind(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		now := t0
		rec := &audit.StoreRecorder{Store: s, Now: func() time.Time { return now }}
		const cat = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/CAT001"
		events := []*ferry.AuditEvent{
			{Surface: ferry.SurfaceIntegrated, Operation: "Products_CreateOrUpdate", ResourceID: cat + "/products/p", PrincipalID: "u1", PrincipalName: "user@contoso.com", PrincipalType: ferry.PrincipalUser, StatusCode: 201, CorrelationID: "c1", Duration: 12 * time.Millisecond},
			{Surface: ferry.SurfaceIntegrated, Operation: "Products_Delete", ResourceID: cat + "/products/p", PrincipalID: "u2", StatusCode: 403},
			{Surface: ferry.SurfaceLegacy, Operation: "Products_Delete", ResourceID: "/v2/tenants/t/products/x", PrincipalID: "u1", StatusCode: 200},
		}
		for i, e := range events {
			now = t0.Add(time.Duration(i) * time.Minute)
			if err := rec.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if events[1].Result != ferry.ResultFailure || events[0].Result != ferry.ResultSuccess || events[0].ID == "" {
			t.Errorf("filled events = %+v / %+v", events[0], events[1])
		}
		tests := []struct {
			name string
			q    audit.Query
			want []string // correlation or principal of the hits, newest first
		}{
			{"All", audit.Query{}, []string{"u1", "u2", "u1"}},
			{"Principal", audit.Query{PrincipalID: "u2"}, []string{"u2"}},
			{"Operation", audit.Query{Operation: "Products_Delete"}, []string{"u1", "u2"}},
			{"Failures", audit.Query{Result: ferry.ResultFailure}, []string{"u2"}},
			{"TimeRange", audit.Query{Since: t0.Add(30 * time.Second), Until: t0.Add(90 * time.Second)}, []string{"u2"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p, err := audit.Find(ctx, s, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range p.Items {
					got = append(got, e.PrincipalID)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("got %v, want %v", got, tt.want)
					}
				}
			})
		}
		if _, err := audit.Find(ctx, s, audit.Query{Result: "Maybe"}); !ferry.IsCode(err, ferry.EINVALID) {
			t.Errorf("bad result: %v", err)
		}
		if _, err := audit.Find(ctx, s, audit.Query{Since: t0, Until: t0}); !ferry.IsCode(err, ferry.EINVALID) {
			t.Errorf("empty range: %v", err)
		}
		recs, _, err := audit.FindASC(ctx, s, audit.Query{PrincipalID: "u1", Surface: ferry.SurfaceIntegrated})
		if err != nil || len(recs) != 1 {
			t.Fatalf("FindASC = %v, %v", recs, err)
		}
		r := recs[0]
		if r.OperationName != "ProductCreate" || r.ResultType != "Success" || r.Category != "AuditLogs" || r.DurationMs != 12 ||
			r.ResourceID != "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.AZURESPHERE/CATALOGS/CAT001" ||
			r.Identity != `{"Other":[{"Description":"ArmUserPrincipalName","Identity":"user@contoso.com"}]}` || r.CorrelationID != "c1" {
			b, _ := json.Marshal(r)
			t.Errorf("record = %s", b)
		}
	})
}
