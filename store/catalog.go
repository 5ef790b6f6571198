package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferry-iot/ferry"
)

var subscriptions = &table[ferry.Subscription]{
	name: "subscriptions", what: "subscription",
	key: []string{"id"},
	row: func(s *ferry.Subscription) []any { return []any{s.ID} },
}

// PutSubscription creates or replaces a subscription.
func (o *ops) PutSubscription(ctx context.Context, s *ferry.Subscription) error {
	if s.ID == "" {
		return ferry.Errorf(ferry.EINVALID, "A subscription needs an ID.")
	}
	return subscriptions.upsert(ctx, o.d, o.wq(), s)
}

// GetSubscription returns a subscription.
func (o *ops) GetSubscription(ctx context.Context, id string) (*ferry.Subscription, error) {
	return subscriptions.getKey(ctx, o.rq(), id)
}

// ListSubscriptions returns a page of subscriptions ordered by ID.
func (o *ops) ListSubscriptions(ctx context.Context, opt ferry.ListOptions) (ferry.Page[*ferry.Subscription], error) {
	return subscriptions.list(ctx, o.rq(), nil, []string{"id"}, false, opt)
}

var resourceGroups = &table[ferry.ResourceGroup]{
	name: "resource_groups", what: "resource group",
	key: []string{"subscription_id", "name_lc"},
	row: func(g *ferry.ResourceGroup) []any { return []any{g.SubscriptionID, lower(g.Name)} },
}

// PutResourceGroup creates or replaces a resource group.
func (o *ops) PutResourceGroup(ctx context.Context, g *ferry.ResourceGroup) error {
	if g.SubscriptionID == "" || g.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A resource group needs a subscription and a name.")
	}
	err := resourceGroups.upsert(ctx, o.d, o.wq(), g)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("The subscription %s was not found.", g.SubscriptionID), err)
	}
	return err
}

// GetResourceGroup returns a resource group (name case-insensitive).
func (o *ops) GetResourceGroup(ctx context.Context, subscriptionID, name string) (*ferry.ResourceGroup, error) {
	return resourceGroups.getKey(ctx, o.rq(), subscriptionID, lower(name))
}

// ListResourceGroups returns a page of a subscription's resource groups.
func (o *ops) ListResourceGroups(ctx context.Context, subscriptionID string, opt ferry.ListOptions) (ferry.Page[*ferry.ResourceGroup], error) {
	return resourceGroups.list(ctx, o.rq(), (&cond{}).eq("subscription_id", subscriptionID), []string{"name_lc"}, false, opt)
}

// DeleteResourceGroup removes an empty resource group.
func (o *ops) DeleteResourceGroup(ctx context.Context, subscriptionID, name string) error {
	return o.write(ctx, func(q querier) error {
		for _, tbl := range []string{"catalogs", "hubs", "provisioning_services", "migrations"} {
			var one int
			err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tbl+" WHERE subscription_id = $1 AND rg_lc = $2",
				subscriptionID, lower(name)).Scan(&one)
			if err != nil {
				return fmt.Errorf("delete resource group: %w", err)
			}
			if one > 0 {
				return ferry.Errorf(ferry.ECONFLICT, "The resource group %s still holds resources.", name)
			}
		}
		return resourceGroups.del(ctx, o.d, q, []any{subscriptionID, lower(name)}, "")
	})
}

var catalogs = &table[ferry.Catalog]{
	name: "catalogs", what: "catalog",
	key: []string{"tenant_id"}, cols: []string{"subscription_id", "rg_lc", "name_lc"},
	row: func(c *ferry.Catalog) []any {
		return []any{c.TenantID, nullable(c.SubscriptionID), nullable(lower(c.ResourceGroup)), nullable(lower(c.Name))}
	},
	etag: func(c *ferry.Catalog) *string { return &c.ETag },
}

// CreateCatalog stores a new catalog and sets its ETag.
func (o *ops) CreateCatalog(ctx context.Context, c *ferry.Catalog) error {
	if c.TenantID == "" {
		return ferry.Errorf(ferry.EINVALID, "A catalog needs a tenant ID.")
	}
	return catalogs.insert(ctx, o.d, o.wq(), c)
}

// GetCatalog returns a catalog by tenant ID.
func (o *ops) GetCatalog(ctx context.Context, tenantID string) (*ferry.Catalog, error) {
	return catalogs.getKey(ctx, o.rq(), tenantID)
}

// GetCatalogByName returns a catalog by ARM location (case-insensitive).
func (o *ops) GetCatalogByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*ferry.Catalog, error) {
	return catalogs.get(ctx, o.rq(), (&cond{}).eq("subscription_id", subscriptionID).eq("rg_lc", lower(resourceGroup)).eq("name_lc", lower(name)))
}

