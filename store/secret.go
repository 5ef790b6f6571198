package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/ferry-iot/ferry"
)

// SecretKeySize is the length of Config.SecretKey: an AES-256 key.
const SecretKeySize = 32

// sealPrefix marks a sealed value and its format: AES-256-GCM, a random
// 12-byte nonce before the ciphertext, base64 without padding.
const sealPrefix = "v1:"

// sealer encrypts the few secrets the store must keep readable (a
// migration target's client secret) so that a dump or backup of the
// database does not hold them in clear.
type sealer struct {
	aead cipher.AEAD // nil when the store was opened without a key
}

func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		return &sealer{}, nil
	}
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("open store: the secret key has %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// errNoKey is returned when a secret is to be kept by a store opened
// without a key: it is refused rather than kept in clear.
var errNoKey = ferry.Errorf(ferry.EINTERNAL, "This server has no key to keep secrets with.")

// seal encrypts plain, bound to context (the record's ID), so that a sealed
// value copied to another record does not open.
func (s *sealer) seal(plain, context string) (string, error) {
	if s == nil || s.aead == nil {
		return "", errNoKey
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plain), []byte(context))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// open decrypts what seal returned for the same context.
func (s *sealer) open(sealed, context string) (string, error) {
	if s == nil || s.aead == nil {
		return "", errNoKey
	}
	b64, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errors.New("open secret: unknown format")
	}
	b, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("open secret: malformed")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(context))
	if err != nil {
		return "", errors.New("open secret: sealed with another key or damaged")
	}
	return string(plain), nil
}
