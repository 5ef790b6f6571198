package sphere

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"regexp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/pki"
)

// GetCertificate returns a catalog CA certificate by serial number
// (".default": the active one), with its shown status (Expired included)
// and without its private key. Returns ENOTFOUND.
func (s *Service) GetCertificate(ctx context.Context, catalogID, serial string) (*ferry.Certificate, error) {
	c, err := s.store.GetCertificate(ctx, catalogID, serial)
	if err != nil {
		return nil, fmt.Errorf("get certificate: %w", err)
	}
	return s.shown(c), nil
}

func (s *Service) shown(c *ferry.Certificate) *ferry.Certificate {
	out := *c
	out.PrivateKey = nil
	out.Status = c.StatusAt(s.Now())
	return &out
}

// ListCertificates returns a catalog's CA certificates, newest first,
// without private keys.
func (s *Service) ListCertificates(ctx context.Context, catalogID string) ([]*ferry.Certificate, error) {
	cs, err := s.store.ListCertificates(ctx, catalogID)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	for i, c := range cs {
		cs[i] = s.shown(c)
	}
	return cs, nil
}

// CertificateChain returns the chain of a catalog certificate, leaf first,
// as DER certificates. A catalog CA is a root, so its chain is itself.
// Returns ENOTFOUND.
func (s *Service) CertificateChain(ctx context.Context, catalogID, serial string) ([][]byte, error) {
	c, err := s.store.GetCertificate(ctx, catalogID, serial)
	if err != nil {
		return nil, fmt.Errorf("certificate chain: %w", err)
	}
	return [][]byte{c.DER}, nil
}

var noncePattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,128}$`)

// ProofOfPossession signs a proof-of-possession certificate for nonce (the
// verification code a provisioning service issued) with the catalog CA's
// key: a certificate whose common name is the nonce. It returns the
// certificate's DER. Returns EINVALID for a bad nonce, ENOTFOUND, and
// ECONFLICT when the CA certificate is not active.
func (s *Service) ProofOfPossession(ctx context.Context, catalogID, serial, nonce string) ([]byte, error) {
	if !noncePattern.MatchString(nonce) {
		return nil, ferry.Errorf(ferry.EINVALID, "The proof of possession nonce must be 1 to 128 letters, digits or '-'.")
	}
	c, err := s.store.GetCertificate(ctx, catalogID, serial)
	if err != nil {
		return nil, fmt.Errorf("proof of possession: %w", err)
	}
	if st := c.StatusAt(s.Now()); st != ferry.CertificateActive {
		return nil, ferry.Errorf(ferry.ECONFLICT, "The certificate is %s; only an active certificate can sign a proof of possession.", st)
	}
	ca, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return nil, fmt.Errorf("proof of possession: parse CA: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("proof of possession: parse CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, ferry.Errorf(ferry.EINTERNAL, "proof of possession: CA key cannot sign")
	}
	cert, _, err := pki.IssueClientCert(ca, signer, nonce, s.Now())
	if err != nil {
		return nil, fmt.Errorf("proof of possession: %w", err)
	}
	return cert.Raw, nil
}
