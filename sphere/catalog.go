package sphere

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/pki"
)

// CreateCatalog creates a catalog with its own certificate authority, in
// one transaction. A new tenant ID is assigned when c.TenantID is empty;
// the location defaults to "global" and legacy access to Enabled. A
// catalog created with an ARM name counts as integrated from the start.
// Returns EINVALID for a bad tenant ID and ECONFLICT if the tenant ID or
// the ARM name in its resource group is taken.
func (s *Service) CreateCatalog(ctx context.Context, c *ferry.Catalog) error {
	if c.TenantID == "" {
		c.TenantID = ferry.NewUUID()
	}
	if !ferry.IsUUID(c.TenantID) {
		return ferry.Errorf(ferry.EINVALID, "The tenant ID '%s' is not a GUID.", c.TenantID)
	}
	c.TenantID = strings.ToLower(c.TenantID)
	if c.Location == "" {
		c.Location = "global"
	}
	if c.LegacyAccess == "" {
		c.LegacyAccess = ferry.LegacyEnabled
	}
	if c.Integrated() && c.IntegratedAt.IsZero() {
		c.IntegratedAt = s.Now()
	}
	c.State = ferry.ProvisioningSucceeded
	s.touch(ctx, &c.SystemData)
	ca, err := s.newCatalogCA(c)
	if err != nil {
		return fmt.Errorf("create catalog: %w", err)
	}
	err = s.store.WithTx(ctx, func(tx ferry.Tx) error {
		if err := tx.CreateCatalog(ctx, c); err != nil {
			return err
		}
		if err := tx.CreateCertificate(ctx, ca); err != nil {
			return err
		}
		_, err := s.record(ctx, tx, ferry.OpTenantCreation, c.TenantID, catalogResource(c))
		return err
	})
	if err != nil {
		return fmt.Errorf("create catalog: %w", err)
	}
	return nil
}

// newCatalogCA returns a new CA certificate for a catalog.
func (s *Service) newCatalogCA(c *ferry.Catalog) (*ferry.Certificate, error) {
	name := c.Name
	if name == "" {
		name = c.LegacyName
	}
	now := s.Now()
	cert, key, err := pki.NewCA(fmt.Sprintf("Ferry catalog CA %s (%s)", name, c.TenantID), now)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	return &ferry.Certificate{
		CatalogID:    c.TenantID,
		SerialNumber: serialHex(cert.SerialNumber),
		Thumbprint:   strings.ToUpper(pki.ThumbprintSHA1(cert)),
		Subject:      cert.Subject.String(),
		DER:          cert.Raw,
		PrivateKey:   der,
		NotBefore:    cert.NotBefore,
		NotAfter:     cert.NotAfter,
		Status:       ferry.CertificateActive,
		CreatedAt:    now,
	}, nil
}

func serialHex(n *big.Int) string { return strings.ToUpper(n.Text(16)) }

// GetCatalog returns a catalog by tenant ID. Returns ENOTFOUND.
func (s *Service) GetCatalog(ctx context.Context, tenantID string) (*ferry.Catalog, error) {
	c, err := s.store.GetCatalog(ctx, strings.ToLower(tenantID))
	if err != nil {
		return nil, fmt.Errorf("get catalog: %w", err)
	}
	return c, nil
}

// GetCatalogByName returns a catalog by its ARM location. Returns ENOTFOUND.
func (s *Service) GetCatalogByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*ferry.Catalog, error) {
	c, err := s.store.GetCatalogByName(ctx, subscriptionID, resourceGroup, name)
	if err != nil {
		return nil, fmt.Errorf("get catalog: %w", err)
	}
	return c, nil
}

// ListCatalogs returns a page of catalogs.
func (s *Service) ListCatalogs(ctx context.Context, f ferry.CatalogFilter) (ferry.Page[*ferry.Catalog], error) {
	p, err := s.store.ListCatalogs(ctx, f)
	if err != nil {
		return p, fmt.Errorf("list catalogs: %w", err)
	}
	return p, nil
}

// UpdateCatalog replaces a catalog's changeable fields (tags, legacy name,
// legacy access) if ifMatch matches. Blocked legacy access is permanent:
// changing it returns ECONFLICT. Returns ENOTFOUND, EPRECONDITION.
func (s *Service) UpdateCatalog(ctx context.Context, c *ferry.Catalog, ifMatch string) error {
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		cur, err := tx.GetCatalog(ctx, c.TenantID)
		if err != nil {
			return err
		}
		if cur.LegacyAccess == ferry.LegacyBlocked && c.LegacyAccess != ferry.LegacyBlocked {
			return ferry.Errorf(ferry.ECONFLICT, "Legacy access to this catalog is blocked for good.")
		}
		c.SystemData = cur.SystemData
		s.touch(ctx, &c.SystemData)
		return tx.UpdateCatalog(ctx, c, ifMatch)
	})
	if err != nil {
		return fmt.Errorf("update catalog: %w", err)
	}
	return nil
}

