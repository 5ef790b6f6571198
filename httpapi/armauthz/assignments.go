package armauthz

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/rbac"
)

type assignmentProps struct {
	RoleDefinitionID string              `json:"roleDefinitionId"`
	PrincipalID      string              `json:"principalId"`
	PrincipalType    ferry.PrincipalType `json:"principalType,omitempty"`
	Scope            string              `json:"scope,omitempty"`
	Description      string              `json:"description,omitempty"`
	Condition        *string             `json:"condition"`
	CreatedOn        *time.Time          `json:"createdOn,omitempty"`
	UpdatedOn        *time.Time          `json:"updatedOn,omitempty"`
	CreatedBy        string              `json:"createdBy,omitempty"`
	UpdatedBy        string              `json:"updatedBy,omitempty"`
}

type assignmentJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Properties assignmentProps `json:"properties"`
}

func toAssignmentJSON(a *ferry.RoleAssignment) assignmentJSON {
	return assignmentJSON{
		ID: under(a.Scope, "roleAssignments", a.ID), Name: a.ID, Type: ferry.TypeRoleAssignment,
		Properties: assignmentProps{
			RoleDefinitionID: under(subscriptionOf(a.Scope), "roleDefinitions", a.RoleDefinitionID),
			PrincipalID:      a.PrincipalID, PrincipalType: a.PrincipalType, Scope: a.Scope, Description: a.Description,
			CreatedOn: arm.TimePtr(a.CreatedAt), UpdatedOn: arm.TimePtr(a.CreatedAt), CreatedBy: a.CreatedBy, UpdatedBy: a.CreatedBy,
		},
	}
}

// assignment returns the assignment named in t at exactly t's scope.
func (h *handler) assignment(ctx context.Context, t target) (*ferry.RoleAssignment, error) {
	notFound := arm.Errorf(ferry.ENOTFOUND, "RoleAssignmentNotFound", "The role assignment '%s' is not found.", t.name)
	if !ferry.IsUUID(t.name) {
		return nil, notFound
	}
	a, err := h.cfg.Store.GetRoleAssignment(ctx, strings.ToLower(t.name))
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("get role assignment: %w", err)
	}
	if !strings.EqualFold(strings.TrimRight(a.Scope, "/"), strings.TrimRight(t.scope, "/")) {
		return nil, notFound
	}
	return a, nil
}

func (h *handler) getAssignment(w http.ResponseWriter, r *http.Request, t target) error {
	a, err := h.assignment(r.Context(), t)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toAssignmentJSON(a))
}

// roleDefinitionID takes the role definition GUID out of a full ID
// (/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{id})
// or a bare GUID.
func roleDefinitionID(s string) (string, bool) {
	i := strings.LastIndex(s, "/")
	if i >= 0 {
		if !strings.HasSuffix(strings.ToLower(s[:i]), "/providers/microsoft.authorization/roledefinitions") {
			return "", false
		}
		s = s[i+1:]
	}
	return strings.ToLower(s), ferry.IsUUID(s)
}

