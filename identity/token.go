package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	_ "crypto/sha256" // for crypto.SHA256
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ferry-iot/ferry"
)

// Clock skew tolerated when checking a token's times.
const leeway = time.Minute

// How often the keyring rereads the store, so that a key rotated on another
// node is used (and verified) here too.
const (
	keyRefreshInterval = time.Minute
	keyRefreshMinGap   = 5 * time.Second // at most this often on an unknown kid
)

// tokenClaims is the JWT body. Names follow Entra ID's access tokens.
type tokenClaims struct {
	jwt.Claims
	ObjectID string `json:"oid"`
	TenantID string `json:"tid"`
	AppID    string `json:"appid,omitempty"`
	Name     string `json:"name,omitempty"`
	IDType   string `json:"idtyp,omitempty"` // "app" or "user"
}

// Token is an issued access token.
type Token struct {
	AccessToken string
	ExpiresAt   time.Time
}

// IssueToken returns an access token for a principal, signed with the
// current signing key.
func (s *Service) IssueToken(ctx context.Context, p *ferry.Principal) (Token, error) {
	if p == nil || p.ID == "" {
		return Token{}, ferry.Errorf(ferry.EINVALID, "No principal to issue a token for.")
	}
	tid, err := s.TenantID(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	signer, err := s.keys.signer(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.ttl)
	c := tokenClaims{
		Claims: jwt.Claims{
			Issuer:    s.issuer,
			Subject:   p.ID,
			Audience:  jwt.Audience{s.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(exp),
			ID:        ferry.NewUUID(),
		},
		ObjectID: p.ID,
		TenantID: tid,
		Name:     p.LoginName(),
		IDType:   "user",
	}
	if p.Type == ferry.PrincipalServicePrincipal {
		c.AppID = p.Name
		c.IDType = "app"
	}
	raw, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return Token{}, fmt.Errorf("issue token: sign: %w", err)
	}
	return Token{AccessToken: raw, ExpiresAt: exp}, nil
}

// errBadToken is the one answer to every token that fails.
func errBadToken(cause error) error {
	return ferry.WrapError(ferry.EUNAUTHORIZED, "The access token is missing, invalid or expired.", cause)
}

// VerifyToken checks a raw bearer token's signature, issuer, audience,
// tenant and lifetime. Returns EUNAUTHORIZED, with a message that reveals
// nothing about why, for any token that fails.
func (s *Service) VerifyToken(ctx context.Context, raw string) (*ferry.Claims, error) {
	if raw == "" || len(raw) > 8192 {
		return nil, errBadToken(nil)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, errBadToken(err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return nil, errBadToken(nil)
	}
	pub, err := s.keys.verificationKey(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errBadToken(fmt.Errorf("unknown kid"))
	}
	var c tokenClaims
	if err := tok.Claims(pub, &c); err != nil {
		return nil, errBadToken(err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, AnyAudience: jwt.Audience{s.audience}, Time: s.now()}, leeway); err != nil {
		return nil, errBadToken(err)
	}
	tid, err := s.TenantID(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if c.Expiry == nil || c.ObjectID == "" || c.TenantID != tid {
		return nil, errBadToken(nil)
	}
	out := &ferry.Claims{
		ObjectID:  c.ObjectID,
		TenantID:  c.TenantID,
		Audience:  []string(c.Audience),
		ExpiresAt: c.Expiry.Time().UTC(),
		Name:      c.Name,
		Type:      ferry.PrincipalUser,
	}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time().UTC()
	}
	if c.IDType == "app" {
		out.Type = ferry.PrincipalServicePrincipal
	}
	return out, nil
}

// RotateSigningKey creates a new signing key and retires the others. Retired
// keys stay in the JWKS and keep verifying until their last tokens expire.
func (s *Service) RotateSigningKey(ctx context.Context) (kid string, err error) {
	return s.keys.rotate(ctx)
}

// JWKS returns the public keys that verify tokens now.
func (s *Service) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	return s.keys.jwks(ctx)
}

// keyring caches the store's signing keys.
type keyring struct {
	store ferry.SigningKeyStore
	now   func() time.Time
	ttl   time.Duration

	mu       sync.Mutex
	loadedAt time.Time             // by now
	missAt   time.Time             // by the real clock: last reread for an unknown kid
	active   *loadedKey            // newest unretired key; nil if none
	verify   map[string]*loadedKey // every key that still verifies
	ordered  []*loadedKey          // verify, newest first
}

type loadedKey struct {
	kid       string
	priv      *ecdsa.PrivateKey
	signer    jose.Signer
	retiredAt time.Time
}

func newKeyring(store ferry.SigningKeyStore, now func() time.Time, ttl time.Duration) *keyring {
	return &keyring{store: store, now: now, ttl: ttl}
}

// refresh rereads the keys. Callers hold k.mu.
func (k *keyring) refresh(ctx context.Context) error {
	keys, err := k.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	now := k.now()
	verify := make(map[string]*loadedKey, len(keys))
	var ordered []*loadedKey
	var active *loadedKey
	for _, sk := range keys {
		// A retired key verifies until the last token it signed expires.
		if !sk.RetiredAt.IsZero() && now.After(sk.RetiredAt.Add(k.ttl+leeway)) {
			continue
		}
		lk := k.verify[sk.ID] // reuse parsed keys and signers
		if lk == nil {
			lk, err = parseSigningKey(sk)
			if err != nil {
				return err
			}
		}
		lk.retiredAt = sk.RetiredAt
		verify[sk.ID] = lk
		ordered = append(ordered, lk)
		if active == nil && sk.RetiredAt.IsZero() {
			active = lk
		}
	}
	k.verify, k.ordered, k.active, k.loadedAt = verify, ordered, active, now
	return nil
}

func parseSigningKey(sk *ferry.SigningKey) (*loadedKey, error) {
	if sk.Algorithm != string(jose.ES256) {
		return nil, fmt.Errorf("signing key %s: unsupported algorithm %q", sk.ID, sk.Algorithm)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(sk.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s: not an ECDSA P-256 key", sk.ID)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: sk.ID, Algorithm: string(jose.ES256), Use: "sig"}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	return &loadedKey{kid: sk.ID, priv: priv, signer: signer}, nil
}

func (k *keyring) stale() bool {
	return k.loadedAt.IsZero() || k.now().Sub(k.loadedAt) > keyRefreshInterval
}

// ensure loads the keys and creates a signing key if none signs.
func (k *keyring) ensure(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refresh(ctx); err != nil {
		return err
	}
	if k.active != nil {
		return nil
	}
	if _, err := k.create(ctx); err != nil {
		return err
	}
	return k.refresh(ctx)
}

// create stores a new key. Callers hold k.mu.
func (k *keyring) create(ctx context.Context) (string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("encode signing key: %w", err)
	}
	kid, err := keyID(priv)
	if err != nil {
		return "", err
	}
	sk := &ferry.SigningKey{ID: kid, Algorithm: string(jose.ES256), PrivateKey: der, CreatedAt: k.now().UTC()}
	if err := k.store.CreateSigningKey(ctx, sk); err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	return kid, nil
}

// keyID derives a kid from the public key (its RFC 7638 thumbprint), so the
// same key always has the same ID.
func keyID(priv *ecdsa.PrivateKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func (k *keyring) rotate(ctx context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refresh(ctx); err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	kid, err := k.create(ctx)
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	now := k.now().UTC()
	for _, lk := range k.ordered {
		if lk.retiredAt.IsZero() {
			if err := k.store.RetireSigningKey(ctx, lk.kid, now); err != nil {
				return "", fmt.Errorf("rotate signing key: retire %s: %w", lk.kid, err)
			}
		}
	}
	if err := k.refresh(ctx); err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	return kid, nil
}

func (k *keyring) signer(ctx context.Context) (jose.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stale() || k.active == nil {
		if err := k.refresh(ctx); err != nil {
			return nil, err
		}
	}
	if k.active == nil {
		return nil, ferry.Errorf(ferry.EINTERNAL, "No signing key; the directory is not bootstrapped.")
	}
	return k.active.signer, nil
}

// verificationKey returns the public key for kid, or nil if there is none.
func (k *keyring) verificationKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stale() {
		if err := k.refresh(ctx); err != nil {
			return nil, fmt.Errorf("verify token: %w", err)
		}
	}
	lk := k.verify[kid]
	// An unknown kid may be a key just made on another node. Reread for it,
	// but only so often (by the real clock), so that made-up kids cannot
	// turn every request into a store query.
	if lk == nil && time.Since(k.missAt) > keyRefreshMinGap {
		k.missAt = time.Now()
		if err := k.refresh(ctx); err != nil {
			return nil, fmt.Errorf("verify token: %w", err)
		}
		lk = k.verify[kid]
	}
	if lk == nil {
		return nil, nil
	}
	if !lk.retiredAt.IsZero() && k.now().After(lk.retiredAt.Add(k.ttl+leeway)) {
		return nil, nil
	}
	return &lk.priv.PublicKey, nil
}

func (k *keyring) jwks(ctx context.Context) (jose.JSONWebKeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stale() {
		if err := k.refresh(ctx); err != nil {
			return jose.JSONWebKeySet{}, err
		}
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(k.ordered))}
	for _, lk := range k.ordered {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &lk.priv.PublicKey, KeyID: lk.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return set, nil
}
