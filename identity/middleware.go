package identity

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
)

// Authenticate returns the caller of a request that carries a valid bearer
// token of an enabled principal. Returns EUNAUTHORIZED, with no detail, when
// the token is missing, malformed, expired or wrongly signed, or its
// principal is gone or disabled.
func (s *Service) Authenticate(r *http.Request) (*ferry.Caller, error) {
	raw, ok := bearerToken(r)
	if !ok {
		return nil, errBadToken(nil)
	}
	ctx := r.Context()
	claims, err := s.VerifyToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	p, err := s.store.GetPrincipal(ctx, claims.ObjectID)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, errBadToken(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if p.Disabled {
		return nil, errBadToken(nil)
	}
	return &ferry.Caller{
		Principal: Redact(p),
		Claims:    claims,
		UserAgent: r.UserAgent(),
		ClientIP:  clientIP(r),
	}, nil
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// RequireAuth passes requests with a valid bearer token to next, with the
// caller in the context (ferry.CallerFromContext), and answers all others
// 401 with a JSON error and a WWW-Authenticate: Bearer challenge.
func (s *Service) RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.Authenticate(r)
		if err != nil {
			s.writeUnauthorized(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(ferry.NewContextWithCaller(r.Context(), c)))
	})
}

// apiError is the ARM-style error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *Service) writeUnauthorized(w http.ResponseWriter, r *http.Request, err error) {
	status, body := http.StatusUnauthorized, apiError{}
	if ferry.IsCode(err, ferry.EUNAUTHORIZED) {
		body.Error.Code = "Unauthorized"
		body.Error.Message = ferry.ErrorMessage(err)
		challenge := `Bearer realm="ferry"`
		if _, ok := bearerToken(r); ok {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	} else {
		s.log.ErrorContext(r.Context(), "authenticate request", "err", err)
		status = http.StatusInternalServerError
		body.Error.Code = "InternalServerError"
		body.Error.Message = "An internal error has occurred."
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
