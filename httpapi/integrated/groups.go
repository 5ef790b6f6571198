package integrated

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/sphere"
)

// Device groups.

func (a *api) listDeviceGroups(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveProduct(r, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	f := ferry.DeviceGroupFilter{ProductID: t.product.ID}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceGroup], error) {
		f.ListOptions = o
		return a.svc.ListDeviceGroups(ctx, f)
	}
	return listPaged(w, r, fetch, &ferry.DeviceGroup{}, groupField, func(g *ferry.DeviceGroup) (arm.Resource[deviceGroupProps], error) {
		return a.groupResource(ctx, t.catalog, t.product, g)
	}, nil)
}

func (a *api) getDeviceGroup(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, false)
	if err != nil {
		return err
	}
	res, err := a.groupResource(r.Context(), t.catalog, t.product, t.group)
	if err != nil {
		return err
	}
	arm.SetETag(w, t.group.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, res)
}

type groupBody struct {
	Properties *struct {
		Description               *string `json:"description"`
		OSFeedType                *string `json:"osFeedType"`
		UpdatePolicy              *string `json:"updatePolicy"`
		AllowCrashDumpsCollection *string `json:"allowCrashDumpsCollection"`
		RegionalDataBoundary      *string `json:"regionalDataBoundary"`
	} `json:"properties"`
}

// apply sets the body's properties on g, checking the enums.
func (b *groupBody) apply(g *ferry.DeviceGroup) error {
	p := b.Properties
	if p == nil {
		return nil
	}
	if p.Description != nil {
		g.Description = *p.Description
	}
	if p.OSFeedType != nil {
		v, err := arm.Enum("properties.osFeedType", *p.OSFeedType, "Retail", "RetailEval")
		if err != nil {
			return err
		}
		g.OSFeedType = ferry.OSFeedType(v)
	}
	if p.UpdatePolicy != nil {
		v, err := arm.Enum("properties.updatePolicy", *p.UpdatePolicy, "UpdateAll", "No3rdPartyAppUpdates")
		if err != nil {
			return err
		}
		g.UpdatePolicy = ferry.UpdatePolicy(v)
	}
	if p.AllowCrashDumpsCollection != nil {
		v, err := arm.Enum("properties.allowCrashDumpsCollection", *p.AllowCrashDumpsCollection, "Enabled", "Disabled")
		if err != nil {
			return err
		}
		if v != "" {
			g.AllowCrashDumps = v == "Enabled"
		}
	}
	if p.RegionalDataBoundary != nil {
		v, err := arm.Enum("properties.regionalDataBoundary", *p.RegionalDataBoundary, "None", "EU")
		if err != nil {
			return err
		}
		g.RegionalDataBoundary = ferry.RegionalDataBoundary(v)
	}
	return nil
}

func (a *api) putDeviceGroup(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveProduct(r, false)
	if err != nil {
		return err
	}
	name := r.PathValue("deviceGroupName")
	if err := arm.CheckName(name, groupNamePattern); err != nil {
		return err
	}
	if sphere.IsSystemName(name) {
		return arm.InvalidName(name, groupNamePattern.String())
	}
	var body groupBody
	if err := arm.Decode(r, &body, false); err != nil {
		return err
	}
	ctx := r.Context()
	g, err := a.svc.GetDeviceGroupByName(ctx, t.product.ID, name)
	if err == nil || ferry.IsCode(err, ferry.ENOTFOUND) {
		if cerr := arm.CheckPutConditions(r, err == nil); cerr != nil {
			return cerr
		}
	}
	status := http.StatusOK
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		g = &ferry.DeviceGroup{ProductID: t.product.ID, Name: name}
		if err := body.apply(g); err != nil {
			return err
		}
		if err := a.svc.CreateDeviceGroup(ctx, g); err != nil {
			return err
		}
		status = http.StatusCreated
	case err != nil:
		return err
	default:
		// PUT replaces: what the body leaves out returns to its default.
		g.Description, g.OSFeedType, g.UpdatePolicy, g.AllowCrashDumps, g.RegionalDataBoundary = "", "", "", false, ""
		if err := body.apply(g); err != nil {
			return err
		}
		if err := a.svc.UpdateDeviceGroup(ctx, g, arm.IfMatch(r)); err != nil {
			return err
		}
	}
	res, err := a.groupResource(ctx, t.catalog, t.product, g)
	if err != nil {
		return err
	}
	arm.SetETag(w, g.ETag)
	return httpapi.WriteJSON(w, status, res)
}