// ListCatalogs returns a page of catalogs ordered by tenant ID.
func (o *ops) ListCatalogs(ctx context.Context, f ferry.CatalogFilter) (ferry.Page[*ferry.Catalog], error) {
	c := &cond{}
	if f.SubscriptionID != "" {
		c.eq("subscription_id", f.SubscriptionID)
	}
	if f.ResourceGroup != "" {
		c.eq("rg_lc", lower(f.ResourceGroup))
	}
	if f.TenantIDs != nil {
		c.in("tenant_id", f.TenantIDs)
	}
	if f.LegacyOnly {
		c.add("name_lc IS NULL")
	}
	return catalogs.list(ctx, o.rq(), c, []string{"tenant_id"}, false, f.ListOptions)
}

// UpdateCatalog replaces a catalog if ifMatch matches its ETag.
func (o *ops) UpdateCatalog(ctx context.Context, c *ferry.Catalog, ifMatch string) error {
	return catalogs.update(ctx, o.d, o.wq(), c, ifMatch)
}

// DeleteCatalog removes a catalog and everything in it.
func (o *ops) DeleteCatalog(ctx context.Context, tenantID string) error {
	return o.write(ctx, func(q querier) error {
		// Children before parents: PostgreSQL checks the references
		// between the cascaded tables row by row. The last four tables keep
		// the tenant without a foreign key.
		for _, tbl := range []string{"deployments", "devices", "device_groups", "products", "images",
			"legacy_roles", "certificates", "operations", "device_insights"} {
			if _, err := q.ExecContext(ctx, "DELETE FROM "+tbl+" WHERE catalog_id = $1", tenantID); err != nil {
				return fmt.Errorf("delete catalog: %w", err)
			}
		}
		return catalogs.del(ctx, o.d, q, []any{tenantID}, "")
	})
}

var products = &table[ferry.Product]{
	name: "products", what: "product",
	key: []string{"id"}, cols: []string{"catalog_id", "name_lc"},
	row:  func(p *ferry.Product) []any { return []any{p.ID, p.CatalogID, lower(p.Name)} },
	etag: func(p *ferry.Product) *string { return &p.ETag },
}

// CreateProduct stores a product.
func (o *ops) CreateProduct(ctx context.Context, p *ferry.Product) error {
	if p.ID == "" || p.CatalogID == "" || p.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A product needs an ID, a catalog and a name.")
	}
	return products.insert(ctx, o.d, o.wq(), p)
}

// GetProduct returns a product by ID.
func (o *ops) GetProduct(ctx context.Context, id string) (*ferry.Product, error) {
	return products.getKey(ctx, o.rq(), id)
}

// ListProducts returns a page of products ordered by ID.
func (o *ops) ListProducts(ctx context.Context, f ferry.ProductFilter) (ferry.Page[*ferry.Product], error) {
	c := (&cond{}).eq("catalog_id", f.CatalogID)
	if f.Name != "" {
		c.eq("name_lc", lower(f.Name))
	}
	return products.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// UpdateProduct replaces a product if ifMatch matches.
func (o *ops) UpdateProduct(ctx context.Context, p *ferry.Product, ifMatch string) error {
	return products.update(ctx, o.d, o.wq(), p, ifMatch)
}

// DeleteProduct removes a product; ECONFLICT while groups or devices use it.
func (o *ops) DeleteProduct(ctx context.Context, id string) error {
	return products.del(ctx, o.d, o.wq(), []any{id}, "")
}

var deviceGroups = &table[ferry.DeviceGroup]{
	name: "device_groups", what: "device group",
	key: []string{"id"}, cols: []string{"catalog_id", "product_id", "name_lc"},
	row:  func(g *ferry.DeviceGroup) []any { return []any{g.ID, g.CatalogID, g.ProductID, lower(g.Name)} },
	etag: func(g *ferry.DeviceGroup) *string { return &g.ETag },
}

// CreateDeviceGroup stores a group.
func (o *ops) CreateDeviceGroup(ctx context.Context, g *ferry.DeviceGroup) error {
	if g.ID == "" || g.ProductID == "" || g.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A device group needs an ID, a product and a name.")
	}
	return o.write(ctx, func(q querier) error {
		p, err := products.getKey(ctx, q, g.ProductID)
		if err != nil {
			return err
		}
		if g.CatalogID == "" {
			g.CatalogID = p.CatalogID
		}
		return deviceGroups.insert(ctx, o.d, q, g)
	})
}

