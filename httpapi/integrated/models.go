package integrated

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/sphere"
)

// Property models of the 2024-04-01 swagger, with its exact JSON names.

type catalogProps struct {
	TenantID          string `json:"tenantId,omitempty"`
	ProvisioningState string `json:"provisioningState,omitempty"`
}

type productProps struct {
	Description       *string `json:"description,omitempty"`
	ProvisioningState string  `json:"provisioningState,omitempty"`
}

type deviceGroupProps struct {
	Description               *string `json:"description,omitempty"`
	OSFeedType                string  `json:"osFeedType,omitempty"`
	UpdatePolicy              string  `json:"updatePolicy,omitempty"`
	AllowCrashDumpsCollection string  `json:"allowCrashDumpsCollection,omitempty"`
	RegionalDataBoundary      string  `json:"regionalDataBoundary,omitempty"`
	HasDeployment             *bool   `json:"hasDeployment,omitempty"`
	ProvisioningState         string  `json:"provisioningState,omitempty"`
}

type deviceProps struct {
	DeviceID               string     `json:"deviceId,omitempty"`
	ChipSKU                string     `json:"chipSku,omitempty"`
	LastAvailableOSVersion string     `json:"lastAvailableOsVersion,omitempty"`
	LastInstalledOSVersion string     `json:"lastInstalledOsVersion,omitempty"`
	LastOSUpdateUTC        *time.Time `json:"lastOsUpdateUtc,omitempty"`
	LastUpdateRequestUTC   *time.Time `json:"lastUpdateRequestUtc,omitempty"`
	ProvisioningState      string     `json:"provisioningState,omitempty"`
}

type imageProps struct {
	Image                string `json:"image,omitempty"`
	ImageID              string `json:"imageId,omitempty"`
	ImageName            string `json:"imageName,omitempty"`
	RegionalDataBoundary string `json:"regionalDataBoundary,omitempty"`
	URI                  string `json:"uri,omitempty"`
	Description          string `json:"description,omitempty"`
	ComponentID          string `json:"componentId,omitempty"`
	ImageType            string `json:"imageType,omitempty"`
	ProvisioningState    string `json:"provisioningState,omitempty"`
}

type deploymentProps struct {
	DeploymentID      string                      `json:"deploymentId,omitempty"`
	DeployedImages    []arm.Resource[*imageProps] `json:"deployedImages"`
	DeploymentDateUTC *time.Time                  `json:"deploymentDateUtc,omitempty"`
	ProvisioningState string                      `json:"provisioningState,omitempty"`
}

type certificateProps struct {
	Certificate       *string    `json:"certificate"`
	Status            string     `json:"status,omitempty"`
	Subject           string     `json:"subject,omitempty"`
	Thumbprint        string     `json:"thumbprint,omitempty"`
	ExpiryUTC         *time.Time `json:"expiryUtc,omitempty"`
	NotBeforeUTC      *time.Time `json:"notBeforeUtc,omitempty"`
	ProvisioningState string     `json:"provisioningState,omitempty"`
}

type deviceInsight struct {
	DeviceID          string    `json:"deviceId"`
	Description       string    `json:"description"`
	StartTimestampUTC time.Time `json:"startTimestampUtc"`
	EndTimestampUTC   time.Time `json:"endTimestampUtc"`
	EventCategory     string    `json:"eventCategory"`
	EventClass        string    `json:"eventClass"`
	EventType         string    `json:"eventType"`
	EventCount        int       `json:"eventCount"`
}

type countResponse struct {
	Value int `json:"value"`
}

const succeeded = string(ferry.ProvisioningSucceeded)

func catalogResource(c *ferry.Catalog) arm.Resource[catalogProps] {
	res := arm.NewResource(c.ResourceID(), c.SystemData, catalogProps{TenantID: c.TenantID, ProvisioningState: string(c.State)})
	res.Location = c.Location
	res.Tags = c.Tags
	if res.Tags == nil {
		res.Tags = map[string]string{}
	}
	if res.Properties.ProvisioningState == "" {
		res.Properties.ProvisioningState = succeeded
	}
	return res
}

