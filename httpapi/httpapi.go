// Package httpapi holds what every HTTP surface of Ferry shares: handlers
// that return errors, request metrics by route, access logs, correlation IDs
// and the health endpoints. The surfaces themselves (httpapi/integrated,
// httpapi/legacy, httpapi/hubsvc) render errors in their own shapes.
package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/ferry-iot/ferry"
)

// HandlerFunc is an HTTP handler that returns its error instead of writing
// it, so that one function per surface renders every error alike.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ErrorRenderer writes an error in a surface's own shape.
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, err error)

// Handle adapts a HandlerFunc to an http.Handler, rendering its error with
// render. Internal errors are logged once here, with their detail, and shown
// without it.
func Handle(log *slog.Logger, render ErrorRenderer, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		if ferry.ErrorCode(err) == ferry.EINTERNAL {
			log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		render(w, r, err)
	})
}

// StatusCode maps an error code to the HTTP status most surfaces use.
func StatusCode(code string) int {
	switch code {
	case "":
		return http.StatusOK
	case ferry.EINVALID:
		return http.StatusBadRequest
	case ferry.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case ferry.EFORBIDDEN:
		return http.StatusForbidden
	case ferry.ENOTFOUND:
		return http.StatusNotFound
	case ferry.ECONFLICT:
		return http.StatusConflict
	case ferry.EPRECONDITION:
		return http.StatusPreconditionFailed
	case ferry.ETHROTTLED:
		return http.StatusTooManyRequests
	case ferry.ETIMEOUT:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// RenderPlain renders errors for Ferry's own endpoints (health, tokens'
// neighbours) as {"error":{"code":..., "message":...}}.
func RenderPlain(w http.ResponseWriter, r *http.Request, err error) {
	code := ferry.ErrorCode(err)
	status := StatusCode(code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer`)
	}
	_ = WriteJSON(w, status, map[string]any{"error": map[string]string{
		"code": http.StatusText(status), "message": ferry.ErrorMessage(err),
	}})
}
