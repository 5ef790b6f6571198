package ferry

import (
	"context"
	"encoding/json"
	"time"
)

// Surface names where a call arrived.
type Surface string

// Surfaces.
const (
	SurfaceIntegrated Surface = "integrated"
	SurfaceLegacy     Surface = "legacy"
	SurfaceHub        Surface = "hub"
	SurfaceDPS        Surface = "dps"
	SurfacePortal     Surface = "portal"
	SurfaceIdentity   Surface = "identity"
)

// Audit results, with the ASCAuditLogs spelling.
const (
	ResultSuccess = "Success"
	ResultFailure = "Failure"
)

// AuditEvent records one management call, allowed or denied.
type AuditEvent struct {
	ID                string // UUID
	Time              time.Time
	Surface           Surface
	Operation         string // e.g. "ProductCreate", "DeviceClaim"
	Action            string // the ARM action string checked, if any
	ResourceID        string
	CatalogID         string // tenant ID of the catalog it concerns, if any
	PrincipalID       string
	PrincipalName     string
	PrincipalType     PrincipalType
	ClientIP          string
	UserAgent         string
	Result            string // ResultSuccess or ResultFailure
	StatusCode        int
	ResultDescription string
	CorrelationID     string
	Duration          time.Duration
}

// AuditFilter selects audit events.
type AuditFilter struct {
	Since       time.Time
	Until       time.Time
	Surface     Surface
	CatalogID   string
	PrincipalID string
	Operation   string
	Result      string
	ListOptions
}

// AuditSummary counts calls of one principal with one client and operation.
type AuditSummary struct {
	PrincipalID   string
	PrincipalName string
	UserAgent     string
	Operation     string
	Count         int
	LastCall      time.Time
}

// AuditStore keeps the audit log.
type AuditStore interface {
	// AppendAudit stores events.
	AppendAudit(ctx context.Context, e []*AuditEvent) error
	// ListAudit returns a page of events, newest first.
	ListAudit(ctx context.Context, f AuditFilter) (Page[*AuditEvent], error)
	// SummarizeAudit groups the events that match f (paging ignored) by
	// principal, user agent and operation.
	SummarizeAudit(ctx context.Context, f AuditFilter) ([]*AuditSummary, error)
}

// DeviceEvent is a stored lifecycle event of a hub device (connected,
// disconnected, registered, provisioned, ...), kept for monitoring.
type DeviceEvent struct {
	ID       string
	Time     time.Time
	HubID    string
	DeviceID string
	Type     string
	Detail   json.RawMessage
}

// DeviceEventFilter selects device events.
type DeviceEventFilter struct {
	HubID    string
	DeviceID string
	Type     string
	Since    time.Time
	ListOptions
}

// DeviceEventStore keeps device events.
type DeviceEventStore interface {
	// AppendDeviceEvents stores events.
	AppendDeviceEvents(ctx context.Context, e []*DeviceEvent) error
	// ListDeviceEvents returns a page of events, newest first.
	ListDeviceEvents(ctx context.Context, f DeviceEventFilter) (Page[*DeviceEvent], error)
}

// AlertRule fires when a metric crosses a threshold over a window.
type AlertRule struct {
	ID          string
	Name        string
	Description string
	Enabled     bool
	Metric      string  // e.g. "ferry_devices_connected"
	Operator    string  // "gt", "lt", "ge", "le"
	Threshold   float64 //
	Window      time.Duration
	WebhookURL  string
	Firing      bool
	LastFiredAt time.Time
	CreatedAt   time.Time
	ETag        string
}

// ExportDestination receives a continuous export of device events.
type ExportDestination struct {
	ID        string
	Name      string
	Type      string            // "file", "webhook", "nats", "kafka"
	Config    map[string]string // type-specific; secrets inside are never listed
	Sources   []string          // message sources to export; empty: all
	Enabled   bool
	CreatedAt time.Time
	ETag      string
}

// MonitorStore keeps alert rules and export destinations.
type MonitorStore interface {
	// PutAlertRule creates or replaces a rule. Returns ECONFLICT on a name clash.
	PutAlertRule(ctx context.Context, r *AlertRule) error
	// GetAlertRule returns a rule. Returns ENOTFOUND.
	GetAlertRule(ctx context.Context, id string) (*AlertRule, error)
	// ListAlertRules returns every rule ordered by name.
	ListAlertRules(ctx context.Context) ([]*AlertRule, error)
	// DeleteAlertRule removes a rule. Returns ENOTFOUND.
	DeleteAlertRule(ctx context.Context, id string) error

	// PutExportDestination creates or replaces a destination. Returns
	// ECONFLICT on a name clash.
	PutExportDestination(ctx context.Context, d *ExportDestination) error
	// GetExportDestination returns a destination. Returns ENOTFOUND.
	GetExportDestination(ctx context.Context, id string) (*ExportDestination, error)
	// ListExportDestinations returns every destination ordered by name.
	ListExportDestinations(ctx context.Context) ([]*ExportDestination, error)
	// DeleteExportDestination removes a destination. Returns ENOTFOUND.
	DeleteExportDestination(ctx context.Context, id string) error
}
