package ferry

import (
	"context"
	"encoding/json"
	"time"
)

// AllocationPolicy decides which linked hub a device is assigned to.
type AllocationPolicy string

// Allocation policies, with the DPS service API's spelling. Hashed is DPS's
// "evenly weighted distribution": a stable hash of the registration ID over
// the linked hubs, weighted by their allocation weights. Static assigns the
// single hub named by the enrollment. GeoLatency behaves as Hashed, since a
// Ferry deployment has a single location.
const (
	AllocationHashed     AllocationPolicy = "hashed"
	AllocationStatic     AllocationPolicy = "static"
	AllocationGeoLatency AllocationPolicy = "geoLatency"
)

// LinkedHub is a hub a provisioning service may assign devices to.
type LinkedHub struct {
	HubID                 string
	HostName              string // the assignedHub devices are told to dial
	AllocationWeight      int    // default 1
	ApplyAllocationPolicy bool
}

// DefaultProvisioningPolicies returns the policies a new provisioning
// service gets, as Azure creates them, with fresh keys.
func DefaultProvisioningPolicies() []AccessPolicy {
	return []AccessPolicy{{
		KeyName: "provisioningserviceowner", PrimaryKey: NewKey(32), SecondaryKey: NewKey(32),
		Rights: []AccessRight{RightServiceConfig, RightDeviceConnect, RightEnrollmentRead,
			RightEnrollmentWrite, RightRegistrationStatusRead, RightRegistrationStatusWrite},
	}}
}

// ProvisioningService is a device provisioning service
// (Microsoft.Devices/provisioningServices): devices register with it under
// its ID scope and are assigned to one of its linked hubs.
type ProvisioningService struct {
	ID               string // UUID
	Name             string // unique in the deployment
	IDScope          string // e.g. "0ne0012AB34", unique
	HostName         string // service operations host (its REST API and device endpoint)
	AllocationPolicy AllocationPolicy
	LinkedHubs       []LinkedHub
	Policies         []AccessPolicy
	SubscriptionID   string
	ResourceGroup    string
	Location         string
	Tags             map[string]string
	CreatedAt        time.Time
	SystemData       SystemData
	ETag             string
}

// ResourceID returns the service's ARM resource ID (zero if it has no ARM
// location).
func (s *ProvisioningService) ResourceID() ResourceID {
	if s.SubscriptionID == "" {
		return ResourceID{}
	}
	return ResourceID{SubscriptionID: s.SubscriptionID, ResourceGroup: s.ResourceGroup,
		Provider: ProviderDevices, Types: []string{"provisioningServices"}, Names: []string{s.Name}}
}

// Policy returns the named shared-access policy, or nil.
func (s *ProvisioningService) Policy(name string) *AccessPolicy {
	for i := range s.Policies {
		if s.Policies[i].KeyName == name {
			return &s.Policies[i]
		}
	}
	return nil
}

// ProvisioningServiceFilter selects provisioning services in a list.
type ProvisioningServiceFilter struct {
	SubscriptionID string
	ResourceGroup  string
	ListOptions
}

// ProvisioningServiceStore keeps provisioning services.
type ProvisioningServiceStore interface {
	// CreateProvisioningService stores a service. Returns ECONFLICT if the
	// name or ID scope is taken.
	CreateProvisioningService(ctx context.Context, s *ProvisioningService) error
	// GetProvisioningService returns a service by ID. Returns ENOTFOUND.
	GetProvisioningService(ctx context.Context, id string) (*ProvisioningService, error)
	// GetProvisioningServiceByName returns a service by name
	// (case-insensitive). Returns ENOTFOUND.
	GetProvisioningServiceByName(ctx context.Context, name string) (*ProvisioningService, error)
	// GetProvisioningServiceByScope returns a service by ID scope
	// (case-insensitive). Returns ENOTFOUND.
	GetProvisioningServiceByScope(ctx context.Context, idScope string) (*ProvisioningService, error)
	// ListProvisioningServices returns a page of services ordered by ID.
	ListProvisioningServices(ctx context.Context, f ProvisioningServiceFilter) (Page[*ProvisioningService], error)
	// UpdateProvisioningService replaces a service if ifMatch matches.
	// Returns ENOTFOUND, EPRECONDITION, or ECONFLICT.
	UpdateProvisioningService(ctx context.Context, s *ProvisioningService, ifMatch string) error
	// DeleteProvisioningService removes a service with its enrollments and
	// registrations. Returns ENOTFOUND.
	DeleteProvisioningService(ctx context.Context, id string) error
}

