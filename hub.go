package ferry

import (
	"context"
	"encoding/json"
	"time"
)

// AccessRight is a permission of a shared-access policy on a hub or a
// provisioning service.
type AccessRight string

// Hub and provisioning-service access rights, with Azure's spelling.
const (
	RightRegistryRead            AccessRight = "RegistryRead"
	RightRegistryWrite           AccessRight = "RegistryWrite"
	RightServiceConnect          AccessRight = "ServiceConnect"
	RightDeviceConnect           AccessRight = "DeviceConnect"
	RightServiceConfig           AccessRight = "ServiceConfig"
	RightEnrollmentRead          AccessRight = "EnrollmentRead"
	RightEnrollmentWrite         AccessRight = "EnrollmentWrite"
	RightRegistrationStatusRead  AccessRight = "RegistrationStatusRead"
	RightRegistrationStatusWrite AccessRight = "RegistrationStatusWrite"
)

// AccessPolicy is a named pair of keys with rights, the way service clients
// authenticate to a hub or a provisioning service with a connection string.
type AccessPolicy struct {
	KeyName      string
	PrimaryKey   string
	SecondaryKey string
	Rights       []AccessRight
}

// Has reports whether the policy grants the right.
func (p *AccessPolicy) Has(r AccessRight) bool {
	for _, x := range p.Rights {
		if x == r {
			return true
		}
	}
	return false
}

// DefaultHubPolicies returns the five policies a new hub gets, as Azure
// creates them, with fresh keys.
func DefaultHubPolicies() []AccessPolicy {
	p := func(name string, rights ...AccessRight) AccessPolicy {
		return AccessPolicy{KeyName: name, PrimaryKey: NewKey(32), SecondaryKey: NewKey(32), Rights: rights}
	}
	return []AccessPolicy{
		p("iothubowner", RightRegistryRead, RightRegistryWrite, RightServiceConnect, RightDeviceConnect),
		p("service", RightServiceConnect),
		p("device", RightDeviceConnect),
		p("registryRead", RightRegistryRead),
		p("registryReadWrite", RightRegistryRead, RightRegistryWrite),
	}
}

// Hub is a device endpoint (Microsoft.Devices/IotHubs). Devices reach it by
// its host name, which may be a DNS name or an IP address, optionally with a
// port when devices dial one.
type Hub struct {
	ID             string // UUID
	Name           string // ARM name, unique in the deployment
	HostName       string // unique, case-insensitive; e.g. "hub-a.example.com" or "127.0.0.2"
	SubscriptionID string
	ResourceGroup  string
	Location       string
	Tags           map[string]string
	Policies       []AccessPolicy
	CreatedAt      time.Time
	SystemData     SystemData
	ETag           string
}

// Policy returns the named shared-access policy, or nil.
func (h *Hub) Policy(name string) *AccessPolicy {
	for i := range h.Policies {
		if h.Policies[i].KeyName == name {
			return &h.Policies[i]
		}
	}
	return nil
}

// ResourceID returns the hub's ARM resource ID (zero if it has no ARM location).
func (h *Hub) ResourceID() ResourceID {
	if h.SubscriptionID == "" {
		return ResourceID{}
	}
	return ResourceID{SubscriptionID: h.SubscriptionID, ResourceGroup: h.ResourceGroup,
		Provider: ProviderDevices, Types: []string{"IotHubs"}, Names: []string{h.Name}}
}

// HubFilter selects hubs in a list.
type HubFilter struct {
	SubscriptionID string
	ResourceGroup  string
	ListOptions
}

// HubStore keeps hubs.
type HubStore interface {
	// CreateHub stores a hub. Returns ECONFLICT if the name or host is taken.
	CreateHub(ctx context.Context, h *Hub) error
	// GetHub returns a hub by ID. Returns ENOTFOUND if none.
	GetHub(ctx context.Context, id string) (*Hub, error)
	// GetHubByName returns a hub by name (case-insensitive). Returns ENOTFOUND.
	GetHubByName(ctx context.Context, name string) (*Hub, error)
	// GetHubByHost returns a hub by host name (case-insensitive). Returns ENOTFOUND.
	GetHubByHost(ctx context.Context, host string) (*Hub, error)
	// ListHubs returns a page of hubs ordered by ID.
	ListHubs(ctx context.Context, f HubFilter) (Page[*Hub], error)
	// UpdateHub replaces a hub if ifMatch matches. Returns ENOTFOUND,
	// EPRECONDITION, or ECONFLICT on a name or host clash.
	UpdateHub(ctx context.Context, h *Hub, ifMatch string) error
	// DeleteHub removes a hub with its identities, twins, messages and jobs.
	// Returns ENOTFOUND.
	DeleteHub(ctx context.Context, id string) error
}

