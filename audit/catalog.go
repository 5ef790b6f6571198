package audit

import (
	"context"
	"strings"

	"github.com/ferry-iot/ferry"
)

// WithCatalog returns a Recorder that fills in the CatalogID of events
// that name a Microsoft.AzureSphere catalog (or anything in it) by ARM
// resource ID but not by tenant ID, before passing them to next. Calls
// refused before their handler ran (denied by RBAC, bad api-version) carry
// only the resource ID; with the catalog filled in they show up in the
// catalog's audit query and legacy reports like the calls that got
// through. An unknown catalog leaves the event as it is.
func WithCatalog(next Recorder, catalogs ferry.CatalogStore) Recorder {
	return RecorderFunc(func(ctx context.Context, e *ferry.AuditEvent) error {
		if e.CatalogID == "" {
			if r, err := ferry.ParseResourceID(e.ResourceID); err == nil && len(r.Types) > 0 &&
				strings.EqualFold(r.Provider, ferry.ProviderSphere) && strings.EqualFold(r.Types[0], "catalogs") {
				if c, err := catalogs.GetCatalogByName(context.WithoutCancel(ctx), r.SubscriptionID, r.ResourceGroup, r.Names[0]); err == nil {
					e.CatalogID = c.TenantID
				}
			}
		}
		return next.Record(ctx, e)
	})
}
