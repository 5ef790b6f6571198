package armresources

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
)

type subscriptionJSON struct {
	ID                   string            `json:"id"`
	SubscriptionID       string            `json:"subscriptionId"`
	TenantID             string            `json:"tenantId,omitempty"`
	DisplayName          string            `json:"displayName"`
	State                string            `json:"state"`
	AuthorizationSource  string            `json:"authorizationSource"`
	SubscriptionPolicies map[string]string `json:"subscriptionPolicies"`
	ManagedByTenants     []any             `json:"managedByTenants"`
	Tags                 map[string]string `json:"tags,omitempty"`
}

func (h *handler) subscriptionJSON(s *ferry.Subscription) subscriptionJSON {
	state := s.State
	if state == "" {
		state = "Enabled"
	}
	return subscriptionJSON{
		ID: ferry.SubscriptionScope(s.ID), SubscriptionID: s.ID, TenantID: h.cfg.TenantID,
		DisplayName: s.DisplayName, State: state, AuthorizationSource: "RoleBased",
		SubscriptionPolicies: map[string]string{"locationPlacementId": "Public_2014-09-01", "quotaId": "Ferry_2026-01-01", "spendingLimit": "Off"},
		ManagedByTenants:     []any{},
	}
}

type resourceGroupJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties struct {
		ProvisioningState string `json:"provisioningState"`
	} `json:"properties"`
}

func rgJSON(g *ferry.ResourceGroup) resourceGroupJSON {
	j := resourceGroupJSON{ID: ferry.ResourceGroupScope(g.SubscriptionID, g.Name), Name: g.Name,
		Type: "Microsoft.Resources/resourceGroups", Location: g.Location, Tags: g.Tags}
	j.Properties.ProvisioningState = string(ferry.ProvisioningSucceeded)
	return j
}

func (h *handler) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	caller := ferry.CallerFromContext(ctx)
	if caller == nil {
		return ferry.Errorf(ferry.EUNAUTHORIZED, "Authentication is required.")
	}
	if _, err := DefaultSubscription(ctx, h.cfg.Store, h.cfg.Now()); err != nil {
		return err
	}
	pg, err := arm.ParsePaging(r)
	if err != nil {
		return err
	}
	var keepErr error
	items, next, err := arm.Paginate(r, pg, func(o ferry.ListOptions) (ferry.Page[*ferry.Subscription], error) {
		return h.cfg.Store.ListSubscriptions(ctx, o)
	}, func(s *ferry.Subscription) bool {
		ok, err := h.canSee(r, caller, s.ID)
		if err != nil {
			keepErr = err
		}
		return ok
	})
	if err == nil {
		err = keepErr
	}
	if err != nil {
		return fmt.Errorf("list subscriptions: %w", err)
	}
	out := arm.List[subscriptionJSON]{Value: []subscriptionJSON{}, NextLink: next}
	for _, s := range items {
		out.Value = append(out.Value, h.subscriptionJSON(s))
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// canSee reports whether the caller may see a subscription in a list: it
// may read it, or holds a role assignment somewhere inside it, as ARM shows
// subscriptions to anyone with access to any of their resources.
func (h *handler) canSee(r *http.Request, caller *ferry.Caller, subID string) (bool, error) {
	scope := ferry.SubscriptionScope(subID)
	err := h.cfg.Authorizer.Authorize(r.Context(), caller, ActionSubscriptionRead, scope)
	switch ferry.ErrorCode(err) {
	case "":
		return true, nil
	case ferry.EFORBIDDEN:
	default:
		return false, err
	}
	if caller.Principal == nil {
		return false, nil
	}
	p, err := h.cfg.Store.ListRoleAssignments(r.Context(), ferry.RoleAssignmentFilter{
		PrincipalID: caller.Principal.ID, ScopePrefix: scope, ListOptions: ferry.ListOptions{Limit: 1}})
	if err != nil {
		return false, fmt.Errorf("list subscriptions: %w", err)
	}
	return len(p.Items) > 0, nil
}

// subscription returns the subscription named in the path, creating the
// default one on first use. Returns ENOTFOUND (SubscriptionNotFound).
func (h *handler) subscription(r *http.Request, id string) (*ferry.Subscription, error) {
	ctx := r.Context()
	def, err := DefaultSubscription(ctx, h.cfg.Store, h.cfg.Now())
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(def.ID, id) {
		return def, nil
	}
	s, err := h.cfg.Store.GetSubscription(ctx, id)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, arm.Errorf(ferry.ENOTFOUND, "SubscriptionNotFound", "The subscription '%s' could not be found.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get subscription: %w", err)
	}
	return s, nil
}

func (h *handler) getSubscription(w http.ResponseWriter, r *http.Request) error {
	s, err := h.subscription(r, segments(r.URL.Path)[1])
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, h.subscriptionJSON(s))
}