// DeviceStatus says whether an identity may connect.
type DeviceStatus string

// Device identity states.
const (
	DeviceEnabled  DeviceStatus = "enabled"
	DeviceDisabled DeviceStatus = "disabled"
)

// AuthType is how a device identity authenticates.
type AuthType string

// Authentication types, with the IoT Hub service API's spelling.
const (
	AuthSAS                  AuthType = "sas"
	AuthSelfSigned           AuthType = "selfSigned"
	AuthCertificateAuthority AuthType = "certificateAuthority"
	AuthNone                 AuthType = "none"
)

// DeviceAuth holds an identity's credentials: two symmetric keys, or two
// X.509 thumbprints (SHA-1 or SHA-256, upper-case hex), or neither (CA-signed).
type DeviceAuth struct {
	Type                AuthType
	PrimaryKey          string
	SecondaryKey        string
	PrimaryThumbprint   string
	SecondaryThumbprint string
}

// ConnectionState is whether a device is connected to its hub.
type ConnectionState string

// Connection states.
const (
	Connected    ConnectionState = "Connected"
	Disconnected ConnectionState = "Disconnected"
)

// DeviceIdentity is a device's registration on one hub. The same device ID
// may exist on two hubs at once, as it does during a migration.
type DeviceIdentity struct {
	HubID               string
	DeviceID            string // case-sensitive, ≤128 chars
	GenerationID        string // tells a re-created identity from the old one
	ETag                string
	Status              DeviceStatus
	StatusReason        string
	StatusUpdatedAt     time.Time
	Auth                DeviceAuth
	ConnectionState     ConnectionState
	ConnectionUpdatedAt time.Time
	LastActivityAt      time.Time
	C2DMessageCount     int
	ModelID             string // DTDL model ID from the DPS payload or the MQTT username
	IoTEdge             bool
	EnrollmentGroupID   string // the group that provisioned it, if any
	CreatedAt           time.Time
}

// DeviceIdentityFilter selects identities in a list.
type DeviceIdentityFilter struct {
	HubID           string // required
	IDs             []string
	Status          DeviceStatus
	ConnectionState ConnectionState
	ModelID         string
	ListOptions
}

// ConnectionUpdate records a change of a device's connection state or
// activity, written in batches.
type ConnectionUpdate struct {
	DeviceID       string
	State          ConnectionState // "" to leave the state alone
	At             time.Time
	LastActivityAt time.Time // zero to leave it alone
	ModelID        string    // the model the device announced on connect; "" to leave it alone
}

// DeviceIdentityStore keeps device identities.
type DeviceIdentityStore interface {
	// CreateDeviceIdentity stores an identity, with an empty twin, and sets
	// its ETag. Returns ECONFLICT if the ID exists on the hub.
	CreateDeviceIdentity(ctx context.Context, d *DeviceIdentity) error
	// GetDeviceIdentity returns an identity. Returns ENOTFOUND if none.
	GetDeviceIdentity(ctx context.Context, hubID, deviceID string) (*DeviceIdentity, error)
	// ListDeviceIdentities returns a page of identities ordered by device ID.
	ListDeviceIdentities(ctx context.Context, f DeviceIdentityFilter) (Page[*DeviceIdentity], error)
	// CountDeviceIdentities counts identities that match f.
	CountDeviceIdentities(ctx context.Context, f DeviceIdentityFilter) (int, error)
	// UpdateDeviceIdentity replaces an identity if ifMatch matches. Returns
	// ENOTFOUND or EPRECONDITION.
	UpdateDeviceIdentity(ctx context.Context, d *DeviceIdentity, ifMatch string) error
	// DeleteDeviceIdentity removes an identity with its twin and messages if
	// ifMatch matches. Returns ENOTFOUND or EPRECONDITION.
	DeleteDeviceIdentity(ctx context.Context, hubID, deviceID, ifMatch string) error
	// UpdateConnections applies connection and activity updates of one hub's
	// devices in one transaction; unknown devices are skipped.
	UpdateConnections(ctx context.Context, hubID string, u []ConnectionUpdate) error
}

