package sphere

import (
	"context"
	"fmt"

	"github.com/ferry-iot/ferry"
)

// Claim is where claimed devices go: a catalog, and optionally a device
// group in it (empty: the catalog only, ".unassigned").
type Claim struct {
	CatalogID     string
	DeviceGroupID string
}

// target resolves a claim's device group, checking it is in the catalog.
func target(ctx context.Context, tx ferry.Tx, cl Claim) (*ferry.Catalog, *ferry.DeviceGroup, error) {
	c, err := tx.GetCatalog(ctx, cl.CatalogID)
	if err != nil {
		return nil, nil, err
	}
	if cl.DeviceGroupID == "" {
		return c, nil, nil
	}
	g, err := tx.GetDeviceGroup(ctx, cl.DeviceGroupID)
	if ferry.IsCode(err, ferry.ENOTFOUND) || (err == nil && g.CatalogID != c.TenantID) {
		return nil, nil, ferry.Errorf(ferry.ENOTFOUND, "The device group was not found in the catalog.")
	}
	if err != nil {
		return nil, nil, err
	}
	return c, g, nil
}

// ClaimDevices claims up to MaxClaimDevices devices to a catalog (and
// device group), in one transaction, and records a BulkDeviceClaim
// operation. Claiming is irreversible. A device already claimed to the
// catalog stays claimed and moves to the group when one is given; a device
// claimed to another catalog fails the whole claim with ECONFLICT. Returns
// EINVALID for an empty or oversized list or a bad device ID, ENOTFOUND for
// an unknown catalog or group.
func (s *Service) ClaimDevices(ctx context.Context, cl Claim, deviceIDs []string) (*ferry.Operation, error) {
	if len(deviceIDs) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "At least one device ID is required.")
	}
	if len(deviceIDs) > MaxClaimDevices {
		return nil, ferry.Errorf(ferry.EINVALID, "At most %d devices can be claimed at once; %d were given.", MaxClaimDevices, len(deviceIDs))
	}
	ids := make([]string, 0, len(deviceIDs))
	seen := map[string]bool{}
	for _, id := range deviceIDs {
		n, err := NormalizeDeviceID(id)
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			ids = append(ids, n)
		}
	}
	var op *ferry.Operation
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		c, g, err := target(ctx, tx, cl)
		if err != nil {
			return err
		}
		existing, err := tx.ListDevices(ctx, ferry.DeviceFilter{IDs: ids, ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}})
		if err != nil {
			return err
		}
		held := map[string]*ferry.Device{}
		for _, d := range existing.Items {
			if d.CatalogID != c.TenantID {
				return ferry.Errorf(ferry.ECONFLICT, "The device '%s' is already claimed to a different catalog. Claiming is irreversible.", truncate(d.ID, 16))
			}
			held[d.ID] = d
		}
		for _, id := range ids {
			if d, ok := held[id]; ok {
				if g != nil && d.DeviceGroupID != g.ID {
					if err := s.move(ctx, tx, d, g, ""); err != nil {
						return err
					}
				}
				continue
			}
			if err := s.createDevice(ctx, tx, c, g, &ferry.Device{ID: id}); err != nil {
				return err
			}
		}
		op, err = s.record(ctx, tx, ferry.OpBulkDeviceClaim, c.TenantID, claimResource(ctx, tx, c, g))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim devices: %w", err)
	}
	return op, nil
}

func claimResource(ctx context.Context, tx ferry.Tx, c *ferry.Catalog, g *ferry.DeviceGroup) string {
	if g == nil || !c.Integrated() {
		return catalogResource(c)
	}
	p, err := tx.GetProduct(ctx, g.ProductID)
	if err != nil {
		return catalogResource(c)
	}
	return DeviceGroupResourceID(c, p, g).String()
}

func (s *Service) createDevice(ctx context.Context, tx ferry.Tx, c *ferry.Catalog, g *ferry.DeviceGroup, d *ferry.Device) error {
	d.CatalogID, d.ProductID, d.DeviceGroupID = c.TenantID, "", ""
	if g != nil {
		d.ProductID, d.DeviceGroupID = g.ProductID, g.ID
	}
	if d.ChipSKU == "" {
		d.ChipSKU = "MT3620AN"
	}
	d.ClaimedAt = s.Now()
	s.touch(ctx, &d.SystemData)
	return tx.CreateDevice(ctx, d)
}

