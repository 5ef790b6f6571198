package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry/client"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/store/storetest"
)

// startServer runs the real server on :0 ports in a temporary directory.
func startServer(t *testing.T, extra ...string) (*Main, *bytes.Buffer) {
	t.Helper()
	var stdout bytes.Buffer
	env := envFrom(map[string]string{"FERRY_ADMIN_PASSWORD": "correct horse battery"})
	m := NewMain(&stdout, io.Discard, env)
	args := append([]string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--mqtt", ""}, extra...)
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m, &stdout
}

// httpsClient trusts the server's own CA.
func httpsClient(t *testing.T, m *Main) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.CACert())
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestServerEndToEnd(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var extra []string
			if backend == "postgres" {
				extra = []string{"--db", storetest.NewPostgresSchema(t)}
			}
			m, stdout := startServer(t, extra...)
			testTokens(t, m, stdout.String())
		})
	}
}

func testTokens(t *testing.T, m *Main, banner string) {
	ctx := context.Background()
	hc := httpsClient(t, m)
	base := m.issuerURL()
	if !strings.Contains(banner, base) || !strings.Contains(banner, `user "admin"`) {
		t.Errorf("banner lacks the HTTPS URL or the administrator:\n%s", banner)
	}
	if strings.Contains(banner, "correct horse battery") {
		t.Error("banner shows a password that the operator chose")
	}

	sp, secret, err := m.Identity.CreateServicePrincipal(ctx, "e2e script")
	if err != nil {
		t.Fatal(err)
	}
	token := func(form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := hc.PostForm(base+"/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	me := func(tok string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/me", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	status, body := token(url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.Name}, "client_secret": {secret}})
	if status != http.StatusOK {
		t.Fatalf("client credentials: %d %v", status, body)
	}
	good, _ := body["access_token"].(string)
	if status, body := me(good); status != http.StatusOK || body["objectId"] != sp.ID {
		t.Fatalf("authenticated call: %d %v", status, body)
	}

	t.Run("ErrWrongSecret", func(t *testing.T) {
		status, body := token(url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.Name}, "client_secret": {"nope"}})
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("got %d %v, want 401 invalid_client", status, body)
		}
	})
	t.Run("ErrWrongPassword", func(t *testing.T) {
		status, body := token(url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}})
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("got %d %v, want 400 invalid_grant", status, body)
		}
	})

	expired := func() string {
		// A token signed with the server's real key, issued two hours ago.
		old, err := identity.New(identity.Config{Store: m.Store, Issuer: m.issuerURL(),
			Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := old.IssueToken(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}()
	parts := strings.Split(good, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 1 // still base64url, no longer the signature
	badSig := parts[0] + "." + parts[1] + "." + string(sig)

	for _, c := range []struct{ name, token string }{
		{"ErrNoToken", ""},
		{"ErrMalformed", "not-a-jwt"},
		{"ErrBadSignature", badSig},
		{"ErrExpired", expired},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := me(c.token)
			if status != http.StatusUnauthorized {
				t.Fatalf("got %d %v, want 401", status, body)
			}
			e, _ := body["error"].(map[string]any)
			if e["code"] != "Unauthorized" {
				t.Errorf("error body %v", body)
			}
			if msg, _ := e["message"].(string); strings.Contains(msg, "signature") || strings.Contains(msg, "expired at") {
				t.Errorf("401 leaks detail: %q", msg)
			}
		})
	}
}

func TestServerRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	run := func() (*Main, string) {
		var stdout bytes.Buffer
		m := NewMain(&stdout, io.Discard, envFrom(nil))
		if err := m.ParseFlags([]string{"--data", dir, "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--mqtt", ""}); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m, stdout.String()
	}
	m1, banner1 := run()
	ca1 := m1.CA.CACertPEM()
	if !strings.Contains(banner1, "password") {
		t.Fatalf("first start shows no generated password:\n%s", banner1)
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	m2, banner2 := run()
	defer m2.Close()
	if !bytes.Equal(ca1, m2.CA.CACertPEM()) {
		t.Error("the CA changed across a restart")
	}
	if strings.Contains(banner2, "password") {
		t.Errorf("a restart shows a password again:\n%s", banner2)
	}
	if fi, err := os.Stat(filepath.Join(dir, "pki", "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v %v", fi.Mode(), err)
	}
}

func TestServerRefusesCorruptCA(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	junk := []byte("not a certificate")
	if err := os.WriteFile(filepath.Join(dir, "pki", "ca.crt"), junk, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--https", "", "--mqtt", ""},
		strings.NewReader(""), io.Discard, &stderr, envFrom(nil))
	if code != 1 || !strings.Contains(stderr.String(), "certificate authority") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "pki", "ca.crt")); !bytes.Equal(b, junk) {
		t.Error("the unreadable CA file was overwritten")
	}
}

func TestLoginAndCAExport(t *testing.T) {
	m, _ := startServer(t)
	cfg := t.TempDir()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"ca", "export", "--data", m.Config.DataDir}, nil, &out, &errb, envFrom(nil)); code != 0 {
		t.Fatalf("ca export: %d %s", code, errb.String())
	}
	if err := os.WriteFile(caFile, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	env := envFrom(map[string]string{"FERRY_CONFIG_DIR": cfg})
	out.Reset()
	errb.Reset()
	code := run(context.Background(), []string{"login", "--url", m.issuerURL(), "--username", "admin", "--ca-file", caFile},
		strings.NewReader("correct horse battery\n"), &out, &errb, env)
	if code != 0 {
		t.Fatalf("login: exit %d: %s", code, errb.String())
	}
	p, err := client.LoadProfile(filepath.Join(cfg, "profile.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Client()
	if err != nil {
		t.Fatal(err)
	}
	var me map[string]any
	if _, err := c.Do(context.Background(), http.MethodGet, "/api/me", nil, &me); err != nil || me["name"] != "admin" {
		t.Errorf("saved profile does not work: %v %v", me, err)
	}

	t.Run("ErrWrongPassword", func(t *testing.T) {
		var errb bytes.Buffer
		code := run(context.Background(), []string{"login", "--url", m.issuerURL(), "--username", "admin", "--ca-file", caFile},
			strings.NewReader("wrong\n"), io.Discard, &errb, env)
		if code != 1 || !strings.Contains(errb.String(), "invalid_grant") {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	})
	t.Run("ErrBothPrincipals", func(t *testing.T) {
		code := run(context.Background(), []string{"login", "--username", "a", "--client-id", "b"}, nil, io.Discard, io.Discard, env)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
	t.Run("ErrNoCA", func(t *testing.T) {
		var errb bytes.Buffer
		code := run(context.Background(), []string{"ca", "export", "--data", t.TempDir()}, nil, io.Discard, &errb, envFrom(nil))
		if code != 1 || !strings.Contains(errb.String(), "no CA") {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	})
}

func TestServerRefusesUnreachableDatabase(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--https", "", "--mqtt", "",
		"--db", "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"},
		strings.NewReader(""), io.Discard, &stderr, envFrom(nil))
	if code != 1 || !strings.Contains(stderr.String(), "open database") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "hunter2") {
		t.Errorf("the database password leaked: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "pki")); !os.IsNotExist(err) {
		t.Errorf("a CA was created although the database is unreachable: %v", err)
	}
}
