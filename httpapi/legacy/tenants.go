package legacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/sphere"
)

// maxJSONBody bounds a JSON request body; a bulk claim of 1,000 device IDs
// is about 131 KB.
const maxJSONBody = 1 << 20

// decode reads a JSON body into v. Returns EINVALID for a missing body
// (when required), bad JSON or a field of the wrong type, such as an enum
// sent as a string where PAPI takes an integer.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return badRequest("The request body could not be read.")
	}
	if len(body) > maxJSONBody {
		return badRequest("The request body is larger than %d bytes.", maxJSONBody)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return badRequest("A request body is required.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badRequest("The field '%s' must be of JSON type %s.", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return badRequest("The request body is not valid JSON of the expected shape.")
	}
	return nil
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "integer"
	case k == "bool":
		return "boolean"
	case k == "slice":
		return "array"
	case k == "struct", k == "map":
		return "object"
	}
	return k
}

// principal returns the caller's principal (wrap has checked there is one).
func principal(r *http.Request) *ferry.Principal {
	return ferry.CallerFromContext(r.Context()).Principal
}

// rolesOf returns the legacy role names a principal holds in a tenant.
func (a *api) rolesOf(ctx context.Context, tenantID, principalID string) ([]string, error) {
	as, err := a.store.ListLegacyRoles(ctx, tenantID, principalID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, x := range as {
		if strings.EqualFold(x.CatalogID, tenantID) && strings.EqualFold(x.PrincipalID, principalID) {
			out = append(out, string(x.Role))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// listTenants lists the tenants where the caller holds a legacy role and
// legacy access is not blocked.
func (a *api) listTenants(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	as, err := a.store.ListLegacyRoles(ctx, "", p.ID)
	if err != nil {
		return err
	}
	roles := map[string][]string{}
	var ids []string
	for _, x := range as {
		if _, ok := roles[x.CatalogID]; !ok {
			ids = append(ids, x.CatalogID)
		}
		roles[x.CatalogID] = append(roles[x.CatalogID], string(x.Role))
	}
	slices.Sort(ids)
	out := []Tenant{}
	for _, id := range ids {
		c, err := a.svc.GetCatalog(ctx, id)
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			continue
		}
		if err != nil {
			return err
		}
		if c.LegacyAccess == ferry.LegacyBlocked {
			continue
		}
		rs := roles[id]
		slices.Sort(rs)
		out = append(out, Tenant{Id: c.TenantID, Name: tenantName(c), Roles: slices.Compact(rs)})
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// CreateTenantRequest is the body of POST /v2/tenants/create.
type CreateTenantRequest struct {
	DeviceId           string
	TenantFriendlyName string
}

// createTenant creates a tenant that exists only on the legacy surface
// until the Integrate step, claims the given device to it (a tenant
// consumes a device) and makes the caller its Administrator. Any signed-in
// principal may create a tenant.
func (a *api) createTenant(w http.ResponseWriter, r *http.Request) error {
	var in CreateTenantRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	name := strings.TrimSpace(in.TenantFriendlyName)
	switch {
	case in.DeviceId == "":
		return badRequest("The DeviceId is required.")
	case name == "":
		return badRequest("The TenantFriendlyName is required.")
	case len(name) > sphere.MaxNameLength:
		return badRequest("The TenantFriendlyName must be at most %d characters.", sphere.MaxNameLength)
	}
	op, c, err := CreateTenant(r.Context(), a.svc, a.store, principal(r).ID, name, in.DeviceId)
	if c != nil {
		callFrom(r.Context()).tenant = c.TenantID
	}
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, toOperation(op))
}

// CreateTenant creates a legacy-only tenant named name (the CLI's `ferry
// legacy tenant create`), claims deviceID to it and gives administratorID
// the Administrator role. It returns the TenantCreation operation and the
// tenant. Returns EINVALID for a bad device ID and ECONFLICT when the
// device is already claimed: one device makes one tenant. If the claim
// fails after the tenant was made, the tenant is removed again.
func CreateTenant(ctx context.Context, svc *sphere.Service, store ferry.Store, administratorID, name, deviceID string) (*ferry.Operation, *ferry.Catalog, error) {
	id, err := sphere.NormalizeDeviceID(deviceID)
	if err != nil {
		return nil, nil, err
	}
	if _, err := svc.GetDevice(ctx, id); err == nil {
		return nil, nil, ferry.Errorf(ferry.ECONFLICT, "The device '%s' is already claimed; a tenant needs an unclaimed device.", truncate(id, 16))
	} else if !ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, nil, fmt.Errorf("create tenant: %w", err)
	}
	c := &ferry.Catalog{LegacyName: name}
	if err := svc.CreateCatalog(ctx, c); err != nil {
		return nil, nil, fmt.Errorf("create tenant: %w", err)
	}
	undo := func(cause error) (*ferry.Operation, *ferry.Catalog, error) {
		if derr := svc.DeleteCatalog(context.WithoutCancel(ctx), c.TenantID); derr != nil {
			cause = errors.Join(cause, derr)
		}
		return nil, nil, fmt.Errorf("create tenant: %w", cause)
	}
	if err := store.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: c.TenantID, PrincipalID: administratorID, Role: ferry.LegacyAdministrator, CreatedAt: svc.Now()}); err != nil {
		return undo(err)
	}
	if _, err := svc.ClaimDevices(ctx, sphere.Claim{CatalogID: c.TenantID}, []string{id}); err != nil {
		return undo(err)
	}
	op, err := recordOp(ctx, svc, store, ferry.OpTenantCreation, c.TenantID, "/v2/tenants/"+c.TenantID)
	if err != nil {
		return nil, c, err
	}
	return op, c, nil
}

// recordOp stores a finished operation the sphere service does not record
// itself.
func recordOp(ctx context.Context, svc *sphere.Service, store ferry.OperationStore, typ ferry.OperationType, tenantID, resource string) (*ferry.Operation, error) {
	now := svc.Now()
	op := &ferry.Operation{ID: ferry.NewUUID(), CatalogID: tenantID, Type: typ, State: ferry.OpComplete,
		ResourceID: resource, ResourceLocation: resource, CreatedAt: now, StartedAt: now, CompletedAt: now}
	if err := store.CreateOperation(ctx, op); err != nil {
		return nil, fmt.Errorf("record operation: %w", err)
	}
	return op, nil
}

// getTenant returns the TenantIdentity with the caller's roles.
func (a *api) getTenant(w http.ResponseWriter, r *http.Request) error {
	c := tenant(r)
	roles, err := a.rolesOf(r.Context(), c.TenantID, principal(r).ID)
	if err != nil {
		return err
	}
	if roles == nil {
		roles = []string{}
	}
	return httpapi.WriteJSON(w, http.StatusOK, Tenant{Id: c.TenantID, Name: tenantName(c), Roles: roles})
}

// patchTenant renames the tenant (its legacy name; the ARM name of an
// integrated catalog does not change).
func (a *api) patchTenant(w http.ResponseWriter, r *http.Request) error {
	var in struct{ Name *string }
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return badRequest("The Name is required.")
	}
	if len(*in.Name) > sphere.MaxNameLength {
		return badRequest("The Name must be at most %d characters.", sphere.MaxNameLength)
	}
	c := tenant(r)
	c.LegacyName = strings.TrimSpace(*in.Name)
	if err := a.svc.UpdateCatalog(r.Context(), c, c.ETag); err != nil {
		return err
	}
	return a.getTenant(w, r)
}

