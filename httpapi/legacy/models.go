package legacy

import (
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// Operation is the PAPI Operation object of a long-running call.
type Operation struct {
	CompletedDateUTC *string
	CreatedDateUTC   *string
	DetailsLocation  *string
	Error            *ErrorResponse
	OperationId      string
	OperationType    int
	ResourceLocation *string
	StartedDateUTC   *string
	State            int
	TenantId         string
}

func date(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toOperation(op *ferry.Operation) Operation {
	out := Operation{
		CompletedDateUTC: date(op.CompletedAt), CreatedDateUTC: date(op.CreatedAt), StartedDateUTC: date(op.StartedAt),
		OperationId: op.ID, OperationType: int(op.Type), ResourceLocation: str(op.ResourceLocation),
		State: int(op.State), TenantId: op.CatalogID,
	}
	if op.State == ferry.OpFailed {
		body, _ := Detail(&ferry.Error{Code: op.ErrorCode, Message: op.ErrorMessage})
		out.Error = &body
	}
	return out
}

// Tenant is a tenant in a list.
type Tenant struct {
	Id    string
	Name  string
	Roles []string
}

// tenantName is the legacy name of a catalog: its legacy friendly name, or
// its ARM name for a catalog born on the integrated surface.
func tenantName(c *ferry.Catalog) string {
	if c.LegacyName != "" {
		return c.LegacyName
	}
	return c.Name
}

// Product is the PAPI product.
type Product struct {
	Id          string
	Name        string
	Description *string
}

func toProduct(p *ferry.Product) Product {
	return Product{Id: p.ID, Name: p.Name, Description: str(p.Description)}
}

// Deployment is the PAPI deployment.
type Deployment struct {
	DeployedImages    []string
	DeploymentDateUtc string
	Id                string
	TenantId          string
}

func toDeployment(d *ferry.Deployment) Deployment {
	imgs := d.ImageIDs
	if imgs == nil {
		imgs = []string{}
	}
	return Deployment{DeployedImages: imgs, DeploymentDateUtc: d.DeployedAt.UTC().Format(time.RFC3339Nano), Id: d.ID, TenantId: d.CatalogID}
}

// DeviceGroup is the PAPI DeviceGroupV2.
type DeviceGroup struct {
	AllowCrashDumpsCollection bool
	CurrentDeployment         *Deployment
	Description               *string
	Id                        string
	Name                      string
	OsFeedType                int
	ProductId                 string
	TenantId                  string
	UpdatePolicy              int
}

// OS feed and update policy codes (sphere-surfaces.md §2.3, §6.5).
var (
	osFeedCodes       = []ferry.OSFeedType{ferry.OSFeedRetail, ferry.OSFeedRetailEval}
	updatePolicyCodes = []ferry.UpdatePolicy{ferry.UpdateAll, ferry.No3rdPartyAppUpdates, ferry.NoUpdates}
)

func codeIn[T comparable](codes []T, v T) int {
	for i, c := range codes {
		if c == v {
			return i
		}
	}
	return 0
}

func toDeviceGroup(g *ferry.DeviceGroup, cur *ferry.Deployment) DeviceGroup {
	out := DeviceGroup{
		AllowCrashDumpsCollection: g.AllowCrashDumps, Description: str(g.Description), Id: g.ID, Name: g.Name,
		OsFeedType: codeIn(osFeedCodes, g.OSFeedType), ProductId: g.ProductID, TenantId: g.CatalogID,
		UpdatePolicy: codeIn(updatePolicyCodes, g.UpdatePolicy),
	}
	if cur != nil {
		d := toDeployment(cur)
		out.CurrentDeployment = &d
	}
	return out
}

// Device is the PAPI DeviceV2.
type Device struct {
	ChipSku                int
	DeviceGroupId          *string
	DeviceId               string
	LastAvailableOSVersion *string
	LastInstalledOSVersion *string
	LastOSUpdateUTC        *string
	LastUpdateRequestUTC   *string
	ProductId              *string
}

func toDevice(d *ferry.Device) Device {
	return Device{
		ChipSku: 0, DeviceGroupId: str(d.DeviceGroupID), DeviceId: d.ID,
		LastAvailableOSVersion: str(d.LastAvailableOSVersion), LastInstalledOSVersion: str(d.LastInstalledOSVersion),
		LastOSUpdateUTC: date(d.LastOSUpdate), LastUpdateRequestUTC: date(d.LastUpdateRequest), ProductId: str(d.ProductID),
	}
}

// ImageMetadata is the PAPI image metadata. ImageType repeats Type, as
// PAPI keeps the deprecated field.
type ImageMetadata struct {
	ComponentId string
	Description *string
	Id          string
	ImageType   int
	Name        string
	Type        int
}

func toImage(img *ferry.Image) ImageMetadata {
	return ImageMetadata{ComponentId: img.ComponentID, Description: str(img.Description), Id: img.ID,
		ImageType: int(img.Type), Name: img.Name, Type: int(img.Type)}
}

// DeviceInsight is an error-reporting record.
type DeviceInsight struct {
	DeviceId             string
	StartTimestampInUnix int64
	EndTimestampInUnix   int64
	Description          string
	EventType            string
	EventClass           string
	EventCategory        string
	EventCount           int
}

func toInsight(i *ferry.DeviceInsight) DeviceInsight {
	return DeviceInsight{DeviceId: i.DeviceID, StartTimestampInUnix: i.Start.Unix(), EndTimestampInUnix: i.End.Unix(),
		Description: i.Description, EventType: i.EventType, EventClass: i.EventClass, EventCategory: i.EventCategory, EventCount: i.EventCount}
}

// CertificateStatus is the PAPI TenantCertificateStatus.
type CertificateStatus struct {
	Certificate *string // base64 DER; null once expired
	IsActive    bool
	IsRevoked   bool
	Thumbprint  string
}

// Principal is the PAPI AccessControlPrincipal.
type Principal struct {
	PrincipalId string
	DisplayName string
	Mail        string
	Roles       []string
}

// Users is the List Users response.
type Users struct {
	TenantId   string
	Principals []Principal
}

// UserRoles is the List Roles By User response.
type UserRoles struct {
	Roles []TenantRoles
}

// TenantRoles are a user's roles in one tenant.
type TenantRoles struct {
	TenantId  string
	RoleNames []string
}

// parseRole returns the legacy role with the given name (case-insensitive).
func parseRole(name string) (ferry.LegacyRole, error) {
	for _, r := range []ferry.LegacyRole{ferry.LegacyAdministrator, ferry.LegacyContributor, ferry.LegacyReader} {
		if strings.EqualFold(string(r), name) {
			return r, nil
		}
	}
	return "", badRequest("The role '%s' is not valid. Valid roles are Administrator, Contributor and Reader.", truncate(name, 40))
}
