package ferry

import (
	"context"
	"strings"
	"time"
)

// Subscription is the top ARM container. Ferry keeps them minimal: an ID, a
// name and a state, enough for ARM clients to walk the hierarchy.
type Subscription struct {
	ID          string // UUID
	DisplayName string
	State       string // "Enabled"
	CreatedAt   time.Time
}

// ResourceGroup groups resources within a subscription.
type ResourceGroup struct {
	SubscriptionID string
	Name           string // case-insensitive, unique within the subscription
	Location       string
	Tags           map[string]string
	CreatedAt      time.Time
}

// ResourceID returns the group's ARM resource ID.
func (g *ResourceGroup) ResourceID() ResourceID {
	return ResourceID{SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name}
}

// SubscriptionStore keeps subscriptions and resource groups.
type SubscriptionStore interface {
	// PutSubscription creates or replaces a subscription.
	PutSubscription(ctx context.Context, s *Subscription) error
	// GetSubscription returns a subscription. Returns ENOTFOUND if none.
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	// ListSubscriptions returns a page of subscriptions ordered by ID.
	ListSubscriptions(ctx context.Context, opt ListOptions) (Page[*Subscription], error)

	// PutResourceGroup creates or replaces a resource group. Returns
	// ENOTFOUND if the subscription does not exist.
	PutResourceGroup(ctx context.Context, g *ResourceGroup) error
	// GetResourceGroup returns a resource group (name case-insensitive).
	// Returns ENOTFOUND if none.
	GetResourceGroup(ctx context.Context, subscriptionID, name string) (*ResourceGroup, error)
	// ListResourceGroups returns a page of a subscription's resource groups.
	ListResourceGroups(ctx context.Context, subscriptionID string, opt ListOptions) (Page[*ResourceGroup], error)
	// DeleteResourceGroup removes an empty resource group. Returns ENOTFOUND
	// if none, ECONFLICT if resources still live in it.
	DeleteResourceGroup(ctx context.Context, subscriptionID, name string) error
}

// LegacyAccess is the state of a catalog's legacy (tenant API) door.
type LegacyAccess string

// Legacy access states. Paused is reversible; Blocked is permanent.
const (
	LegacyEnabled LegacyAccess = "Enabled"
	LegacyPaused  LegacyAccess = "Paused"
	LegacyBlocked LegacyAccess = "Blocked"
)

// Catalog is the top container of the Sphere-style model; the legacy surface
// calls it a tenant. A tenant created on the legacy surface has no ARM
// location until it is integrated; a catalog created on the integrated
// surface has both from the start.
type Catalog struct {
	TenantID       string // UUID; the legacy tenant ID and the key
	SubscriptionID string // ARM location; empty until integrated
	ResourceGroup  string
	Name           string // ARM name, ^[A-Za-z0-9_-]{1,50}$
	Location       string // "global"
	Tags           map[string]string
	LegacyName     string // the legacy tenant's friendly name
	LegacyAccess   LegacyAccess
	IntegratedAt   time.Time // zero until the Integrate step ran (or for ARM-born catalogs, their creation)
	State          ProvisioningState
	SystemData     SystemData
	ETag           string
}

// Integrated reports whether the catalog has an ARM identity.
func (c *Catalog) Integrated() bool { return c.Name != "" }

// ResourceID returns the catalog's ARM resource ID (zero if not integrated).
func (c *Catalog) ResourceID() ResourceID {
	if !c.Integrated() {
		return ResourceID{}
	}
	return ResourceID{SubscriptionID: c.SubscriptionID, ResourceGroup: c.ResourceGroup,
		Provider: ProviderSphere, Types: []string{"catalogs"}, Names: []string{c.Name}}
}

// CatalogFilter selects catalogs in a list.
type CatalogFilter struct {
	SubscriptionID string
	ResourceGroup  string
	TenantIDs      []string // when non-nil, only these
	LegacyOnly     bool     // only tenants that are not integrated
	ListOptions
}