// Twin is the JSON document of a device's state: tags set by services,
// desired properties set by services, reported properties set by the device.
// Versions count changes of each section; $version members are not stored
// inside the maps.
type Twin struct {
	HubID           string
	DeviceID        string
	Tags            map[string]any
	Desired         map[string]any
	DesiredVersion  int64
	Reported        map[string]any
	ReportedVersion int64
	Version         int64 // counts every change
	ETag            string
}

// TwinStore keeps twins.
type TwinStore interface {
	// GetTwin returns a twin. Returns ENOTFOUND if the identity does not exist.
	GetTwin(ctx context.Context, hubID, deviceID string) (*Twin, error)
	// UpdateTwin replaces a twin if ifMatch matches and sets a new ETag.
	// Returns ENOTFOUND or EPRECONDITION.
	UpdateTwin(ctx context.Context, t *Twin, ifMatch string) error
}

// HubDeviceGroup is a saved query over a hub's identities, like IoT
// Central's device groups: by template, tags, twin properties, connection
// state. Query is the condition of an IoT Hub query (what follows WHERE).
type HubDeviceGroup struct {
	ID          string // unique in the hub: hubs may use the same IDs
	HubID       string
	Name        string // unique in the hub, case-insensitive
	Description string
	Query       string // e.g. "$template = 'dtmi:x:y;1' AND tags.site = 'berlin'"
	CreatedAt   time.Time
	ETag        string
}

// HubDeviceGroupStore keeps hub device groups.
type HubDeviceGroupStore interface {
	// CreateHubDeviceGroup stores a group. Returns ECONFLICT on a name clash.
	CreateHubDeviceGroup(ctx context.Context, g *HubDeviceGroup) error
	// CreateHubDeviceGroup's group IDs are unique in a hub: it returns
	// ECONFLICT when the hub has the ID already, not when another hub does.
	//
	// GetHubDeviceGroup returns a hub's group by ID. Returns ENOTFOUND if
	// the hub has none.
	GetHubDeviceGroup(ctx context.Context, hubID, id string) (*HubDeviceGroup, error)
	// ListHubDeviceGroups returns a hub's groups ordered by name.
	ListHubDeviceGroups(ctx context.Context, hubID string) ([]*HubDeviceGroup, error)
	// UpdateHubDeviceGroup replaces a group if ifMatch matches.
	UpdateHubDeviceGroup(ctx context.Context, g *HubDeviceGroup, ifMatch string) error
	// DeleteHubDeviceGroup removes a hub's group. Returns ENOTFOUND.
	DeleteHubDeviceGroup(ctx context.Context, hubID, id string) error
}

// DeviceTemplate is a DTDL model imported into Ferry, identified by its
// model ID. MigrationComponent is the name of the component implementing
// dtmi:azureiot:DeviceMigration;1, or "" when DeviceMove is declared at the
// root; HasDeviceMove says whether either exists.
type DeviceTemplate struct {
	ID                 string // dtmi:...;n
	DisplayName        string
	Model              json.RawMessage // the DTDL document(s) as imported
	HasDeviceMove      bool
	MigrationComponent string
	CreatedAt          time.Time
	ETag               string
}

// DeviceTemplateStore keeps device templates.
type DeviceTemplateStore interface {
	// PutDeviceTemplate creates or replaces a template.
	PutDeviceTemplate(ctx context.Context, t *DeviceTemplate) error
	// GetDeviceTemplate returns a template. Returns ENOTFOUND if none.
	GetDeviceTemplate(ctx context.Context, id string) (*DeviceTemplate, error)
	// ListDeviceTemplates returns a page of templates ordered by ID.
	ListDeviceTemplates(ctx context.Context, opt ListOptions) (Page[*DeviceTemplate], error)
	// DeleteDeviceTemplate removes a template. Returns ENOTFOUND.
	DeleteDeviceTemplate(ctx context.Context, id string) error
}