func productResource(c *ferry.Catalog, p *ferry.Product) arm.Resource[productProps] {
	d := p.Description
	return arm.NewResource(sphere.ProductResourceID(c, p), p.SystemData, productProps{Description: &d, ProvisioningState: succeeded})
}

// updatePolicyName shows a group's policy; NoUpdates, which only the legacy
// surface has, shows as the closest ARM value.
func updatePolicyName(u ferry.UpdatePolicy) string {
	if u == ferry.NoUpdates {
		return string(ferry.No3rdPartyAppUpdates)
	}
	return string(u)
}

func crashDumps(b bool) string {
	if b {
		return "Enabled"
	}
	return "Disabled"
}

func (a *api) groupResource(ctx context.Context, c *ferry.Catalog, p *ferry.Product, g *ferry.DeviceGroup) (arm.Resource[deviceGroupProps], error) {
	has, err := a.svc.HasDeployment(ctx, g.ID)
	if err != nil {
		return arm.Resource[deviceGroupProps]{}, err
	}
	d := g.Description
	return arm.NewResource(sphere.DeviceGroupResourceID(c, p, g), g.SystemData, deviceGroupProps{
		Description: &d, OSFeedType: string(g.OSFeedType), UpdatePolicy: updatePolicyName(g.UpdatePolicy),
		AllowCrashDumpsCollection: crashDumps(g.AllowCrashDumps), RegionalDataBoundary: string(g.RegionalDataBoundary),
		HasDeployment: &has, ProvisioningState: succeeded,
	}), nil
}

func deviceResource(c *ferry.Catalog, p *ferry.Product, g *ferry.DeviceGroup, d *ferry.Device) arm.Resource[deviceProps] {
	return arm.NewResource(sphere.DeviceResourceID(c, p, g, d), d.SystemData, deviceProps{
		DeviceID: d.ID, ChipSKU: d.ChipSKU, LastAvailableOSVersion: d.LastAvailableOSVersion,
		LastInstalledOSVersion: d.LastInstalledOSVersion, LastOSUpdateUTC: arm.TimePtr(d.LastOSUpdate),
		LastUpdateRequestUTC: arm.TimePtr(d.LastUpdateRequest), ProvisioningState: succeeded,
	})
}

// imageURI is where an image is found: its resource URL.
func imageURI(r *http.Request, c *ferry.Catalog, img *ferry.Image) string {
	u := url.URL{Scheme: arm.Scheme(r), Host: r.Host, Path: sphere.ImageResourceID(c, img).String()}
	return u.String()
}

func imageResource(r *http.Request, c *ferry.Catalog, img *ferry.Image) arm.Resource[*imageProps] {
	uri := imageURI(r, c, img)
	return arm.NewResource(sphere.ImageResourceID(c, img), img.SystemData, &imageProps{
		Image: uri, ImageID: img.ID, ImageName: img.Name, RegionalDataBoundary: string(img.RegionalDataBoundary),
		URI: uri, Description: img.Description, ComponentID: img.ComponentID, ImageType: img.Type.String(),
		ProvisioningState: succeeded,
	})
}

func (a *api) deploymentResource(r *http.Request, c *ferry.Catalog, p *ferry.Product, g *ferry.DeviceGroup, d *ferry.Deployment) (arm.Resource[deploymentProps], error) {
	imgs := make([]arm.Resource[*imageProps], 0, len(d.ImageIDs))
	for _, id := range d.ImageIDs {
		img, err := a.svc.GetImage(r.Context(), id)
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			continue
		}
		if err != nil {
			return arm.Resource[deploymentProps]{}, err
		}
		imgs = append(imgs, imageResource(r, c, img))
	}
	return arm.NewResource(sphere.DeploymentResourceID(c, p, g, d), d.SystemData, deploymentProps{
		DeploymentID: d.ID, DeployedImages: imgs, DeploymentDateUTC: arm.TimePtr(d.DeployedAt), ProvisioningState: succeeded,
	}), nil
}

