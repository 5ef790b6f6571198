// Package audit records every management call, allowed or denied, as a
// ferry.AuditEvent in the AuditStore, and reads the log back in the shape
// of Azure Monitor's ASCAuditLogs table.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferry-iot/ferry"
)

// Recorder records audit events. Surfaces call it once per request.
type Recorder interface {
	// Record stores one event. The ID and Time are filled in when empty.
	Record(ctx context.Context, e *ferry.AuditEvent) error
}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(ctx context.Context, e *ferry.AuditEvent) error

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, e *ferry.AuditEvent) error { return f(ctx, e) }

// Discard is a Recorder that keeps nothing.
var Discard Recorder = RecorderFunc(func(context.Context, *ferry.AuditEvent) error { return nil })

// StoreRecorder writes events to an AuditStore.
type StoreRecorder struct {
	Store  ferry.AuditStore
	Now    func() time.Time // defaults to time.Now
	Logger *slog.Logger     // optional
}

var _ Recorder = (*StoreRecorder)(nil)

// NewStoreRecorder returns a Recorder writing to store.
func NewStoreRecorder(store ferry.AuditStore) *StoreRecorder {
	return &StoreRecorder{Store: store}
}

// Record stores e, filling its ID and time when empty.
func (s *StoreRecorder) Record(ctx context.Context, e *ferry.AuditEvent) error {
	if e.ID == "" {
		e.ID = ferry.NewUUID()
	}
	if e.Time.IsZero() {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		e.Time = now().UTC()
	}
	if e.Result == "" {
		e.Result = ferry.ResultSuccess
		if e.StatusCode >= 400 {
			e.Result = ferry.ResultFailure
		}
	}
	// The request may be cancelled once its response is written; the
	// record must still be kept.
	ctx = context.WithoutCancel(ctx)
	if err := s.Store.AppendAudit(ctx, []*ferry.AuditEvent{e}); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}