// GetDeviceGroup returns a group by ID.
func (o *ops) GetDeviceGroup(ctx context.Context, id string) (*ferry.DeviceGroup, error) {
	return deviceGroups.getKey(ctx, o.rq(), id)
}

// ListDeviceGroups returns a page of groups ordered by ID.
func (o *ops) ListDeviceGroups(ctx context.Context, f ferry.DeviceGroupFilter) (ferry.Page[*ferry.DeviceGroup], error) {
	c := &cond{}
	if f.CatalogID != "" {
		c.eq("catalog_id", f.CatalogID)
	}
	if f.ProductID != "" {
		c.eq("product_id", f.ProductID)
	}
	if f.CatalogID == "" && f.ProductID == "" {
		return ferry.Page[*ferry.DeviceGroup]{}, ferry.Errorf(ferry.EINVALID, "A catalog or a product is required.")
	}
	if f.Name != "" {
		c.eq("name_lc", lower(f.Name))
	}
	return deviceGroups.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// UpdateDeviceGroup replaces a group if ifMatch matches.
func (o *ops) UpdateDeviceGroup(ctx context.Context, g *ferry.DeviceGroup, ifMatch string) error {
	return deviceGroups.update(ctx, o.d, o.wq(), g, ifMatch)
}

// DeleteDeviceGroup removes a group and its deployments.
func (o *ops) DeleteDeviceGroup(ctx context.Context, id string) error {
	return deviceGroups.del(ctx, o.d, o.wq(), []any{id}, "")
}

var devices = &table[ferry.Device]{
	name: "devices", what: "device",
	key: []string{"id"}, cols: []string{"catalog_id", "product_id", "device_group_id"},
	row: func(d *ferry.Device) []any {
		return []any{d.ID, d.CatalogID, nullable(d.ProductID), nullable(d.DeviceGroupID)}
	},
	etag: func(d *ferry.Device) *string { return &d.ETag },
}

// CreateDevice claims a device.
func (o *ops) CreateDevice(ctx context.Context, d *ferry.Device) error {
	if d.ID == "" || d.CatalogID == "" {
		return ferry.Errorf(ferry.EINVALID, "A device needs an ID and a catalog.")
	}
	d.ID = strings.ToUpper(d.ID)
	return devices.insert(ctx, o.d, o.wq(), d)
}

// GetDevice returns a device (ID case-insensitive).
func (o *ops) GetDevice(ctx context.Context, id string) (*ferry.Device, error) {
	return devices.getKey(ctx, o.rq(), strings.ToUpper(id))
}

func deviceCond(f ferry.DeviceFilter) *cond {
	c := &cond{}
	if f.CatalogID != "" {
		c.eq("catalog_id", f.CatalogID)
	}
	if f.ProductID != "" {
		c.eq("product_id", f.ProductID)
	}
	if f.DeviceGroupID != "" {
		c.eq("device_group_id", f.DeviceGroupID)
	}
	if f.Unassigned {
		c.add("device_group_id IS NULL")
	}
	if f.IDs != nil {
		up := make([]string, len(f.IDs))
		for i, id := range f.IDs {
			up[i] = strings.ToUpper(id)
		}
		c.in("id", up)
	}
	return c
}

// ListDevices returns a page of devices ordered by ID.
func (o *ops) ListDevices(ctx context.Context, f ferry.DeviceFilter) (ferry.Page[*ferry.Device], error) {
	return devices.list(ctx, o.rq(), deviceCond(f), []string{"id"}, false, f.ListOptions)
}

// CountDevices counts the devices that match f.
func (o *ops) CountDevices(ctx context.Context, f ferry.DeviceFilter) (int, error) {
	return devices.count(ctx, o.rq(), deviceCond(f))
}

// UpdateDevice replaces a device if ifMatch matches.
func (o *ops) UpdateDevice(ctx context.Context, d *ferry.Device, ifMatch string) error {
	d.ID = strings.ToUpper(d.ID)
	return devices.update(ctx, o.d, o.wq(), d, ifMatch)
}

// DeleteDevice removes a device record.
func (o *ops) DeleteDevice(ctx context.Context, id string) error {
	return devices.del(ctx, o.d, o.wq(), []any{strings.ToUpper(id)}, "")
}

var images = &table[ferry.Image]{
	name: "images", what: "image",
	key: []string{"id"}, cols: []string{"catalog_id"},
	row: func(i *ferry.Image) []any { return []any{i.ID, i.CatalogID} },
}

// CreateImage stores an image and its bytes.
func (o *ops) CreateImage(ctx context.Context, img *ferry.Image, content []byte) error {
	if img.ID == "" || img.CatalogID == "" {
		return ferry.Errorf(ferry.EINVALID, "An image needs an ID and a catalog.")
	}
	if content == nil {
		content = []byte{}
	}
	return o.write(ctx, func(q querier) error {
		if err := images.insert(ctx, o.d, q, img); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, "INSERT INTO image_contents (id, content) VALUES ($1, $2)", img.ID, content); err != nil {
			return fmt.Errorf("store image: %w", o.d.mapErr(err, "image"))
		}
		return nil
	})
}