// CatalogStore keeps catalogs.
type CatalogStore interface {
	// CreateCatalog stores a new catalog and sets its ETag. Returns ECONFLICT
	// if the tenant ID or the ARM name within its resource group is taken.
	CreateCatalog(ctx context.Context, c *Catalog) error
	// GetCatalog returns a catalog by tenant ID. Returns ENOTFOUND if none.
	GetCatalog(ctx context.Context, tenantID string) (*Catalog, error)
	// GetCatalogByName returns a catalog by ARM location (case-insensitive).
	// Returns ENOTFOUND if none.
	GetCatalogByName(ctx context.Context, subscriptionID, resourceGroup, name string) (*Catalog, error)
	// ListCatalogs returns a page of catalogs ordered by tenant ID.
	ListCatalogs(ctx context.Context, f CatalogFilter) (Page[*Catalog], error)
	// UpdateCatalog replaces a catalog if ifMatch matches its ETag, and sets
	// a new ETag. Returns ENOTFOUND, EPRECONDITION, or ECONFLICT if the new
	// ARM name is taken.
	UpdateCatalog(ctx context.Context, c *Catalog, ifMatch string) error
	// DeleteCatalog removes a catalog and everything in it. Returns ENOTFOUND.
	DeleteCatalog(ctx context.Context, tenantID string) error
}

// Product groups device groups within a catalog.
type Product struct {
	ID          string // UUID, the legacy ID
	CatalogID   string // tenant ID
	Name        string // unique in the catalog, case-insensitive
	Description string
	SystemData  SystemData
	ETag        string
}

// ProductFilter selects products in a list.
type ProductFilter struct {
	CatalogID string // required
	Name      string // exact, case-insensitive; "" for all
	ListOptions
}

// ProductStore keeps products.
type ProductStore interface {
	// CreateProduct stores a product. Returns ECONFLICT if the name is taken
	// in the catalog, ENOTFOUND if the catalog does not exist.
	CreateProduct(ctx context.Context, p *Product) error
	// GetProduct returns a product by ID. Returns ENOTFOUND if none.
	GetProduct(ctx context.Context, id string) (*Product, error)
	// ListProducts returns a page of products ordered by ID.
	ListProducts(ctx context.Context, f ProductFilter) (Page[*Product], error)
	// UpdateProduct replaces a product if ifMatch matches. Returns ENOTFOUND,
	// EPRECONDITION, or ECONFLICT on a name clash.
	UpdateProduct(ctx context.Context, p *Product, ifMatch string) error
	// DeleteProduct removes a product. Returns ENOTFOUND, or ECONFLICT if
	// device groups or devices still belong to it.
	DeleteProduct(ctx context.Context, id string) error
}

// OSFeedType selects which OS builds a device group receives.
type OSFeedType string

// OS feed types (PAPI codes 0, 1).
const (
	OSFeedRetail     OSFeedType = "Retail"
	OSFeedRetailEval OSFeedType = "RetailEval"
)

// UpdatePolicy says which updates a device group applies.
type UpdatePolicy string

// Update policies (PAPI codes 0, 1, 2). NoUpdates exists only on the legacy
// surface; the integrated surface shows it as No3rdPartyAppUpdates (the
// closest ARM value that still withholds application updates) and refuses to
// write it.
const (
	UpdateAll            UpdatePolicy = "UpdateAll"
	No3rdPartyAppUpdates UpdatePolicy = "No3rdPartyAppUpdates"
	NoUpdates            UpdatePolicy = "NoUpdates"
)

// RegionalDataBoundary constrains where crash data may be kept.
type RegionalDataBoundary string

// Regional data boundaries.
const (
	BoundaryNone RegionalDataBoundary = "None"
	BoundaryEU   RegionalDataBoundary = "EU"
)

// DeviceGroup holds devices of one product that share an update policy.
type DeviceGroup struct {
	ID                   string // UUID
	CatalogID            string
	ProductID            string
	Name                 string // unique in the product, case-insensitive
	Description          string
	OSFeedType           OSFeedType
	UpdatePolicy         UpdatePolicy
	AllowCrashDumps      bool
	RegionalDataBoundary RegionalDataBoundary
	SystemData           SystemData
	ETag                 string
}

// DefaultDeviceGroups are the groups every new product gets unless asked not
// to, with their settings.
var DefaultDeviceGroups = []DeviceGroup{
	{Name: "Development", Description: "Default development device group", OSFeedType: OSFeedRetail, UpdatePolicy: No3rdPartyAppUpdates, AllowCrashDumps: true, RegionalDataBoundary: BoundaryNone},
	{Name: "Field Test", Description: "Default test device group", OSFeedType: OSFeedRetail, UpdatePolicy: UpdateAll, AllowCrashDumps: true, RegionalDataBoundary: BoundaryNone},
	{Name: "Field Test OS Evaluation", Description: "Default Field Test OS Evaluation device group", OSFeedType: OSFeedRetailEval, UpdatePolicy: UpdateAll, AllowCrashDumps: true, RegionalDataBoundary: BoundaryNone},
	{Name: "Production", Description: "Default production device group", OSFeedType: OSFeedRetail, UpdatePolicy: UpdateAll, AllowCrashDumps: true, RegionalDataBoundary: BoundaryNone},
	{Name: "Production OS Evaluation", Description: "Default Production OS Evaluation device group", OSFeedType: OSFeedRetailEval, UpdatePolicy: UpdateAll, AllowCrashDumps: true, RegionalDataBoundary: BoundaryNone},
}