// ClaimDevice claims one device (the integrated surface's device PUT) and
// reports whether it was newly claimed. A device already claimed to the
// catalog moves to the claim's group (or to the catalog level). Returns
// EINVALID for a bad ID, ENOTFOUND for an unknown catalog or group, and
// ECONFLICT if another catalog holds the device.
func (s *Service) ClaimDevice(ctx context.Context, cl Claim, deviceID string) (*ferry.Device, bool, error) {
	id, err := NormalizeDeviceID(deviceID)
	if err != nil {
		return nil, false, err
	}
	var d *ferry.Device
	created := false
	err = s.store.WithTx(ctx, func(tx ferry.Tx) error {
		c, g, err := target(ctx, tx, cl)
		if err != nil {
			return err
		}
		cur, err := tx.GetDevice(ctx, id)
		switch {
		case ferry.IsCode(err, ferry.ENOTFOUND):
			d, created = &ferry.Device{ID: id}, true
			if err := s.createDevice(ctx, tx, c, g, d); err != nil {
				return err
			}
			_, err = s.record(ctx, tx, ferry.OpDeviceClaim, c.TenantID, claimResource(ctx, tx, c, g))
			return err
		case err != nil:
			return err
		case cur.CatalogID != c.TenantID:
			return ferry.Errorf(ferry.ECONFLICT, "The device '%s' is already claimed to a different catalog. Claiming is irreversible.", truncate(id, 16))
		}
		d = cur
		if (g == nil && d.DeviceGroupID == "") || (g != nil && d.DeviceGroupID == g.ID) {
			return nil
		}
		return s.move(ctx, tx, d, g, "")
	})
	if err != nil {
		return nil, false, fmt.Errorf("claim device: %w", err)
	}
	return d, created, nil
}

func (s *Service) move(ctx context.Context, tx ferry.Tx, d *ferry.Device, g *ferry.DeviceGroup, ifMatch string) error {
	d.ProductID, d.DeviceGroupID = "", ""
	if g != nil {
		d.ProductID, d.DeviceGroupID = g.ProductID, g.ID
	}
	s.touch(ctx, &d.SystemData)
	return tx.UpdateDevice(ctx, d, ifMatch)
}

// MoveDevice moves a claimed device to another device group of its catalog,
// or to the catalog level when deviceGroupID is empty, if ifMatch matches.
// Returns ENOTFOUND for an unknown device or a group outside the device's
// catalog, EPRECONDITION.
func (s *Service) MoveDevice(ctx context.Context, deviceID, deviceGroupID, ifMatch string) (*ferry.Device, error) {
	var d *ferry.Device
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		var err error
		if d, err = tx.GetDevice(ctx, deviceID); err != nil {
			return err
		}
		_, g, err := target(ctx, tx, Claim{CatalogID: d.CatalogID, DeviceGroupID: deviceGroupID})
		if err != nil {
			return err
		}
		return s.move(ctx, tx, d, g, ifMatch)
	})
	if err != nil {
		return nil, fmt.Errorf("move device: %w", err)
	}
	return d, nil
}

// GetDevice returns a claimed device (ID case-insensitive). Returns ENOTFOUND.
func (s *Service) GetDevice(ctx context.Context, id string) (*ferry.Device, error) {
	d, err := s.store.GetDevice(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get device: %w", err)
	}
	return d, nil
}

// ListDevices returns a page of claimed devices.
func (s *Service) ListDevices(ctx context.Context, f ferry.DeviceFilter) (ferry.Page[*ferry.Device], error) {
	p, err := s.store.ListDevices(ctx, f)
	if err != nil {
		return p, fmt.Errorf("list devices: %w", err)
	}
	return p, nil
}

// DeleteDevice refuses: claiming is irreversible, so a device never leaves
// its catalog. Returns ENOTFOUND for an unknown device and ECONFLICT
// otherwise; move the device to the catalog level instead.
func (s *Service) DeleteDevice(ctx context.Context, id string) error {
	d, err := s.store.GetDevice(ctx, id)
	if err != nil {
		return fmt.Errorf("delete device: %w", err)
	}
	return ferry.Errorf(ferry.ECONFLICT, "The device '%s' cannot be removed from its catalog: claiming is irreversible. Move it to '.unassigned' instead.", truncate(d.ID, 16))
}
