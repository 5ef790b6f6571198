package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/store/storetest"
)

// decodePart returns a JWT part as a map.
func decodePart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	return m
}

func TestIssueAndVerifyToken(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		f := newFixture(t, s)
		tid, err := f.svc.TenantID(ctx)
		must(t, err)
		user, err := f.svc.AuthenticateUser(ctx, "admin", "admin-password")
		must(t, err)
		sp, _, err := f.svc.CreateServicePrincipal(ctx, "robot")
		must(t, err)
		now := f.clock.Now()

		t.Run("User", func(t *testing.T) {
			tok, err := f.svc.IssueToken(ctx, user)
			must(t, err)
			if !tok.ExpiresAt.Equal(now.Add(identity.DefaultTokenTTL)) {
				t.Errorf("ExpiresAt = %v", tok.ExpiresAt)
			}
			hdr := decodePart(t, tok.AccessToken, 0)
			if hdr["alg"] != "ES256" || hdr["kid"] == "" || hdr["typ"] != "JWT" {
				t.Errorf("header = %v", hdr)
			}
			body := decodePart(t, tok.AccessToken, 1)
			for k, want := range map[string]any{"oid": user.ID, "sub": user.ID, "tid": tid, "iss": testIssuer, "aud": identity.DefaultAudience, "name": "admin", "idtyp": "user"} {
				if body[k] != want {
					t.Errorf("claim %s = %v, want %v", k, body[k], want)
				}
			}
			for _, k := range []string{"iat", "nbf", "exp"} {
				if _, ok := body[k].(float64); !ok {
					t.Errorf("claim %s missing", k)
				}
			}
			if _, ok := body["appid"]; ok {
				t.Error("a user's token has appid")
			}
			got, err := f.svc.VerifyToken(ctx, tok.AccessToken)
			must(t, err)
			want := &ferry.Claims{ObjectID: user.ID, TenantID: tid, Audience: []string{identity.DefaultAudience},
				IssuedAt: now.UTC(), ExpiresAt: tok.ExpiresAt.UTC(), Name: "admin", Type: ferry.PrincipalUser}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("VerifyToken (-want +got):\n%s", d)
			}
		})
		t.Run("ServicePrincipal", func(t *testing.T) {
			tok, err := f.svc.IssueToken(ctx, sp)
			must(t, err)
			body := decodePart(t, tok.AccessToken, 1)
			if body["appid"] != sp.Name || body["oid"] != sp.ID || body["idtyp"] != "app" {
				t.Errorf("claims = %v", body)
			}
			got, err := f.svc.VerifyToken(ctx, tok.AccessToken)
			must(t, err)
			if got.Type != ferry.PrincipalServicePrincipal || got.ObjectID != sp.ID {
				t.Errorf("VerifyToken = %+v", got)
			}
		})
	})
}

// forge signs claims with a key Ferry does not know, under kid.
func forge(t *testing.T, kid string, claims any) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	must(t, err)
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	must(t, err)
	return raw
}

func TestVerifyTokenRejects(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	user, err := f.svc.AuthenticateUser(ctx, "admin", "admin-password")
	must(t, err)
	good, err := f.svc.IssueToken(ctx, user)
	must(t, err)
	kid := decodePart(t, good.AccessToken, 0)["kid"].(string)
	body := decodePart(t, good.AccessToken, 1)

	otherAudience := f.service(t, identity.Config{Audience: "https://other.example/"})
	otherIssuer := f.service(t, identity.Config{Issuer: "https://evil.example"})
	otherTenant := newFixture(t, storetest.OpenSQLite(t))
	foreign, err := otherTenant.svc.IssueToken(ctx, user)
	must(t, err)

	parts := strings.Split(good.AccessToken, ".")
	tampered := decodePart(t, good.AccessToken, 1)
	tampered["oid"] = ferry.NewUUID()
	tb, _ := json.Marshal(tampered)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`"}`)) + "." + parts[1] + "."

	tests := []struct {
		name  string
		svc   *identity.Service
		token string
	}{
		{"Empty", f.svc, ""},
		{"Garbage", f.svc, "not.a.token"},
		{"AlgNone", f.svc, none},
		{"TamperedPayload", f.svc, parts[0] + "." + base64.RawURLEncoding.EncodeToString(tb) + "." + parts[2]},
		{"WrongKeySameKid", f.svc, forge(t, kid, body)},
		{"UnknownKid", f.svc, forge(t, "nope", body)},
		{"OtherDeploymentsKey", f.svc, foreign.AccessToken},
		{"WrongAudience", otherAudience, good.AccessToken},
		{"WrongIssuer", otherIssuer, good.AccessToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.svc.VerifyToken(ctx, tt.token)
			wantCode(t, err, ferry.EUNAUTHORIZED)
			if msg := ferry.ErrorMessage(err); msg != "The access token is missing, invalid or expired." {
				t.Errorf("message %q reveals detail", msg)
			}
		})
	}
	t.Run("Expired", func(t *testing.T) {
		f.clock.Advance(identity.DefaultTokenTTL + 2*time.Minute)
		_, err := f.svc.VerifyToken(ctx, good.AccessToken)
		wantCode(t, err, ferry.EUNAUTHORIZED)
	})
	t.Run("NotYetValid", func(t *testing.T) {
		future, err := f.svc.IssueToken(ctx, user)
		must(t, err)
		f.clock.Advance(-10 * time.Minute)
		_, err = f.svc.VerifyToken(ctx, future.AccessToken)
		wantCode(t, err, ferry.EUNAUTHORIZED)
	})
}

func TestRotateSigningKey(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		f := newFixture(t, s)
		other := f.service(t, identity.Config{}) // a second node
		user, err := f.svc.AuthenticateUser(ctx, "admin", "admin-password")
		must(t, err)
		before, err := f.svc.IssueToken(ctx, user)
		must(t, err)
		must(t, func() error { _, err := other.VerifyToken(ctx, before.AccessToken); return err }())

		newKid, err := f.svc.RotateSigningKey(ctx)
		must(t, err)
		after, err := f.svc.IssueToken(ctx, user)
		must(t, err)
		if kid := decodePart(t, after.AccessToken, 0)["kid"]; kid != newKid {
			t.Errorf("token after rotation has kid %v, want %s", kid, newKid)
		}
		set, err := f.svc.JWKS(ctx)
		must(t, err)
		if len(set.Keys) != 2 {
			t.Errorf("JWKS has %d keys after rotation, want 2", len(set.Keys))
		}
		// Both verify, on both nodes: the second learns the new key on sight.
		for _, svc := range []*identity.Service{f.svc, other} {
			for _, tok := range []identity.Token{before, after} {
				if _, err := svc.VerifyToken(ctx, tok.AccessToken); err != nil {
					t.Errorf("VerifyToken after rotation (kid %v, new %s): %v", decodePart(t, tok.AccessToken, 0)["kid"], newKid, err)
				}
			}
		}
		// The second node signs with the new key once it rereads the keys.
		f.clock.Advance(2 * time.Minute)
		tok, err := other.IssueToken(ctx, user)
		must(t, err)
		if kid := decodePart(t, tok.AccessToken, 0)["kid"]; kid != newKid {
			t.Errorf("second node signs with %v after rotation, want %s", kid, newKid)
		}
		// Once the old key's tokens have expired, it leaves the JWKS.
		f.clock.Advance(identity.DefaultTokenTTL)
		set, err = f.svc.JWKS(ctx)
		must(t, err)
		if len(set.Keys) != 1 || set.Keys[0].KeyID != newKid {
			t.Errorf("JWKS after the old key's tokens expired = %v", set.Keys)
		}
	})
}
