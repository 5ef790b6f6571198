package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferry-iot/ferry"
)

var roleDefinitions = &table[ferry.RoleDefinition]{
	name: "role_definitions", what: "role definition",
	key: []string{"id"}, cols: []string{"name_lc", "type"},
	row: func(d *ferry.RoleDefinition) []any { return []any{d.ID, lower(d.Name), string(d.Type)} },
}

// PutRoleDefinition creates or replaces a role definition.
func (o *ops) PutRoleDefinition(ctx context.Context, d *ferry.RoleDefinition) error {
	if d.ID == "" || d.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A role definition needs an ID and a name.")
	}
	return roleDefinitions.upsert(ctx, o.d, o.wq(), d)
}

// GetRoleDefinition returns a definition.
func (o *ops) GetRoleDefinition(ctx context.Context, id string) (*ferry.RoleDefinition, error) {
	return roleDefinitions.getKey(ctx, o.rq(), id)
}

// ListRoleDefinitions returns a page of definitions ordered by ID.
func (o *ops) ListRoleDefinitions(ctx context.Context, f ferry.RoleDefinitionFilter) (ferry.Page[*ferry.RoleDefinition], error) {
	c := &cond{}
	if f.Name != "" {
		c.eq("name_lc", lower(f.Name))
	}
	if f.Type != "" {
		c.eq("type", string(f.Type))
	}
	return roleDefinitions.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// DeleteRoleDefinition removes a role; ECONFLICT while assignments use it.
func (o *ops) DeleteRoleDefinition(ctx context.Context, id string) error {
	return roleDefinitions.del(ctx, o.d, o.wq(), []any{id}, "")
}

var roleAssignments = &table[ferry.RoleAssignment]{
	name: "role_assignments", what: "role assignment",
	key: []string{"id"}, cols: []string{"scope_lc", "role_definition_id", "principal_id"},
	row: func(a *ferry.RoleAssignment) []any {
		return []any{a.ID, scopeKey(a.Scope), a.RoleDefinitionID, a.PrincipalID}
	},
}

// scopeKey is the form of a scope that compares: lower case, without a
// trailing slash.
func scopeKey(s string) string {
	s = strings.TrimRight(lower(s), "/")
	if s == "" {
		return "/"
	}
	return s
}

// CreateRoleAssignment stores an assignment.
func (o *ops) CreateRoleAssignment(ctx context.Context, a *ferry.RoleAssignment) error {
	if a.ID == "" || a.PrincipalID == "" || a.RoleDefinitionID == "" || a.Scope == "" {
		return ferry.Errorf(ferry.EINVALID, "A role assignment needs an ID, a principal, a role and a scope.")
	}
	err := roleAssignments.insert(ctx, o.d, o.wq(), a)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("The role definition %s was not found.", a.RoleDefinitionID), err)
	}
	return err
}

// GetRoleAssignment returns an assignment.
func (o *ops) GetRoleAssignment(ctx context.Context, id string) (*ferry.RoleAssignment, error) {
	return roleAssignments.getKey(ctx, o.rq(), id)
}

// ListRoleAssignments returns a page of assignments ordered by ID.
func (o *ops) ListRoleAssignments(ctx context.Context, f ferry.RoleAssignmentFilter) (ferry.Page[*ferry.RoleAssignment], error) {
	c := &cond{}
	if f.PrincipalID != "" {
		c.eq("principal_id", f.PrincipalID)
	}
	if f.RoleDefinitionID != "" {
		c.eq("role_definition_id", f.RoleDefinitionID)
	}
	if f.AtScope != "" {
		c.eq("scope_lc", scopeKey(f.AtScope))
	}
	if f.ScopePrefix != "" {
		if p := scopeKey(f.ScopePrefix); p != "/" {
			// At p, or below it: p/ ≤ scope < p0 ('0' follows '/').
			c.add("(scope_lc = ? OR (scope_lc >= ? AND scope_lc < ?))", p, p+"/", p+"0")
		}
	}
	return roleAssignments.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// DeleteRoleAssignment removes an assignment.
func (o *ops) DeleteRoleAssignment(ctx context.Context, id string) error {
	return roleAssignments.del(ctx, o.d, o.wq(), []any{id}, "")
}

var legacyRoles = &table[ferry.LegacyRoleAssignment]{
	name: "legacy_roles", what: "legacy role assignment",
	key: []string{"catalog_id", "principal_id", "role"},
	row: func(a *ferry.LegacyRoleAssignment) []any { return []any{a.CatalogID, a.PrincipalID, string(a.Role)} },
}

// AddLegacyRole gives a principal a role in a tenant.
func (o *ops) AddLegacyRole(ctx context.Context, a *ferry.LegacyRoleAssignment) error {
	if a.CatalogID == "" || a.PrincipalID == "" || a.Role == "" {
		return ferry.Errorf(ferry.EINVALID, "A legacy role assignment needs a tenant, a principal and a role.")
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("add legacy role: %w", err)
	}
	_, err = o.wq().ExecContext(ctx, `INSERT INTO legacy_roles (catalog_id, principal_id, role, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (catalog_id, principal_id, role) DO NOTHING`, a.CatalogID, a.PrincipalID, string(a.Role), string(doc))
	if err != nil {
		return fmt.Errorf("add legacy role: %w", err)
	}
	return nil
}

// RemoveLegacyRole takes a role away.
func (o *ops) RemoveLegacyRole(ctx context.Context, catalogID, principalID string, role ferry.LegacyRole) error {
	return legacyRoles.del(ctx, o.d, o.wq(), []any{catalogID, principalID, string(role)}, "")
}

// ListLegacyRoles returns the assignments of a tenant, or of a principal.
func (o *ops) ListLegacyRoles(ctx context.Context, catalogID, principalID string) ([]*ferry.LegacyRoleAssignment, error) {
	if catalogID == "" && principalID == "" {
		return nil, ferry.Errorf(ferry.EINVALID, "A tenant or a principal is required.")
	}
	c := &cond{}
	if catalogID != "" {
		c.eq("catalog_id", catalogID)
	}
	if principalID != "" {
		c.eq("principal_id", principalID)
	}
	return legacyRoles.all(ctx, o.rq(), c, "catalog_id, principal_id, role")
}