// GetImage returns image metadata.
func (o *ops) GetImage(ctx context.Context, id string) (*ferry.Image, error) {
	return images.getKey(ctx, o.rq(), id)
}

// GetImageContent returns an image's bytes.
func (o *ops) GetImageContent(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := o.rq().QueryRowContext(ctx, "SELECT content FROM image_contents WHERE id = $1", id).Scan(&b)
	if err != nil {
		if isNoRows(err) {
			return nil, images.notFound()
		}
		return nil, fmt.Errorf("read image: %w", err)
	}
	return b, nil
}

// ListImages returns a page of a catalog's images ordered by ID.
func (o *ops) ListImages(ctx context.Context, f ferry.ImageFilter) (ferry.Page[*ferry.Image], error) {
	return images.list(ctx, o.rq(), (&cond{}).eq("catalog_id", f.CatalogID), []string{"id"}, false, f.ListOptions)
}

// DeleteImage removes an image; ECONFLICT while a deployment references it.
func (o *ops) DeleteImage(ctx context.Context, id string) error {
	return images.del(ctx, o.d, o.wq(), []any{id}, "")
}

var deployments = &table[ferry.Deployment]{
	name: "deployments", what: "deployment",
	key: []string{"id"}, cols: []string{"catalog_id", "device_group_id", "name_lc", "deployed_ns"},
	row: func(d *ferry.Deployment) []any {
		return []any{d.ID, d.CatalogID, d.DeviceGroupID, lower(d.Name), nanos(d.DeployedAt)}
	},
}

// CreateDeployment stores a deployment.
func (o *ops) CreateDeployment(ctx context.Context, d *ferry.Deployment) error {
	if d.ID == "" || d.DeviceGroupID == "" {
		return ferry.Errorf(ferry.EINVALID, "A deployment needs an ID and a device group.")
	}
	if d.Name == "" {
		d.Name = d.ID
	}
	return o.write(ctx, func(q querier) error {
		g, err := deviceGroups.getKey(ctx, q, d.DeviceGroupID)
		if err != nil {
			return err
		}
		if d.CatalogID == "" {
			d.CatalogID = g.CatalogID
		}
		if err := deployments.insert(ctx, o.d, q, d); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, img := range d.ImageIDs {
			if seen[img] {
				continue
			}
			seen[img] = true
			if _, err := q.ExecContext(ctx, "INSERT INTO deployment_images (deployment_id, image_id) VALUES ($1, $2)", d.ID, img); err != nil {
				if o.d.constraint(err) == foreignKeyViolation {
					return ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("The image %s was not found.", img), err)
				}
				return fmt.Errorf("store deployment: %w", err)
			}
		}
		return nil
	})
}

// GetDeployment returns a deployment by ID.
func (o *ops) GetDeployment(ctx context.Context, id string) (*ferry.Deployment, error) {
	return deployments.getKey(ctx, o.rq(), id)
}

