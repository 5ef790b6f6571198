package identity_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/identity"
	"github.com/ferry-iot/ferry/store/storetest"
)

// server starts the service's endpoints and one protected route, /whoami,
// that echoes the caller.
func (f *fixture) server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	f.svc.Register(mux)
	mux.Handle("GET /whoami", f.svc.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := ferry.CallerFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"id": c.ID(), "name": c.Name(), "type": string(c.Claims.Type), "ip": c.ClientIP})
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", req.Method, req.URL.Path, b)
	}
	return r
}

func postForm(t *testing.T, u string, form url.Values, basicUser, basicPass string) response {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	return do(t, req)
}

func TestTokenEndpoint(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		f := newFixture(t, s)
		srv := f.server(t)
		tid, err := f.svc.TenantID(ctx)
		must(t, err)
		sp, secret, err := f.svc.CreateServicePrincipal(ctx, "robot")
		must(t, err)

		cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.Name}, "client_secret": {secret}, "scope": {"https://management.ferry.local/.default"}}
		bad := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.Name}, "client_secret": {"wrong"}}
		pw := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"admin-password"}, "resource": {"x"}}
		badPW := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"nope-nope"}}
		tests := []struct {
			name       string
			path       string
			form       url.Values
			basic      [2]string
			wantStatus int
			wantError  string
			wantOID    string
		}{
			{"ClientCredentialsForm", "/oauth2/token", cc, [2]string{}, 200, "", sp.ID},
			{"ClientCredentialsBasic", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{sp.Name, secret}, 200, "", sp.ID},
			{"TenantV2Path", "/" + tid + "/oauth2/v2.0/token", cc, [2]string{}, 200, "", sp.ID},
			{"TenantV1Path", "/" + tid + "/oauth2/token", cc, [2]string{}, 200, "", sp.ID},
			{"Password", "/oauth2/token", pw, [2]string{}, 200, "", ""},
			{"WrongSecret", "/oauth2/token", bad, [2]string{}, 401, "invalid_client", ""},
			{"WrongSecretBasic", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{sp.Name, "wrong"}, 401, "invalid_client", ""},
			{"UnknownClient", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {ferry.NewUUID()}, "client_secret": {secret}}, [2]string{}, 401, "invalid_client", ""},
			{"NoClientAuth", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{}, 401, "invalid_client", ""},
			{"SecretTwice", "/oauth2/token", cc, [2]string{sp.Name, secret}, 400, "invalid_request", ""},
			{"WrongPassword", "/oauth2/token", badPW, [2]string{}, 400, "invalid_grant", ""},
			{"UserAsClient", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"admin"}, "client_secret": {"admin-password"}}, [2]string{}, 401, "invalid_client", ""},
			{"PasswordMissing", "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"admin"}}, [2]string{}, 400, "invalid_request", ""},
			{"NoGrantType", "/oauth2/token", url.Values{"client_id": {sp.Name}}, [2]string{}, 400, "invalid_request", ""},
			{"UnsupportedGrant", "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, [2]string{}, 400, "unsupported_grant_type", ""},
			{"RepeatedParameter", "/oauth2/token", url.Values{"grant_type": {"password", "password"}}, [2]string{}, 400, "invalid_request", ""},
			{"OtherTenant", "/" + ferry.NewUUID() + "/oauth2/v2.0/token", cc, [2]string{}, 400, "invalid_request", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := postForm(t, srv.URL+tt.path, tt.form, tt.basic[0], tt.basic[1])
				if r.status != tt.wantStatus {
					t.Fatalf("status = %d, want %d; body %v", r.status, tt.wantStatus, r.body)
				}
				if cc := r.header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", cc)
				}
				if tt.wantError != "" {
					if r.body["error"] != tt.wantError {
						t.Errorf("error = %v, want %s", r.body["error"], tt.wantError)
					}
					if _, ok := r.body["access_token"]; ok {
						t.Error("error response carries a token")
					}
					if tt.wantStatus == 401 && r.header.Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
					return
				}
				if r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(3600) || r.body["ext_expires_in"] != float64(3600) {
					t.Errorf("token response = %v", r.body)
				}
				claims, err := f.svc.VerifyToken(ctx, r.body["access_token"].(string))
				must(t, err)
				if tt.wantOID != "" && claims.ObjectID != tt.wantOID {
					t.Errorf("oid = %s, want %s", claims.ObjectID, tt.wantOID)
				}
			})
		}
	})
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	srv := f.server(t)
	tid, err := f.svc.TenantID(ctx)
	must(t, err)
	get := func(t *testing.T, path string) response {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		must(t, err)
		return do(t, req)
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/" + tid + "/.well-known/openid-configuration", "/" + tid + "/v2.0/.well-known/openid-configuration"} {
		t.Run(path, func(t *testing.T) {
			r := get(t, path)
			if r.status != 200 || r.body["issuer"] != testIssuer || r.body["tenant_id"] != tid {
				t.Fatalf("%d %v", r.status, r.body)
			}
			for _, k := range []string{"token_endpoint", "jwks_uri", "authorization_endpoint"} {
				if v, _ := r.body[k].(string); !strings.HasPrefix(v, testIssuer+"/") {
					t.Errorf("%s = %v", k, r.body[k])
				}
			}
		})
	}
	t.Run("UnknownTenant", func(t *testing.T) {
		if r := get(t, "/"+ferry.NewUUID()+"/v2.0/.well-known/openid-configuration"); r.status != 400 {
			t.Errorf("status = %d", r.status)
		}
	})
	for _, path := range []string{"/.well-known/jwks.json", "/" + tid + "/discovery/v2.0/keys"} {
		t.Run(path, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+path, nil)
			must(t, err)
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			defer resp.Body.Close()
			var set jose.JSONWebKeySet
			must(t, json.NewDecoder(resp.Body).Decode(&set))
			if len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].KeyID == "" || set.Keys[0].Algorithm != "ES256" {
				t.Fatalf("JWKS = %+v", set.Keys)
			}
			// The published key verifies an issued token.
			user, err := f.svc.AuthenticateUser(ctx, "admin", "admin-password")
			must(t, err)
			tok, err := f.svc.IssueToken(ctx, user)
			must(t, err)
			jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
			must(t, err)
			if _, err := jws.Verify(set.Keys[0].Key); err != nil {
				t.Errorf("JWKS key does not verify a token: %v", err)
			}
		})
	}
}

