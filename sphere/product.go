package sphere

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferry-iot/ferry"
)

// CreateProduct creates a product in its catalog and, when withDefaults,
// the five default device groups of the domain, in one transaction. It
// records a CreateProduct operation. Returns EINVALID for a bad name,
// ENOTFOUND if the catalog does not exist, ECONFLICT if the name is taken.
func (s *Service) CreateProduct(ctx context.Context, p *ferry.Product, withDefaults bool) (*ferry.Operation, error) {
	if err := checkName("product", p.Name); err != nil {
		return nil, err
	}
	if p.ID == "" {
		p.ID = ferry.NewUUID()
	}
	s.touch(ctx, &p.SystemData)
	var op *ferry.Operation
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		c, err := tx.GetCatalog(ctx, p.CatalogID)
		if err != nil {
			return err
		}
		if err := tx.CreateProduct(ctx, p); err != nil {
			return err
		}
		if withDefaults {
			if _, err := s.generateDefaults(ctx, tx, p); err != nil {
				return err
			}
		}
		op, err = s.record(ctx, tx, ferry.OpCreateProduct, c.TenantID, resourceOr(c, ProductResourceID(c, p), "/products/"+p.ID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create product: %w", err)
	}
	return op, nil
}

// GetProduct returns a product by ID. Returns ENOTFOUND.
func (s *Service) GetProduct(ctx context.Context, id string) (*ferry.Product, error) {
	p, err := s.store.GetProduct(ctx, strings.ToLower(id))
	if err != nil {
		return nil, fmt.Errorf("get product: %w", err)
	}
	return p, nil
}

// GetProductByName returns a catalog's product by name (case-insensitive).
// Returns ENOTFOUND.
func (s *Service) GetProductByName(ctx context.Context, catalogID, name string) (*ferry.Product, error) {
	p, err := s.store.ListProducts(ctx, ferry.ProductFilter{CatalogID: catalogID, Name: name, ListOptions: ferry.ListOptions{Limit: 1}})
	if err != nil {
		return nil, fmt.Errorf("get product: %w", err)
	}
	if len(p.Items) == 0 {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "The product '%s' was not found.", name)
	}
	return p.Items[0], nil
}

// ListProducts returns a page of products.
func (s *Service) ListProducts(ctx context.Context, f ferry.ProductFilter) (ferry.Page[*ferry.Product], error) {
	p, err := s.store.ListProducts(ctx, f)
	if err != nil {
		return p, fmt.Errorf("list products: %w", err)
	}
	return p, nil
}

// UpdateProduct replaces a product's name and description if ifMatch
// matches. Returns EINVALID, ENOTFOUND, EPRECONDITION, or ECONFLICT when
// the new name is taken.
func (s *Service) UpdateProduct(ctx context.Context, p *ferry.Product, ifMatch string) error {
	if err := checkName("product", p.Name); err != nil {
		return err
	}
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		cur, err := tx.GetProduct(ctx, p.ID)
		if err != nil {
			return err
		}
		p.CatalogID, p.SystemData = cur.CatalogID, cur.SystemData
		s.touch(ctx, &p.SystemData)
		return tx.UpdateProduct(ctx, p, ifMatch)
	})
	if err != nil {
		return fmt.Errorf("update product: %w", err)
	}
	return nil
}

