package store

import (
	"context"

	"github.com/ferry-iot/ferry"
)

// Methods not written yet. This file is empty when the store is complete.

func (o *ops) CreateMigration(ctx context.Context, m *ferry.Migration) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetMigration(ctx context.Context, id string) (*ferry.Migration, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetMigrationByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*ferry.Migration, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListMigrations(ctx context.Context, f ferry.MigrationFilter) (ferry.Page[*ferry.Migration], error) {
	return ferry.Page[*ferry.Migration]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) UpdateMigration(ctx context.Context, m *ferry.Migration, ifMatch string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteMigration(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) PutMigrationWaves(ctx context.Context, w []*ferry.MigrationWave) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListMigrationWaves(ctx context.Context, migrationID string) ([]*ferry.MigrationWave, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) AddMigrationDevices(ctx context.Context, d []*ferry.MigrationDevice) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetMigrationDevice(ctx context.Context, migrationID, deviceID string) (*ferry.MigrationDevice, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListMigrationDevices(ctx context.Context, f ferry.MigrationDeviceFilter) (ferry.Page[*ferry.MigrationDevice], error) {
	return ferry.Page[*ferry.MigrationDevice]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CountMigrationDevices(ctx context.Context, migrationID string) (map[int]map[ferry.DeviceMigrationState]int, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) TransitionMigrationDevices(ctx context.Context, t []*ferry.MigrationTransition) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListMigrationTransitions(ctx context.Context, migrationID, deviceID string, opt ferry.ListOptions) (ferry.Page[*ferry.MigrationTransition], error) {
	return ferry.Page[*ferry.MigrationTransition]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) AppendAudit(ctx context.Context, e []*ferry.AuditEvent) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListAudit(ctx context.Context, f ferry.AuditFilter) (ferry.Page[*ferry.AuditEvent], error) {
	return ferry.Page[*ferry.AuditEvent]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) SummarizeAudit(ctx context.Context, f ferry.AuditFilter) ([]*ferry.AuditSummary, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) AppendDeviceEvents(ctx context.Context, e []*ferry.DeviceEvent) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListDeviceEvents(ctx context.Context, f ferry.DeviceEventFilter) (ferry.Page[*ferry.DeviceEvent], error) {
	return ferry.Page[*ferry.DeviceEvent]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) PutAlertRule(ctx context.Context, r *ferry.AlertRule) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetAlertRule(ctx context.Context, id string) (*ferry.AlertRule, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListAlertRules(ctx context.Context) ([]*ferry.AlertRule, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteAlertRule(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) PutExportDestination(ctx context.Context, d *ferry.ExportDestination) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetExportDestination(ctx context.Context, id string) (*ferry.ExportDestination, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListExportDestinations(ctx context.Context) ([]*ferry.ExportDestination, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteExportDestination(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}