func (h *handler) putSubscription(w http.ResponseWriter, r *http.Request) error {
	id := segments(r.URL.Path)[1]
	if !ferry.IsUUID(id) {
		return arm.Errorf(ferry.EINVALID, "InvalidSubscriptionId", "The provided subscription identifier '%s' is malformed or invalid.", id)
	}
	var body struct {
		DisplayName string `json:"displayName"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if strings.TrimSpace(body.DisplayName) == "" {
		return arm.Errorf(ferry.EINVALID, "InvalidRequestContent", "The subscription needs a displayName.")
	}
	ctx := r.Context()
	status := http.StatusOK
	s, err := h.cfg.Store.GetSubscription(ctx, strings.ToLower(id))
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		s, status = &ferry.Subscription{ID: strings.ToLower(id), State: "Enabled", CreatedAt: h.cfg.Now().UTC()}, http.StatusCreated
	case err != nil:
		return fmt.Errorf("put subscription: %w", err)
	}
	s.DisplayName = body.DisplayName
	if err := h.cfg.Store.PutSubscription(ctx, s); err != nil {
		return fmt.Errorf("put subscription: %w", err)
	}
	return httpapi.WriteJSON(w, status, h.subscriptionJSON(s))
}

func (h *handler) listResourceGroups(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	caller := ferry.CallerFromContext(ctx)
	if caller == nil {
		return ferry.Errorf(ferry.EUNAUTHORIZED, "Authentication is required.")
	}
	sub, err := h.subscription(r, segments(r.URL.Path)[1])
	if err != nil {
		return err
	}
	pg, err := arm.ParsePaging(r)
	if err != nil {
		return err
	}
	var keepErr error
	items, next, err := arm.Paginate(r, pg, func(o ferry.ListOptions) (ferry.Page[*ferry.ResourceGroup], error) {
		return h.cfg.Store.ListResourceGroups(ctx, sub.ID, o)
	}, func(g *ferry.ResourceGroup) bool {
		err := h.cfg.Authorizer.Authorize(ctx, caller, ActionResourceGroupRead, ferry.ResourceGroupScope(g.SubscriptionID, g.Name))
		if c := ferry.ErrorCode(err); c != "" && c != ferry.EFORBIDDEN {
			keepErr = err
		}
		return err == nil
	})
	if err == nil {
		err = keepErr
	}
	if err != nil {
		return fmt.Errorf("list resource groups: %w", err)
	}
	out := arm.List[resourceGroupJSON]{Value: []resourceGroupJSON{}, NextLink: next}
	for _, g := range items {
		out.Value = append(out.Value, rgJSON(g))
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// resourceGroup returns the group named in the path. Returns ENOTFOUND
// (ResourceGroupNotFound or SubscriptionNotFound).
func (h *handler) resourceGroup(r *http.Request) (*ferry.ResourceGroup, error) {
	s := segments(r.URL.Path)
	sub, err := h.subscription(r, s[1])
	if err != nil {
		return nil, err
	}
	g, err := h.cfg.Store.GetResourceGroup(r.Context(), sub.ID, s[3])
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, arm.Errorf(ferry.ENOTFOUND, "ResourceGroupNotFound", "Resource group '%s' could not be found.", s[3])
	}
	if err != nil {
		return nil, fmt.Errorf("get resource group: %w", err)
	}
	return g, nil
}

func (h *handler) getResourceGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := h.resourceGroup(r)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, rgJSON(g))
}

func (h *handler) headResourceGroup(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.resourceGroup(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type rgBody struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	ManagedBy  string            `json:"managedBy"`
	Properties map[string]any    `json:"properties"`
}

func (h *handler) putResourceGroup(w http.ResponseWriter, r *http.Request) error {
	s := segments(r.URL.Path)
	name := s[3]
	if !validRGName(name) {
		return arm.Errorf(ferry.EINVALID, "InvalidResourceGroup",
			"The provided resource group name '%s' has these invalid characters or length. The name can contain up to 90 letters, digits, underscores, hyphens, periods and parentheses, and cannot end in a period.", name)
	}
	var body rgBody
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if strings.TrimSpace(body.Location) == "" {
		return arm.Errorf(ferry.EINVALID, "LocationRequired", "The location property is required for this definition.")
	}
	sub, err := h.subscription(r, s[1])
	if err != nil {
		return err
	}
	ctx := r.Context()
	status := http.StatusOK
	g, err := h.cfg.Store.GetResourceGroup(ctx, sub.ID, name)
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		status = http.StatusCreated
		g = &ferry.ResourceGroup{SubscriptionID: sub.ID, Name: name, Location: body.Location, CreatedAt: h.cfg.Now().UTC()}
	case err != nil:
		return fmt.Errorf("put resource group: %w", err)
	case !strings.EqualFold(normLocation(g.Location), normLocation(body.Location)):
		return arm.Errorf(ferry.ECONFLICT, "InvalidResourceGroupLocation",
			"Invalid resource group location '%s'. The Resource group already exists in location '%s'.", body.Location, g.Location)
	}
	g.Tags = body.Tags
	if err := h.cfg.Store.PutResourceGroup(ctx, g); err != nil {
		return fmt.Errorf("put resource group: %w", err)
	}
	return httpapi.WriteJSON(w, status, rgJSON(g))
}

func (h *handler) patchResourceGroup(w http.ResponseWriter, r *http.Request) error {
	var body rgBody
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	g, err := h.resourceGroup(r)
	if err != nil {
		return err
	}
	if body.Tags != nil {
		g.Tags = body.Tags
	}
	if err := h.cfg.Store.PutResourceGroup(r.Context(), g); err != nil {
		return fmt.Errorf("update resource group: %w", err)
	}
	return httpapi.WriteJSON(w, http.StatusOK, rgJSON(g))
}

// normLocation compares "West Europe" and "westeurope" alike, as ARM does.
func normLocation(l string) string { return strings.ReplaceAll(strings.ToLower(l), " ", "") }
