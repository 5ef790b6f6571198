package identity_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/store/storetest"
)

var ctx = context.Background()

const testIssuer = "https://ferry.test:8443"

// clock is a settable time source shared by the services of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	store ferry.Store
	clock *clock
	svc   *identity.Service
}

// newFixture returns a bootstrapped service on s.
func newFixture(t testing.TB, s ferry.Store) *fixture {
	t.Helper()
	f := &fixture{store: s, clock: newClock()}
	f.svc = f.service(t, identity.Config{})
	if _, err := f.svc.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	return f
}

// service returns another service (another node) on the fixture's store.
func (f *fixture) service(t testing.TB, cfg identity.Config) *identity.Service {
	t.Helper()
	cfg.Store = f.store
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	cfg.Now = f.clock.Now
	svc, err := identity.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ferry.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want %q", err, got, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func noHashes(t *testing.T, p *ferry.Principal) {
	t.Helper()
	for _, c := range p.Credentials {
		if c.Hash != "" {
			t.Errorf("principal %s returned with a credential hash", p.ID)
		}
	}
}

func TestBootstrap(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		c := newClock()
		node := func() *identity.Service {
			svc, err := identity.New(identity.Config{Store: s, Issuer: testIssuer, Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			return svc
		}
		a, b := node(), node()
		first, err := a.Bootstrap(ctx, "")
		must(t, err)
		if !first.Created || first.AdminName != "admin" || len(first.AdminPassword) < 16 || first.TenantID == "" {
			t.Fatalf("first Bootstrap = %+v", first)
		}
		again, err := b.Bootstrap(ctx, "")
		must(t, err)
		if again.Created || again.AdminPassword != "" || again.TenantID != first.TenantID {
			t.Errorf("second Bootstrap = %+v, want not created, tenant %s", again, first.TenantID)
		}
		p, err := b.AuthenticateUser(ctx, "admin", first.AdminPassword)
		must(t, err)
		noHashes(t, p)
		keys, err := s.ListSigningKeys(ctx)
		must(t, err)
		if len(keys) != 1 {
			t.Errorf("%d signing keys after two bootstraps, want 1", len(keys))
		}
		// A token of one node verifies on the other.
		tok, err := a.IssueToken(ctx, p)
		must(t, err)
		claims, err := b.VerifyToken(ctx, tok.AccessToken)
		must(t, err)
		if claims.TenantID != first.TenantID || claims.ObjectID != p.ID {
			t.Errorf("claims = %+v", claims)
		}
	})
}

func TestBootstrapWithPassword(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	if _, err := f.svc.AuthenticateUser(ctx, "admin", "admin-password"); err != nil {
		t.Fatalf("admin cannot sign in with the given password: %v", err)
	}
	res, err := f.svc.Bootstrap(ctx, "another-password")
	must(t, err)
	if res.Created {
		t.Error("Bootstrap created the admin twice")
	}
	if _, err := f.svc.AuthenticateUser(ctx, "admin", "another-password"); err == nil {
		t.Error("a later Bootstrap changed the admin's password")
	}
}

