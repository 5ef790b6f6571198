package integrated

import (
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/sphere"
)

func (a *api) listCatalogs(w http.ResponseWriter, r *http.Request) error {
	f := ferry.CatalogFilter{SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName")}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.Catalog], error) {
		f.ListOptions = o
		return a.svc.ListCatalogs(r.Context(), f)
	}
	return listPaged(w, r, fetch, &ferry.Catalog{}, catalogField,
		func(c *ferry.Catalog) (arm.Resource[catalogProps], error) { return catalogResource(c), nil }, nil)
}

func (a *api) getCatalog(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	arm.SetETag(w, c.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, catalogResource(c))
}

type catalogBody struct {
	Location   *string           `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *catalogProps     `json:"properties"`
}

func (a *api) putCatalog(w http.ResponseWriter, r *http.Request) error {
	id := catalogID(r)
	if err := arm.CheckName(id.Name(), catalogNamePattern); err != nil {
		return err
	}
	var body catalogBody
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if body.Location == nil || strings.TrimSpace(*body.Location) == "" {
		return arm.Required("location")
	}
	ctx := r.Context()
	if _, err := a.svc.Store().GetResourceGroup(ctx, id.SubscriptionID, id.ResourceGroup); err != nil {
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return arm.Errorf(ferry.ENOTFOUND, "ResourceGroupNotFound", "Resource group '%s' could not be found.", id.ResourceGroup)
		}
		return err
	}
	c, err := a.svc.GetCatalogByName(ctx, id.SubscriptionID, id.ResourceGroup, id.Name())
	if err == nil || ferry.IsCode(err, ferry.ENOTFOUND) {
		if cerr := arm.CheckPutConditions(r, err == nil); cerr != nil {
			return cerr
		}
	}
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		c = &ferry.Catalog{SubscriptionID: id.SubscriptionID, ResourceGroup: id.ResourceGroup, Name: id.Name(),
			Location: *body.Location, Tags: body.Tags}
		if err := a.svc.CreateCatalog(ctx, c); err != nil {
			return err
		}
		arm.SetCatalog(ctx, c.TenantID)
		arm.SetETag(w, c.ETag)
		return httpapi.WriteJSON(w, http.StatusCreated, catalogResource(c))
	case err != nil:
		return err
	}
	arm.SetCatalog(ctx, c.TenantID)
	if !strings.EqualFold(c.Location, *body.Location) {
		return arm.Errorf(ferry.EINVALID, "LocationNotAvailableForResourceType", "The catalog's location is '%s' and cannot be changed to '%s'.", c.Location, *body.Location).WithTarget("location")
	}
	c.Tags = body.Tags
	if err := a.svc.UpdateCatalog(ctx, c, arm.IfMatch(r)); err != nil {
		return err
	}
	arm.SetETag(w, c.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, catalogResource(c))
}

func (a *api) patchCatalog(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	var body struct {
		Tags map[string]string `json:"tags"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if body.Tags != nil {
		c.Tags = body.Tags
	}
	if err := a.svc.UpdateCatalog(r.Context(), c, arm.IfMatch(r)); err != nil {
		return err
	}
	arm.SetETag(w, c.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, catalogResource(c))
}

func (a *api) deleteCatalog(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.svc.DeleteCatalog(r.Context(), c.TenantID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *api) countCatalogDevices(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	n, err := a.svc.CountDevices(r.Context(), ferry.DeviceFilter{CatalogID: c.TenantID})
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, countResponse{Value: n})
}

func (a *api) listCatalogDeployments(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	look := newLookups(a.svc)
	f := ferry.DeploymentFilter{CatalogID: c.TenantID}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.Deployment], error) {
		f.ListOptions = o
		return a.svc.ListDeployments(ctx, f)
	}
	return listPaged(w, r, fetch, &ferry.Deployment{}, deploymentField, func(d *ferry.Deployment) (arm.Resource[deploymentProps], error) {
		g, err := look.group(ctx, d.DeviceGroupID)
		if err != nil {
			return arm.Resource[deploymentProps]{}, err
		}
		p, err := look.product(ctx, g.ProductID)
		if err != nil {
			return arm.Resource[deploymentProps]{}, err
		}
		return a.deploymentResource(r, c, p, g, d)
	}, nil)
}

