package legacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
)

// env is a real legacy endpoint: store, identity service issuing the
// bearer tokens, legacy-role authorizer, audit log, sphere service and the
// handler under test behind the same caller middleware cmd/ferry uses.
type env struct {
	t      *testing.T
	store  ferry.Store
	svc    *sphere.Service
	ids    *identity.Service
	url    string
	tokens map[string]string // principal ID → bearer token
}

func newEnv(t *testing.T, s ferry.Store) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: s, tokens: map[string]string{}}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var err error
	e.ids, err = identity.New(identity.Config{Store: s, Issuer: srv.URL, Audience: "api://ferry"})
	must(t, err)
	_, err = e.ids.Bootstrap(ctx, "")
	must(t, err)
	e.svc = sphere.New(sphere.Config{Store: s})
	api := legacy.New(legacy.Config{Sphere: e.svc, Store: s, Authorizer: rbac.NewLegacy(s), Audit: audit.NewStoreRecorder(s)})
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := e.ids.Authenticate(r); err == nil {
			r = r.WithContext(ferry.NewContextWithCaller(r.Context(), c))
		}
		api.ServeHTTP(w, r)
	})
	e.url = srv.URL
	return e
}

// user creates a principal and a real token for it.
func (e *env) user(name string) *ferry.Principal {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	p := &ferry.Principal{ID: ferry.NewUUID(), Type: ferry.PrincipalUser, Name: name + "@example.com",
		DisplayName: name, Email: name + "@example.com", CreatedAt: now, UpdatedAt: now}
	must(e.t, e.store.CreatePrincipal(ctx, p))
	tok, err := e.ids.IssueToken(ctx, p)
	must(e.t, err)
	e.tokens[p.ID] = tok.AccessToken
	return p
}

// grant gives p a legacy role directly in the store.
func (e *env) grant(tenantID string, p *ferry.Principal, role ferry.LegacyRole) {
	e.t.Helper()
	must(e.t, e.store.AddLegacyRole(context.Background(), &ferry.LegacyRoleAssignment{CatalogID: tenantID, PrincipalID: p.ID, Role: role, CreatedAt: time.Now()}))
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.raw, v); err != nil {
		t.Fatalf("decode %s: %v", r.raw, err)
	}
}

// code returns the legacy error code of an error answer, or -1.
func (r response) code() int {
	var e struct{ Code *int }
	if json.Unmarshal(r.raw, &e) != nil || e.Code == nil {
		return -1
	}
	return *e.Code
}

// do sends a request as p (nil: no token). body is JSON-encoded unless it
// is a []byte (sent raw as octet-stream). hdr are header name, value pairs.
func (e *env) do(p *ferry.Principal, method, path string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ct = bytes.NewReader(b), "application/octet-stream"
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		must(e.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	must(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("User-Agent", "azsphere-test/1.0")
	if p != nil {
		req.Header.Set("Authorization", "Bearer "+e.tokens[p.ID])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// ok fails the test unless the answer is the given status, and decodes it.
func (e *env) ok(r response, status int, v any) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status = %d, want %d: %s", r.status, status, r.raw)
	}
	if v != nil {
		r.decode(e.t, v)
	}
}

// createTenant creates a tenant through the API as p and returns its ID.
func (e *env) createTenant(p *ferry.Principal, name, deviceID string) string {
	e.t.Helper()
	var op legacy.Operation
	e.ok(e.do(p, "POST", "/v2/tenants/create", map[string]string{"DeviceId": deviceID, "TenantFriendlyName": name}), 200, &op)
	if op.OperationType != int(ferry.OpTenantCreation) || op.State != int(ferry.OpComplete) {
		e.t.Fatalf("tenant creation operation = %+v", op)
	}
	return op.TenantId
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, r response, status, code int) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Errorf("answer = %d %s, want %d with Code %d", r.status, r.raw, status, code)
	}
}

// deviceID returns a 128-character device ID made of one character and a
// number, unique per (c, n).
func deviceID(c byte, n int) string {
	s := strings.Repeat(string(c), 120)
	return s + fmt.Sprintf("%08d", n)
}
