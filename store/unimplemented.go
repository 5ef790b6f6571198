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

func (o *ops) PutSubscription(ctx context.Context, s *ferry.Subscription) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetSubscription(ctx context.Context, id string) (*ferry.Subscription, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListSubscriptions(ctx context.Context, opt ferry.ListOptions) (ferry.Page[*ferry.Subscription], error) {
	return ferry.Page[*ferry.Subscription]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) PutResourceGroup(ctx context.Context, g *ferry.ResourceGroup) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetResourceGroup(ctx context.Context, subscriptionID, name string) (*ferry.ResourceGroup, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListResourceGroups(ctx context.Context, subscriptionID string, opt ferry.ListOptions) (ferry.Page[*ferry.ResourceGroup], error) {
	return ferry.Page[*ferry.ResourceGroup]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteResourceGroup(ctx context.Context, subscriptionID, name string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateCatalog(ctx context.Context, c *ferry.Catalog) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetCatalog(ctx context.Context, tenantID string) (*ferry.Catalog, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetCatalogByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*ferry.Catalog, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListCatalogs(ctx context.Context, f ferry.CatalogFilter) (ferry.Page[*ferry.Catalog], error) {
	return ferry.Page[*ferry.Catalog]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) UpdateCatalog(ctx context.Context, c *ferry.Catalog, ifMatch string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteCatalog(ctx context.Context, tenantID string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateProduct(ctx context.Context, p *ferry.Product) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetProduct(ctx context.Context, id string) (*ferry.Product, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListProducts(ctx context.Context, f ferry.ProductFilter) (ferry.Page[*ferry.Product], error) {
	return ferry.Page[*ferry.Product]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) UpdateProduct(ctx context.Context, p *ferry.Product, ifMatch string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteProduct(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateDeviceGroup(ctx context.Context, g *ferry.DeviceGroup) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetDeviceGroup(ctx context.Context, id string) (*ferry.DeviceGroup, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListDeviceGroups(ctx context.Context, f ferry.DeviceGroupFilter) (ferry.Page[*ferry.DeviceGroup], error) {
	return ferry.Page[*ferry.DeviceGroup]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) UpdateDeviceGroup(ctx context.Context, g *ferry.DeviceGroup, ifMatch string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteDeviceGroup(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateDevice(ctx context.Context, d *ferry.Device) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetDevice(ctx context.Context, id string) (*ferry.Device, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListDevices(ctx context.Context, f ferry.DeviceFilter) (ferry.Page[*ferry.Device], error) {
	return ferry.Page[*ferry.Device]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CountDevices(ctx context.Context, f ferry.DeviceFilter) (int, error) {
	return 0, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) UpdateDevice(ctx context.Context, d *ferry.Device, ifMatch string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteDevice(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateImage(ctx context.Context, img *ferry.Image, content []byte) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetImage(ctx context.Context, id string) (*ferry.Image, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetImageContent(ctx context.Context, id string) ([]byte, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListImages(ctx context.Context, f ferry.ImageFilter) (ferry.Page[*ferry.Image], error) {
	return ferry.Page[*ferry.Image]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteImage(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateDeployment(ctx context.Context, d *ferry.Deployment) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetDeployment(ctx context.Context, id string) (*ferry.Deployment, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetDeploymentByName(ctx context.Context, deviceGroupID, name string) (*ferry.Deployment, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListDeployments(ctx context.Context, f ferry.DeploymentFilter) (ferry.Page[*ferry.Deployment], error) {
	return ferry.Page[*ferry.Deployment]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) DeleteDeployment(ctx context.Context, id string) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateCertificate(ctx context.Context, c *ferry.Certificate) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetCertificate(ctx context.Context, catalogID, serial string) (*ferry.Certificate, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListCertificates(ctx context.Context, catalogID string) ([]*ferry.Certificate, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) UpdateCertificateStatus(ctx context.Context, catalogID, serial string, s ferry.CertificateStatus) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) CreateOperation(ctx context.Context, op *ferry.Operation) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) GetOperation(ctx context.Context, id string) (*ferry.Operation, error) {
	return nil, ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) UpdateOperation(ctx context.Context, op *ferry.Operation) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) AddDeviceInsights(ctx context.Context, in []*ferry.DeviceInsight) error {
	return ferry.Errorf(ferry.EINTERNAL, "not implemented")
}

func (o *ops) ListDeviceInsights(ctx context.Context, f ferry.DeviceInsightFilter) (ferry.Page[*ferry.DeviceInsight], error) {
	return ferry.Page[*ferry.DeviceInsight]{}, ferry.Errorf(ferry.EINTERNAL, "not implemented")
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
