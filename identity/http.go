package identity

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-iot/ferry"
)

// maxFormBytes bounds a token request's body.
const maxFormBytes = 64 << 10

// Register adds the token endpoint and the discovery documents to mux:
//
//	POST /oauth2/token, /{tenant}/oauth2/token, /{tenant}/oauth2/v2.0/token
//	GET  /.well-known/openid-configuration, /{tenant}/.well-known/openid-configuration,
//	     /{tenant}/v2.0/.well-known/openid-configuration
//	GET  /.well-known/jwks.json, /{tenant}/discovery/v2.0/keys
//
// The tenant forms are Entra ID's, so that the Azure SDKs'
// ClientSecretCredential with this server as its authority host works.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("POST /{tenant}/oauth2/token", s.handleToken)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleJWKS)
}

// oauthError is an RFC 6749 section 5.2 error.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, desc string) *oauthError {
	return &oauthError{status: status, Code: code, Description: desc}
}

// writeOAuthError renders any error in the OAuth2 shape; internal detail is
// logged, never shown.
func (s *Service) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	if !errors.As(err, &oe) {
		s.log.ErrorContext(r.Context(), "token endpoint failed", "path", r.URL.Path, "err", err)
		oe = oauthErr(http.StatusInternalServerError, "server_error", "An internal error has occurred.")
	}
	if oe.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="ferry"`)
	}
	writeJSON(w, oe.status, oe)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// checkTenant accepts the directory's tenant ID and Entra's multi-tenant
// aliases in a path.
func (s *Service) checkTenant(r *http.Request) error {
	t := r.PathValue("tenant")
	if t == "" {
		return nil
	}
	tid, err := s.TenantID(r.Context())
	if err != nil {
		return err
	}
	switch strings.ToLower(t) {
	case tid, "common", "organizations":
		return nil
	}
	return oauthErr(http.StatusBadRequest, "invalid_request", "The tenant in the path is not this directory.")
}

// tokenResponse is the token endpoint's answer, as Entra ID's v2 endpoint
// gives it.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
}

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(r)
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) token(r *http.Request) (*tokenResponse, error) {
	if err := s.checkTenant(r); err != nil {
		return nil, err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The request body must be a form (application/x-www-form-urlencoded).")
	}
	form := r.PostForm
	for _, k := range []string{"grant_type", "client_id", "client_secret", "username", "password"} {
		if len(form[k]) > 1 {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The parameter "+k+" is repeated.")
		}
	}
	ctx := r.Context()
	var p *ferry.Principal
	switch grant := form.Get("grant_type"); grant {
	case "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The grant_type parameter is missing.")
	case "client_credentials":
		id, secret, err := clientCredentials(r)
		if err != nil {
			return nil, err
		}
		p, err = s.AuthenticateClient(ctx, id, secret)
		if ferry.IsCode(err, ferry.EUNAUTHORIZED) {
			s.log.InfoContext(ctx, "sign-in failed", "grant_type", grant, "client_id", id)
			return nil, oauthErr(http.StatusUnauthorized, "invalid_client", "The client ID or secret is not valid.")
		}
		if err != nil {
			return nil, err
		}
	case "password":
		name, password := form.Get("username"), form.Get("password")
		if name == "" || password == "" {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The password grant needs username and password.")
		}
		var err error
		p, err = s.AuthenticateUser(ctx, name, password)
		if ferry.IsCode(err, ferry.EUNAUTHORIZED) {
			s.log.InfoContext(ctx, "sign-in failed", "grant_type", grant, "username", name)
			return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "The user name or password is not valid.")
		}
		if err != nil {
			return nil, err
		}
	default:
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "The grant type is not supported; use client_credentials or password.")
	}
	tok, err := s.IssueToken(ctx, p)
	if err != nil {
		return nil, err
	}
	secs := int64(tok.ExpiresAt.Sub(s.now()).Seconds())
	return &tokenResponse{AccessToken: tok.AccessToken, TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs}, nil
}

// clientCredentials returns the client ID and secret from HTTP Basic
// authentication (RFC 6749 section 2.3.1: both form-encoded first) or from
// the form, but not both.
func clientCredentials(r *http.Request) (id, secret string, err error) {
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		if formSecret != "" {
			return "", "", oauthErr(http.StatusBadRequest, "invalid_request", "Send the client secret in the Authorization header or in the form, not both.")
		}
		if v, err := url.QueryUnescape(u); err == nil {
			u = v
		}
		if v, err := url.QueryUnescape(p); err == nil {
			p = v
		}
		if formID != "" && formID != u {
			return "", "", oauthErr(http.StatusBadRequest, "invalid_request", "The client_id differs from the one in the Authorization header.")
		}
		return u, p, nil
	}
	if formID == "" || formSecret == "" {
		return "", "", oauthErr(http.StatusUnauthorized, "invalid_client", "Client authentication is missing: send client_id and client_secret.")
	}
	return formID, formSecret, nil
}

func (s *Service) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if err := s.checkTenant(r); err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	tid, err := s.TenantID(r.Context())
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	doc := map[string]any{
		"issuer":                                s.issuer,
		"token_endpoint":                        s.issuer + "/" + tid + "/oauth2/v2.0/token",
		"jwks_uri":                              s.issuer + "/" + tid + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"grant_types_supported":                 []string{"client_credentials", "password"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "nbf", "iat", "oid", "tid", "appid", "name", "idtyp"},
		"tenant_id":                             tid,
		// MSAL requires an authorization endpoint in the document even for
		// the client-credentials flow; Ferry serves no interactive sign-in there.
		"authorization_endpoint": s.issuer + "/" + tid + "/oauth2/v2.0/authorize",
	}
	if r.PathValue("tenant") == "" {
		doc["token_endpoint"] = s.issuer + "/oauth2/token"
		doc["jwks_uri"] = s.issuer + "/.well-known/jwks.json"
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(doc)
}

func (s *Service) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if err := s.checkTenant(r); err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	set, err := s.JWKS(r.Context())
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(set)
}