func (h *handler) putAssignment(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	if !ferry.IsUUID(t.name) {
		return arm.Errorf(ferry.EINVALID, "InvalidRoleAssignmentId", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", t.name)
	}
	var body struct {
		Properties *assignmentProps `json:"properties"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	p := body.Properties
	switch {
	case p == nil:
		return arm.Required("properties")
	case p.RoleDefinitionID == "":
		return arm.Required("properties.roleDefinitionId")
	case p.PrincipalID == "":
		return arm.Required("properties.principalId")
	}
	if p.Condition != nil && *p.Condition != "" {
		return arm.InvalidContent("properties.condition", "Ferry does not support conditions on role assignments.")
	}
	if p.Scope != "" && !strings.EqualFold(strings.TrimRight(p.Scope, "/"), strings.TrimRight(t.scope, "/")) {
		return arm.InvalidContent("properties.scope", "The scope '%s' in the request body does not match the scope '%s' of the request.", p.Scope, t.scope)
	}
	rdID, ok := roleDefinitionID(p.RoleDefinitionID)
	if !ok {
		return arm.InvalidContent("properties.roleDefinitionId", "The role definition ID '%s' is not valid.", p.RoleDefinitionID)
	}
	def, err := h.cfg.Store.GetRoleDefinition(ctx, rdID)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return arm.Errorf(ferry.EINVALID, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", rdID)
	}
	if err != nil {
		return fmt.Errorf("create role assignment: %w", err)
	}
	if !rbac.Assignable(def, t.scope) {
		return arm.Errorf(ferry.EINVALID, "InvalidRoleAssignmentScope",
			"The role definition '%s' is not assignable at the scope '%s'.", def.Name, t.scope)
	}
	pr, err := h.cfg.Store.GetPrincipal(ctx, p.PrincipalID)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return arm.Errorf(ferry.EINVALID, "PrincipalNotFound", "Principal %s does not exist in the directory.", p.PrincipalID)
	}
	if err != nil {
		return fmt.Errorf("create role assignment: %w", err)
	}
	if p.PrincipalType != "" && !strings.EqualFold(string(p.PrincipalType), string(pr.Type)) {
		return arm.InvalidContent("properties.principalType", "The principal type '%s' does not match the principal's type '%s'.", p.PrincipalType, pr.Type)
	}
	name := strings.ToLower(t.name)
	if cur, err := h.cfg.Store.GetRoleAssignment(ctx, name); err == nil {
		if cur.PrincipalID == pr.ID && cur.RoleDefinitionID == def.ID && strings.EqualFold(cur.Scope, t.scope) {
			return writeJSON(w, http.StatusCreated, toAssignmentJSON(cur))
		}
		return arm.Errorf(ferry.ECONFLICT, "RoleAssignmentUpdateNotPermitted",
			"Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	} else if !ferry.IsCode(err, ferry.ENOTFOUND) {
		return fmt.Errorf("create role assignment: %w", err)
	}
	caller := ferry.CallerFromContext(ctx)
	a := &ferry.RoleAssignment{
		ID: name, Scope: t.scope, RoleDefinitionID: def.ID, PrincipalID: pr.ID, PrincipalType: pr.Type,
		Description: p.Description, CreatedAt: h.cfg.Now().UTC(), CreatedBy: caller.ID(),
	}
	err = h.cfg.Store.CreateRoleAssignment(ctx, a)
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return arm.Errorf(ferry.ECONFLICT, "RoleAssignmentExists", "The role assignment already exists.")
	}
	if err != nil {
		return fmt.Errorf("create role assignment: %w", err)
	}
	if err := h.reload(ctx); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, toAssignmentJSON(a))
}

func (h *handler) deleteAssignment(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	a, err := h.assignment(ctx, t)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteRoleAssignment(ctx, a.ID); err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return fmt.Errorf("delete role assignment: %w", err)
	}
	if err := h.reload(ctx); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toAssignmentJSON(a))
}

// assignmentFilter is a parsed role assignment $filter.
type assignmentFilter struct {
	atScope   bool
	principal string
}

var (
	rePrincipalEq = regexp.MustCompile(`(?i)^principalId\s+eq\s+'?([0-9a-fA-F-]{36})'?$`)
	reAssignedTo  = regexp.MustCompile(`(?i)^assignedTo\('([0-9a-fA-F-]{36})'\)$`)
	reAtScope     = regexp.MustCompile(`(?i)^atScope\(\)$`)
	reAnd         = regexp.MustCompile(`(?i)\s+and\s+`)
)

func parseAssignmentFilter(s string) (assignmentFilter, error) {
	var f assignmentFilter
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, term := range reAnd.Split(strings.TrimSpace(s), -1) {
		term = strings.TrimSpace(term)
		switch {
		case reAtScope.MatchString(term):
			f.atScope = true
		case rePrincipalEq.MatchString(term):
			f.principal = strings.ToLower(rePrincipalEq.FindStringSubmatch(term)[1])
		case reAssignedTo.MatchString(term):
			f.principal = strings.ToLower(reAssignedTo.FindStringSubmatch(term)[1])
		default:
			return f, arm.Errorf(ferry.EINVALID, "UnsupportedQuery", "The filter '%s' is not supported. Supported filters are atScope(), principalId eq '{id}' and assignedTo('{id}').", s).WithTarget("$filter")
		}
	}
	return f, nil
}

// ancestors returns every scope at or above scope by whole segments: "/",
// then each longer prefix.
func ancestors(scope string) []string {
	out := []string{"/"}
	segs := strings.Split(strings.Trim(scope, "/"), "/")
	for i := range segs {
		if segs[0] == "" {
			break
		}
		out = append(out, "/"+strings.Join(segs[:i+1], "/"))
	}
	return out
}

// listAll reads every page of a role assignment list.
func (h *handler) listAll(ctx context.Context, f ferry.RoleAssignmentFilter, into map[string]*ferry.RoleAssignment, keep func(*ferry.RoleAssignment) bool) error {
	f.Limit = ferry.MaxPageSize
	for {
		p, err := h.cfg.Store.ListRoleAssignments(ctx, f)
		if err != nil {
			return fmt.Errorf("list role assignments: %w", err)
		}
		for _, a := range p.Items {
			if keep == nil || keep(a) {
				into[a.ID] = a
			}
		}
		if f.After = p.Next; f.After == "" {
			return nil
		}
	}
}

// listAssignments lists, as ARM does, the assignments at, above and below
// the scope; atScope() keeps those at or above it, and a principal filter
// those of one principal.
func (h *handler) listAssignments(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	f, err := parseAssignmentFilter(r.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	found := map[string]*ferry.RoleAssignment{}
	if f.principal != "" {
		err = h.listAll(ctx, ferry.RoleAssignmentFilter{PrincipalID: f.principal}, found, func(a *ferry.RoleAssignment) bool {
			return ferry.ScopeContains(a.Scope, t.scope) || (!f.atScope && ferry.ScopeContains(t.scope, a.Scope))
		})
	} else {
		for _, s := range ancestors(t.scope) {
			if err = h.listAll(ctx, ferry.RoleAssignmentFilter{AtScope: s}, found, nil); err != nil {
				break
			}
		}
		if err == nil && !f.atScope {
			err = h.listAll(ctx, ferry.RoleAssignmentFilter{ScopePrefix: t.scope}, found, nil)
		}
	}
	if err != nil {
		return err
	}
	out := arm.List[assignmentJSON]{Value: []assignmentJSON{}}
	for _, a := range found {
		out.Value = append(out.Value, toAssignmentJSON(a))
	}
	slices.SortFunc(out.Value, func(a, b assignmentJSON) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(w, http.StatusOK, out)
}
