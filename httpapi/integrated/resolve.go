package integrated

import (
	"context"
	"net/http"
	"regexp"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/sphere"
)

// Name patterns of the 2024-04-01 swagger.
var (
	catalogNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,50}$`)
	productNamePattern = regexp.MustCompile(`^[\w][\w\s]{1,48}[\w]$|^\.default$|^\.unassigned$`)
	groupNamePattern   = regexp.MustCompile(`^[A-Za-z0-9]{1,2}$|^[A-Za-z0-9][A-Za-z0-9\s]{1,48}[A-Za-z0-9]$|^\.default$|^\.unassigned$`)
	deviceNamePattern  = regexp.MustCompile(`^[a-zA-Z0-9-]{128}$`)
)

// target is what a request path names, resolved down to where it stops.
type target struct {
	catalog *ferry.Catalog
	product *ferry.Product     // nil for ".default"/".unassigned"
	group   *ferry.DeviceGroup // nil for ".default"/".unassigned"
	// unassigned is set when the path names the catalog level with
	// ".default" or ".unassigned" product and group names.
	unassigned bool
}

// catalogID returns the ARM ID the request path gives the catalog.
func catalogID(r *http.Request) ferry.ResourceID {
	return ferry.ResourceID{SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName"),
		Provider: ferry.ProviderSphere, Types: []string{"catalogs"}, Names: []string{r.PathValue("catalogName")}}
}

func notFound(err error, id ferry.ResourceID) error {
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return arm.NotFound(id)
	}
	return err
}

// resolveCatalog finds the catalog of the request path.
func (a *api) resolveCatalog(r *http.Request) (*ferry.Catalog, error) {
	id := catalogID(r)
	name := id.Name()
	if err := arm.CheckName(name, catalogNamePattern); err != nil {
		return nil, err
	}
	c, err := a.svc.GetCatalogByName(r.Context(), id.SubscriptionID, id.ResourceGroup, name)
	if err != nil {
		return nil, notFound(err, id)
	}
	arm.SetCatalog(r.Context(), c.TenantID)
	return c, nil
}

// resolveProduct finds the catalog and product of the request path. With
// allowSystem, ".default"/".unassigned" resolve to no product.
func (a *api) resolveProduct(r *http.Request, allowSystem bool) (target, error) {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return target{}, err
	}
	name := r.PathValue("productName")
	if err := arm.CheckName(name, productNamePattern); err != nil {
		return target{catalog: c}, err
	}
	id := c.ResourceID().Child("products", name)
	if sphere.IsSystemName(name) {
		if !allowSystem {
			return target{catalog: c}, arm.NotFound(id)
		}
		return target{catalog: c, unassigned: true}, nil
	}
	p, err := a.svc.GetProductByName(r.Context(), c.TenantID, name)
	if err != nil {
		return target{catalog: c}, notFound(err, id)
	}
	return target{catalog: c, product: p}, nil
}

// resolveGroup finds the catalog, product and device group of the request
// path. With allowSystem, ".default"/".unassigned" for both product and
// group resolve to the catalog level.
func (a *api) resolveGroup(r *http.Request, allowSystem bool) (target, error) {
	t, err := a.resolveProduct(r, allowSystem)
	if err != nil {
		return t, err
	}
	name := r.PathValue("deviceGroupName")
	if err := arm.CheckName(name, groupNamePattern); err != nil {
		return t, err
	}
	pname := r.PathValue("productName")
	id := t.catalog.ResourceID().Child("products", pname).Child("deviceGroups", name)
	switch {
	case t.unassigned && sphere.IsSystemName(name):
		return t, nil
	case t.unassigned || sphere.IsSystemName(name):
		return t, arm.NotFound(id)
	}
	g, err := a.svc.GetDeviceGroupByName(r.Context(), t.product.ID, name)
	if err != nil {
		return t, notFound(err, id)
	}
	t.group = g
	return t, nil
}

// resolveDevice finds the device of the request path, checking that it is
// where the path says: in the device group, or at the catalog level.
func (a *api) resolveDevice(r *http.Request) (target, *ferry.Device, error) {
	t, err := a.resolveGroup(r, true)
	if err != nil {
		return t, nil, err
	}
	name := r.PathValue("deviceName")
	if err := arm.CheckName(name, deviceNamePattern); err != nil {
		return t, nil, err
	}
	id := t.deviceParent(r).Child("devices", name)
	d, err := a.svc.GetDevice(r.Context(), name)
	if err != nil {
		return t, nil, notFound(err, id)
	}
	if d.CatalogID != t.catalog.TenantID || (t.group == nil && d.DeviceGroupID != "") || (t.group != nil && d.DeviceGroupID != t.group.ID) {
		return t, nil, arm.NotFound(id)
	}
	return t, d, nil
}

// deviceParent returns the group's ID as the path names it.
func (t target) deviceParent(r *http.Request) ferry.ResourceID {
	return t.catalog.ResourceID().Child("products", r.PathValue("productName")).Child("deviceGroups", r.PathValue("deviceGroupName"))
}

// lookups caches the products and groups of one request, to build the IDs
// of list items without asking the store twice.
type lookups struct {
	svc      *sphere.Service
	products map[string]*ferry.Product
	groups   map[string]*ferry.DeviceGroup
}

func newLookups(svc *sphere.Service) *lookups {
	return &lookups{svc: svc, products: map[string]*ferry.Product{}, groups: map[string]*ferry.DeviceGroup{}}
}

func (l *lookups) product(ctx context.Context, id string) (*ferry.Product, error) {
	if id == "" {
		return nil, nil
	}
	if p, ok := l.products[id]; ok {
		return p, nil
	}
	p, err := l.svc.GetProduct(ctx, id)
	if err != nil {
		return nil, err
	}
	l.products[id] = p
	return p, nil
}

func (l *lookups) group(ctx context.Context, id string) (*ferry.DeviceGroup, error) {
	if id == "" {
		return nil, nil
	}
	if g, ok := l.groups[id]; ok {
		return g, nil
	}
	g, err := l.svc.GetDeviceGroup(ctx, id)
	if err != nil {
		return nil, err
	}
	l.groups[id] = g
	return g, nil
}

// parseGroupRef resolves a device group reference of a request body: the
// device group's ARM ID or its GUID, in catalog c. An empty reference, or
// an ARM ID naming ".unassigned"/".default", means the catalog level ("").
func (a *api) parseGroupRef(ctx context.Context, c *ferry.Catalog, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", nil
	}
	if ferry.IsUUID(ref) {
		g, err := a.svc.GetDeviceGroup(ctx, ref)
		if err != nil || g.CatalogID != c.TenantID {
			return "", arm.InvalidContent("properties.deviceGroupId", "The device group '%s' was not found in the catalog.", ref)
		}
		return g.ID, nil
	}
	id, err := ferry.ParseResourceID(ref)
	if err != nil || len(id.Types) != 3 || !strings.EqualFold(id.Types[2], "deviceGroups") ||
		!ferry.ScopeContains(c.ResourceID().String(), id.String()) {
		return "", arm.InvalidContent("properties.deviceGroupId", "The device group ID '%s' is not a device group of the catalog.", ref)
	}
	pn, gn := id.Names[1], id.Names[2]
	if sphere.IsSystemName(pn) && sphere.IsSystemName(gn) {
		return "", nil
	}
	p, err := a.svc.GetProductByName(ctx, c.TenantID, pn)
	if err != nil {
		return "", arm.InvalidContent("properties.deviceGroupId", "The device group '%s' was not found.", ref)
	}
	g, err := a.svc.GetDeviceGroupByName(ctx, p.ID, gn)
	if err != nil {
		return "", arm.InvalidContent("properties.deviceGroupId", "The device group '%s' was not found.", ref)
	}
	return g.ID, nil
}
