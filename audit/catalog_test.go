package audit_test

import (
	"context"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestWithCatalog(t *testing.T) {
	s := storetest.OpenSQLite(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutSubscription(ctx, &ferry.Subscription{ID: "s1", State: "Enabled"}))
	must(s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: "s1", Name: "rg"}))
	tenant := ferry.NewUUID()
	must(s.CreateCatalog(ctx, &ferry.Catalog{TenantID: tenant, SubscriptionID: "s1", ResourceGroup: "rg", Name: "cat", LegacyAccess: ferry.LegacyEnabled}))
	var got []string
	rec := audit.WithCatalog(audit.RecorderFunc(func(_ context.Context, e *ferry.AuditEvent) error {
		got = append(got, e.CatalogID)
		return nil
	}), s)
	const cat = "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.AzureSphere/catalogs/CAT"
	tests := []struct {
		name string
		e    ferry.AuditEvent
		want string
	}{
		{"Catalog", ferry.AuditEvent{ResourceID: cat}, tenant},
		{"Below", ferry.AuditEvent{ResourceID: cat + "/products/p"}, tenant},
		{"Kept", ferry.AuditEvent{ResourceID: cat, CatalogID: "other"}, "other"},
		{"UnknownCatalog", ferry.AuditEvent{ResourceID: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/nope"}, ""},
		{"OtherProvider", ferry.AuditEvent{ResourceID: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/cat"}, ""},
		{"LegacyPath", ferry.AuditEvent{ResourceID: "/v2/tenants/x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			e := tt.e
			must(rec.Record(ctx, &e))
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("catalog = %v, want %q", got, tt.want)
			}
		})
	}
}
