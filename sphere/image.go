package sphere

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ferry-iot/ferry"
)

// MaxImageBytes bounds an image package.
const MaxImageBytes = 32 << 20

// ImageUpload is an image package to store.
type ImageUpload struct {
	ID                   string // optional; a new GUID when empty
	CatalogID            string
	Content              []byte
	RegionalDataBoundary ferry.RegionalDataBoundary // "" is None
	// Metadata supplied by the caller; it wins over what the package holds
	// and defaults fill the rest.
	Name        string
	ComponentID string
	Description string
	Type        *ferry.ImageType
}

// ImageMetadata is what Ferry reads from an image package.
type ImageMetadata struct {
	Name        string
	ComponentID string
	Type        ferry.ImageType
}

// ParseImageMetadata reads the metadata of an image package. Ferry does
// not decode Azure Sphere's signed package format; it reads a trailing
// metadata line of the form "#ferry-image name=<n> componentId=<guid>
// type=<ImageType>" when present (the simulator's packages carry one) and
// otherwise defaults: the component is unknown and the type Applications.
func ParseImageMetadata(content []byte) ImageMetadata {
	m := ImageMetadata{Type: 10} // Applications
	s := string(content[max(0, len(content)-512):])
	i := strings.LastIndex(s, "#ferry-image ")
	if i < 0 {
		return m
	}
	line, _, _ := strings.Cut(s[i+len("#ferry-image "):], "\n")
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "name":
			m.Name = v
		case "componentId":
			if ferry.IsUUID(v) {
				m.ComponentID = strings.ToLower(v)
			}
		case "type":
			if t, err := ferry.ParseImageType(v); err == nil {
				m.Type = t
			}
		}
	}
	return m
}

// UploadImage stores an image package and records an ImageUpload
// operation, in one transaction. Returns EINVALID for empty or oversized
// content, a bad ID or boundary, ENOTFOUND for an unknown catalog, and
// ECONFLICT if the image ID is taken.
func (s *Service) UploadImage(ctx context.Context, in ImageUpload) (*ferry.Image, *ferry.Operation, error) {
	switch {
	case len(in.Content) == 0:
		return nil, nil, ferry.Errorf(ferry.EINVALID, "The image content is required.")
	case len(in.Content) > MaxImageBytes:
		return nil, nil, ferry.Errorf(ferry.EINVALID, "The image is larger than %d bytes.", MaxImageBytes)
	case in.ID != "" && !ferry.IsUUID(in.ID):
		return nil, nil, ferry.Errorf(ferry.EINVALID, "The image ID '%s' is not a GUID.", in.ID)
	}
	switch in.RegionalDataBoundary {
	case "":
		in.RegionalDataBoundary = ferry.BoundaryNone
	case ferry.BoundaryNone, ferry.BoundaryEU:
	default:
		return nil, nil, ferry.Errorf(ferry.EINVALID, "The regional data boundary '%s' is not valid.", in.RegionalDataBoundary)
	}
	meta := ParseImageMetadata(in.Content)
	sum := sha256.Sum256(in.Content)
	img := &ferry.Image{
		ID: strings.ToLower(in.ID), CatalogID: in.CatalogID, Name: meta.Name, ComponentID: meta.ComponentID,
		Description: in.Description, Type: meta.Type, RegionalDataBoundary: in.RegionalDataBoundary,
		Size: int64(len(in.Content)), SHA256: hex.EncodeToString(sum[:]),
	}
	if img.ID == "" {
		img.ID = ferry.NewUUID()
	}
	if in.Name != "" {
		img.Name = in.Name
	}
	if in.ComponentID != "" {
		img.ComponentID = strings.ToLower(in.ComponentID)
	}
	if in.Type != nil {
		img.Type = *in.Type
	}
	if img.ComponentID == "" {
		img.ComponentID = ferry.NewUUID()
	}
	if img.Name == "" {
		img.Name = "image-" + img.ID[:8]
	}
	s.touch(ctx, &img.SystemData)
	var op *ferry.Operation
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		c, err := tx.GetCatalog(ctx, in.CatalogID)
		if err != nil {
			return err
		}
		if err := tx.CreateImage(ctx, img, in.Content); err != nil {
			return err
		}
		op, err = s.record(ctx, tx, ferry.OpImageUpload, c.TenantID, resourceOr(c, ImageResourceID(c, img), "/images/"+img.ID))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("upload image: %w", err)
	}
	return img, op, nil
}

// GetImage returns an image's metadata. Returns ENOTFOUND.
func (s *Service) GetImage(ctx context.Context, id string) (*ferry.Image, error) {
	img, err := s.store.GetImage(ctx, strings.ToLower(id))
	if err != nil {
		return nil, fmt.Errorf("get image: %w", err)
	}
	return img, nil
}