// DeleteProduct removes a product and records a DeleteProduct operation.
// Returns ENOTFOUND, or ECONFLICT while device groups belong to it.
func (s *Service) DeleteProduct(ctx context.Context, id string) (*ferry.Operation, error) {
	var op *ferry.Operation
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		p, err := tx.GetProduct(ctx, id)
		if err != nil {
			return err
		}
		groups, err := tx.ListDeviceGroups(ctx, ferry.DeviceGroupFilter{ProductID: p.ID, ListOptions: ferry.ListOptions{Limit: 1}})
		if err != nil {
			return err
		}
		if len(groups.Items) > 0 {
			return ferry.Errorf(ferry.ECONFLICT, "The product '%s' cannot be deleted because it has device groups. Delete its device groups first.", p.Name)
		}
		c, err := tx.GetCatalog(ctx, p.CatalogID)
		if err != nil {
			return err
		}
		if err := tx.DeleteProduct(ctx, p.ID); err != nil {
			return err
		}
		op, err = s.record(ctx, tx, ferry.OpDeleteProduct, c.TenantID, resourceOr(c, ProductResourceID(c, p), "/products/"+p.ID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete product: %w", err)
	}
	return op, nil
}

// GenerateDefaultDeviceGroups creates whichever of the five default device
// groups (ferry.DefaultDeviceGroups) the product lacks, in one
// transaction, and returns the five, existing or new. Returns ENOTFOUND.
func (s *Service) GenerateDefaultDeviceGroups(ctx context.Context, productID string) ([]*ferry.DeviceGroup, error) {
	var out []*ferry.DeviceGroup
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		p, err := tx.GetProduct(ctx, productID)
		if err != nil {
			return err
		}
		out, err = s.generateDefaults(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("generate default device groups: %w", err)
	}
	return out, nil
}

func (s *Service) generateDefaults(ctx context.Context, tx ferry.Tx, p *ferry.Product) ([]*ferry.DeviceGroup, error) {
	var out []*ferry.DeviceGroup
	for _, d := range ferry.DefaultDeviceGroups {
		cur, err := tx.ListDeviceGroups(ctx, ferry.DeviceGroupFilter{ProductID: p.ID, Name: d.Name, ListOptions: ferry.ListOptions{Limit: 1}})
		if err != nil {
			return nil, err
		}
		if len(cur.Items) > 0 {
			out = append(out, cur.Items[0])
			continue
		}
		g := d
		g.ID, g.CatalogID, g.ProductID = ferry.NewUUID(), p.CatalogID, p.ID
		s.touch(ctx, &g.SystemData)
		if err := tx.CreateDeviceGroup(ctx, &g); err != nil {
			return nil, err
		}
		out = append(out, &g)
	}
	return out, nil
}

// checkGroup validates a device group's settings, filling defaults.
func checkGroup(g *ferry.DeviceGroup) error {
	if err := checkName("device group", g.Name); err != nil {
		return err
	}
	switch g.OSFeedType {
	case "":
		g.OSFeedType = ferry.OSFeedRetail
	case ferry.OSFeedRetail, ferry.OSFeedRetailEval:
	default:
		return ferry.Errorf(ferry.EINVALID, "The OS feed type '%s' is not valid.", g.OSFeedType)
	}
	switch g.UpdatePolicy {
	case "":
		g.UpdatePolicy = ferry.UpdateAll
	case ferry.UpdateAll, ferry.No3rdPartyAppUpdates, ferry.NoUpdates:
	default:
		return ferry.Errorf(ferry.EINVALID, "The update policy '%s' is not valid.", g.UpdatePolicy)
	}
	switch g.RegionalDataBoundary {
	case "":
		g.RegionalDataBoundary = ferry.BoundaryNone
	case ferry.BoundaryNone, ferry.BoundaryEU:
	default:
		return ferry.Errorf(ferry.EINVALID, "The regional data boundary '%s' is not valid.", g.RegionalDataBoundary)
	}
	return nil
}

// CreateDeviceGroup creates a device group in its product, with defaults
// for unset settings (Retail, UpdateAll, None). Returns EINVALID,
// ENOTFOUND if the product does not exist, ECONFLICT if the name is taken.
func (s *Service) CreateDeviceGroup(ctx context.Context, g *ferry.DeviceGroup) error {
	if err := checkGroup(g); err != nil {
		return err
	}
	if g.ID == "" {
		g.ID = ferry.NewUUID()
	}
	s.touch(ctx, &g.SystemData)
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		p, err := tx.GetProduct(ctx, g.ProductID)
		if err != nil {
			return err
		}
		g.CatalogID = p.CatalogID
		return tx.CreateDeviceGroup(ctx, g)
	})
	if err != nil {
		return fmt.Errorf("create device group: %w", err)
	}
	return nil
}