// DeviceGroupFilter selects device groups in a list.
type DeviceGroupFilter struct {
	CatalogID string // required unless ProductID is set
	ProductID string
	Name      string // exact, case-insensitive
	ListOptions
}

// DeviceGroupStore keeps device groups.
type DeviceGroupStore interface {
	// CreateDeviceGroup stores a group. Returns ECONFLICT if the name is
	// taken in the product, ENOTFOUND if the product does not exist.
	CreateDeviceGroup(ctx context.Context, g *DeviceGroup) error
	// GetDeviceGroup returns a group by ID. Returns ENOTFOUND if none.
	GetDeviceGroup(ctx context.Context, id string) (*DeviceGroup, error)
	// ListDeviceGroups returns a page of groups ordered by ID.
	ListDeviceGroups(ctx context.Context, f DeviceGroupFilter) (Page[*DeviceGroup], error)
	// UpdateDeviceGroup replaces a group if ifMatch matches. Returns
	// ENOTFOUND, EPRECONDITION, or ECONFLICT on a name clash.
	UpdateDeviceGroup(ctx context.Context, g *DeviceGroup, ifMatch string) error
	// DeleteDeviceGroup removes a group and its deployments. Returns
	// ENOTFOUND, or ECONFLICT if devices still belong to it.
	DeleteDeviceGroup(ctx context.Context, id string) error
}

// Device is a chip claimed to a catalog. Claiming is irreversible: a device
// belongs to one catalog for good. ProductID and DeviceGroupID are empty for
// a device claimed to the catalog only (".unassigned").
type Device struct {
	ID                     string // 128 characters of [A-Za-z0-9-], normalised to upper case
	CatalogID              string
	ProductID              string
	DeviceGroupID          string
	ChipSKU                string // "MT3620AN"
	LastAvailableOSVersion string
	LastInstalledOSVersion string
	LastOSUpdate           time.Time
	LastUpdateRequest      time.Time
	ClaimedAt              time.Time
	SystemData             SystemData
	ETag                   string
}

// DeviceFilter selects devices in a list or count.
type DeviceFilter struct {
	CatalogID     string
	ProductID     string
	DeviceGroupID string
	Unassigned    bool     // only devices in no device group
	IDs           []string // when non-nil, only these
	ListOptions
}

// DeviceStore keeps claimed devices.
type DeviceStore interface {
	// CreateDevice claims a device. Returns ECONFLICT if it is already
	// claimed (to any catalog).
	CreateDevice(ctx context.Context, d *Device) error
	// GetDevice returns a device (ID case-insensitive). Returns ENOTFOUND.
	GetDevice(ctx context.Context, id string) (*Device, error)
	// ListDevices returns a page of devices ordered by ID.
	ListDevices(ctx context.Context, f DeviceFilter) (Page[*Device], error)
	// CountDevices counts the devices that match f (paging fields ignored).
	CountDevices(ctx context.Context, f DeviceFilter) (int, error)
	// UpdateDevice replaces a device if ifMatch matches. Returns ENOTFOUND,
	// EPRECONDITION.
	UpdateDevice(ctx context.Context, d *Device, ifMatch string) error
	// DeleteDevice removes a device record. Returns ENOTFOUND.
	DeleteDevice(ctx context.Context, id string) error
}

// ImageType is the kind of an image, with the legacy surface's integer codes.
type ImageType int

// imageTypeNames maps the PAPI integer codes to ARM's names.
var imageTypeNames = map[ImageType]string{
	0: "InvalidImageType", 1: "OneBl", 2: "PlutonRuntime", 3: "WifiFirmware", 4: "SecurityMonitor",
	5: "NormalWorldLoader", 6: "NormalWorldDtb", 7: "NormalWorldKernel", 8: "RootFs", 9: "Services",
	10: "Applications", 13: "FwConfig", 16: "BootManifest", 17: "Nwfs", 19: "TrustedKeystore",
	20: "Policy", 21: "CustomerBoardConfig", 22: "UpdateCertStore", 23: "BaseSystemUpdateManifest",
	24: "FirmwareUpdateManifest", 25: "CustomerUpdateManifest", 26: "RecoveryManifest",
	27: "ManifestSet", 28: "Other",
}