// GetImageContent returns an image's bytes. Returns ENOTFOUND.
func (s *Service) GetImageContent(ctx context.Context, id string) ([]byte, error) {
	b, err := s.store.GetImageContent(ctx, strings.ToLower(id))
	if err != nil {
		return nil, fmt.Errorf("get image content: %w", err)
	}
	return b, nil
}

// ListImages returns a page of a catalog's images.
func (s *Service) ListImages(ctx context.Context, f ferry.ImageFilter) (ferry.Page[*ferry.Image], error) {
	p, err := s.store.ListImages(ctx, f)
	if err != nil {
		return p, fmt.Errorf("list images: %w", err)
	}
	return p, nil
}

// DeleteImage removes an image. Returns ENOTFOUND, or ECONFLICT while a
// deployment references it.
func (s *Service) DeleteImage(ctx context.Context, id string) error {
	if err := s.store.DeleteImage(ctx, strings.ToLower(id)); err != nil {
		return fmt.Errorf("delete image: %w", err)
	}
	return nil
}

// CreateDeployment deploys images to a device group and records a
// DeployToDeviceGroup operation, in one transaction. The name defaults to
// the deployment's ID (also for ".default"). Every image must belong to
// the group's catalog, and no two may share a component. Returns EINVALID,
// ENOTFOUND for an unknown group or image, ECONFLICT if the name is taken.
func (s *Service) CreateDeployment(ctx context.Context, d *ferry.Deployment) (*ferry.Operation, error) {
	if d.ID == "" {
		d.ID = ferry.NewUUID()
	}
	if !ferry.IsUUID(d.ID) {
		return nil, ferry.Errorf(ferry.EINVALID, "The deployment ID '%s' is not a GUID.", d.ID)
	}
	if d.Name == "" || strings.EqualFold(d.Name, ferry.DefaultName) {
		d.Name = d.ID
	}
	d.DeployedAt = s.Now()
	s.touch(ctx, &d.SystemData)
	var op *ferry.Operation
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		g, err := tx.GetDeviceGroup(ctx, d.DeviceGroupID)
		if err != nil {
			return err
		}
		d.CatalogID = g.CatalogID
		components := map[string]string{}
		for i, id := range d.ImageIDs {
			img, err := tx.GetImage(ctx, strings.ToLower(id))
			if ferry.IsCode(err, ferry.ENOTFOUND) || (err == nil && img.CatalogID != g.CatalogID) {
				return ferry.Errorf(ferry.ENOTFOUND, "The image '%s' was not found in the catalog.", id)
			}
			if err != nil {
				return err
			}
			if prev, ok := components[img.ComponentID]; ok && prev != img.ID {
				return ferry.Errorf(ferry.EINVALID, "The images '%s' and '%s' are of the same component; a deployment holds one image per component.", prev, img.ID)
			}
			components[img.ComponentID] = img.ID
			d.ImageIDs[i] = img.ID
		}
		if err := tx.CreateDeployment(ctx, d); err != nil {
			return err
		}
		c, err := tx.GetCatalog(ctx, g.CatalogID)
		if err != nil {
			return err
		}
		p, err := tx.GetProduct(ctx, g.ProductID)
		if err != nil {
			return err
		}
		op, err = s.record(ctx, tx, ferry.OpDeployToDeviceGroup, c.TenantID, resourceOr(c, DeploymentResourceID(c, p, g, d), "/devicegroups/"+g.ID+"/deployments"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	return op, nil
}

// GetDeploymentByName returns a group's deployment by name; ".default"
// gives the current (newest) one. Returns ENOTFOUND.
func (s *Service) GetDeploymentByName(ctx context.Context, deviceGroupID, name string) (*ferry.Deployment, error) {
	d, err := s.store.GetDeploymentByName(ctx, deviceGroupID, name)
	if err != nil {
		return nil, fmt.Errorf("get deployment: %w", err)
	}
	return d, nil
}

// GetDeployment returns a deployment by ID. Returns ENOTFOUND.
func (s *Service) GetDeployment(ctx context.Context, id string) (*ferry.Deployment, error) {
	d, err := s.store.GetDeployment(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get deployment: %w", err)
	}
	return d, nil
}

// ListDeployments returns a page of deployments.
func (s *Service) ListDeployments(ctx context.Context, f ferry.DeploymentFilter) (ferry.Page[*ferry.Deployment], error) {
	p, err := s.store.ListDeployments(ctx, f)
	if err != nil {
		return p, fmt.Errorf("list deployments: %w", err)
	}
	return p, nil
}

// DeleteDeployment removes a deployment. Returns ENOTFOUND.
func (s *Service) DeleteDeployment(ctx context.Context, id string) error {
	if err := s.store.DeleteDeployment(ctx, id); err != nil {
		return fmt.Errorf("delete deployment: %w", err)
	}
	return nil
}
