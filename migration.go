package ferry

import (
	"context"
	"encoding/json"
	"time"
)

// MigrationState is the state of a whole migration.
type MigrationState string

// Migration states. A migration is created, optionally preflighted, then
// started; it runs wave after wave until completed, or stops paused, failed
// or cancelled.
const (
	MigrationCreated    MigrationState = "Created"
	MigrationReady      MigrationState = "Ready" // preflight passed
	MigrationRunning    MigrationState = "Running"
	MigrationPaused     MigrationState = "Paused"
	MigrationCancelling MigrationState = "Cancelling"
	MigrationCancelled  MigrationState = "Cancelled"
	MigrationCompleted  MigrationState = "Completed"
	MigrationFailed     MigrationState = "Failed"
)

// Terminal reports whether the migration has stopped for good.
func (s MigrationState) Terminal() bool {
	return s == MigrationCancelled || s == MigrationCompleted || s == MigrationFailed
}

// DeviceMigrationState is the state of one device in a migration.
//
//	pending → commanded → acknowledged → provisioned → connected → verified
//
// A device that cannot be commanded (offline, refused) ends failed and stays
// at the source. One that left the source but did not verify in time, or
// whose wave failed back, is commanded back (failing-back) and ends
// failed-back once verified at the source again.
type DeviceMigrationState string

// Device migration states.
const (
	DevicePending      DeviceMigrationState = "pending"
	DeviceCommanded    DeviceMigrationState = "commanded"
	DeviceAcknowledged DeviceMigrationState = "acknowledged"
	DeviceProvisioned  DeviceMigrationState = "provisioned"
	DeviceConnected    DeviceMigrationState = "connected"
	DeviceVerified     DeviceMigrationState = "verified"
	DeviceFailed       DeviceMigrationState = "failed"
	DeviceFailingBack  DeviceMigrationState = "failing-back"
	DeviceFailedBack   DeviceMigrationState = "failed-back"
)

// Terminal reports whether a device has reached an end state.
func (s DeviceMigrationState) Terminal() bool {
	return s == DeviceVerified || s == DeviceFailed || s == DeviceFailedBack
}

// SelectionKind says how a migration picks its devices.
type SelectionKind string

// Selection kinds.
const (
	SelectHubDeviceGroup     SelectionKind = "hubDeviceGroup"
	SelectDeviceIDs          SelectionKind = "deviceIds"
	SelectCatalogDeviceGroup SelectionKind = "catalogDeviceGroup"
)

// MigrationSelection names the devices to move.
type MigrationSelection struct {
	Kind                 SelectionKind
	HubDeviceGroupID     string
	DeviceIDs            []string
	CatalogDeviceGroupID string
}

// RemoteFerry is another Ferry deployment that receives the devices: its
// API address and the service-principal credentials to use there.
type RemoteFerry struct {
	APIEndpoint  string // https://ferry-b.example.com:8443
	TenantID     string
	ClientID     string
	ClientSecret string // kept to resume after a restart; never shown
	CACertPEM    []byte // trust for the remote API, if not a public CA
}

// MigrationTarget is where devices go: a provisioning service (local, or on
// a remote Ferry), its ID scope, and the provisioning host devices dial.
type MigrationTarget struct {
	ProvisioningServiceID string // local service ID, or its ARM resource ID on Remote when set
	IDScope               string
	ProvisioningHost      string // sent in the DeviceMove payload when set
	EnrollmentGroupID     string // the target group (created by preflight if missing)
	Remote                *RemoteFerry
}

// WaveFailureAction says what to do when a wave crosses its error threshold.
type WaveFailureAction string

// Wave failure actions.
const (
	OnErrorPause    WaveFailureAction = "pause"
	OnErrorFailback WaveFailureAction = "failback"
)

// WavePlan splits the selection into waves: either Sizes (device counts,
// the last wave takes the rest) or Percentages (of the selection).
type WavePlan struct {
	Sizes       []int
	Percentages []int
}

// Migration moves a selection of devices from a source hub to a target, in
// waves, verifying each device by its first telemetry at the target.
type Migration struct {
	ID               string // UUID
	Name             string // ARM name in its resource group
	SubscriptionID   string
	ResourceGroup    string
	SourceHubID      string
	Selection        MigrationSelection
	Target           MigrationTarget
	Waves            WavePlan
	SuccessThreshold int               // percent of a wave that must verify for it to succeed
	ErrorThreshold   int               // percent of a wave that may fail before OnError applies
	OnError          WaveFailureAction //
	DeviceTimeout    time.Duration     // from command to verification
	CommandRate      float64           // DeviceMove commands per second; 0: unlimited
	MethodName       string            // "": derived from the device template
	State            MigrationState
	StateReason      string
	CurrentWave      int
	Preflight        json.RawMessage // the latest preflight report
	CreatedAt        time.Time
	StartedAt        time.Time
	CompletedAt      time.Time
	SystemData       SystemData
	ETag             string
}