// String returns the ARM name of the image type.
func (t ImageType) String() string {
	if n, ok := imageTypeNames[t]; ok {
		return n
	}
	return "InvalidImageType"
}

// ParseImageType returns the image type with the given ARM name
// (case-insensitive). Returns EINVALID for unknown names.
func ParseImageType(name string) (ImageType, error) {
	for t, n := range imageTypeNames {
		if strings.EqualFold(n, name) {
			return t, nil
		}
	}
	return 0, Errorf(EINVALID, "The image type %q is not valid.", name)
}

// Image is an uploaded image package. Its bytes are kept apart from the
// metadata (ImageStore.GetImageContent).
type Image struct {
	ID                   string // UUID; also the ARM name
	CatalogID            string
	Name                 string // component name from the package
	ComponentID          string // UUID
	Description          string
	Type                 ImageType
	RegionalDataBoundary RegionalDataBoundary
	Size                 int64
	SHA256               string // hex
	SystemData           SystemData
}

// ImageFilter selects images in a list.
type ImageFilter struct {
	CatalogID string // required
	ListOptions
}

// ImageStore keeps images and their bytes.
type ImageStore interface {
	// CreateImage stores an image and its bytes. Returns ECONFLICT if the ID
	// is taken, ENOTFOUND if the catalog does not exist.
	CreateImage(ctx context.Context, img *Image, content []byte) error
	// GetImage returns image metadata. Returns ENOTFOUND if none.
	GetImage(ctx context.Context, id string) (*Image, error)
	// GetImageContent returns an image's bytes. Returns ENOTFOUND if none.
	GetImageContent(ctx context.Context, id string) ([]byte, error)
	// ListImages returns a page of a catalog's images ordered by ID.
	ListImages(ctx context.Context, f ImageFilter) (Page[*Image], error)
	// DeleteImage removes an image. Returns ENOTFOUND, or ECONFLICT while a
	// deployment references it.
	DeleteImage(ctx context.Context, id string) error
}

// Deployment sends a set of images to a device group. The newest deployment
// of a group is its current one (".default").
type Deployment struct {
	ID            string // UUID, the legacy ID
	CatalogID     string
	DeviceGroupID string
	Name          string // ARM name; defaults to ID
	ImageIDs      []string
	DeployedAt    time.Time
	SystemData    SystemData
}

// DeploymentFilter selects deployments in a list.
type DeploymentFilter struct {
	CatalogID     string
	DeviceGroupID string
	ListOptions
}

// DeploymentStore keeps deployments.
type DeploymentStore interface {
	// CreateDeployment stores a deployment. Returns ECONFLICT if its name is
	// taken in the group, ENOTFOUND if the group or an image does not exist.
	CreateDeployment(ctx context.Context, d *Deployment) error
	// GetDeployment returns a deployment by ID. Returns ENOTFOUND if none.
	GetDeployment(ctx context.Context, id string) (*Deployment, error)
	// GetDeploymentByName returns a group's deployment by ARM name
	// (case-insensitive); ".default" gives the newest one. Returns ENOTFOUND.
	GetDeploymentByName(ctx context.Context, deviceGroupID, name string) (*Deployment, error)
	// ListDeployments returns a page of deployments ordered by ID.
	ListDeployments(ctx context.Context, f DeploymentFilter) (Page[*Deployment], error)
	// DeleteDeployment removes a deployment. Returns ENOTFOUND.
	DeleteDeployment(ctx context.Context, id string) error
}

// CertificateStatus is the state of a catalog CA certificate. Expired is
// derived from the validity period, never stored.
type CertificateStatus string

// Certificate states.
const (
	CertificateActive   CertificateStatus = "Active"
	CertificateInactive CertificateStatus = "Inactive"
	CertificateExpired  CertificateStatus = "Expired"
	CertificateRevoked  CertificateStatus = "Revoked"
)

// Certificate is one CA certificate of a catalog. Each catalog has a real CA
// that signs proof-of-possession certificates; the private key never leaves
// the store except to sign.
type Certificate struct {
	CatalogID    string
	SerialNumber string // upper-case hex
	Thumbprint   string // SHA-1, upper-case hex, as Azure shows it
	Subject      string
	DER          []byte // the certificate
	PrivateKey   []byte // PKCS #8 DER
	NotBefore    time.Time
	NotAfter     time.Time
	Status       CertificateStatus // Active, Inactive or Revoked
	CreatedAt    time.Time
}