// blockLegacy blocks legacy access to the tenant for good.
func (a *api) blockLegacy(w http.ResponseWriter, r *http.Request) error {
	if err := SetAccess(r.Context(), a.svc, tenant(r).TenantID, ferry.LegacyBlocked); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// resolveUser finds a principal by object ID or login name (email).
func (a *api) resolveUser(ctx context.Context, ref string) (*ferry.Principal, error) {
	var p *ferry.Principal
	var err error
	if ferry.IsUUID(ref) {
		p, err = a.store.GetPrincipal(ctx, strings.ToLower(ref))
	} else {
		p, err = a.store.GetPrincipalByName(ctx, ref)
	}
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "The user '%s' was not found.", truncate(ref, 80))
	}
	return p, err
}

func toPrincipal(p *ferry.Principal, roles []string) Principal {
	mail := p.Email
	if mail == "" && p.Type == ferry.PrincipalUser && strings.Contains(p.Name, "@") {
		mail = p.Name
	}
	name := p.DisplayName
	if name == "" {
		name = p.Name
	}
	return Principal{PrincipalId: p.ID, DisplayName: name, Mail: mail, Roles: roles}
}

// listUsers lists the tenant's principals and their legacy roles.
func (a *api) listUsers(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := tenant(r)
	as, err := a.store.ListLegacyRoles(ctx, c.TenantID, "")
	if err != nil {
		return err
	}
	roles := map[string][]string{}
	var ids []string
	for _, x := range as {
		if _, ok := roles[x.PrincipalID]; !ok {
			ids = append(ids, x.PrincipalID)
		}
		roles[x.PrincipalID] = append(roles[x.PrincipalID], string(x.Role))
	}
	slices.Sort(ids)
	out := Users{TenantId: c.TenantID, Principals: []Principal{}}
	for _, id := range ids {
		rs := roles[id]
		slices.Sort(rs)
		p, err := a.store.GetPrincipal(ctx, id)
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			p = &ferry.Principal{ID: id}
		} else if err != nil {
			return err
		}
		out.Principals = append(out.Principals, toPrincipal(p, slices.Compact(rs)))
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// listUserRoles lists one user's legacy roles in the tenant.
func (a *api) listUserRoles(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := a.resolveUser(ctx, r.PathValue("username"))
	if err != nil {
		return err
	}
	c := tenant(r)
	roles, err := a.rolesOf(ctx, c.TenantID, p.ID)
	if err != nil {
		return err
	}
	out := UserRoles{Roles: []TenantRoles{}}
	if len(roles) > 0 {
		out.Roles = append(out.Roles, TenantRoles{TenantId: c.TenantID, RoleNames: roles})
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// assignRole gives a user a legacy role; holding it already is fine.
func (a *api) assignRole(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	role, err := parseRole(r.PathValue("roleName"))
	if err != nil {
		return err
	}
	p, err := a.resolveUser(ctx, r.PathValue("userId"))
	if err != nil {
		return err
	}
	if err := a.store.AddLegacyRole(ctx, &ferry.LegacyRoleAssignment{CatalogID: tenant(r).TenantID, PrincipalID: p.ID, Role: role, CreatedAt: a.svc.Now()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// unassignRole takes a legacy role away. The tenant keeps at least one
// Administrator while legacy access is not blocked (and a blocked tenant
// answers no legacy call).
func (a *api) unassignRole(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	role, err := parseRole(r.PathValue("roleName"))
	if err != nil {
		return err
	}
	p, err := a.resolveUser(ctx, r.PathValue("userId"))
	if err != nil {
		return err
	}
	if err := RemoveRole(ctx, a.store, tenant(r).TenantID, p.ID, role); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// RemoveRole takes a legacy role from a principal in one transaction,
// refusing with ECONFLICT to remove the tenant's last Administrator unless
// its legacy access is blocked. Returns ENOTFOUND if the role is not held.
func RemoveRole(ctx context.Context, store ferry.Store, tenantID, principalID string, role ferry.LegacyRole) error {
	err := store.WithTx(ctx, func(tx ferry.Tx) error {
		if role == ferry.LegacyAdministrator {
			c, err := tx.GetCatalog(ctx, tenantID)
			if err != nil {
				return err
			}
			as, err := tx.ListLegacyRoles(ctx, tenantID, "")
			if err != nil {
				return err
			}
			others := 0
			for _, x := range as {
				if x.Role == ferry.LegacyAdministrator && !strings.EqualFold(x.PrincipalID, principalID) {
					others++
				}
			}
			if others == 0 && c.LegacyAccess != ferry.LegacyBlocked {
				return ferry.Errorf(ferry.ECONFLICT, "The tenant must keep at least one Administrator while legacy access is not blocked.")
			}
		}
		return tx.RemoveLegacyRole(ctx, tenantID, principalID, role)
	})
	if err != nil {
		return fmt.Errorf("remove legacy role: %w", err)
	}
	return nil
}
