package integrate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/rbac"
)

// UsageRow is one client of the legacy surface: a principal calling with
// one user agent.
type UsageRow struct {
	PrincipalID   string
	PrincipalName string
	UserAgent     string
	Count         int
	LastCall      time.Time
	Operations    []string // operation IDs used, sorted
}

// Usage returns who still calls a tenant's legacy surface between from
// (inclusive) and to (exclusive; zero: no bound), from the audit log: per
// principal and user agent, the number of calls (allowed or refused), the
// last one and the operations used. Rows are ordered by principal name,
// principal ID and user agent. Returns EINVALID for a reversed range and
// ENOTFOUND for an unknown tenant.
func (s *Service) Usage(ctx context.Context, tenantID string, from, to time.Time) ([]UsageRow, error) {
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return nil, ferry.Errorf(ferry.EINVALID, "The end of the time range must be after its start.")
	}
	c, err := s.store.GetCatalog(ctx, strings.ToLower(tenantID))
	if err != nil {
		return nil, fmt.Errorf("legacy usage: %w", err)
	}
	sums, err := s.store.SummarizeAudit(ctx, ferry.AuditFilter{Since: from, Until: to, Surface: ferry.SurfaceLegacy, CatalogID: c.TenantID})
	if err != nil {
		return nil, fmt.Errorf("legacy usage: %w", err)
	}
	type key struct{ principal, agent string }
	rows := map[key]*UsageRow{}
	for _, x := range sums {
		k := key{strings.ToLower(x.PrincipalID), x.UserAgent}
		r := rows[k]
		if r == nil {
			r = &UsageRow{PrincipalID: x.PrincipalID, PrincipalName: x.PrincipalName, UserAgent: x.UserAgent}
			rows[k] = r
		}
		if r.PrincipalName == "" {
			r.PrincipalName = x.PrincipalName
		}
		r.Count += x.Count
		if x.LastCall.After(r.LastCall) {
			r.LastCall = x.LastCall
		}
		if !slices.Contains(r.Operations, x.Operation) {
			r.Operations = append(r.Operations, x.Operation)
		}
	}
	out := make([]UsageRow, 0, len(rows))
	for _, r := range rows {
		slices.Sort(r.Operations)
		r.LastCall = r.LastCall.UTC()
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b UsageRow) int {
		if c := strings.Compare(strings.ToLower(a.PrincipalName), strings.ToLower(b.PrincipalName)); c != 0 {
			return c
		}
		if c := strings.Compare(a.PrincipalID, b.PrincipalID); c != 0 {
			return c
		}
		return strings.Compare(a.UserAgent, b.UserAgent)
	})
	return out, nil
}

// SidestepRow is a principal whose legacy role grants actions that its
// role assignments at the catalog do not: while legacy access is open it
// can do through the legacy surface what the integrated surface refuses.
type SidestepRow struct {
	PrincipalID   string
	PrincipalName string
	LegacyRoles   []ferry.LegacyRole
	// Roles names the roles the principal holds at the catalog scope
	// (assigned there or above).
	Roles []string
	// Actions are the ARM actions the legacy roles allow and the role
	// assignments do not, sorted; Operations the operation IDs using them.
	Actions    []string
	Operations []string
}

// Sidestep returns each legacy role holder of an integrated catalog whose
// legacy roles allow an action that its role assignments covering the
// catalog do not, comparing rbac.LegacyRolePermission with the integrated
// evaluator over every operation of rbac's table that the legacy surface
// serves (an assignment below the catalog, say at one device group, does
// not cover the tenant-wide legacy role). Rows are ordered by principal
// ID. Returns ENOTFOUND for an unknown tenant and ECONFLICT when it is not
// integrated (it has no integrated side to compare with).
func (s *Service) Sidestep(ctx context.Context, tenantID string) ([]SidestepRow, error) {
	c, err := s.store.GetCatalog(ctx, strings.ToLower(tenantID))
	if err != nil {
		return nil, fmt.Errorf("sidestep report: %w", err)
	}
	if !c.Integrated() {
		return nil, ferry.Errorf(ferry.ECONFLICT, "The tenant '%s' is not integrated: integrate it before comparing its legacy roles with role assignments.", c.TenantID)
	}
	scope := c.ResourceID().String()
	roles, err := s.store.ListLegacyRoles(ctx, c.TenantID, "")
	if err != nil {
		return nil, fmt.Errorf("sidestep report: %w", err)
	}
	held := map[string][]ferry.LegacyRole{}
	var ids []string
	for _, r := range roles {
		if _, ok := held[r.PrincipalID]; !ok {
			ids = append(ids, r.PrincipalID)
		}
		held[r.PrincipalID] = append(held[r.PrincipalID], r.Role)
	}
	slices.Sort(ids)
	var ops []rbac.Operation
	for _, o := range rbac.Operations() {
		if len(o.Legacy) > 0 && !o.DataAction {
			ops = append(ops, o)
		}
	}
	eval := s.authz.Evaluator()
	var out []SidestepRow
	for _, id := range ids {
		lr := held[id]
		slices.Sort(lr)
		lr = slices.Compact(lr)
		row := SidestepRow{PrincipalID: id, LegacyRoles: lr}
		for _, o := range ops {
			if !rbac.LegacyAllowed(lr, o.Action) || eval.Allowed(id, o.Action, scope) {
				continue
			}
			row.Operations = append(row.Operations, o.ID)
			if !slices.Contains(row.Actions, o.Action) {
				row.Actions = append(row.Actions, o.Action)
			}
		}
		if len(row.Actions) == 0 {
			continue
		}
		slices.Sort(row.Actions)
		slices.Sort(row.Operations)
		if p, err := s.store.GetPrincipal(ctx, id); err == nil {
			row.PrincipalName = p.Name
		}
		row.Roles, err = s.rolesAt(ctx, eval, id, scope)
		if err != nil {
			return nil, fmt.Errorf("sidestep report: %w", err)
		}
		out = append(out, row)
	}
	return out, nil
}

// rolesAt names the roles a principal holds over scope.
func (s *Service) rolesAt(ctx context.Context, eval *rbac.Evaluator, principalID, scope string) ([]string, error) {
	as, err := all(func(o ferry.ListOptions) (ferry.Page[*ferry.RoleAssignment], error) {
		return s.store.ListRoleAssignments(ctx, ferry.RoleAssignmentFilter{PrincipalID: principalID, ListOptions: o})
	})
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, a := range as {
		if !ferry.ScopeContains(a.Scope, scope) {
			continue
		}
		name := a.RoleDefinitionID
		if d := eval.RoleDefinition(a.RoleDefinitionID); d != nil {
			name = d.Name
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}