func TestRequireAuth(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		f := newFixture(t, s)
		srv := f.server(t)
		sp, _, err := f.svc.CreateServicePrincipal(ctx, "robot")
		must(t, err)
		good, err := f.svc.IssueToken(ctx, sp)
		must(t, err)
		victim, _, err := f.svc.CreateServicePrincipal(ctx, "to be disabled")
		must(t, err)
		victimTok, err := f.svc.IssueToken(ctx, victim)
		must(t, err)
		p, err := s.GetPrincipal(ctx, victim.ID)
		must(t, err)
		p.Disabled = true
		must(t, s.UpdatePrincipal(ctx, p))
		deleted, _, err := f.svc.CreateServicePrincipal(ctx, "to be deleted")
		must(t, err)
		deletedTok, err := f.svc.IssueToken(ctx, deleted)
		must(t, err)
		must(t, s.DeletePrincipal(ctx, deleted.ID))
		kid := decodePart(t, good.AccessToken, 0)["kid"].(string)
		forged := forge(t, kid, decodePart(t, good.AccessToken, 1))
		expiring, err := f.svc.IssueToken(ctx, sp)
		must(t, err)

		call := func(t *testing.T, auth string) response {
			t.Helper()
			req, err := http.NewRequest("GET", srv.URL+"/whoami", nil)
			must(t, err)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			return do(t, req)
		}
		t.Run("Valid", func(t *testing.T) {
			r := call(t, "Bearer "+good.AccessToken)
			if r.status != 200 || r.body["id"] != sp.ID || r.body["name"] != sp.Name || r.body["type"] != "ServicePrincipal" || r.body["ip"] != "127.0.0.1" {
				t.Errorf("%d %v", r.status, r.body)
			}
		})
		t.Run("SchemeCaseInsensitive", func(t *testing.T) {
			if r := call(t, "bearer "+good.AccessToken); r.status != 200 {
				t.Errorf("status = %d", r.status)
			}
		})
		tests := []struct{ name, auth string }{
			{"Missing", ""},
			{"Basic", "Basic YWRtaW46YWRtaW4="},
			{"EmptyBearer", "Bearer "},
			{"Malformed", "Bearer abc.def"},
			{"WrongSignature", "Bearer " + forged},
			{"DisabledPrincipal", "Bearer " + victimTok.AccessToken},
			{"DeletedPrincipal", "Bearer " + deletedTok.AccessToken},
		}
		check := func(t *testing.T, r response) {
			t.Helper()
			if r.status != 401 {
				t.Fatalf("status = %d, want 401", r.status)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
			e, _ := r.body["error"].(map[string]any)
			if e["code"] != "Unauthorized" || e["message"] != "The access token is missing, invalid or expired." {
				t.Errorf("body = %v", r.body)
			}
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { check(t, call(t, tt.auth)) })
		}
		t.Run("Expired", func(t *testing.T) {
			f.clock.Advance(identity.DefaultTokenTTL + 2*time.Minute)
			check(t, call(t, "Bearer "+expiring.AccessToken))
		})
	})
}