// AttestationType is how an enrolled device proves its identity.
type AttestationType string

// Attestation types, with the DPS service API's spelling.
const (
	AttestSymmetricKey AttestationType = "symmetricKey"
	AttestX509         AttestationType = "x509"
	AttestTPM          AttestationType = "tpm"
)

// Attestation holds the credentials of an enrollment. For a symmetric-key
// enrollment group the keys are group keys and each device uses the key
// derived from its registration ID. For an X.509 group, CAName names a
// verified ProvisioningCA (or PrimaryCertificate holds a signing
// certificate); for an X.509 individual enrollment, the thumbprints or the
// certificates identify the device's own certificate.
type Attestation struct {
	Type                 AttestationType
	PrimaryKey           string
	SecondaryKey         string
	CAName               string // x509 groups: a verified CA of the service
	PrimaryCertificate   []byte // x509: DER of a signing (group) or client (individual) certificate
	SecondaryCertificate []byte
	PrimaryThumbprint    string // x509 individual: upper-case hex SHA-1 or SHA-256
	SecondaryThumbprint  string
}

// ReprovisionPolicy says what happens when a device provisions again.
type ReprovisionPolicy struct {
	UpdateHubAssignment bool // re-evaluate the hub assignment (default true)
	MigrateDeviceData   bool // carry the twin to the new hub (default true)
}

// EnrollmentStatus says whether an enrollment admits devices.
type EnrollmentStatus string

// Enrollment states.
const (
	EnrollmentEnabled  EnrollmentStatus = "enabled"
	EnrollmentDisabled EnrollmentStatus = "disabled"
)

// InitialTwin is the twin state an enrollment gives new devices.
type InitialTwin struct {
	Tags    map[string]any
	Desired map[string]any
}

// EnrollmentGroup admits every device that proves it holds a key derived
// from the group key, or a certificate chained to the group's CA.
type EnrollmentGroup struct {
	ServiceID         string
	ID                string // enrollmentGroupId
	Attestation       Attestation
	IoTHubs           []string         // host names of linked hubs to choose from; empty: all
	AllocationPolicy  AllocationPolicy // "": the service's policy
	ReprovisionPolicy ReprovisionPolicy
	Status            EnrollmentStatus
	InitialTwin       InitialTwin
	IoTEdge           bool
	CreatedAt         time.Time
	UpdatedAt         time.Time
	ETag              string
}

// IndividualEnrollment admits one device by registration ID.
type IndividualEnrollment struct {
	ServiceID         string
	RegistrationID    string
	DeviceID          string // "": same as the registration ID
	Attestation       Attestation
	IoTHubs           []string
	AllocationPolicy  AllocationPolicy
	ReprovisionPolicy ReprovisionPolicy
	Status            EnrollmentStatus
	InitialTwin       InitialTwin
	IoTEdge           bool
	CreatedAt         time.Time
	UpdatedAt         time.Time
	ETag              string
}

// RegistrationStatus is the outcome of a device registration.
type RegistrationStatus string

// Registration states, with DPS's spelling.
const (
	RegistrationUnassigned RegistrationStatus = "unassigned"
	RegistrationAssigning  RegistrationStatus = "assigning"
	RegistrationAssigned   RegistrationStatus = "assigned"
	RegistrationFailed     RegistrationStatus = "failed"
	RegistrationDisabled   RegistrationStatus = "disabled"
)

// Registration substates, with DPS's spelling.
const (
	SubstatusInitialAssignment                = "initialAssignment"
	SubstatusDeviceDataMigrated               = "deviceDataMigrated"
	SubstatusDeviceDataReset                  = "deviceDataReset"
	SubstatusReprovisionedToInitialAssignment = "reprovisionedToInitialAssignment"
)