func TestUsers(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		f := newFixture(t, s)
		alice, err := f.svc.CreateUser(ctx, identity.UserInput{Name: "alice@example.com", Password: "correct horse"})
		must(t, err)
		noHashes(t, alice)
		if alice.Type != ferry.PrincipalUser || alice.DisplayName != "alice@example.com" {
			t.Errorf("CreateUser = %+v", alice)
		}
		t.Run("InvalidInput", func(t *testing.T) {
			tests := []struct {
				name string
				in   identity.UserInput
				code string
			}{
				{"ErrNameRequired", identity.UserInput{Password: "long enough"}, ferry.EINVALID},
				{"ErrNameWithSpace", identity.UserInput{Name: "a b", Password: "long enough"}, ferry.EINVALID},
				{"ErrPasswordTooShort", identity.UserInput{Name: "bob", Password: "short"}, ferry.EINVALID},
				{"ErrNameTaken", identity.UserInput{Name: "ALICE@example.com", Password: "long enough"}, ferry.ECONFLICT},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := f.svc.CreateUser(ctx, tt.in)
					wantCode(t, err, tt.code)
				})
			}
		})
		t.Run("Authenticate", func(t *testing.T) {
			tests := []struct {
				name, user, password string
				ok                   bool
			}{
				{"Good", "alice@example.com", "correct horse", true},
				{"NameCaseInsensitive", "Alice@Example.com", "correct horse", true},
				{"WrongPassword", "alice@example.com", "wrong horse", false},
				{"UnknownUser", "mallory", "correct horse", false},
				{"EmptyPassword", "alice@example.com", "", false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p, err := f.svc.AuthenticateUser(ctx, tt.user, tt.password)
					if tt.ok {
						must(t, err)
						if p.ID != alice.ID {
							t.Errorf("authenticated %s, want %s", p.ID, alice.ID)
						}
						return
					}
					wantCode(t, err, ferry.EUNAUTHORIZED)
				})
			}
		})
		t.Run("SetPassword", func(t *testing.T) {
			must(t, f.svc.SetPassword(ctx, alice.ID, "battery staple"))
			_, err := f.svc.AuthenticateUser(ctx, "alice@example.com", "correct horse")
			wantCode(t, err, ferry.EUNAUTHORIZED)
			_, err = f.svc.AuthenticateUser(ctx, "alice@example.com", "battery staple")
			must(t, err)
			wantCode(t, f.svc.SetPassword(ctx, alice.ID, "short"), ferry.EINVALID)
			wantCode(t, f.svc.SetPassword(ctx, ferry.NewUUID(), "long enough"), ferry.ENOTFOUND)
		})
		t.Run("Disabled", func(t *testing.T) {
			must(t, f.svc.SetDisabled(ctx, alice.ID, true))
			_, err = f.svc.AuthenticateUser(ctx, "alice@example.com", "battery staple")
			wantCode(t, err, ferry.EUNAUTHORIZED)
			must(t, f.svc.SetDisabled(ctx, alice.ID, false))
			_, err = f.svc.AuthenticateUser(ctx, "alice@example.com", "battery staple")
			must(t, err)
			wantCode(t, f.svc.SetDisabled(ctx, ferry.NewUUID(), true), ferry.ENOTFOUND)
		})
		t.Run("ReadsCarryNoHashes", func(t *testing.T) {
			p, err := f.svc.GetPrincipal(ctx, alice.ID)
			must(t, err)
			noHashes(t, p)
			if len(p.Credentials) != 1 {
				t.Errorf("GetPrincipal has %d credentials, want 1 (without its hash)", len(p.Credentials))
			}
			page, err := f.svc.ListPrincipals(ctx, ferry.PrincipalFilter{Type: ferry.PrincipalUser})
			must(t, err)
			if len(page.Items) != 2 {
				t.Errorf("ListPrincipals returned %d users, want 2", len(page.Items))
			}
			for _, p := range page.Items {
				noHashes(t, p)
			}
			_, err = f.svc.GetPrincipal(ctx, ferry.NewUUID())
			wantCode(t, err, ferry.ENOTFOUND)
		})
	})
}