// GetDeploymentByName returns a group's deployment by ARM name; ".default"
// gives the newest one.
func (o *ops) GetDeploymentByName(ctx context.Context, deviceGroupID, name string) (*ferry.Deployment, error) {
	if name == ferry.DefaultName {
		all, err := deployments.list(ctx, o.rq(), (&cond{}).eq("device_group_id", deviceGroupID),
			[]string{"deployed_ns", "id"}, true, ferry.ListOptions{Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(all.Items) == 0 {
			return nil, deployments.notFound()
		}
		return all.Items[0], nil
	}
	return deployments.get(ctx, o.rq(), (&cond{}).eq("device_group_id", deviceGroupID).eq("name_lc", lower(name)))
}

// ListDeployments returns a page of deployments ordered by ID.
func (o *ops) ListDeployments(ctx context.Context, f ferry.DeploymentFilter) (ferry.Page[*ferry.Deployment], error) {
	c := &cond{}
	if f.CatalogID != "" {
		c.eq("catalog_id", f.CatalogID)
	}
	if f.DeviceGroupID != "" {
		c.eq("device_group_id", f.DeviceGroupID)
	}
	return deployments.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// DeleteDeployment removes a deployment.
func (o *ops) DeleteDeployment(ctx context.Context, id string) error {
	return deployments.del(ctx, o.d, o.wq(), []any{id}, "")
}

var certificates = &table[ferry.Certificate]{
	name: "certificates", what: "certificate",
	key: []string{"catalog_id", "serial"}, cols: []string{"created_ns", "status"},
	row: func(c *ferry.Certificate) []any {
		return []any{c.CatalogID, c.SerialNumber, nanos(c.CreatedAt), string(c.Status)}
	},
}

// CreateCertificate stores a certificate.
func (o *ops) CreateCertificate(ctx context.Context, c *ferry.Certificate) error {
	if c.CatalogID == "" || c.SerialNumber == "" {
		return ferry.Errorf(ferry.EINVALID, "A certificate needs a catalog and a serial number.")
	}
	return certificates.insert(ctx, o.d, o.wq(), c)
}

// GetCertificate returns a certificate by serial number; ".default" returns
// the active one.
func (o *ops) GetCertificate(ctx context.Context, catalogID, serial string) (*ferry.Certificate, error) {
	if serial == ferry.DefaultName {
		all, err := certificates.all(ctx, o.rq(), (&cond{}).eq("catalog_id", catalogID).eq("status", string(ferry.CertificateActive)),
			"created_ns DESC, serial DESC")
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, certificates.notFound()
		}
		return all[0], nil
	}
	return certificates.getKey(ctx, o.rq(), catalogID, serial)
}

// ListCertificates returns a catalog's certificates, newest first.
func (o *ops) ListCertificates(ctx context.Context, catalogID string) ([]*ferry.Certificate, error) {
	return certificates.all(ctx, o.rq(), (&cond{}).eq("catalog_id", catalogID), "created_ns DESC, serial DESC")
}

// UpdateCertificateStatus sets a certificate's status.
func (o *ops) UpdateCertificateStatus(ctx context.Context, catalogID, serial string, s ferry.CertificateStatus) error {
	return o.write(ctx, func(q querier) error {
		c, err := certificates.getForUpdate(ctx, o.d, q, catalogID, serial)
		if err != nil {
			return err
		}
		c.Status = s
		return certificates.update(ctx, o.d, q, c, "")
	})
}

var operations = &table[ferry.Operation]{
	name: "operations", what: "operation",
	key: []string{"id"}, cols: []string{"catalog_id"},
	row: func(op *ferry.Operation) []any { return []any{op.ID, nullable(op.CatalogID)} },
}

// CreateOperation stores an operation.
func (o *ops) CreateOperation(ctx context.Context, op *ferry.Operation) error {
	if op.ID == "" {
		return ferry.Errorf(ferry.EINVALID, "An operation needs an ID.")
	}
	return operations.insert(ctx, o.d, o.wq(), op)
}

// GetOperation returns an operation.
func (o *ops) GetOperation(ctx context.Context, id string) (*ferry.Operation, error) {
	return operations.getKey(ctx, o.rq(), id)
}

// UpdateOperation replaces an operation.
func (o *ops) UpdateOperation(ctx context.Context, op *ferry.Operation) error {
	return operations.update(ctx, o.d, o.wq(), op, "")
}

var deviceInsights = &table[ferry.DeviceInsight]{
	name: "device_insights", what: "device insight",
	key: []string{"id"}, cols: []string{"catalog_id", "device_id", "start_ns"},
	row: func(in *ferry.DeviceInsight) []any {
		return []any{in.ID, in.CatalogID, strings.ToUpper(in.DeviceID), nanos(in.Start)}
	},
}

// AddDeviceInsights stores insights.
func (o *ops) AddDeviceInsights(ctx context.Context, in []*ferry.DeviceInsight) error {
	if len(in) == 0 {
		return nil
	}
	return o.write(ctx, func(q querier) error {
		for _, x := range in {
			if x.ID == "" {
				x.ID = ferry.NewUUID()
			}
			if err := deviceInsights.insert(ctx, o.d, q, x); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListDeviceInsights returns a page of insights ordered by ID.
func (o *ops) ListDeviceInsights(ctx context.Context, f ferry.DeviceInsightFilter) (ferry.Page[*ferry.DeviceInsight], error) {
	c := (&cond{}).eq("catalog_id", f.CatalogID)
	if f.DeviceID != "" {
		c.eq("device_id", strings.ToUpper(f.DeviceID))
	}
	if !f.Since.IsZero() {
		c.add("start_ns >= ?", nanos(f.Since))
	}
	return deviceInsights.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}