// RegistrationRecord is DPS's device registration state: the outcome of a
// device's latest registration with a provisioning service.
type RegistrationRecord struct {
	ServiceID         string
	RegistrationID    string // lower case; DPS registration IDs are case-insensitive
	EnrollmentGroupID string // "" for an individual enrollment
	DeviceID          string
	AssignedHub       string // host name
	Status            RegistrationStatus
	Substatus         string
	ErrorCode         int // six-digit DPS error code when failed
	ErrorMessage      string
	Payload           json.RawMessage // what the device sent with the registration
	ModelID           string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	ETag              string
}

// EnrollmentFilter selects enrollments or registrations in a list.
type EnrollmentFilter struct {
	ServiceID         string // required
	EnrollmentGroupID string // registrations only: those of this group
	ListOptions
}

// ProvisioningCA is an X.509 CA certificate registered with a provisioning
// service. Only a verified CA (proof of possession done) attests devices.
type ProvisioningCA struct {
	ServiceID        string
	Name             string
	DER              []byte
	Subject          string
	Thumbprint       string // SHA-1, upper-case hex
	Verified         bool
	VerificationCode string // the nonce the owner must sign
	NotBefore        time.Time
	NotAfter         time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	ETag             string
}

// EnrollmentStore keeps enrollments, registration records and CAs of
// provisioning services.
type EnrollmentStore interface {
	// PutEnrollmentGroup creates or replaces a group if ifMatch matches
	// (ifMatch must be empty to create). Returns EPRECONDITION or ENOTFOUND
	// if the service does not exist.
	PutEnrollmentGroup(ctx context.Context, g *EnrollmentGroup, ifMatch string) error
	// GetEnrollmentGroup returns a group (ID case-insensitive). Returns ENOTFOUND.
	GetEnrollmentGroup(ctx context.Context, serviceID, id string) (*EnrollmentGroup, error)
	// ListEnrollmentGroups returns a page of a service's groups ordered by ID.
	ListEnrollmentGroups(ctx context.Context, f EnrollmentFilter) (Page[*EnrollmentGroup], error)
	// DeleteEnrollmentGroup removes a group if ifMatch matches. Returns
	// ENOTFOUND or EPRECONDITION.
	DeleteEnrollmentGroup(ctx context.Context, serviceID, id, ifMatch string) error

	// PutIndividualEnrollment creates or replaces an enrollment if ifMatch
	// matches. Returns EPRECONDITION or ENOTFOUND.
	PutIndividualEnrollment(ctx context.Context, e *IndividualEnrollment, ifMatch string) error
	// GetIndividualEnrollment returns an enrollment (registration ID
	// case-insensitive). Returns ENOTFOUND.
	GetIndividualEnrollment(ctx context.Context, serviceID, registrationID string) (*IndividualEnrollment, error)
	// ListIndividualEnrollments returns a page ordered by registration ID.
	ListIndividualEnrollments(ctx context.Context, f EnrollmentFilter) (Page[*IndividualEnrollment], error)
	// DeleteIndividualEnrollment removes an enrollment if ifMatch matches.
	DeleteIndividualEnrollment(ctx context.Context, serviceID, registrationID, ifMatch string) error

	// PutRegistration creates or replaces a registration record and sets its ETag.
	PutRegistration(ctx context.Context, r *RegistrationRecord) error
	// GetRegistration returns a record (case-insensitive). Returns ENOTFOUND.
	GetRegistration(ctx context.Context, serviceID, registrationID string) (*RegistrationRecord, error)
	// ListRegistrations returns a page of records ordered by registration ID.
	ListRegistrations(ctx context.Context, f EnrollmentFilter) (Page[*RegistrationRecord], error)
	// DeleteRegistration removes a record if ifMatch matches.
	DeleteRegistration(ctx context.Context, serviceID, registrationID, ifMatch string) error

	// PutProvisioningCA creates or replaces a CA if ifMatch matches.
	PutProvisioningCA(ctx context.Context, c *ProvisioningCA, ifMatch string) error
	// GetProvisioningCA returns a CA by name. Returns ENOTFOUND.
	GetProvisioningCA(ctx context.Context, serviceID, name string) (*ProvisioningCA, error)
	// ListProvisioningCAs returns a service's CAs ordered by name.
	ListProvisioningCAs(ctx context.Context, serviceID string) ([]*ProvisioningCA, error)
	// DeleteProvisioningCA removes a CA. Returns ENOTFOUND.
	DeleteProvisioningCA(ctx context.Context, serviceID, name string) error
}