func (a *api) certificateResource(c *ferry.Catalog, cert *ferry.Certificate) arm.Resource[certificateProps] {
	props := certificateProps{
		Status: string(cert.Status), Subject: cert.Subject, Thumbprint: cert.Thumbprint,
		ExpiryUTC: arm.TimePtr(cert.NotAfter), NotBeforeUTC: arm.TimePtr(cert.NotBefore), ProvisioningState: succeeded,
	}
	// An expired certificate is still listed, without its body.
	if cert.Status != ferry.CertificateExpired {
		b := base64.StdEncoding.EncodeToString(cert.DER)
		props.Certificate = &b
	}
	return arm.NewResource(sphere.CertificateResourceID(c, cert), ferry.SystemData{CreatedAt: cert.CreatedAt, LastModifiedAt: cert.CreatedAt}, props)
}

// field getters for $filter.

func catalogField(c *ferry.Catalog) func(string) (string, bool) {
	return func(f string) (string, bool) {
		switch f {
		case "name":
			return c.Name, true
		case "tenantid":
			return c.TenantID, true
		case "location":
			return c.Location, true
		}
		if k, ok := strings.CutPrefix(f, "tags/"); ok {
			for tk, v := range c.Tags {
				if strings.EqualFold(tk, k) {
					return v, true
				}
			}
			return "", true
		}
		return "", false
	}
}

func productField(p *ferry.Product) func(string) (string, bool) {
	return func(f string) (string, bool) {
		switch f {
		case "name":
			return p.Name, true
		case "description":
			return p.Description, true
		}
		return "", false
	}
}

func groupField(g *ferry.DeviceGroup) func(string) (string, bool) {
	return func(f string) (string, bool) {
		switch f {
		case "name":
			return g.Name, true
		case "description":
			return g.Description, true
		case "osfeedtype":
			return string(g.OSFeedType), true
		case "updatepolicy":
			return updatePolicyName(g.UpdatePolicy), true
		case "allowcrashdumpscollection":
			return crashDumps(g.AllowCrashDumps), true
		case "regionaldataboundary":
			return string(g.RegionalDataBoundary), true
		}
		return "", false
	}
}

func deviceField(d *ferry.Device) func(string) (string, bool) {
	return func(f string) (string, bool) {
		switch f {
		case "name", "deviceid":
			return d.ID, true
		case "chipsku":
			return d.ChipSKU, true
		case "lastavailableosversion":
			return d.LastAvailableOSVersion, true
		case "lastinstalledosversion":
			return d.LastInstalledOSVersion, true
		case "devicegroupid":
			return d.DeviceGroupID, true
		case "productid":
			return d.ProductID, true
		}
		return "", false
	}
}

func imageField(img *ferry.Image) func(string) (string, bool) {
	return func(f string) (string, bool) {
		switch f {
		case "name", "imageid":
			return img.ID, true
		case "imagename":
			return img.Name, true
		case "componentid":
			return img.ComponentID, true
		case "imagetype":
			return img.Type.String(), true
		case "regionaldataboundary":
			return string(img.RegionalDataBoundary), true
		case "description":
			return img.Description, true
		}
		return "", false
	}
}

func deploymentField(d *ferry.Deployment) func(string) (string, bool) {
	return func(f string) (string, bool) {
		switch f {
		case "name":
			return d.Name, true
		case "deploymentid":
			return d.ID, true
		}
		return "", false
	}
}

func insightField(i *ferry.DeviceInsight) func(string) (string, bool) {
	return func(f string) (string, bool) {
		switch f {
		case "deviceid":
			return i.DeviceID, true
		case "eventcategory":
			return i.EventCategory, true
		case "eventclass":
			return i.EventClass, true
		case "eventtype":
			return i.EventType, true
		case "eventcount":
			return strconv.Itoa(i.EventCount), true
		}
		return "", false
	}
}

// checkFilterFields returns a 400 naming the first field get cannot filter on.
func checkFilterFields[T any](f arm.Filter, zero T, get func(T) func(string) (string, bool)) error {
	g := get(zero)
	for _, name := range f.Fields() {
		if _, ok := g(name); !ok {
			return arm.Errorf(ferry.EINVALID, arm.CodeBadRequest, "The $filter field '%s' is not supported.", name).WithTarget("$filter")
		}
	}
	return nil
}
