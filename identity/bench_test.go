package identity_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/store/storetest"
)

// Benchmarks run against a real SQLite store:
//
//	go test ./identity -run XXX -bench . -benchmem

func BenchmarkIssueToken(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	sp, _, err := f.svc.CreateServicePrincipal(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.svc.IssueToken(ctx, sp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	sp, _, err := f.svc.CreateServicePrincipal(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	tok, err := f.svc.IssueToken(ctx, sp)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.svc.VerifyToken(ctx, tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate is the middleware's whole cost per request: verify
// the token and load the principal from the store.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	sp, _, err := f.svc.CreateServicePrincipal(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	tok, err := f.svc.IssueToken(ctx, sp)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	for b.Loop() {
		if _, err := f.svc.Authenticate(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := identity.HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientCredentialsGrant is one POST /oauth2/token with a client
// secret, served in-process: form parsing, store lookup, hash check, signing.
func BenchmarkClientCredentialsGrant(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	sp, secret, err := f.svc.CreateServicePrincipal(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	h := httpHandler(f.svc)
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.Name}, "client_secret": {secret}}.Encode()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func httpHandler(svc *identity.Service) http.Handler {
	mux := http.NewServeMux()
	svc.Register(mux)
	return mux
}