// ResourceID returns the migration's ARM resource ID.
func (m *Migration) ResourceID() ResourceID {
	return ResourceID{SubscriptionID: m.SubscriptionID, ResourceGroup: m.ResourceGroup,
		Provider: ProviderFerry, Types: []string{"migrations"}, Names: []string{m.Name}}
}

// WaveState is the state of one wave.
type WaveState string

// Wave states.
const (
	WavePending     WaveState = "pending"
	WaveRunning     WaveState = "running"
	WaveSucceeded   WaveState = "succeeded"
	WaveFailed      WaveState = "failed"
	WaveFailingBack WaveState = "failing-back"
	WaveFailedBack  WaveState = "failed-back"
)

// MigrationWave is one wave of a migration.
type MigrationWave struct {
	MigrationID string
	Index       int // from 0
	Size        int
	State       WaveState
	StartedAt   time.Time
	CompletedAt time.Time
}

// MigrationDevice is the record of one device in a migration.
type MigrationDevice struct {
	MigrationID string
	DeviceID    string
	Wave        int
	State       DeviceMigrationState
	Reason      string
	Attempts    int
	Deadline    time.Time // when the current step times out
	UpdatedAt   time.Time
}

// MigrationTransition is one step of a device's state machine, written
// before it is acted on.
type MigrationTransition struct {
	MigrationID string
	DeviceID    string
	From        DeviceMigrationState
	To          DeviceMigrationState
	At          time.Time
	Reason      string
	Deadline    time.Time // the device's new deadline
}

// MigrationFilter selects migrations in a list.
type MigrationFilter struct {
	SubscriptionID string
	ResourceGroup  string
	States         []MigrationState
	ListOptions
}

// MigrationDeviceFilter selects device records in a list.
type MigrationDeviceFilter struct {
	MigrationID string // required
	Wave        int    // -1 for all waves
	States      []DeviceMigrationState
	ListOptions
}

// MigrationStore keeps migrations, their waves and device records.
type MigrationStore interface {
	// CreateMigration stores a migration. Returns ECONFLICT if the name is
	// taken in the resource group.
	CreateMigration(ctx context.Context, m *Migration) error
	// GetMigration returns a migration by ID. Returns ENOTFOUND.
	GetMigration(ctx context.Context, id string) (*Migration, error)
	// GetMigrationByName returns a migration by ARM location. Returns ENOTFOUND.
	GetMigrationByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*Migration, error)
	// ListMigrations returns a page of migrations ordered by ID.
	ListMigrations(ctx context.Context, f MigrationFilter) (Page[*Migration], error)
	// UpdateMigration replaces a migration if ifMatch matches. Returns
	// ENOTFOUND or EPRECONDITION.
	UpdateMigration(ctx context.Context, m *Migration, ifMatch string) error
	// DeleteMigration removes a migration with its waves and records.
	DeleteMigration(ctx context.Context, id string) error

	// PutMigrationWaves creates or replaces waves.
	PutMigrationWaves(ctx context.Context, w []*MigrationWave) error
	// ListMigrationWaves returns a migration's waves in order.
	ListMigrationWaves(ctx context.Context, migrationID string) ([]*MigrationWave, error)

	// AddMigrationDevices stores new device records. Returns ECONFLICT if a
	// device is already in the migration.
	AddMigrationDevices(ctx context.Context, d []*MigrationDevice) error
	// GetMigrationDevice returns one record. Returns ENOTFOUND.
	GetMigrationDevice(ctx context.Context, migrationID, deviceID string) (*MigrationDevice, error)
	// ListMigrationDevices returns a page of records ordered by device ID.
	ListMigrationDevices(ctx context.Context, f MigrationDeviceFilter) (Page[*MigrationDevice], error)
	// CountMigrationDevices counts records by wave and state.
	CountMigrationDevices(ctx context.Context, migrationID string) (map[int]map[DeviceMigrationState]int, error)
	// TransitionMigrationDevices applies transitions and appends them to the
	// history, all or nothing. Each applies only if the device is still in
	// its From state; otherwise the call returns ECONFLICT and applies none.
	TransitionMigrationDevices(ctx context.Context, t []*MigrationTransition) error
	// ListMigrationTransitions returns a device's history (all devices when
	// deviceID is ""), oldest first.
	ListMigrationTransitions(ctx context.Context, migrationID, deviceID string, opt ListOptions) (Page[*MigrationTransition], error)
}
