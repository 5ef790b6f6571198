package ferry

import (
	"context"
	"time"
)

// RoleType tells built-in roles from custom ones, with ARM's spelling.
type RoleType string

// Role types.
const (
	RoleBuiltIn RoleType = "BuiltInRole"
	RoleCustom  RoleType = "CustomRole"
)

// Permission is one block of actions a role grants. Actions and NotActions
// may hold "*" wildcards; an action is granted when some Actions entry
// matches it and no NotActions entry does. Matching is case-insensitive.
type Permission struct {
	Actions        []string
	NotActions     []string
	DataActions    []string
	NotDataActions []string
}

// RoleDefinition is a named set of permissions, as in Azure RBAC.
type RoleDefinition struct {
	ID               string // UUID (the last segment of the ARM ID)
	Name             string // roleName, e.g. "Azure Sphere Contributor"
	Description      string
	Type             RoleType
	Permissions      []Permission
	AssignableScopes []string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Well-known IDs of the built-in roles.
const (
	RoleOwner                   = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	RoleContributor             = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	RoleReader                  = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	RoleUserAccessAdministrator = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RoleAzureSphereContributor  = "8b9dfcab-4b77-4632-a6df-94bd07820648"
	RoleAzureSphereReader       = "c8ae6279-5a0b-4cb2-b3f0-d4d62845742c"
	RoleAzureSpherePublisher    = "6d994134-994b-4a59-9974-f479f0b227fb"
	RoleIoTHubDataContributor   = "4fc6c259-987e-4a07-842e-c321cc9d413f"
	RoleIoTHubDataReader        = "b447c946-2db7-41ec-983d-d8bf3b1c77e3"
	RoleDPSDataContributor      = "dfce44e4-17b7-4bd1-a6d1-04996ec95633"
	RoleDPSDataReader           = "10745317-c249-44a1-a5ce-3a4353c0bbd8"
)

// RoleAssignment grants a role to a principal at a scope (an ARM resource ID
// prefix by whole segments); it applies to everything under the scope.
type RoleAssignment struct {
	ID               string // UUID (the ARM name)
	Scope            string // e.g. /subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c
	RoleDefinitionID string // UUID
	PrincipalID      string
	PrincipalType    PrincipalType
	Description      string
	CreatedAt        time.Time
	CreatedBy        string
}

// RoleDefinitionFilter selects role definitions in a list.
type RoleDefinitionFilter struct {
	Name string // exact roleName, case-insensitive
	Type RoleType
	ListOptions
}

// RoleAssignmentFilter selects role assignments in a list.
type RoleAssignmentFilter struct {
	PrincipalID      string
	RoleDefinitionID string
	ScopePrefix      string // assignments at or below this scope
	AtScope          string // assignments exactly at this scope
	ListOptions
}

// RBACStore keeps role definitions and assignments.
type RBACStore interface {
	// PutRoleDefinition creates or replaces a role definition. Returns
	// ECONFLICT if another definition has the same name.
	PutRoleDefinition(ctx context.Context, d *RoleDefinition) error
	// GetRoleDefinition returns a definition. Returns ENOTFOUND if none.
	GetRoleDefinition(ctx context.Context, id string) (*RoleDefinition, error)
	// ListRoleDefinitions returns a page of definitions ordered by ID.
	ListRoleDefinitions(ctx context.Context, f RoleDefinitionFilter) (Page[*RoleDefinition], error)
	// DeleteRoleDefinition removes a custom role. Returns ENOTFOUND, or
	// ECONFLICT while assignments use it.
	DeleteRoleDefinition(ctx context.Context, id string) error

	// CreateRoleAssignment stores an assignment. Returns ECONFLICT if the
	// ID is taken or the same principal already holds the role at the scope,
	// ENOTFOUND if the role definition does not exist.
	CreateRoleAssignment(ctx context.Context, a *RoleAssignment) error
	// GetRoleAssignment returns an assignment. Returns ENOTFOUND if none.
	GetRoleAssignment(ctx context.Context, id string) (*RoleAssignment, error)
	// ListRoleAssignments returns a page of assignments ordered by ID.
	ListRoleAssignments(ctx context.Context, f RoleAssignmentFilter) (Page[*RoleAssignment], error)
	// DeleteRoleAssignment removes an assignment. Returns ENOTFOUND.
	DeleteRoleAssignment(ctx context.Context, id string) error
}

// LegacyRole is a tenant-wide role of the legacy surface.
type LegacyRole string

// Legacy roles. A Contributor can do everything but delete; a Reader reads.
const (
	LegacyAdministrator LegacyRole = "Administrator"
	LegacyContributor   LegacyRole = "Contributor"
	LegacyReader        LegacyRole = "Reader"
)

// LegacyRoleAssignment gives a principal a legacy role in a tenant.
type LegacyRoleAssignment struct {
	CatalogID   string // tenant ID
	PrincipalID string
	Role        LegacyRole
	CreatedAt   time.Time
}

// LegacyRoleStore keeps legacy role assignments.
type LegacyRoleStore interface {
	// AddLegacyRole gives a principal a role in a tenant; adding a role it
	// already holds is not an error.
	AddLegacyRole(ctx context.Context, a *LegacyRoleAssignment) error
	// RemoveLegacyRole takes a role away. Returns ENOTFOUND if not held.
	RemoveLegacyRole(ctx context.Context, catalogID, principalID string, role LegacyRole) error
	// ListLegacyRoles returns the assignments of a tenant, or of a principal
	// in every tenant when catalogID is "" (at least one must be set).
	ListLegacyRoles(ctx context.Context, catalogID, principalID string) ([]*LegacyRoleAssignment, error)
}

// Authorizer decides whether a caller may perform an action on a resource.
type Authorizer interface {
	// Authorize returns nil if the caller may perform action (an ARM action
	// string such as "Microsoft.AzureSphere/catalogs/read") on the resource
	// with the given ID, EFORBIDDEN if not, EUNAUTHORIZED without a caller.
	Authorize(ctx context.Context, c *Caller, action, resourceID string) error
}