func (a *api) patchDeviceGroup(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, false)
	if err != nil {
		return err
	}
	var body groupBody
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if err := body.apply(t.group); err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.svc.UpdateDeviceGroup(ctx, t.group, arm.IfMatch(r)); err != nil {
		return err
	}
	res, err := a.groupResource(ctx, t.catalog, t.product, t.group)
	if err != nil {
		return err
	}
	arm.SetETag(w, t.group.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, res)
}

func (a *api) deleteDeviceGroup(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, false)
	if ferry.IsCode(err, ferry.ENOTFOUND) && t.product != nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	op, err := a.svc.DeleteDeviceGroup(r.Context(), t.group.ID)
	if err != nil {
		return err
	}
	return a.srv.Accepted(w, r, op)
}

func (a *api) claimDevices(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, true)
	if err != nil {
		return err
	}
	var body struct {
		DeviceIdentifiers *[]string `json:"deviceIdentifiers"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if body.DeviceIdentifiers == nil {
		return arm.Required("deviceIdentifiers")
	}
	ids := *body.DeviceIdentifiers
	if len(ids) == 0 {
		return arm.InvalidContent("deviceIdentifiers", "At least one device identifier is required.")
	}
	if len(ids) > sphere.MaxClaimDevices {
		return arm.InvalidContent("deviceIdentifiers", "At most %d devices can be claimed at once; %d were given.", sphere.MaxClaimDevices, len(ids))
	}
	for _, id := range ids {
		if _, err := sphere.NormalizeDeviceID(id); err != nil {
			return arm.InvalidContent("deviceIdentifiers", "%s", ferry.ErrorMessage(err))
		}
	}
	cl := sphere.Claim{CatalogID: t.catalog.TenantID}
	if t.group != nil {
		cl.DeviceGroupID = t.group.ID
	}
	if err := a.authorizeMovesFrom(r.Context(), t.catalog, cl.DeviceGroupID, ids); err != nil {
		return err
	}
	op, err := a.svc.ClaimDevices(r.Context(), cl, ids)
	if err != nil {
		return err
	}
	return a.srv.Accepted(w, r, op)
}

func (a *api) countGroupDevices(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, true)
	if err != nil {
		return err
	}
	f := ferry.DeviceFilter{CatalogID: t.catalog.TenantID, Unassigned: t.group == nil}
	if t.group != nil {
		f.DeviceGroupID = t.group.ID
	}
	n, err := a.svc.CountDevices(r.Context(), f)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, countResponse{Value: n})
}

// Deployments.

func (a *api) listDeployments(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, false)
	if err != nil {
		return err
	}
	f := ferry.DeploymentFilter{DeviceGroupID: t.group.ID}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.Deployment], error) {
		f.ListOptions = o
		return a.svc.ListDeployments(r.Context(), f)
	}
	return listPaged(w, r, fetch, &ferry.Deployment{}, deploymentField, func(d *ferry.Deployment) (arm.Resource[deploymentProps], error) {
		return a.deploymentResource(r, t.catalog, t.product, t.group, d)
	}, nil)
}

func (a *api) resolveDeployment(r *http.Request) (target, *ferry.Deployment, error) {
	t, err := a.resolveGroup(r, false)
	if err != nil {
		return t, nil, err
	}
	name := r.PathValue("deploymentName")
	d, err := a.svc.GetDeploymentByName(r.Context(), t.group.ID, name)
	if err != nil {
		return t, nil, notFound(err, sphere.DeviceGroupResourceID(t.catalog, t.product, t.group).Child("deployments", name))
	}
	return t, d, nil
}

func (a *api) getDeployment(w http.ResponseWriter, r *http.Request) error {
	t, d, err := a.resolveDeployment(r)
	if err != nil {
		return err
	}
	res, err := a.deploymentResource(r, t.catalog, t.product, t.group, d)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, res)
}

type deploymentBody struct {
	Properties *struct {
		DeploymentID   string `json:"deploymentId"`
		DeployedImages []struct {
			ID         string `json:"id"`
			Properties *struct {
				ImageID string `json:"imageId"`
			} `json:"properties"`
		} `json:"deployedImages"`
	} `json:"properties"`
}

func (a *api) putDeployment(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, false)
	if err != nil {
		return err
	}
	var body deploymentBody
	if err := arm.Decode(r, &body, false); err != nil {
		return err
	}
	name := r.PathValue("deploymentName")
	d := &ferry.Deployment{DeviceGroupID: t.group.ID, Name: name}
	if strings.EqualFold(name, ferry.DefaultName) {
		d.Name = ""
	}
	if p := body.Properties; p != nil {
		if p.DeploymentID != "" {
			if !ferry.IsUUID(p.DeploymentID) {
				return arm.InvalidContent("properties.deploymentId", "The deployment ID '%s' is not a GUID.", p.DeploymentID)
			}
			d.ID = strings.ToLower(p.DeploymentID)
		}
		for i, img := range p.DeployedImages {
			id := ""
			if img.Properties != nil {
				id = img.Properties.ImageID
			}
			if id == "" && img.ID != "" {
				if rid, err := ferry.ParseResourceID(img.ID); err == nil {
					id = rid.Name()
				}
			}
			if !ferry.IsUUID(id) {
				return arm.InvalidContent(fmt.Sprintf("properties.deployedImages[%d]", i), "Each deployed image needs an image ID (properties.imageId or its resource id).")
			}
			d.ImageIDs = append(d.ImageIDs, id)
		}
	}
	if d.Name != "" {
		if _, err := a.svc.GetDeploymentByName(r.Context(), t.group.ID, d.Name); err == nil {
			return arm.Errorf(ferry.ECONFLICT, arm.CodeConflict, "The deployment '%s' exists; deployments cannot be changed. Create a new one.", d.Name)
		}
	}
	op, err := a.svc.CreateDeployment(r.Context(), d)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return arm.InvalidContent("properties.deployedImages", "%s", ferry.ErrorMessage(err))
	}
	if err != nil {
		return err
	}
	res, err := a.deploymentResource(r, t.catalog, t.product, t.group, d)
	if err != nil {
		return err
	}
	return a.srv.WriteAsync(w, r, http.StatusCreated, op, res)
}

func (a *api) deleteDeployment(w http.ResponseWriter, r *http.Request) error {
	t, d, err := a.resolveDeployment(r)
	if ferry.IsCode(err, ferry.ENOTFOUND) && t.group != nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.svc.DeleteDeployment(r.Context(), d.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// Devices.

func (a *api) listDevices(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, true)
	if err != nil {
		return err
	}
	f := ferry.DeviceFilter{CatalogID: t.catalog.TenantID, Unassigned: t.group == nil}
	if t.group != nil {
		f.DeviceGroupID = t.group.ID
	}
	return a.listDevicesWhere(w, r, t.catalog, f)
}

func (a *api) getDevice(w http.ResponseWriter, r *http.Request) error {
	t, d, err := a.resolveDevice(r)
	if err != nil {
		return err
	}
	arm.SetETag(w, d.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, deviceResource(t.catalog, t.product, t.group, d))
}

func (a *api) putDevice(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveGroup(r, true)
	if err != nil {
		return err
	}
	name := r.PathValue("deviceName")
	if err := arm.CheckName(name, deviceNamePattern); err != nil {
		return err
	}
	var body struct {
		Properties *struct {
			DeviceID string `json:"deviceId"`
		} `json:"properties"`
	}
	if err := arm.Decode(r, &body, false); err != nil {
		return err
	}
	if body.Properties != nil && body.Properties.DeviceID != "" && !strings.EqualFold(body.Properties.DeviceID, name) {
		return arm.InvalidContent("properties.deviceId", "The device ID does not match the device name.")
	}
	cl := sphere.Claim{CatalogID: t.catalog.TenantID}
	if t.group != nil {
		cl.DeviceGroupID = t.group.ID
	}
	if err := a.authorizeMovesFrom(r.Context(), t.catalog, cl.DeviceGroupID, []string{name}); err != nil {
		return err
	}
	d, created, err := a.svc.ClaimDevice(r.Context(), cl, name)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	arm.SetETag(w, d.ETag)
	return httpapi.WriteJSON(w, status, deviceResource(t.catalog, t.product, t.group, d))
}

func (a *api) patchDevice(w http.ResponseWriter, r *http.Request) error {
	t, d, err := a.resolveDevice(r)
	if err != nil {
		return err
	}
	var body struct {
		Properties *struct {
			DeviceGroupID *string `json:"deviceGroupId"`
		} `json:"properties"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if body.Properties == nil || body.Properties.DeviceGroupID == nil {
		return arm.Required("properties.deviceGroupId")
	}
	ctx := r.Context()
	gid, err := a.parseGroupRef(ctx, t.catalog, *body.Properties.DeviceGroupID)
	if err != nil {
		return err
	}
	if err := a.authorizeAt(ctx, t.catalog, gid, d.ID); err != nil {
		return err
	}
	if d, err = a.svc.MoveDevice(ctx, d.ID, gid, arm.IfMatch(r)); err != nil {
		return err
	}
	look := newLookups(a.svc)
	p, err := look.product(ctx, d.ProductID)
	if err != nil {
		return err
	}
	g, err := look.group(ctx, d.DeviceGroupID)
	if err != nil {
		return err
	}
	arm.SetETag(w, d.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, deviceResource(t.catalog, p, g, d))
}

