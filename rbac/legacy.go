package rbac

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-iot/ferry"
)

// legacyAdminOnly are the actions only a legacy Administrator holds among
// the legacy roles: managing who has access, and the Integrate, Pause,
// Enable and Block steps (sphere-surfaces.md §2.6, §4.4).
var legacyAdminOnly = []string{
	"Microsoft.Authorization/*/write",
	"Microsoft.Authorization/*/delete",
	ActionIntegrate,
	ActionPauseLegacyAccess,
	ActionEnableLegacyAccess,
	ActionBlockLegacyAccess,
}

// LegacyRolePermission returns what a tenant-wide legacy role allows,
// expressed over the same ARM actions as the integrated surface
// (sphere-surfaces.md §2.6):
//   - Administrator: everything in the tenant, including managing users.
//   - Contributor: everything except deletes and the Administrator's
//     access-management and Integrate/Pause/Enable/Block actions.
//   - Reader: reads, the list and count actions, and certificate chains
//     (the same Sphere actions as the Azure Sphere Reader role), and reading
//     who has access.
//
// An unknown role grants nothing (a Permission without actions).
func LegacyRolePermission(r ferry.LegacyRole) ferry.Permission {
	switch r {
	case ferry.LegacyAdministrator:
		return ferry.Permission{Actions: []string{"*"}}
	case ferry.LegacyContributor:
		return ferry.Permission{
			Actions:    []string{"*"},
			NotActions: append([]string{"*/delete"}, legacyAdminOnly...),
		}
	case ferry.LegacyReader:
		return ferry.Permission{Actions: append(slices.Clone(sphereReaderActions), "*/read")}
	}
	return ferry.Permission{}
}

// legacyRoles are the compiled permissions of the legacy roles.
var legacyRoles = map[ferry.LegacyRole]*role{}

func init() {
	for _, r := range []ferry.LegacyRole{ferry.LegacyAdministrator, ferry.LegacyContributor, ferry.LegacyReader} {
		legacyRoles[r] = compileRole(&ferry.RoleDefinition{
			Name: string(r), Permissions: []ferry.Permission{LegacyRolePermission(r)},
		})
	}
}

// LegacyAllowed reports whether any of the legacy roles allows the action.
func LegacyAllowed(roles []ferry.LegacyRole, action string) bool {
	for _, r := range roles {
		if c := legacyRoles[r]; c != nil && c.permits(action, false) {
			return true
		}
	}
	return false
}

// LegacyAuthorizer is the legacy surface's ferry.Authorizer: tenant-wide
// Administrator, Contributor and Reader roles read from a LegacyRoleStore
// on every call (one indexed query; legacy tenants have few users). It does
// not look at the tenant's legacy access state: the legacy surface refuses
// paused and blocked tenants before it asks. Safe for concurrent use.
type LegacyAuthorizer struct {
	store ferry.LegacyRoleStore
}

var _ ferry.Authorizer = (*LegacyAuthorizer)(nil)

// NewLegacy returns a LegacyAuthorizer over store.
func NewLegacy(store ferry.LegacyRoleStore) *LegacyAuthorizer {
	return &LegacyAuthorizer{store: store}
}

// Authorize implements ferry.Authorizer for the legacy surface. resourceID
// names the tenant: a bare tenant ID, or a legacy path such as
// "/v2/tenants/{id}/devices/{deviceId}" or "/tenants/{id}/...". Returns
// EUNAUTHORIZED without a principal, EFORBIDDEN when no legacy role of the
// caller in that tenant allows the action, EINVALID when resourceID names
// no tenant.
func (l *LegacyAuthorizer) Authorize(ctx context.Context, c *ferry.Caller, action, resourceID string) error {
	if c == nil || c.Principal == nil {
		return ferry.Errorf(ferry.EUNAUTHORIZED, "Authentication is required.")
	}
	tenant := LegacyTenantID(resourceID)
	if tenant == "" {
		return ferry.Errorf(ferry.EINVALID, "The tenant of %q is not known.", resourceID)
	}
	if c.Principal.Disabled {
		return legacyForbidden(action)
	}
	roles, err := l.Roles(ctx, tenant, c.Principal.ID)
	if err != nil {
		return err
	}
	if !LegacyAllowed(roles, action) {
		return legacyForbidden(action)
	}
	return nil
}

// Roles returns the legacy roles a principal holds in a tenant.
func (l *LegacyAuthorizer) Roles(ctx context.Context, tenantID, principalID string) ([]ferry.LegacyRole, error) {
	as, err := l.store.ListLegacyRoles(ctx, tenantID, principalID)
	if err != nil {
		return nil, fmt.Errorf("list legacy roles: %w", err)
	}
	var roles []ferry.LegacyRole
	for _, a := range as {
		if strings.EqualFold(a.PrincipalID, principalID) && strings.EqualFold(a.CatalogID, tenantID) {
			roles = append(roles, a.Role)
		}
	}
	return roles, nil
}

func legacyForbidden(action string) error {
	return ferry.Errorf(ferry.EFORBIDDEN, "You do not have a role in this tenant that permits the operation %q.", action)
}

// LegacyTenantID extracts the tenant ID from a legacy resource reference:
// the segment after "tenants" in a path, or the whole string when it has no
// slash. Returns "" when there is none.
func LegacyTenantID(ref string) string {
	if ref == "" {
		return ""
	}
	if !strings.Contains(ref, "/") {
		return ref
	}
	segs := strings.Split(strings.Trim(ref, "/"), "/")
	for i := 0; i+1 < len(segs); i++ {
		if strings.EqualFold(segs[i], "tenants") && segs[i+1] != "" {
			return segs[i+1]
		}
	}
	return ""
}
