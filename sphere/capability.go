package sphere

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ferry-iot/ferry"
)

// Device capabilities a capability image can grant.
const (
	CapabilityApplicationDevelopment = "ApplicationDevelopment"
	CapabilityFieldServicing         = "FieldServicing"
)

// CapabilityImage is the signed statement a capability image carries.
// Ferry's images are JSON, signed (ECDSA P-256, SHA-256) by the catalog's
// active CA over the JSON of the image with an empty Signature.
type CapabilityImage struct {
	DeviceID     string    `json:"deviceId"`
	CatalogID    string    `json:"catalogId"`
	Capabilities []string  `json:"capabilities"`
	IssuedAt     time.Time `json:"issuedAt"`
	Issuer       string    `json:"issuer"` // the CA certificate's serial number
	Signature    []byte    `json:"signature,omitempty"`
}

// GenerateCapabilityImage returns a capability image for a claimed device,
// signed by its catalog's active CA. Returns EINVALID for no or unknown
// capabilities, ENOTFOUND for an unknown device.
func (s *Service) GenerateCapabilityImage(ctx context.Context, deviceID string, capabilities []string) ([]byte, error) {
	if len(capabilities) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "At least one capability is required.")
	}
	for _, c := range capabilities {
		if c != CapabilityApplicationDevelopment && c != CapabilityFieldServicing {
			return nil, ferry.Errorf(ferry.EINVALID, "The capability '%s' is not valid. Allowed values are: %s, %s.", c, CapabilityApplicationDevelopment, CapabilityFieldServicing)
		}
	}
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return nil, fmt.Errorf("generate capability image: %w", err)
	}
	ca, err := s.store.GetCertificate(ctx, d.CatalogID, ferry.DefaultName)
	if err != nil {
		return nil, fmt.Errorf("generate capability image: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(ca.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("generate capability image: parse CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, ferry.Errorf(ferry.EINTERNAL, "generate capability image: CA key cannot sign")
	}
	caps := slices.Clone(capabilities)
	slices.Sort(caps)
	img := CapabilityImage{DeviceID: d.ID, CatalogID: d.CatalogID, Capabilities: slices.Compact(caps), IssuedAt: s.Now(), Issuer: ca.SerialNumber}
	body, err := json.Marshal(img)
	if err != nil {
		return nil, fmt.Errorf("generate capability image: %w", err)
	}
	sum := sha256.Sum256(body)
	if img.Signature, err = signer.Sign(rand.Reader, sum[:], crypto.SHA256); err != nil {
		return nil, fmt.Errorf("generate capability image: sign: %w", err)
	}
	out, err := json.Marshal(img)
	if err != nil {
		return nil, fmt.Errorf("generate capability image: %w", err)
	}
	return out, nil
}
