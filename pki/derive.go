package pki

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// DeriveKey returns a 32-byte key for purpose, derived (HKDF-SHA256) from
// the CA's private key. Every node that shares the CA derives the same key,
// and the key lasts as long as the CA: it seals data at rest without one
// more file to back up. Different purposes give unrelated keys.
func (a *Authority) DeriveKey(purpose string) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("pki: derive key: a purpose is required")
	}
	der, err := x509.MarshalPKCS8PrivateKey(a.caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: derive key: %w", err)
	}
	key, err := hkdf.Key(sha256.New, der, []byte("ferry pki"), purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("pki: derive key: %w", err)
	}
	return key, nil
}