func (a *api) listCatalogDeviceGroups(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	var body struct {
		DeviceGroupName string `json:"deviceGroupName"`
	}
	name := r.URL.Query().Get("deviceGroupName")
	if r.Method == http.MethodPost {
		if err := arm.Decode(r, &body, false); err != nil {
			return err
		}
		name = body.DeviceGroupName
	}
	var extra map[string][]string
	if name != "" {
		extra = map[string][]string{"deviceGroupName": {name}}
	}
	ctx := r.Context()
	look := newLookups(a.svc)
	f := ferry.DeviceGroupFilter{CatalogID: c.TenantID, Name: name}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceGroup], error) {
		f.ListOptions = o
		return a.svc.ListDeviceGroups(ctx, f)
	}
	return listPaged(w, r, fetch, &ferry.DeviceGroup{}, groupField, func(g *ferry.DeviceGroup) (arm.Resource[deviceGroupProps], error) {
		p, err := look.product(ctx, g.ProductID)
		if err != nil {
			return arm.Resource[deviceGroupProps]{}, err
		}
		return a.groupResource(ctx, c, p, g)
	}, extra)
}

func (a *api) listDeviceInsights(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	f := ferry.DeviceInsightFilter{CatalogID: c.TenantID}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceInsight], error) {
		f.ListOptions = o
		return a.svc.ListDeviceInsights(r.Context(), f)
	}
	return listPaged(w, r, fetch, &ferry.DeviceInsight{}, insightField, func(i *ferry.DeviceInsight) (deviceInsight, error) {
		return deviceInsight{DeviceID: i.DeviceID, Description: i.Description, StartTimestampUTC: i.Start.UTC(), EndTimestampUTC: i.End.UTC(),
			EventCategory: i.EventCategory, EventClass: i.EventClass, EventType: i.EventType, EventCount: i.EventCount}, nil
	}, nil)
}

func (a *api) listCatalogDevices(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	return a.listDevicesWhere(w, r, c, ferry.DeviceFilter{CatalogID: c.TenantID})
}

func (a *api) listDevicesWhere(w http.ResponseWriter, r *http.Request, c *ferry.Catalog, f ferry.DeviceFilter) error {
	ctx := r.Context()
	look := newLookups(a.svc)
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.Device], error) {
		f.ListOptions = o
		return a.svc.ListDevices(ctx, f)
	}
	return listPaged(w, r, fetch, &ferry.Device{}, deviceField, func(d *ferry.Device) (arm.Resource[deviceProps], error) {
		p, err := look.product(ctx, d.ProductID)
		if err != nil {
			return arm.Resource[deviceProps]{}, err
		}
		g, err := look.group(ctx, d.DeviceGroupID)
		if err != nil {
			return arm.Resource[deviceProps]{}, err
		}
		return deviceResource(c, p, g, d), nil
	}, nil)
}

type imageBody struct {
	Properties *struct {
		Image                *string `json:"image"`
		ImageID              string  `json:"imageId"`
		RegionalDataBoundary string  `json:"regionalDataBoundary"`
	} `json:"properties"`
}

// imageUpload checks an image body and returns the upload it asks for.
func imageUpload(r *http.Request, c *ferry.Catalog) (sphere.ImageUpload, error) {
	var body imageBody
	if err := arm.Decode(r, &body, true); err != nil {
		return sphere.ImageUpload{}, err
	}
	if body.Properties == nil {
		return sphere.ImageUpload{}, arm.Required("properties")
	}
	if body.Properties.Image == nil || *body.Properties.Image == "" {
		return sphere.ImageUpload{}, arm.Required("properties.image")
	}
	content, err := decodeBase64(*body.Properties.Image)
	if err != nil {
		return sphere.ImageUpload{}, arm.InvalidContent("properties.image", "The image must be a base64 string.")
	}
	rdb, err := arm.Enum("properties.regionalDataBoundary", body.Properties.RegionalDataBoundary, "None", "EU")
	if err != nil {
		return sphere.ImageUpload{}, err
	}
	id := body.Properties.ImageID
	if id != "" && !ferry.IsUUID(id) {
		return sphere.ImageUpload{}, arm.InvalidContent("properties.imageId", "The image ID '%s' is not a GUID.", id)
	}
	return sphere.ImageUpload{ID: id, CatalogID: c.TenantID, Content: content, RegionalDataBoundary: ferry.RegionalDataBoundary(rdb)}, nil
}

func (a *api) uploadImage(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	in, err := imageUpload(r, c)
	if err != nil {
		return err
	}
	_, op, err := a.svc.UploadImage(r.Context(), in)
	if err != nil {
		return err
	}
	return a.srv.Accepted(w, r, op)
}
