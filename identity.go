package ferry

import (
	"context"
	"time"
)

// PrincipalType tells users from service principals, with ARM's spelling.
type PrincipalType string

// Principal types.
const (
	PrincipalUser             PrincipalType = "User"
	PrincipalServicePrincipal PrincipalType = "ServicePrincipal"
)

// Principal is a user or a service principal: someone or something that
// calls Ferry's APIs. ID is the object ID (the `oid` claim of its tokens).
type Principal struct {
	ID          string // object ID, a UUID
	Type        PrincipalType
	Name        string // users: the login name (user@example.com); service principals: the application (client) ID
	DisplayName string
	Email       string
	Disabled    bool
	Credentials []Credential // secrets; never leave the store except to be checked
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// LoginName is what a principal types or sends to sign in: the user name, or
// the client ID of a service principal.
func (p *Principal) LoginName() string { return p.Name }

// Credential is one hashed secret of a principal. A service principal may
// hold two at once so that secrets can be rotated.
type Credential struct {
	ID        string    // UUID
	Hash      string    // PHC-formatted password hash (argon2id); never the secret
	Hint      string    // the first three characters, as Entra shows them
	CreatedAt time.Time //
	ExpiresAt time.Time // zero: never
}

// PrincipalFilter selects principals in a list.
type PrincipalFilter struct {
	Type PrincipalType // "" for all
	ListOptions
}

// PrincipalStore keeps principals.
type PrincipalStore interface {
	// CreatePrincipal stores a new principal. Returns ECONFLICT if the ID or
	// the name is taken, EINVALID if required fields are missing.
	CreatePrincipal(ctx context.Context, p *Principal) error
	// GetPrincipal returns a principal by ID. Returns ENOTFOUND if none.
	GetPrincipal(ctx context.Context, id string) (*Principal, error)
	// GetPrincipalByName returns a principal by login name (case-insensitive).
	// Returns ENOTFOUND if none.
	GetPrincipalByName(ctx context.Context, name string) (*Principal, error)
	// ListPrincipals returns a page of principals ordered by ID.
	ListPrincipals(ctx context.Context, f PrincipalFilter) (Page[*Principal], error)
	// UpdatePrincipal replaces a principal. Returns ENOTFOUND if it does not exist.
	UpdatePrincipal(ctx context.Context, p *Principal) error
	// DeletePrincipal removes a principal. Returns ENOTFOUND if it does not exist.
	DeletePrincipal(ctx context.Context, id string) error
}

// SigningKey is a private key that signs access tokens. Keys live in the
// store so that every node of a deployment signs and verifies alike.
type SigningKey struct {
	ID         string    // the JWK `kid`
	Algorithm  string    // "ES256"
	PrivateKey []byte    // PKCS #8, DER
	CreatedAt  time.Time //
	RetiredAt  time.Time // zero while the key signs; verification continues until tokens expire
}

// SigningKeyStore keeps token-signing keys.
type SigningKeyStore interface {
	// CreateSigningKey stores a new key. Returns ECONFLICT if the ID is taken.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// ListSigningKeys returns every key, newest first.
	ListSigningKeys(ctx context.Context) ([]*SigningKey, error)
	// RetireSigningKey marks a key retired at t. Returns ENOTFOUND if none.
	RetireSigningKey(ctx context.Context, id string, t time.Time) error
}

// Claims are what Ferry reads from a verified access token.
type Claims struct {
	ObjectID  string // oid: the principal's ID
	TenantID  string // tid: the directory (Ferry deployment) ID
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Name      string // login name, for logs and audit records
	Type      PrincipalType
}

// Caller is the authenticated party of a request: a principal with the claims
// of its token, or a shared-access policy of a hub or provisioning service.
type Caller struct {
	Principal *Principal // nil when authenticated by a shared-access policy
	Claims    *Claims
	Policy    string // shared-access policy name, when authenticated by SAS
	UserAgent string
	ClientIP  string
}

// ID returns an identifier of the caller for audit records.
func (c *Caller) ID() string {
	switch {
	case c == nil:
		return ""
	case c.Principal != nil:
		return c.Principal.ID
	case c.Policy != "":
		return "policy:" + c.Policy
	}
	return ""
}

// Name returns a readable name of the caller for audit records.
func (c *Caller) Name() string {
	switch {
	case c == nil:
		return ""
	case c.Principal != nil:
		return c.Principal.LoginName()
	case c.Policy != "":
		return c.Policy
	}
	return ""
}

type callerKey struct{}

// NewContextWithCaller returns a context that carries the caller.
func NewContextWithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFromContext returns the caller carried by ctx, or nil.
func CallerFromContext(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// TokenVerifier checks access tokens.
type TokenVerifier interface {
	// VerifyToken checks a raw bearer token's signature, issuer, audience
	// and lifetime. Returns EUNAUTHORIZED for any token that fails, with a
	// message that reveals nothing about why.
	VerifyToken(ctx context.Context, raw string) (*Claims, error)
}
