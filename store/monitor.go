package store

import (
	"context"
	"fmt"

	"github.com/ferry-iot/ferry"
)

var auditEvents = &table[ferry.AuditEvent]{
	name: "audit_events", what: "audit event",
	key: []string{"id"}, cols: []string{"time_ns", "surface", "operation", "catalog_id", "principal_id", "principal_name", "user_agent", "result"},
	row: func(e *ferry.AuditEvent) []any {
		return []any{e.ID, nanos(e.Time), string(e.Surface), e.Operation, e.CatalogID, e.PrincipalID, e.PrincipalName, e.UserAgent, e.Result}
	},
}

// AppendAudit stores events.
func (o *ops) AppendAudit(ctx context.Context, e []*ferry.AuditEvent) error {
	if len(e) == 0 {
		return nil
	}
	return o.atomic(ctx, func(q querier) error {
		for _, x := range e {
			if x.ID == "" {
				x.ID = ferry.NewUUID()
			}
			if err := auditEvents.insert(ctx, o.d, q, x); err != nil {
				return err
			}
		}
		return nil
	})
}

func auditCond(f ferry.AuditFilter) *cond {
	c := &cond{}
	if !f.Since.IsZero() {
		c.add("time_ns >= ?", nanos(f.Since))
	}
	if !f.Until.IsZero() {
		c.add("time_ns < ?", nanos(f.Until))
	}
	if f.Surface != "" {
		c.eq("surface", string(f.Surface))
	}
	if f.CatalogID != "" {
		c.eq("catalog_id", f.CatalogID)
	}
	if f.PrincipalID != "" {
		c.eq("principal_id", f.PrincipalID)
	}
	if f.Operation != "" {
		c.eq("operation", f.Operation)
	}
	if f.Result != "" {
		c.eq("result", f.Result)
	}
	return c
}

// ListAudit returns a page of events, newest first.
func (o *ops) ListAudit(ctx context.Context, f ferry.AuditFilter) (ferry.Page[*ferry.AuditEvent], error) {
	return auditEvents.list(ctx, o.rq(), auditCond(f), []string{"time_ns", "id"}, true, f.ListOptions)
}

// SummarizeAudit groups the events that match f by principal, user agent
// and operation, ordered by those.
func (o *ops) SummarizeAudit(ctx context.Context, f ferry.AuditFilter) ([]*ferry.AuditSummary, error) {
	c := auditCond(f)
	rows, err := o.rq().QueryContext(ctx, `SELECT principal_id, MAX(principal_name), user_agent, operation, COUNT(*), MAX(time_ns)
		FROM audit_events`+c.where()+` GROUP BY principal_id, user_agent, operation ORDER BY principal_id, user_agent, operation`, c.args...)
	if err != nil {
		return nil, fmt.Errorf("summarize audit: %w", err)
	}
	defer rows.Close()
	out := []*ferry.AuditSummary{}
	for rows.Next() {
		var (
			s    ferry.AuditSummary
			last int64
		)
		if err := rows.Scan(&s.PrincipalID, &s.PrincipalName, &s.UserAgent, &s.Operation, &s.Count, &last); err != nil {
			return nil, fmt.Errorf("summarize audit: %w", err)
		}
		s.LastCall = fromNanos(last)
		out = append(out, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarize audit: %w", err)
	}
	return out, nil
}

var deviceEvents = &table[ferry.DeviceEvent]{
	name: "device_events", what: "device event",
	key: []string{"id"}, cols: []string{"time_ns", "hub_id", "device_id", "type"},
	row: func(e *ferry.DeviceEvent) []any { return []any{e.ID, nanos(e.Time), e.HubID, e.DeviceID, e.Type} },
}

// AppendDeviceEvents stores events.
func (o *ops) AppendDeviceEvents(ctx context.Context, e []*ferry.DeviceEvent) error {
	if len(e) == 0 {
		return nil
	}
	return o.atomic(ctx, func(q querier) error {
		for _, x := range e {
			if x.ID == "" {
				x.ID = ferry.NewUUID()
			}
			if err := deviceEvents.insert(ctx, o.d, q, x); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListDeviceEvents returns a page of events, newest first.
func (o *ops) ListDeviceEvents(ctx context.Context, f ferry.DeviceEventFilter) (ferry.Page[*ferry.DeviceEvent], error) {
	c := &cond{}
	if f.HubID != "" {
		c.eq("hub_id", f.HubID)
	}
	if f.DeviceID != "" {
		c.eq("device_id", f.DeviceID)
	}
	if f.Type != "" {
		c.eq("type", f.Type)
	}
	if !f.Since.IsZero() {
		c.add("time_ns >= ?", nanos(f.Since))
	}
	return deviceEvents.list(ctx, o.rq(), c, []string{"time_ns", "id"}, true, f.ListOptions)
}

var alertRules = &table[ferry.AlertRule]{
	name: "alert_rules", what: "alert rule",
	key: []string{"id"}, cols: []string{"name_lc"},
	row:  func(r *ferry.AlertRule) []any { return []any{r.ID, lower(r.Name)} },
	etag: func(r *ferry.AlertRule) *string { return &r.ETag },
}

// PutAlertRule creates or replaces a rule.
func (o *ops) PutAlertRule(ctx context.Context, r *ferry.AlertRule) error {
	if r.ID == "" || r.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "An alert rule needs an ID and a name.")
	}
	return alertRules.upsert(ctx, o.d, o.wq(), r)
}

// GetAlertRule returns a rule.
func (o *ops) GetAlertRule(ctx context.Context, id string) (*ferry.AlertRule, error) {
	return alertRules.getKey(ctx, o.rq(), id)
}

// ListAlertRules returns every rule ordered by name.
func (o *ops) ListAlertRules(ctx context.Context) ([]*ferry.AlertRule, error) {
	return alertRules.all(ctx, o.rq(), &cond{}, "name_lc, id")
}

// DeleteAlertRule removes a rule.
func (o *ops) DeleteAlertRule(ctx context.Context, id string) error {
	return alertRules.del(ctx, o.d, o.wq(), []any{id}, "")
}

var exportDestinations = &table[ferry.ExportDestination]{
	name: "export_destinations", what: "export destination",
	key: []string{"id"}, cols: []string{"name_lc"},
	row:  func(d *ferry.ExportDestination) []any { return []any{d.ID, lower(d.Name)} },
	etag: func(d *ferry.ExportDestination) *string { return &d.ETag },
}

// PutExportDestination creates or replaces a destination.
func (o *ops) PutExportDestination(ctx context.Context, d *ferry.ExportDestination) error {
	if d.ID == "" || d.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "An export destination needs an ID and a name.")
	}
	return exportDestinations.upsert(ctx, o.d, o.wq(), d)
}

// GetExportDestination returns a destination.
func (o *ops) GetExportDestination(ctx context.Context, id string) (*ferry.ExportDestination, error) {
	return exportDestinations.getKey(ctx, o.rq(), id)
}

// ListExportDestinations returns every destination ordered by name.
func (o *ops) ListExportDestinations(ctx context.Context) ([]*ferry.ExportDestination, error) {
	return exportDestinations.all(ctx, o.rq(), &cond{}, "name_lc, id")
}

// DeleteExportDestination removes a destination.
func (o *ops) DeleteExportDestination(ctx context.Context, id string) error {
	return exportDestinations.del(ctx, o.d, o.wq(), []any{id}, "")
}