// GetDeviceGroup returns a device group by ID. Returns ENOTFOUND.
func (s *Service) GetDeviceGroup(ctx context.Context, id string) (*ferry.DeviceGroup, error) {
	g, err := s.store.GetDeviceGroup(ctx, strings.ToLower(id))
	if err != nil {
		return nil, fmt.Errorf("get device group: %w", err)
	}
	return g, nil
}

// GetDeviceGroupByName returns a product's device group by name
// (case-insensitive). Returns ENOTFOUND.
func (s *Service) GetDeviceGroupByName(ctx context.Context, productID, name string) (*ferry.DeviceGroup, error) {
	p, err := s.store.ListDeviceGroups(ctx, ferry.DeviceGroupFilter{ProductID: productID, Name: name, ListOptions: ferry.ListOptions{Limit: 1}})
	if err != nil {
		return nil, fmt.Errorf("get device group: %w", err)
	}
	if len(p.Items) == 0 {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "The device group '%s' was not found.", name)
	}
	return p.Items[0], nil
}

// ListDeviceGroups returns a page of device groups.
func (s *Service) ListDeviceGroups(ctx context.Context, f ferry.DeviceGroupFilter) (ferry.Page[*ferry.DeviceGroup], error) {
	p, err := s.store.ListDeviceGroups(ctx, f)
	if err != nil {
		return p, fmt.Errorf("list device groups: %w", err)
	}
	return p, nil
}

// UpdateDeviceGroup replaces a device group's name, description and
// settings if ifMatch matches. Returns EINVALID, ENOTFOUND, EPRECONDITION,
// or ECONFLICT when the new name is taken.
func (s *Service) UpdateDeviceGroup(ctx context.Context, g *ferry.DeviceGroup, ifMatch string) error {
	if err := checkGroup(g); err != nil {
		return err
	}
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		cur, err := tx.GetDeviceGroup(ctx, g.ID)
		if err != nil {
			return err
		}
		g.CatalogID, g.ProductID, g.SystemData = cur.CatalogID, cur.ProductID, cur.SystemData
		s.touch(ctx, &g.SystemData)
		return tx.UpdateDeviceGroup(ctx, g, ifMatch)
	})
	if err != nil {
		return fmt.Errorf("update device group: %w", err)
	}
	return nil
}

// DeleteDeviceGroup removes a device group and its deployments and records
// a DeleteDeviceGroup operation. Returns ENOTFOUND, or ECONFLICT while
// devices belong to it.
func (s *Service) DeleteDeviceGroup(ctx context.Context, id string) (*ferry.Operation, error) {
	var op *ferry.Operation
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		g, err := tx.GetDeviceGroup(ctx, id)
		if err != nil {
			return err
		}
		n, err := tx.CountDevices(ctx, ferry.DeviceFilter{DeviceGroupID: g.ID})
		if err != nil {
			return err
		}
		if n > 0 {
			return ferry.Errorf(ferry.ECONFLICT, "The device group '%s' cannot be deleted because %d devices belong to it. Move them to another device group first.", g.Name, n)
		}
		c, err := tx.GetCatalog(ctx, g.CatalogID)
		if err != nil {
			return err
		}
		p, err := tx.GetProduct(ctx, g.ProductID)
		if err != nil {
			return err
		}
		if err := tx.DeleteDeviceGroup(ctx, g.ID); err != nil {
			return err
		}
		op, err = s.record(ctx, tx, ferry.OpDeleteDeviceGroup, c.TenantID, resourceOr(c, DeviceGroupResourceID(c, p, g), "/devicegroups/"+g.ID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete device group: %w", err)
	}
	return op, nil
}

// HasDeployment reports whether a device group has a current deployment.
func (s *Service) HasDeployment(ctx context.Context, groupID string) (bool, error) {
	p, err := s.store.ListDeployments(ctx, ferry.DeploymentFilter{DeviceGroupID: groupID, ListOptions: ferry.ListOptions{Limit: 1}})
	if err != nil {
		return false, fmt.Errorf("has deployment: %w", err)
	}
	return len(p.Items) > 0, nil
}