// StatusAt returns the status as shown at time t, Expired included.
func (c *Certificate) StatusAt(t time.Time) CertificateStatus {
	if c.Status != CertificateRevoked && t.After(c.NotAfter) {
		return CertificateExpired
	}
	return c.Status
}

// CertificateStore keeps catalog CA certificates.
type CertificateStore interface {
	// CreateCertificate stores a certificate. Returns ECONFLICT if the
	// serial number is taken in the catalog.
	CreateCertificate(ctx context.Context, c *Certificate) error
	// GetCertificate returns a certificate by serial number; ".default"
	// returns the active one. Returns ENOTFOUND.
	GetCertificate(ctx context.Context, catalogID, serial string) (*Certificate, error)
	// ListCertificates returns a catalog's certificates, newest first.
	ListCertificates(ctx context.Context, catalogID string) ([]*Certificate, error)
	// UpdateCertificateStatus sets a certificate's status. Returns ENOTFOUND.
	UpdateCertificateStatus(ctx context.Context, catalogID, serial string, s CertificateStatus) error
}

// OperationType names what an asynchronous operation does, with the legacy
// surface's integer codes.
type OperationType int

// Operation types (PAPI codes).
const (
	OpDeviceClaim             OperationType = 0
	OpDeviceUnclaim           OperationType = 1
	OpDeviceUpdateDeviceGroup OperationType = 2
	OpMigrateTenant           OperationType = 3
	OpCreateProduct           OperationType = 4
	OpDeployToDeviceGroup     OperationType = 5
	OpDeployToOSFeed          OperationType = 6
	OpImageUpload             OperationType = 7
	OpTenantCreation          OperationType = 8
	OpDeleteDeviceGroup       OperationType = 9
	OpDeleteProduct           OperationType = 10
	OpBulkDeviceClaim         OperationType = 11
	OpARM                     OperationType = 100 // an integrated-surface long-running operation
)

// OperationState is the state of an asynchronous operation (PAPI codes).
type OperationState int

// Operation states.
const (
	OpNotStarted         OperationState = 0
	OpInProgress         OperationState = 1
	OpComplete           OperationState = 2
	OpFailed             OperationState = 3
	OpCompleteWithErrors OperationState = 4
)

// Done reports whether the operation has finished.
func (s OperationState) Done() bool { return s >= OpComplete }

// Operation is an asynchronous operation, polled by legacy clients at
// /v2/tenants/{t}/operations/{id} and by ARM clients through
// Azure-AsyncOperation and Location URLs.
type Operation struct {
	ID               string // UUID
	CatalogID        string
	Type             OperationType
	Name             string // ARM operation name, e.g. "Microsoft.AzureSphere/catalogs/uploadImage/action"
	State            OperationState
	ResourceID       string // what it created or changed (ARM ID or legacy path)
	ResourceLocation string
	ErrorCode        string // an E* code when failed
	ErrorMessage     string
	CreatedAt        time.Time
	StartedAt        time.Time
	CompletedAt      time.Time
}

// OperationStore keeps asynchronous operations.
type OperationStore interface {
	// CreateOperation stores an operation. Returns ECONFLICT if the ID is taken.
	CreateOperation(ctx context.Context, op *Operation) error
	// GetOperation returns an operation. Returns ENOTFOUND if none.
	GetOperation(ctx context.Context, id string) (*Operation, error)
	// UpdateOperation replaces an operation. Returns ENOTFOUND if none.
	UpdateOperation(ctx context.Context, op *Operation) error
}

// DeviceInsight is an error-reporting record of a catalog device.
type DeviceInsight struct {
	ID            string // UUID
	CatalogID     string
	DeviceID      string
	Description   string
	Start         time.Time
	End           time.Time
	EventCategory string
	EventClass    string
	EventType     string
	EventCount    int
}

// DeviceInsightFilter selects device insights in a list.
type DeviceInsightFilter struct {
	CatalogID string // required
	DeviceID  string
	Since     time.Time
	ListOptions
}

// DeviceInsightStore keeps device insights.
type DeviceInsightStore interface {
	// AddDeviceInsights stores insights.
	AddDeviceInsights(ctx context.Context, in []*DeviceInsight) error
	// ListDeviceInsights returns a page of insights ordered by ID.
	ListDeviceInsights(ctx context.Context, f DeviceInsightFilter) (Page[*DeviceInsight], error)
}
