package hubsvc

import (
	"context"
	"net/http"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// Operation IDs of the audited writes: those of the IoT Central REST API
// for the same calls.
const (
	auditTemplateCreate = "DeviceTemplates_Create"
	auditTemplateRemove = "DeviceTemplates_Remove"
	auditGroupCreate    = "DeviceGroups_Create"
	auditGroupUpdate    = "DeviceGroups_Update"
	auditGroupRemove    = "DeviceGroups_Remove"
)

// auditNote collects, while a request is served, what its audit event
// names: the hub and the caller once known, and the handler's error.
type auditNote struct {
	hub    *ferry.Hub
	caller *ferry.Caller
	err    error
}

type auditKey struct{}

func noteFrom(ctx context.Context) *auditNote {
	n, _ := ctx.Value(auditKey{}).(*auditNote)
	return n
}

// auditedHub is a hub route whose every call, allowed or refused, is
// recorded as operation on the resource kind/{id} of the hub.
func (s *server) auditedHub(operation, kind string, op Operation, h hubHandler) http.Handler {
	inner := s.withHub(op, h)
	handle := httpapi.Handle(s.log, s.renderHub, func(w http.ResponseWriter, r *http.Request) error {
		err := inner(w, r)
		if n := noteFrom(r.Context()); n != nil {
			n.err = err
		}
		return err
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		n := &auditNote{}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, n))
		handle.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		e := &ferry.AuditEvent{
			Time: s.now().UTC(), Surface: ferry.SurfaceHub, Operation: operation, Action: string(op),
			UserAgent: r.UserAgent(), ClientIP: clientIP(r), StatusCode: sw.status,
			CorrelationID: httpapi.CorrelationID(r.Context()), Duration: s.now().Sub(start),
			Result: ferry.ResultSuccess, ResultDescription: operation + " succeeded",
		}
		if n.hub != nil {
			// A hub made outside ARM has no resource ID: name it by host.
			res := n.hub.HostName
			if n.hub.SubscriptionID != "" {
				res = n.hub.ResourceID().String()
			}
			e.ResourceID = res + "/" + kind + "/" + r.PathValue("id")
		}
		if c := n.caller; c != nil {
			e.PrincipalID, e.PrincipalName = c.ID(), c.Name()
			if c.Principal != nil {
				e.PrincipalType = c.Principal.Type
			}
		}
		if sw.status >= 400 {
			e.Result, e.ResultDescription = ferry.ResultFailure, operation+" failed"
			if n.err != nil {
				e.ResultDescription += ": " + ferry.ErrorMessage(n.err)
			}
		}
		if err := s.audit.Record(r.Context(), e); err != nil {
			// The answer is written: report the gap here, once.
			s.log.ErrorContext(r.Context(), "audit record failed", "operation", operation, "err", err)
		}
	})
}

// statusWriter remembers the status a handler wrote.
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

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
