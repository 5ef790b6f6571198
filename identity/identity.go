// Package identity keeps Ferry's own directory: users and service principals
// with argon2id-hashed secrets, ES256 access tokens with rotating signing
// keys, the OAuth2 token endpoint and OpenID discovery documents that the
// Azure SDKs' ClientSecretCredential understands, and the middleware that
// authenticates every API call.
package identity

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ferry-iot/ferry"
)

// IdentityStore is what the service needs from the store.
type IdentityStore interface {
	ferry.PrincipalStore
	ferry.SigningKeyStore
	ferry.SettingStore
}

// Setting keys kept in the store.
const (
	SettingTenantID = "identity.tenant_id"
)

// AdminName is the login name of the administrator Bootstrap creates.
const AdminName = "admin"

// Defaults of Config.
const (
	DefaultTokenTTL = time.Hour
	DefaultAudience = "https://management.ferry.local/"
)

// Limits on secrets and names.
const (
	MinPasswordLength = 8
	maxPasswordLength = 256
	maxNameLength     = 256
	// MaxSecrets is how many secrets a service principal holds at once: two,
	// so that one can be rotated while the other still works.
	MaxSecrets = 2
)

// Config configures a Service.
type Config struct {
	Store    IdentityStore
	Issuer   string        // the `iss` of tokens and base of the endpoint URLs, e.g. https://ferry.example.com:8443
	Audience string        // the `aud` of tokens and what VerifyToken requires; DefaultAudience if empty
	TokenTTL time.Duration // lifetime of access tokens; DefaultTokenTTL if zero
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service is the directory: principals, secrets, tokens.
type Service struct {
	store    IdentityStore
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	log      *slog.Logger

	keys *keyring
	// hashing bounds concurrent argon2id runs: each takes 8 MiB, so a burst
	// of sign-ins must queue rather than exhaust memory.
	hashing chan struct{}

	mu       sync.Mutex
	tenantID string
}

var _ ferry.TokenVerifier = (*Service)(nil)

// New returns a Service. Call Bootstrap before issuing tokens.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("identity: Config.Store is required")
	}
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("identity: Config.Issuer is required")
	}
	s := &Service{
		store:    cfg.Store,
		issuer:   strings.TrimRight(cfg.Issuer, "/"),
		audience: cfg.Audience,
		ttl:      cfg.TokenTTL,
		now:      cfg.Now,
		log:      cfg.Logger,
	}
	if s.audience == "" {
		s.audience = DefaultAudience
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTokenTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("subsystem", "identity")
	s.keys = newKeyring(s.store, s.now, s.ttl)
	s.hashing = make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	return s, nil
}

// Issuer returns the `iss` of the tokens this service issues.
func (s *Service) Issuer() string { return s.issuer }

// Audience returns the `aud` of the tokens this service issues.
func (s *Service) Audience() string { return s.audience }

// BootstrapResult tells what Bootstrap did.
type BootstrapResult struct {
	Created       bool   // the administrator was created now
	AdminName     string // its login name
	AdminPassword string // the generated password, set only when Created and none was given; shown once
	TenantID      string // the directory's tenant ID
}

// Bootstrap prepares the directory and is safe to call on every start and
// on several nodes at once: it fixes the tenant ID (the first node's wins),
// creates a signing key if there is none, and on first start creates the
// administrator `admin` with adminPassword, or a generated password that it
// returns once. Granting the administrator roles is the caller's job.
func (s *Service) Bootstrap(ctx context.Context, adminPassword string) (BootstrapResult, error) {
	tid, err := s.store.PutSettingIfAbsent(ctx, SettingTenantID, ferry.NewUUID())
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap identity: tenant ID: %w", err)
	}
	s.mu.Lock()
	s.tenantID = tid
	s.mu.Unlock()
	if err := s.keys.ensure(ctx); err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap identity: %w", err)
	}
	res := BootstrapResult{AdminName: AdminName, TenantID: tid}
	if _, err := s.store.GetPrincipalByName(ctx, AdminName); err == nil {
		return res, nil
	} else if !ferry.IsCode(err, ferry.ENOTFOUND) {
		return BootstrapResult{}, fmt.Errorf("bootstrap identity: find admin: %w", err)
	}
	generated := adminPassword == ""
	if generated {
		if adminPassword, err = randomSecret(15); err != nil {
			return BootstrapResult{}, fmt.Errorf("bootstrap identity: %w", err)
		}
	}
	_, err = s.CreateUser(ctx, UserInput{Name: AdminName, DisplayName: "Administrator", Password: adminPassword})
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return res, nil // another node created it first
	}
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap identity: create admin: %w", err)
	}
	s.log.InfoContext(ctx, "created the administrator", "name", AdminName, "generated_password", generated)
	res.Created = true
	if generated {
		res.AdminPassword = adminPassword
	}
	return res, nil
}

