package legacy

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/sphere"
)

// CheckAccess returns the legacy surface's refusal for a catalog whose
// legacy access is not enabled, and nil otherwise:
//   - Paused: 403 with code 1 (TenantInMigration). Pausing is reversible
//     and leaves the legacy role assignments as they are.
//   - Blocked: 410 Gone with code 2 (TenantMigrationRequired), the answer
//     PAPI gives clients of a tenant that has moved on for good.
func CheckAccess(c *ferry.Catalog) error {
	switch c.LegacyAccess {
	case ferry.LegacyPaused:
		return &Error{Status: http.StatusForbidden, Code: CodeTenantInMigration, err: ferry.Errorf(ferry.EFORBIDDEN,
			"Legacy access to this tenant is paused. Use the integrated API, or ask an administrator to enable legacy access again.")}
	case ferry.LegacyBlocked:
		return &Error{Status: http.StatusGone, Code: CodeTenantMigrationRequired, err: ferry.Errorf(ferry.EFORBIDDEN,
			"Legacy access to this tenant is blocked for good. Use the integrated API of its catalog.")}
	}
	return nil
}

// SetAccess sets a catalog's legacy access state: the legacy side of
// Pause, Enable and Block. Setting the current state again does nothing.
// Blocked is permanent: leaving it returns ECONFLICT. Returns EINVALID for
// an unknown state and ENOTFOUND for an unknown catalog. The caller checks
// that the principal may do it (rbac.ActionPauseLegacyAccess and friends).
func SetAccess(ctx context.Context, svc *sphere.Service, tenantID string, state ferry.LegacyAccess) error {
	switch state {
	case ferry.LegacyEnabled, ferry.LegacyPaused, ferry.LegacyBlocked:
	default:
		return ferry.Errorf(ferry.EINVALID, "The legacy access state '%s' is not valid.", state)
	}
	c, err := svc.GetCatalog(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("set legacy access: %w", err)
	}
	if c.LegacyAccess == state {
		return nil
	}
	c.LegacyAccess = state
	if err := svc.UpdateCatalog(ctx, c, c.ETag); err != nil {
		return fmt.Errorf("set legacy access: %w", err)
	}
	return nil
}
