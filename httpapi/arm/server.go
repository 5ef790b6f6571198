package arm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
)

// Config configures a Server.
type Config struct {
	Provider    string           // resource provider namespace, e.g. "Microsoft.AzureSphere"
	APIVersions []string         // supported api-version values
	Authorizer  ferry.Authorizer // required
	Audit       audit.Recorder   // nil records nothing
	Operations  ferry.OperationStore
	Surface     ferry.Surface    // defaults to ferry.SurfaceIntegrated
	Logger      *slog.Logger     // nil discards
	Now         func() time.Time // nil is time.Now
}

// Server registers the operations of one ARM resource provider on a
// ServeMux, each wrapped with the api-version check, authorization, error
// rendering and an audit record.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// NewServer returns a Server registering on mux.
func NewServer(mux *http.ServeMux, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard
	}
	if cfg.Surface == "" {
		cfg.Surface = ferry.SurfaceIntegrated
	}
	return &Server{cfg: cfg, mux: mux}
}

// Now returns the server's clock reading.
func (s *Server) Now() time.Time { return s.cfg.Now() }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.cfg.Logger }

// Op describes a registered operation.
type Op struct {
	// ID is the swagger operationId, recorded in the audit log.
	ID string
	// Action is the ARM action the caller needs over the scope. Empty
	// skips the check (the handler authorizes itself).
	Action string
	// Scope returns the resource ID the action is checked over. Nil uses
	// ScopeOf(request path): the target resource, or for collections and
	// actions, their parent.
	Scope func(r *http.Request) string
}

// Call is what the wrapper knows of the request in progress. Handlers
// reach it with CallFrom to add what only they know (the catalog).
type Call struct {
	OperationID string
	Action      string
	ResourceID  string
	CatalogID   string
}

type callKey struct{}

// CallFrom returns the call of a request handled by a Server, or nil.
func CallFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// SetCatalog records the catalog (tenant ID) a call concerns, for audit.
func SetCatalog(ctx context.Context, catalogID string) {
	if c := CallFrom(ctx); c != nil {
		c.CatalogID = catalogID
	}
}

// Handle registers h for pattern (a ServeMux method pattern).
func (s *Server) Handle(pattern string, op Op, h httpapi.HandlerFunc) {
	s.mux.Handle(pattern, s.Wrap(op, h))
}

// Wrap returns h wrapped as Handle wraps it, for callers with their own mux.
func (s *Server) Wrap(op Op, h httpapi.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		scope := ""
		if op.Scope != nil {
			scope = op.Scope(r)
		} else {
			scope = ScopeOf(r.URL.EscapedPath())
		}
		call := &Call{OperationID: op.ID, Action: op.Action, ResourceID: scope}
		ctx := context.WithValue(r.Context(), callKey{}, call)
		corr := httpapi.CorrelationID(ctx)
		if corr == "" {
			corr = r.Header.Get("x-ms-correlation-request-id")
			if corr == "" || len(corr) > 128 {
				corr = ferry.NewUUID()
			}
			w.Header().Set("x-ms-correlation-request-id", corr)
			ctx = httpapi.WithCorrelationID(ctx, corr)
		}
		r = r.WithContext(ctx)
		sw := &httpapi.StatusWriter{ResponseWriter: w}
		err := CheckAPIVersion(r, s.cfg.APIVersions...)
		if err == nil && op.Action != "" {
			err = s.Authorize(ctx, op.Action, scope)
		}
		if err == nil {
			err = h(sw, r)
		}
		if err != nil {
			if ferry.ErrorCode(err) == ferry.EINTERNAL {
				s.cfg.Logger.ErrorContext(ctx, "request failed", "operation", op.ID, "method", r.Method, "path", r.URL.Path, "correlation_id", corr, "err", err)
			}
			if sw.Status == 0 {
				Render(sw, r, err)
			}
		}
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		s.record(r, call, sw.Status, err, time.Since(start), corr)
	})
}