// TenantID returns the directory's tenant ID (the `tid` of its tokens).
func (s *Service) TenantID(ctx context.Context) (string, error) {
	s.mu.Lock()
	tid := s.tenantID
	s.mu.Unlock()
	if tid != "" {
		return tid, nil
	}
	tid, err := s.store.GetSetting(ctx, SettingTenantID)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return "", ferry.Errorf(ferry.EINTERNAL, "The directory is not bootstrapped.")
	}
	if err != nil {
		return "", fmt.Errorf("tenant ID: %w", err)
	}
	s.mu.Lock()
	s.tenantID = tid
	s.mu.Unlock()
	return tid, nil
}

// UserInput describes a new user.
type UserInput struct {
	Name        string // login name, such as alice or alice@example.com
	DisplayName string
	Email       string
	Password    string
}

// CreateUser stores a new user with a password. Returns EINVALID for a bad
// name or a password shorter than MinPasswordLength, ECONFLICT if the name
// is taken. The returned principal carries no hashes.
func (s *Service) CreateUser(ctx context.Context, in UserInput) (*ferry.Principal, error) {
	if err := validateName(in.Name); err != nil {
		return nil, err
	}
	cred, err := s.newPasswordCredential(in.Password)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	p := &ferry.Principal{
		ID:          ferry.NewUUID(),
		Type:        ferry.PrincipalUser,
		Name:        in.Name,
		DisplayName: in.DisplayName,
		Email:       in.Email,
		Credentials: []ferry.Credential{cred},
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if p.DisplayName == "" {
		p.DisplayName = in.Name
	}
	if err := s.store.CreatePrincipal(ctx, p); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return Redact(p), nil
}

// SetPassword replaces a user's password. Returns ENOTFOUND if there is no
// such user, EINVALID for a password that breaks the rules.
func (s *Service) SetPassword(ctx context.Context, principalID, password string) error {
	p, err := s.store.GetPrincipal(ctx, principalID)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if p.Type != ferry.PrincipalUser {
		return ferry.Errorf(ferry.EINVALID, "Only users have passwords; use a client secret for a service principal.")
	}
	cred, err := s.newPasswordCredential(password)
	if err != nil {
		return err
	}
	p.Credentials = []ferry.Credential{cred}
	p.UpdatedAt = s.now().UTC()
	if err := s.store.UpdatePrincipal(ctx, p); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

func (s *Service) newPasswordCredential(password string) (ferry.Credential, error) {
	if len(password) < MinPasswordLength {
		return ferry.Credential{}, ferry.Errorf(ferry.EINVALID, "The password must have at least %d characters.", MinPasswordLength)
	}
	if len(password) > maxPasswordLength {
		return ferry.Credential{}, ferry.Errorf(ferry.EINVALID, "The password must have at most %d characters.", maxPasswordLength)
	}
	hash, err := s.hash(password)
	if err != nil {
		return ferry.Credential{}, err
	}
	return ferry.Credential{ID: ferry.NewUUID(), Hash: hash, CreatedAt: s.now().UTC()}, nil
}

// CreateServicePrincipal stores a new service principal with a generated
// application (client) ID and one secret, and returns the principal and the
// secret. The secret is shown this once; only its hash is kept.
func (s *Service) CreateServicePrincipal(ctx context.Context, displayName string) (*ferry.Principal, string, error) {
	if strings.TrimSpace(displayName) == "" {
		return nil, "", ferry.Errorf(ferry.EINVALID, "A service principal needs a display name.")
	}
	if len(displayName) > maxNameLength {
		return nil, "", ferry.Errorf(ferry.EINVALID, "The display name must have at most %d characters.", maxNameLength)
	}
	cred, secret, err := s.newSecret(time.Time{})
	if err != nil {
		return nil, "", err
	}
	now := s.now().UTC()
	p := &ferry.Principal{
		ID:          ferry.NewUUID(),
		Type:        ferry.PrincipalServicePrincipal,
		Name:        ferry.NewUUID(), // the application (client) ID
		DisplayName: displayName,
		Credentials: []ferry.Credential{cred},
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if err := s.store.CreatePrincipal(ctx, p); err != nil {
		return nil, "", fmt.Errorf("create service principal: %w", err)
	}
	return Redact(p), secret, nil
}

// AddSecret adds a secret to a service principal and returns it with its
// credential record; a zero expiresAt never expires. Returns ENOTFOUND if
// there is no such service principal, ECONFLICT if it already holds
// MaxSecrets unexpired secrets.
func (s *Service) AddSecret(ctx context.Context, principalID string, expiresAt time.Time) (ferry.Credential, string, error) {
	p, err := s.getServicePrincipal(ctx, principalID)
	if err != nil {
		return ferry.Credential{}, "", fmt.Errorf("add secret: %w", err)
	}
	now := s.now()
	if !expiresAt.IsZero() && !expiresAt.After(now) {
		return ferry.Credential{}, "", ferry.Errorf(ferry.EINVALID, "The secret's expiry must lie in the future.")
	}
	// Expired secrets make room.
	live := p.Credentials[:0]
	for _, c := range p.Credentials {
		if c.ExpiresAt.IsZero() || c.ExpiresAt.After(now) {
			live = append(live, c)
		}
	}
	if len(live) >= MaxSecrets {
		return ferry.Credential{}, "", ferry.Errorf(ferry.ECONFLICT, "A service principal holds at most %d secrets; remove one first.", MaxSecrets)
	}
	cred, secret, err := s.newSecret(expiresAt)
	if err != nil {
		return ferry.Credential{}, "", err
	}
	p.Credentials = append(live, cred)
	p.UpdatedAt = now.UTC()
	if err := s.store.UpdatePrincipal(ctx, p); err != nil {
		return ferry.Credential{}, "", fmt.Errorf("add secret: %w", err)
	}
	cred.Hash = ""
	return cred, secret, nil
}

// RemoveSecret removes one secret of a service principal. Returns ENOTFOUND
// if there is no such principal or secret.
func (s *Service) RemoveSecret(ctx context.Context, principalID, credentialID string) error {
	p, err := s.getServicePrincipal(ctx, principalID)
	if err != nil {
		return fmt.Errorf("remove secret: %w", err)
	}
	n := len(p.Credentials)
	p.Credentials = deleteCredential(p.Credentials, credentialID)
	if len(p.Credentials) == n {
		return ferry.Errorf(ferry.ENOTFOUND, "The secret %q does not exist.", credentialID)
	}
	p.UpdatedAt = s.now().UTC()
	if err := s.store.UpdatePrincipal(ctx, p); err != nil {
		return fmt.Errorf("remove secret: %w", err)
	}
	return nil
}

func deleteCredential(cs []ferry.Credential, id string) []ferry.Credential {
	out := cs[:0]
	for _, c := range cs {
		if c.ID != id {
			out = append(out, c)
		}
	}
	return out
}

func (s *Service) getServicePrincipal(ctx context.Context, id string) (*ferry.Principal, error) {
	p, err := s.store.GetPrincipal(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Type != ferry.PrincipalServicePrincipal {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "The service principal %q does not exist.", id)
	}
	return p, nil
}

func (s *Service) newSecret(expiresAt time.Time) (ferry.Credential, string, error) {
	secret, err := randomSecret(30)
	if err != nil {
		return ferry.Credential{}, "", err
	}
	hash, err := s.hash(secret)
	if err != nil {
		return ferry.Credential{}, "", err
	}
	return ferry.Credential{
		ID:        ferry.NewUUID(),
		Hash:      hash,
		Hint:      secret[:3],
		CreatedAt: s.now().UTC(),
		ExpiresAt: expiresAt.UTC(),
	}, secret, nil
}

// errBadCredentials is the one answer to every failed sign-in, so that a
// caller learns nothing about which part was wrong.
func errBadCredentials() error {
	return ferry.Errorf(ferry.EUNAUTHORIZED, "The user name, client ID or secret is not valid.")
}

// dummyHash is checked when no principal matches, so that a failed sign-in
// takes as long whether or not the name exists.
var dummyHash = func() string {
	h, err := HashPassword("not a real password")
	if err != nil {
		panic(err)
	}
	return h
}()

// AuthenticateUser checks a user's name and password and returns the user.
// Returns EUNAUTHORIZED, with no detail, for an unknown or disabled user or
// a wrong password.
func (s *Service) AuthenticateUser(ctx context.Context, name, password string) (*ferry.Principal, error) {
	return s.authenticate(ctx, ferry.PrincipalUser, name, password)
}

// AuthenticateClient checks a service principal's client ID and secret and
// returns the principal. Returns EUNAUTHORIZED, with no detail, for an
// unknown or disabled principal or a wrong or expired secret.
func (s *Service) AuthenticateClient(ctx context.Context, clientID, secret string) (*ferry.Principal, error) {
	return s.authenticate(ctx, ferry.PrincipalServicePrincipal, clientID, secret)
}

func (s *Service) authenticate(ctx context.Context, typ ferry.PrincipalType, name, secret string) (*ferry.Principal, error) {
	if name == "" || secret == "" || len(secret) > maxPasswordLength || len(name) > maxNameLength {
		return nil, errBadCredentials()
	}
	p, err := s.store.GetPrincipalByName(ctx, name)
	if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if err != nil || p.Type != typ || p.Disabled {
		_, _ = s.check(ctx, dummyHash, secret)
		return nil, errBadCredentials()
	}
	now := s.now()
	for _, c := range p.Credentials {
		if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
			continue
		}
		ok, err := s.check(ctx, c.Hash, secret)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("authenticate: %w", ctx.Err())
		}
		if err != nil {
			s.log.ErrorContext(ctx, "stored credential is malformed", "principal_id", p.ID, "credential_id", c.ID)
			continue
		}
		if ok {
			return Redact(p), nil
		}
	}
	if len(p.Credentials) == 0 {
		_, _ = s.check(ctx, dummyHash, secret)
	}
	return nil, errBadCredentials()
}

// Redact returns a copy of p whose credentials carry no hashes, fit to
// return from an API.
func Redact(p *ferry.Principal) *ferry.Principal {
	if p == nil {
		return nil
	}
	c := *p
	c.Credentials = make([]ferry.Credential, len(p.Credentials))
	for i, cr := range p.Credentials {
		cr.Hash = ""
		c.Credentials[i] = cr
	}
	return &c
}

func validateName(name string) error {
	switch {
	case name == "":
		return ferry.Errorf(ferry.EINVALID, "A user needs a name.")
	case len(name) > maxNameLength:
		return ferry.Errorf(ferry.EINVALID, "The name must have at most %d characters.", maxNameLength)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return ferry.Errorf(ferry.EINVALID, "The name must not contain spaces or control characters.")
	}
	return nil
}

// hash runs HashPassword within the bound on concurrent hashing.
func (s *Service) hash(secret string) (string, error) {
	s.hashing <- struct{}{}
	defer func() { <-s.hashing }()
	return HashPassword(secret)
}

// check runs CheckPassword within the bound on concurrent hashing, giving
// up when ctx ends while it waits.
func (s *Service) check(ctx context.Context, hash, secret string) (bool, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashing }()
	return CheckPassword(hash, secret)
}

