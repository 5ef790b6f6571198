package ferry

import "context"

// Tx is every store operation. A Store runs each call in its own
// transaction; Store.WithTx runs several in one.
type Tx interface {
	PrincipalStore
	SigningKeyStore
	SubscriptionStore
	CatalogStore
	ProductStore
	DeviceGroupStore
	DeviceStore
	ImageStore
	DeploymentStore
	CertificateStore
	OperationStore
	DeviceInsightStore
	RBACStore
	LegacyRoleStore
	HubStore
	DeviceIdentityStore
	TwinStore
	HubDeviceGroupStore
	DeviceTemplateStore
	C2DStore
	JobStore
	ProvisioningServiceStore
	EnrollmentStore
	MigrationStore
	AuditStore
	DeviceEventStore
	MonitorStore
	SettingStore
}

// Store is the persistence boundary: SQLite on one node, PostgreSQL for
// several. Both pass the same conformance suite.
type Store interface {
	Tx
	// WithTx runs fn in one transaction. If fn returns an error, nothing it
	// wrote is kept and the error is returned.
	WithTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping checks that the database answers and its schema is current.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// SettingStore keeps small deployment-wide values, such as the directory
// tenant ID, so that every node of a deployment sees the same.
type SettingStore interface {
	// GetSetting returns a value. Returns ENOTFOUND if the key is unset.
	GetSetting(ctx context.Context, key string) (string, error)
	// PutSetting sets a value.
	PutSetting(ctx context.Context, key, value string) error
	// PutSettingIfAbsent sets a value unless the key is set, and returns the
	// value now stored: the first writer wins when nodes start together.
	PutSettingIfAbsent(ctx context.Context, key, value string) (string, error)
}
