package armauthz

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/rbac"
)

type permissionJSON struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type definitionProps struct {
	RoleName         string           `json:"roleName"`
	Type             ferry.RoleType   `json:"type,omitempty"`
	Description      string           `json:"description"`
	AssignableScopes []string         `json:"assignableScopes"`
	Permissions      []permissionJSON `json:"permissions"`
	CreatedOn        *time.Time       `json:"createdOn,omitempty"`
	UpdatedOn        *time.Time       `json:"updatedOn,omitempty"`
}

type definitionJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Properties definitionProps `json:"properties"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// toDefinitionJSON renders a definition as seen from scope.
func toDefinitionJSON(scope string, d *ferry.RoleDefinition) definitionJSON {
	j := definitionJSON{
		ID: under(subscriptionOf(scope), "roleDefinitions", d.ID), Name: d.ID, Type: ferry.TypeRoleDefinition,
		Properties: definitionProps{RoleName: d.Name, Type: d.Type, Description: d.Description,
			AssignableScopes: nonNil(d.AssignableScopes), Permissions: []permissionJSON{},
			CreatedOn: arm.TimePtr(d.CreatedAt), UpdatedOn: arm.TimePtr(d.UpdatedAt)},
	}
	for _, p := range d.Permissions {
		j.Properties.Permissions = append(j.Properties.Permissions, permissionJSON{
			nonNil(p.Actions), nonNil(p.NotActions), nonNil(p.DataActions), nonNil(p.NotDataActions)})
	}
	return j
}

func (h *handler) definition(ctx context.Context, name string) (*ferry.RoleDefinition, error) {
	notFound := arm.Errorf(ferry.ENOTFOUND, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", name)
	if !ferry.IsUUID(name) {
		return nil, notFound
	}
	d, err := h.cfg.Store.GetRoleDefinition(ctx, strings.ToLower(name))
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("get role definition: %w", err)
	}
	return d, nil
}

func (h *handler) getDefinition(w http.ResponseWriter, r *http.Request, t target) error {
	d, err := h.definition(r.Context(), t.name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toDefinitionJSON(t.scope, d))
}

// visibleAt reports whether a list at scope shows d: built-in roles always,
// custom roles assignable at scope or somewhere below it.
func visibleAt(d *ferry.RoleDefinition, scope string) bool {
	if d.Type == ferry.RoleBuiltIn || rbac.Assignable(d, scope) {
		return true
	}
	for _, s := range d.AssignableScopes {
		if ferry.ScopeContains(scope, s) {
			return true
		}
	}
	return false
}

func (h *handler) listDefinitions(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	f := ferry.RoleDefinitionFilter{ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}}
	if s := strings.TrimSpace(r.URL.Query().Get("$filter")); s != "" {
		flt, err := arm.ParseFilter(s)
		if err != nil {
			return err
		}
		for _, c := range flt {
			switch {
			case strings.EqualFold(c.Field, "roleName") && c.Op == "eq":
				f.Name = c.Value
			case strings.EqualFold(c.Field, "type") && c.Op == "eq":
				typ, err := arm.Enum("$filter", c.Value, string(ferry.RoleBuiltIn), string(ferry.RoleCustom))
				if err != nil {
					return err
				}
				f.Type = ferry.RoleType(typ)
			default:
				return arm.Errorf(ferry.EINVALID, "UnsupportedQuery", "The filter '%s' is not supported. Supported filters are roleName eq '{name}' and type eq '{type}'.", s).WithTarget("$filter")
			}
		}
	}
	out := arm.List[definitionJSON]{Value: []definitionJSON{}}
	for {
		p, err := h.cfg.Store.ListRoleDefinitions(ctx, f)
		if err != nil {
			return fmt.Errorf("list role definitions: %w", err)
		}
		for _, d := range p.Items {
			if visibleAt(d, t.scope) {
				out.Value = append(out.Value, toDefinitionJSON(t.scope, d))
			}
		}
		if f.After = p.Next; f.After == "" {
			break
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func builtInImmutable(id string) error {
	return arm.Errorf(ferry.EFORBIDDEN, "RoleDefinitionUpdateNotAllowed", "The built-in role definition '%s' cannot be changed or deleted.", id)
}

func (h *handler) putDefinition(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	if !ferry.IsUUID(t.name) {
		return arm.Errorf(ferry.EINVALID, "InvalidRoleDefinitionId", "The role definition ID '%s' is not valid. The role definition ID must be a GUID.", t.name)
	}
	id := strings.ToLower(t.name)
	if rbac.IsBuiltIn(id) {
		return builtInImmutable(id)
	}
	var body struct {
		Properties *definitionProps `json:"properties"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	p := body.Properties
	if p == nil {
		return arm.Required("properties")
	}
	if p.Type != "" && !strings.EqualFold(string(p.Type), string(ferry.RoleCustom)) {
		return arm.InvalidContent("properties.type", "Only custom roles (type CustomRole) can be created.")
	}
	d := &ferry.RoleDefinition{ID: id, Name: p.RoleName, Description: p.Description, Type: ferry.RoleCustom,
		AssignableScopes: p.AssignableScopes, CreatedAt: h.cfg.Now().UTC(), UpdatedAt: h.cfg.Now().UTC()}
	for _, x := range p.Permissions {
		d.Permissions = append(d.Permissions, ferry.Permission{Actions: x.Actions, NotActions: x.NotActions,
			DataActions: x.DataActions, NotDataActions: x.NotDataActions})
	}
	if len(d.AssignableScopes) == 0 {
		d.AssignableScopes = []string{t.scope}
	}
	for i, s := range d.AssignableScopes {
		rid, err := ferry.ParseResourceID(s)
		if err != nil {
			return arm.InvalidContent("properties.assignableScopes", "The assignable scope '%s' is not valid.", s)
		}
		d.AssignableScopes[i] = rid.String()
	}
	if err := rbac.ValidateRoleDefinition(d); err != nil {
		return arm.InvalidContent("properties", "%s", ferry.ErrorMessage(err))
	}
	// ARM requires the right to write role definitions at every scope the
	// role can be assigned at.
	for _, s := range d.AssignableScopes {
		if err := h.srv.Authorize(ctx, ActionDefinitionWrite, s); err != nil {
			return err
		}
	}
	status := http.StatusCreated
	cur, err := h.cfg.Store.GetRoleDefinition(ctx, id)
	switch {
	case err == nil:
		status, d.CreatedAt = http.StatusOK, cur.CreatedAt
		for _, s := range cur.AssignableScopes {
			if err := h.srv.Authorize(ctx, ActionDefinitionWrite, s); err != nil {
				return err
			}
		}
	case !ferry.IsCode(err, ferry.ENOTFOUND):
		return fmt.Errorf("put role definition: %w", err)
	}
	err = h.cfg.Store.PutRoleDefinition(ctx, d)
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return arm.Errorf(ferry.ECONFLICT, "RoleDefinitionWithSameNameExists", "A custom role with the same name '%s' already exists.", d.Name)
	}
	if err != nil {
		return fmt.Errorf("put role definition: %w", err)
	}
	if err := h.reload(ctx); err != nil {
		return err
	}
	return writeJSON(w, status, toDefinitionJSON(t.scope, d))
}

func (h *handler) deleteDefinition(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	if rbac.IsBuiltIn(t.name) {
		return builtInImmutable(t.name)
	}
	d, err := h.definition(ctx, t.name)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range d.AssignableScopes {
		if err := h.srv.Authorize(ctx, ActionDefinitionDelete, s); err != nil {
			return err
		}
	}
	err = h.cfg.Store.DeleteRoleDefinition(ctx, d.ID)
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return arm.Errorf(ferry.ECONFLICT, "RoleDefinitionHasAssignments", "There are existing role assignments referencing role definition '%s'.", d.ID)
	}
	if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return fmt.Errorf("delete role definition: %w", err)
	}
	if err := h.reload(ctx); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toDefinitionJSON(t.scope, d))
}