func TestServicePrincipals(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		f := newFixture(t, s)
		sp, secret, err := f.svc.CreateServicePrincipal(ctx, "ci pipeline")
		must(t, err)
		noHashes(t, sp)
		if sp.Type != ferry.PrincipalServicePrincipal || sp.Name == sp.ID || len(sp.Credentials) != 1 || sp.Credentials[0].Hint != secret[:3] {
			t.Fatalf("CreateServicePrincipal = %+v", sp)
		}
		stored, err := s.GetPrincipal(ctx, sp.ID)
		must(t, err)
		if strings.Contains(stored.Credentials[0].Hash, secret) || !strings.HasPrefix(stored.Credentials[0].Hash, "$argon2id$") {
			t.Errorf("stored credential is not an argon2id hash: %q", stored.Credentials[0].Hash)
		}
		_, _, err = f.svc.CreateServicePrincipal(ctx, " ")
		wantCode(t, err, ferry.EINVALID)

		got, err := f.svc.AuthenticateClient(ctx, sp.Name, secret)
		must(t, err)
		if got.ID != sp.ID {
			t.Errorf("AuthenticateClient = %s, want %s", got.ID, sp.ID)
		}
		// A service principal is not a user, and its object ID is not its client ID.
		_, err = f.svc.AuthenticateUser(ctx, sp.Name, secret)
		wantCode(t, err, ferry.EUNAUTHORIZED)
		_, err = f.svc.AuthenticateClient(ctx, sp.ID, secret)
		wantCode(t, err, ferry.EUNAUTHORIZED)
		_, err = f.svc.AuthenticateClient(ctx, "admin", "admin-password")
		wantCode(t, err, ferry.EUNAUTHORIZED)

		t.Run("Rotate", func(t *testing.T) {
			cred2, secret2, err := f.svc.AddSecret(ctx, sp.ID, f.clock.Now().Add(24*time.Hour))
			must(t, err)
			if cred2.Hash != "" {
				t.Error("AddSecret returned a hash")
			}
			for _, sec := range []string{secret, secret2} {
				if _, err := f.svc.AuthenticateClient(ctx, sp.Name, sec); err != nil {
					t.Errorf("secret %s… does not work: %v", sec[:3], err)
				}
			}
			_, _, err = f.svc.AddSecret(ctx, sp.ID, time.Time{})
			wantCode(t, err, ferry.ECONFLICT)
			must(t, f.svc.RemoveSecret(ctx, sp.ID, sp.Credentials[0].ID))
			_, err = f.svc.AuthenticateClient(ctx, sp.Name, secret)
			wantCode(t, err, ferry.EUNAUTHORIZED)
			wantCode(t, f.svc.RemoveSecret(ctx, sp.ID, sp.Credentials[0].ID), ferry.ENOTFOUND)

			// The second secret expires after a day.
			f.clock.Advance(25 * time.Hour)
			_, err = f.svc.AuthenticateClient(ctx, sp.Name, secret2)
			wantCode(t, err, ferry.EUNAUTHORIZED)
			// And makes room for new ones.
			_, secret3, err := f.svc.AddSecret(ctx, sp.ID, time.Time{})
			must(t, err)
			_, _, err = f.svc.AddSecret(ctx, sp.ID, time.Time{})
			must(t, err)
			_, err = f.svc.AuthenticateClient(ctx, sp.Name, secret3)
			must(t, err)
		})
		t.Run("NotFound", func(t *testing.T) {
			_, _, err := f.svc.AddSecret(ctx, ferry.NewUUID(), time.Time{})
			wantCode(t, err, ferry.ENOTFOUND)
			admin, err := s.GetPrincipalByName(ctx, "admin")
			must(t, err)
			_, _, err = f.svc.AddSecret(ctx, admin.ID, time.Time{})
			wantCode(t, err, ferry.ENOTFOUND)
		})
	})
}

func TestPasswordHash(t *testing.T) {
	h, err := identity.HashPassword("s3cret!")
	must(t, err)
	tests := []struct {
		name, hash, password string
		ok, malformed        bool
	}{
		{"Match", h, "s3cret!", true, false},
		{"Mismatch", h, "s3cret?", false, false},
		{"NotPHC", "plain", "s3cret!", false, true},
		{"Bcrypt", "$2a$10$abcdefghijklmnopqrstuv", "s3cret!", false, true},
		{"HugeMemory", strings.Replace(h, "m=8192", "m=99999999", 1), "s3cret!", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := identity.CheckPassword(tt.hash, tt.password)
			if ok != tt.ok || (err != nil) != tt.malformed {
				t.Errorf("CheckPassword = %v, %v; want %v, malformed %v", ok, err, tt.ok, tt.malformed)
			}
		})
	}
	h2, err := identity.HashPassword("s3cret!")
	must(t, err)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
}