func (s *Server) record(r *http.Request, call *Call, status int, err error, d time.Duration, corr string) {
	ctx := r.Context()
	e := &ferry.AuditEvent{
		Time: s.cfg.Now().UTC(), Surface: s.cfg.Surface, Operation: call.OperationID, Action: call.Action,
		ResourceID: call.ResourceID, CatalogID: call.CatalogID,
		UserAgent: r.UserAgent(), StatusCode: status, CorrelationID: corr, Duration: d,
		Result: ferry.ResultSuccess, ResultDescription: call.OperationID + " succeeded",
	}
	if c := ferry.CallerFromContext(ctx); c != nil {
		e.PrincipalID, e.PrincipalName, e.ClientIP = c.ID(), c.Name(), c.ClientIP
		if c.Principal != nil {
			e.PrincipalType = c.Principal.Type
		}
	}
	if status >= 400 {
		e.Result = ferry.ResultFailure
		e.ResultDescription = call.OperationID + " failed"
		if err != nil {
			det, _ := Detail(err)
			e.ResultDescription = call.OperationID + " failed: " + det.Code + ": " + det.Message
		}
	}
	if aerr := s.cfg.Audit.Record(ctx, e); aerr != nil {
		// The response is already written; the audit gap is reported
		// here, once, where it happened.
		s.cfg.Logger.ErrorContext(ctx, "audit record failed", "operation", call.OperationID, "correlation_id", corr, "err", aerr)
	}
}

// Authorize checks that the request's caller may perform action over
// scope. Returns InvalidAuthenticationToken (401) without a caller and
// AuthorizationFailed (403) in ARM's words when the authorizer says no.
func (s *Server) Authorize(ctx context.Context, action, scope string) error {
	c := ferry.CallerFromContext(ctx)
	if c == nil {
		return NewError(ferry.EUNAUTHORIZED, CodeInvalidAuthenticationToken, "The access token is missing or invalid.")
	}
	if s.cfg.Authorizer == nil {
		return ferry.Errorf(ferry.EINTERNAL, "no authorizer configured")
	}
	err := s.cfg.Authorizer.Authorize(ctx, c, action, scope)
	switch ferry.ErrorCode(err) {
	case "":
		return nil
	case ferry.EFORBIDDEN:
		return Forbidden(c, action, scope)
	case ferry.EUNAUTHORIZED:
		return NewError(ferry.EUNAUTHORIZED, CodeInvalidAuthenticationToken, "The access token is missing or invalid.")
	}
	return fmt.Errorf("authorize %s: %w", action, err)
}

// HandleOperations registers the provider's operation status endpoints:
// /providers/{provider}/locations/{location}/operationStatuses/{id} (the
// Azure-AsyncOperation URL) and .../operationResults/{id} (the Location
// URL), also under /subscriptions/{subscriptionId}.
func (s *Server) HandleOperations() {
	for _, prefix := range []string{"", "/subscriptions/{subscriptionId}"} {
		base := prefix + "/providers/" + s.cfg.Provider + "/locations/{location}/"
		s.Handle("GET "+base+"operationStatuses/{operationId}", Op{ID: "OperationStatuses_Get"}, s.handleOperationStatus)
		s.Handle("GET "+base+"operationResults/{operationId}", Op{ID: "OperationResults_Get"}, s.handleOperationResult)
	}
}

// ScopeOf returns the resource ID an ARM request path addresses: the path
// itself for a resource, its parent for a collection or an action (a path
// with an odd number of segments after the provider). Returns "/" for
// paths that are not ARM IDs.
func ScopeOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		if strings.EqualFold(seg, "providers") {
			if rest := len(segs) - (i + 2); rest > 0 && rest%2 == 1 {
				segs = segs[:len(segs)-1]
			}
			break
		}
	}
	// /subscriptions/{s}/resourceGroups (the collection) and similar.
	if len(segs) >= 1 && !strings.EqualFold(segs[len(segs)-1], "providers") {
		if id, err := ferry.ParseResourceID("/" + strings.Join(segs, "/")); err == nil {
			return id.String()
		}
	}
	for n := len(segs) - 1; n > 0; n-- {
		if id, err := ferry.ParseResourceID("/" + strings.Join(segs[:n], "/")); err == nil {
			return id.String()
		}
	}
	return "/"
}
