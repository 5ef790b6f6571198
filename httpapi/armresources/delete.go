package armresources

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/arm"
)

// codeDeletionBlocked is ARM's code for a resource group that cannot be
// deleted because of what it holds.
const codeDeletionBlocked = "ResourceGroupDeletionBlocked"

// inFlight are the states of a migration that is moving devices: deleting
// it, or the hubs and provisioning services it moves them between, would
// strand them. Migrations not started or ended may go.
var inFlight = []ferry.MigrationState{ferry.MigrationRunning, ferry.MigrationPaused, ferry.MigrationCancelling}

// Delete actions of the resources a resource group may hold; ARM requires
// the caller to be allowed to delete each of them.
const (
	actionCatalogDelete   = "Microsoft.AzureSphere/catalogs/delete"
	actionHubDelete       = "Microsoft.Devices/IotHubs/Delete"
	actionDPSDelete       = "Microsoft.Devices/provisioningServices/Delete"
	actionMigrationDelete = "Ferry.Migration/migrations/delete"
)

// contents is what a resource group holds.
type contents struct {
	catalogs, hubs, services, migrations []string // store IDs
	ids                                  []string // ARM IDs, for authorization
	actions                              []string // the delete action of each ARM ID
	assignments                          []string // role assignments at or below the group
	blocking                             []string // why the group may not go: in-flight migrations
}

func (h *handler) contents(ctx context.Context, tx ferry.Tx, sub, rg string) (*contents, error) {
	c := &contents{}
	add := func(id, action string) { c.ids, c.actions = append(c.ids, id), append(c.actions, action) }
	max := ferry.ListOptions{Limit: ferry.MaxPageSize}
	for f := (ferry.CatalogFilter{SubscriptionID: sub, ResourceGroup: rg, ListOptions: max}); ; {
		p, err := tx.ListCatalogs(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range p.Items {
			c.catalogs = append(c.catalogs, x.TenantID)
			add(x.ResourceID().String(), actionCatalogDelete)
		}
		if f.After = p.Next; f.After == "" {
			break
		}
	}
	for f := (ferry.HubFilter{SubscriptionID: sub, ResourceGroup: rg, ListOptions: max}); ; {
		p, err := tx.ListHubs(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range p.Items {
			c.hubs = append(c.hubs, x.ID)
			add(x.ResourceID().String(), actionHubDelete)
		}
		if f.After = p.Next; f.After == "" {
			break
		}
	}
	for f := (ferry.ProvisioningServiceFilter{SubscriptionID: sub, ResourceGroup: rg, ListOptions: max}); ; {
		p, err := tx.ListProvisioningServices(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range p.Items {
			c.services = append(c.services, x.ID)
			add(ferry.ResourceGroupScope(sub, rg)+"/providers/"+ferry.TypeProvisioningService+"/"+x.Name, actionDPSDelete)
		}
		if f.After = p.Next; f.After == "" {
			break
		}
	}
	for f := (ferry.MigrationFilter{SubscriptionID: sub, ResourceGroup: rg, ListOptions: max}); ; {
		p, err := tx.ListMigrations(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range p.Items {
			c.migrations = append(c.migrations, x.ID)
			add(ferry.ResourceGroupScope(sub, rg)+"/providers/"+ferry.TypeMigration+"/"+x.Name, actionMigrationDelete)
		}
		if f.After = p.Next; f.After == "" {
			break
		}
	}
	// In-flight migrations anywhere that use a hub or provisioning service
	// of the group.
	for f := (ferry.MigrationFilter{States: inFlight, ListOptions: max}); ; {
		p, err := tx.ListMigrations(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range p.Items {
			if x.SubscriptionID == sub && strings.EqualFold(x.ResourceGroup, rg) {
				c.blocking = append(c.blocking, fmt.Sprintf("the migration '%s' is %s", x.Name, x.State))
			} else if slices.Contains(c.hubs, x.SourceHubID) ||
				x.Target.Remote == nil && slices.Contains(c.services, x.Target.ProvisioningServiceID) {
				c.blocking = append(c.blocking, fmt.Sprintf("the migration '%s' is %s and moves devices through the group's hubs or provisioning services",
					x.ResourceID().String(), x.State))
			}
		}
		if f.After = p.Next; f.After == "" {
			break
		}
	}
	for f := (ferry.RoleAssignmentFilter{ScopePrefix: ferry.ResourceGroupScope(sub, rg), ListOptions: max}); ; {
		p, err := tx.ListRoleAssignments(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range p.Items {
			c.assignments = append(c.assignments, x.ID)
		}
		if f.After = p.Next; f.After == "" {
			break
		}
	}
	return c, nil
}

// deleteResourceGroup removes a group and everything in it in one
// transaction, as ARM does, once the caller is allowed to delete each
// resource. ARM answers 202 and deletes in the background; Ferry deletes at
// once and answers 200.
func (h *handler) deleteResourceGroup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	g, err := h.resourceGroup(r)
	if err != nil {
		return err
	}
	var c *contents
	err = h.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		var err error
		if c, err = h.contents(ctx, tx, g.SubscriptionID, g.Name); err != nil {
			return fmt.Errorf("delete resource group: %w", err)
		}
		for i, id := range c.ids {
			if err := h.rgs.Authorize(ctx, c.actions[i], id); err != nil {
				return err
			}
		}
		if len(c.blocking) > 0 {
			return arm.Errorf(ferry.ECONFLICT, codeDeletionBlocked,
				"The resource group '%s' cannot be deleted while devices are moving: %s. Cancel the migrations and wait until they end.",
				g.Name, strings.Join(c.blocking, "; "))
		}
		for _, id := range c.catalogs {
			if err := tx.DeleteCatalog(ctx, id); err != nil {
				return fmt.Errorf("delete resource group: catalog: %w", err)
			}
		}
		for _, id := range c.hubs {
			if err := tx.DeleteHub(ctx, id); err != nil {
				return fmt.Errorf("delete resource group: hub: %w", err)
			}
		}
		for _, id := range c.services {
			if err := tx.DeleteProvisioningService(ctx, id); err != nil {
				return fmt.Errorf("delete resource group: provisioning service: %w", err)
			}
		}
		for _, id := range c.migrations {
			if err := tx.DeleteMigration(ctx, id); err != nil {
				return fmt.Errorf("delete resource group: migration: %w", err)
			}
		}
		for _, id := range c.assignments {
			if err := tx.DeleteRoleAssignment(ctx, id); err != nil {
				return fmt.Errorf("delete resource group: role assignment: %w", err)
			}
		}
		if err := tx.DeleteResourceGroup(ctx, g.SubscriptionID, g.Name); err != nil {
			return fmt.Errorf("delete resource group: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(c.assignments) > 0 {
		if rl, ok := h.cfg.Authorizer.(interface{ Reload(context.Context) error }); ok {
			if err := rl.Reload(ctx); err != nil {
				return fmt.Errorf("delete resource group: reload authorizer: %w", err)
			}
		}
	}
	for _, id := range c.hubs {
		if h.cfg.HubChanged != nil {
			if err := h.cfg.HubChanged(ctx, id); err != nil {
				return fmt.Errorf("delete resource group: hub changed: %w", err)
			}
		}
	}
	for _, id := range c.services {
		if h.cfg.ServiceChanged != nil {
			if err := h.cfg.ServiceChanged(ctx, id); err != nil {
				return fmt.Errorf("delete resource group: provisioning service changed: %w", err)
			}
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