// GetPrincipal returns a principal without credential hashes. Returns
// ENOTFOUND if none.
func (s *Service) GetPrincipal(ctx context.Context, id string) (*ferry.Principal, error) {
	p, err := s.store.GetPrincipal(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get principal: %w", err)
	}
	return Redact(p), nil
}

// ListPrincipals returns a page of principals without credential hashes.
func (s *Service) ListPrincipals(ctx context.Context, f ferry.PrincipalFilter) (ferry.Page[*ferry.Principal], error) {
	page, err := s.store.ListPrincipals(ctx, f)
	if err != nil {
		return page, fmt.Errorf("list principals: %w", err)
	}
	for i, p := range page.Items {
		page.Items[i] = Redact(p)
	}
	return page, nil
}

// SetDisabled disables or enables a principal. A disabled principal cannot
// sign in, and its tokens stop working at once. Returns ENOTFOUND if none.
func (s *Service) SetDisabled(ctx context.Context, id string, disabled bool) error {
	p, err := s.store.GetPrincipal(ctx, id)
	if err != nil {
		return fmt.Errorf("set disabled: %w", err)
	}
	if p.Disabled == disabled {
		return nil
	}
	p.Disabled = disabled
	p.UpdatedAt = s.now().UTC()
	if err := s.store.UpdatePrincipal(ctx, p); err != nil {
		return fmt.Errorf("set disabled: %w", err)
	}
	return nil
}