func (a *api) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	t, d, err := a.resolveDevice(r)
	if ferry.IsCode(err, ferry.ENOTFOUND) && t.catalog != nil && (t.group != nil || t.unassigned) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	return a.svc.DeleteDevice(r.Context(), d.ID)
}

func (a *api) generateCapabilityImage(w http.ResponseWriter, r *http.Request) error {
	_, d, err := a.resolveDevice(r)
	if err != nil {
		return err
	}
	var body struct {
		Capabilities *[]string `json:"capabilities"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if body.Capabilities == nil || len(*body.Capabilities) == 0 {
		return arm.Required("capabilities")
	}
	caps := make([]string, 0, len(*body.Capabilities))
	for _, c := range *body.Capabilities {
		v, err := arm.Enum("capabilities", c, sphere.CapabilityApplicationDevelopment, sphere.CapabilityFieldServicing)
		if err != nil {
			return err
		}
		if v == "" {
			return arm.InvalidContent("capabilities", "A capability cannot be empty.")
		}
		caps = append(caps, v)
	}
	img, err := a.svc.GenerateCapabilityImage(r.Context(), d.ID, caps)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"image": base64Std(img)})
}

// actionDeviceWrite is the action that moves a device.
const actionDeviceWrite = "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/write"

// authorizeAt checks that the caller may write the device at its place in
// device group groupID ("" for the catalog level): moving a device needs
// the right where it goes as well as where it is.
func (a *api) authorizeAt(ctx context.Context, c *ferry.Catalog, groupID, deviceID string) error {
	look := newLookups(a.svc)
	g, err := look.group(ctx, groupID)
	if err != nil {
		return err
	}
	var p *ferry.Product
	if g != nil {
		if p, err = look.product(ctx, g.ProductID); err != nil {
			return err
		}
	}
	return a.srv.Authorize(ctx, actionDeviceWrite, sphere.DeviceResourceID(c, p, g, &ferry.Device{ID: strings.ToUpper(deviceID)}).String())
}

// authorizeMovesFrom checks, for claims that would move devices already
// claimed to the catalog into group groupID, that the caller may write
// each device where it is now.
func (a *api) authorizeMovesFrom(ctx context.Context, c *ferry.Catalog, groupID string, ids []string) error {
	page, err := a.svc.ListDevices(ctx, ferry.DeviceFilter{CatalogID: c.TenantID, IDs: ids, ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}})
	if err != nil {
		return err
	}
	for _, d := range page.Items {
		if d.DeviceGroupID == groupID {
			continue
		}
		if err := a.authorizeAt(ctx, c, d.DeviceGroupID, d.ID); err != nil {
			return err
		}
	}
	return nil
}