// C2DMessage is a cloud-to-device message waiting for, or delivered to, a
// device. A device holds at most MaxPendingC2D pending messages.
type C2DMessage struct {
	ID              string // store key, UUID
	HubID           string
	DeviceID        string
	MessageID       string
	CorrelationID   string
	UserID          string
	ContentType     string
	ContentEncoding string
	Properties      map[string]string // application properties
	Body            []byte
	EnqueuedAt      time.Time
	ExpiresAt       time.Time // zero: the hub default
	DeliveryCount   int
}

// MaxPendingC2D is IoT Hub's limit of queued cloud-to-device messages per device.
const MaxPendingC2D = 50

// C2DStore keeps cloud-to-device messages.
type C2DStore interface {
	// EnqueueC2D queues a message. Returns ENOTFOUND if the identity does not
	// exist, ETHROTTLED if MaxPendingC2D are already pending.
	EnqueueC2D(ctx context.Context, m *C2DMessage) error
	// ListPendingC2D returns a device's pending messages, oldest first.
	ListPendingC2D(ctx context.Context, hubID, deviceID string) ([]*C2DMessage, error)
	// CompleteC2D removes a delivered (or rejected) message. Returns ENOTFOUND.
	CompleteC2D(ctx context.Context, id string) error
	// PurgeC2D removes all of a device's pending messages; returns how many.
	PurgeC2D(ctx context.Context, hubID, deviceID string) (int, error)
}

// JobType is the kind of a hub job.
type JobType string

// Hub job types.
const (
	JobDeviceMethod JobType = "scheduleDeviceMethod"
	JobUpdateTwin   JobType = "scheduleUpdateTwin"
)

// JobStatus is the state of a hub job.
type JobStatus string

// Hub job states.
const (
	JobPending   JobStatus = "pending"
	JobScheduled JobStatus = "scheduled"
	JobRunning   JobStatus = "running"
	JobCancelled JobStatus = "cancelled"
	JobFailed    JobStatus = "failed"
	JobCompleted JobStatus = "completed"
)

// JobStatistics counts a job's devices by outcome.
type JobStatistics struct {
	DeviceCount    int
	FailedCount    int
	SucceededCount int
	RunningCount   int
	PendingCount   int
}

// Job runs a direct method or a twin update on the devices matching a query.
type Job struct {
	ID               string
	HubID            string
	Type             JobType
	Status           JobStatus
	QueryCondition   string
	MethodName       string
	MethodPayload    json.RawMessage
	ResponseTimeout  time.Duration
	ConnectTimeout   time.Duration
	TwinPatch        json.RawMessage // {"tags":…,"properties":{"desired":…}}
	StartTime        time.Time
	MaxExecutionTime time.Duration
	CreatedAt        time.Time
	EndTime          time.Time
	FailureReason    string
	StatusMessage    string
	Statistics       JobStatistics
}

// JobDevice is the outcome of a job on one device.
type JobDevice struct {
	JobID     string
	DeviceID  string
	Status    JobStatus // pending, running, completed, failed
	Result    json.RawMessage
	Error     string
	StartedAt time.Time
	EndedAt   time.Time
}

// JobFilter selects jobs in a list.
type JobFilter struct {
	HubID  string // required
	Type   JobType
	Status JobStatus
	ListOptions
}

// JobStore keeps hub jobs and their per-device outcomes.
type JobStore interface {
	// CreateJob stores a job. Returns ECONFLICT if the ID exists on the hub.
	CreateJob(ctx context.Context, j *Job) error
	// GetJob returns a job. Returns ENOTFOUND if none.
	GetJob(ctx context.Context, hubID, id string) (*Job, error)
	// ListJobs returns a page of jobs ordered by ID.
	ListJobs(ctx context.Context, f JobFilter) (Page[*Job], error)
	// UpdateJob replaces a job. Returns ENOTFOUND.
	UpdateJob(ctx context.Context, j *Job) error
	// PutJobDevices creates or replaces per-device outcomes.
	PutJobDevices(ctx context.Context, hubID string, d []*JobDevice) error
	// ListJobDevices returns a page of a job's device outcomes ordered by device ID.
	ListJobDevices(ctx context.Context, hubID, jobID string, opt ListOptions) (Page[*JobDevice], error)
}
