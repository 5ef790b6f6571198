package armresources

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// armError gives a ferry error a specific ARM error code.
type armError struct {
	code string
	err  *ferry.Error
}

func (e *armError) Error() string { return e.err.Error() }
func (e *armError) Unwrap() error { return e.err }

// withCode returns err carrying the ARM error code armCode.
func withCode(armCode, code, format string, args ...any) error {
	return &armError{code: armCode, err: ferry.Errorf(code, format, args...)}
}

// armCode returns the ARM error code for err.
func armCode(err error) string {
	var a *armError
	if errors.As(err, &a) {
		return a.code
	}
	switch ferry.ErrorCode(err) {
	case ferry.EINVALID:
		return "InvalidRequestContent"
	case ferry.ENOTFOUND:
		return "ResourceNotFound"
	case ferry.ECONFLICT:
		return "Conflict"
	case ferry.EPRECONDITION:
		return "PreconditionFailed"
	case ferry.EFORBIDDEN:
		return "AuthorizationFailed"
	case ferry.EUNAUTHORIZED:
		return "InvalidAuthenticationToken"
	case ferry.ETHROTTLED:
		return "TooManyRequests"
	}
	return "InternalServerError"
}

// render writes err as ARM error JSON.
func render(w http.ResponseWriter, r *http.Request, err error) {
	status := httpapi.StatusCode(ferry.ErrorCode(err))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	_ = httpapi.WriteJSON(w, status, map[string]any{"error": map[string]any{
		"code": armCode(err), "message": ferry.ErrorMessage(err), "details": []any{},
	}})
}

// checkAPIVersion returns an ARM error unless the request names one of the
// supported api-versions.
func checkAPIVersion(r *http.Request, supported ...string) error {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return withCode("MissingApiVersionParameter", ferry.EINVALID,
			"The api-version query parameter (?api-version=) is required for all requests.")
	}
	if !slices.Contains(supported, v) {
		return withCode("InvalidApiVersionParameter", ferry.EINVALID,
			"The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(supported, ","))
	}
	return nil
}

// decode reads a JSON request body into v.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return withCode("InvalidRequestContent", ferry.EINVALID, "The request content could not be read.")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return withCode("InvalidRequestContent", ferry.EINVALID, "The request content was invalid and could not be deserialized: the body is empty.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return withCode("InvalidRequestContent", ferry.EINVALID, "The request content was invalid and could not be deserialized: %s.", jsonProblem(err))
	}
	return nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "the member '" + te.Field + "' has the wrong type"
	}
	return "malformed JSON"
}

// statusWriter remembers the status a handler wrote, for the audit record.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// call is one request being served: the operation, its action and target,
// and the audit record written when it ends.
type call struct {
	op, action, resourceID string
}

// serve runs h for one operation: it authorizes the caller for action on
// resourceID (when action is set), renders h's error, and records the call
// in the audit log whatever the outcome.
func serve(cfg *Config, w http.ResponseWriter, r *http.Request, c call, h func(w http.ResponseWriter, r *http.Request) error) {
	start := cfg.Now()
	sw := &statusWriter{ResponseWriter: w}
	caller := ferry.CallerFromContext(r.Context())
	err := func() error {
		if c.action != "" {
			if err := cfg.Authorizer.Authorize(r.Context(), caller, c.action, c.resourceID); err != nil {
				return err
			}
		}
		return h(sw, r)
	}()
	if err != nil {
		if ferry.ErrorCode(err) == ferry.EINTERNAL {
			cfg.Logger.ErrorContext(r.Context(), "request failed", "operation", c.op, "err", err)
		}
		render(sw, r, err)
	}
	audit(cfg, r, caller, c, sw.status, err, cfg.Now().Sub(start))
}

func audit(cfg *Config, r *http.Request, caller *ferry.Caller, c call, status int, err error, d time.Duration) {
	if cfg.Audit == nil {
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	e := &ferry.AuditEvent{
		ID: ferry.NewUUID(), Time: cfg.Now(), Surface: ferry.SurfaceIntegrated,
		Operation: c.op, Action: c.action, ResourceID: c.resourceID,
		PrincipalID: caller.ID(), PrincipalName: caller.Name(),
		ClientIP: "", UserAgent: r.UserAgent(), Result: ferry.ResultSuccess, StatusCode: status,
		CorrelationID: httpapi.CorrelationID(r.Context()), Duration: d,
	}
	if caller != nil {
		e.ClientIP = caller.ClientIP
		if caller.Principal != nil {
			e.PrincipalType = caller.Principal.Type
		}
	}
	if e.CorrelationID == "" {
		e.CorrelationID = r.Header.Get("x-ms-correlation-request-id")
	}
	if err != nil {
		e.Result, e.ResultDescription = ferry.ResultFailure, ferry.ErrorMessage(err)
	}
	if aerr := cfg.Audit.AppendAudit(r.Context(), []*ferry.AuditEvent{e}); aerr != nil {
		cfg.Logger.ErrorContext(r.Context(), "audit append failed", "operation", c.op, "err", aerr)
	}
}

// segments splits a request path into its non-empty segments, tolerating
// the doubled slashes some clients send.
func segments(path string) []string {
	var out []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// discard keeps slog from being flagged as unused when no logger is given.
var discard = slog.New(slog.DiscardHandler)