// DeleteCatalog removes a catalog and everything in it. Returns ENOTFOUND.
func (s *Service) DeleteCatalog(ctx context.Context, tenantID string) error {
	if err := s.store.DeleteCatalog(ctx, strings.ToLower(tenantID)); err != nil {
		return fmt.Errorf("delete catalog: %w", err)
	}
	return nil
}

// CountDevices counts the devices that match f.
func (s *Service) CountDevices(ctx context.Context, f ferry.DeviceFilter) (int, error) {
	n, err := s.store.CountDevices(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("count devices: %w", err)
	}
	return n, nil
}

// ListDeviceInsights returns a page of a catalog's device insights.
func (s *Service) ListDeviceInsights(ctx context.Context, f ferry.DeviceInsightFilter) (ferry.Page[*ferry.DeviceInsight], error) {
	p, err := s.store.ListDeviceInsights(ctx, f)
	if err != nil {
		return p, fmt.Errorf("list device insights: %w", err)
	}
	return p, nil
}

// AddDeviceInsights stores error-reporting records of claimed devices.
// Returns ENOTFOUND if a device is not claimed to the insight's catalog.
func (s *Service) AddDeviceInsights(ctx context.Context, in []*ferry.DeviceInsight) error {
	for _, i := range in {
		d, err := s.store.GetDevice(ctx, i.DeviceID)
		if err != nil || d.CatalogID != i.CatalogID {
			return ferry.Errorf(ferry.ENOTFOUND, "The device %s is not claimed to the catalog.", truncate(i.DeviceID, 16))
		}
		i.DeviceID = d.ID
		if i.ID == "" {
			i.ID = ferry.NewUUID()
		}
	}
	if err := s.store.AddDeviceInsights(ctx, in); err != nil {
		return fmt.Errorf("add device insights: %w", err)
	}
	return nil
}

// Resource IDs. A catalog that is not integrated has no ARM ID; its
// resources are named by their legacy paths instead.

func catalogResource(c *ferry.Catalog) string {
	if c.Integrated() {
		return c.ResourceID().String()
	}
	return "/v2/tenants/" + c.TenantID
}

// ProductResourceID returns the ARM ID of a product.
func ProductResourceID(c *ferry.Catalog, p *ferry.Product) ferry.ResourceID {
	return c.ResourceID().Child("products", p.Name)
}

// DeviceGroupResourceID returns the ARM ID of a device group.
func DeviceGroupResourceID(c *ferry.Catalog, p *ferry.Product, g *ferry.DeviceGroup) ferry.ResourceID {
	return ProductResourceID(c, p).Child("deviceGroups", g.Name)
}

// DeviceResourceID returns the ARM ID of a device; p and g are nil for a
// device claimed to the catalog only (".unassigned").
func DeviceResourceID(c *ferry.Catalog, p *ferry.Product, g *ferry.DeviceGroup, d *ferry.Device) ferry.ResourceID {
	pn, gn := ferry.UnassignedName, ferry.UnassignedName
	if p != nil {
		pn = p.Name
	}
	if g != nil {
		gn = g.Name
	}
	return c.ResourceID().Child("products", pn).Child("deviceGroups", gn).Child("devices", d.ID)
}

// ImageResourceID returns the ARM ID of an image.
func ImageResourceID(c *ferry.Catalog, img *ferry.Image) ferry.ResourceID {
	return c.ResourceID().Child("images", img.ID)
}

// DeploymentResourceID returns the ARM ID of a deployment.
func DeploymentResourceID(c *ferry.Catalog, p *ferry.Product, g *ferry.DeviceGroup, d *ferry.Deployment) ferry.ResourceID {
	return DeviceGroupResourceID(c, p, g).Child("deployments", d.Name)
}

// CertificateResourceID returns the ARM ID of a catalog certificate.
func CertificateResourceID(c *ferry.Catalog, cert *ferry.Certificate) ferry.ResourceID {
	return c.ResourceID().Child("certificates", cert.SerialNumber)
}

func resourceOr(c *ferry.Catalog, id ferry.ResourceID, legacy string) string {
	if c.Integrated() {
		return id.String()
	}
	return "/v2/tenants/" + c.TenantID + legacy
}
