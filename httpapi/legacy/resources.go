package legacy

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/sphere"
)

// guid reads a GUID path value. Returns EINVALID when it is not one.
func guid(r *http.Request, name, what string) (string, error) {
	v := r.PathValue(name)
	if !ferry.IsUUID(v) {
		return "", badRequest("The %s ID '%s' is not a GUID.", what, truncate(v, 40))
	}
	return strings.ToLower(v), nil
}

// inTenant turns a record of another tenant, or none, into ENOTFOUND.
func inTenant[T any](r *http.Request, what string, v T, catalogID string, err error) (T, error) {
	var zero T
	if ferry.IsCode(err, ferry.ENOTFOUND) || (err == nil && !strings.EqualFold(catalogID, tenant(r).TenantID)) {
		return zero, notFound(what)
	}
	if err != nil {
		return zero, err
	}
	return v, nil
}

func (a *api) product(r *http.Request, id string) (*ferry.Product, error) {
	p, err := a.svc.GetProduct(r.Context(), id)
	cat := ""
	if err == nil {
		cat = p.CatalogID
	}
	return inTenant(r, "product", p, cat, err)
}

func (a *api) group(r *http.Request, id string) (*ferry.DeviceGroup, error) {
	g, err := a.svc.GetDeviceGroup(r.Context(), id)
	cat := ""
	if err == nil {
		cat = g.CatalogID
	}
	return inTenant(r, "device group", g, cat, err)
}

func (a *api) device(r *http.Request, id string) (*ferry.Device, error) {
	n, err := sphere.NormalizeDeviceID(id)
	if err != nil {
		return nil, err
	}
	d, err := a.svc.GetDevice(r.Context(), n)
	cat := ""
	if err == nil {
		cat = d.CatalogID
	}
	return inTenant(r, "device", d, cat, err)
}

func writeOp(w http.ResponseWriter, status int, op *ferry.Operation) error {
	return httpapi.WriteJSON(w, status, toOperation(op))
}

// Products.

func (a *api) listProducts(w http.ResponseWriter, r *http.Request) error {
	opt, err := paging(r, "products")
	if err != nil {
		return err
	}
	p, err := a.svc.ListProducts(r.Context(), ferry.ProductFilter{CatalogID: tenant(r).TenantID, ListOptions: opt})
	if err != nil {
		return err
	}
	return writePage(w, r, "products", p, toProduct)
}

// CreateProductRequest is the body of a product create.
type CreateProductRequest struct {
	CreateDefaultGroups bool
	Description         string
	Name                string
}

func (a *api) createProduct(w http.ResponseWriter, r *http.Request) error {
	var in CreateProductRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	p := &ferry.Product{CatalogID: tenant(r).TenantID, Name: in.Name, Description: in.Description}
	op, err := a.svc.CreateProduct(r.Context(), p, in.CreateDefaultGroups)
	if err != nil {
		return err
	}
	return writeOp(w, http.StatusAccepted, op)
}

func (a *api) getProduct(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "productId", "product")
	if err != nil {
		return err
	}
	p, err := a.product(r, id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, toProduct(p))
}

func (a *api) deleteProduct(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "productId", "product")
	if err != nil {
		return err
	}
	if _, err := a.product(r, id); err != nil {
		return err
	}
	op, err := a.svc.DeleteProduct(r.Context(), id)
	if err != nil {
		return err
	}
	return writeOp(w, http.StatusOK, op)
}

func (a *api) createDefaultGroups(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "productId", "product")
	if err != nil {
		return err
	}
	if _, err := a.product(r, id); err != nil {
		return err
	}
	gs, err := a.svc.GenerateDefaultDeviceGroups(r.Context(), id)
	if err != nil {
		return err
	}
	return a.writeGroups(w, r, ferry.Page[*ferry.DeviceGroup]{Items: gs}, "devicegroups")
}

// Device groups.

// writeGroups writes device groups with their current deployments.
func (a *api) writeGroups(w http.ResponseWriter, r *http.Request, p ferry.Page[*ferry.DeviceGroup], list string) error {
	cur := map[string]*ferry.Deployment{}
	for _, g := range p.Items {
		d, err := a.current(r.Context(), g.ID)
		if err != nil {
			return err
		}
		cur[g.ID] = d
	}
	return writePage(w, r, list, p, func(g *ferry.DeviceGroup) DeviceGroup { return toDeviceGroup(g, cur[g.ID]) })
}

// current returns a group's current deployment, or nil.
func (a *api) current(ctx context.Context, groupID string) (*ferry.Deployment, error) {
	d, err := a.svc.GetDeploymentByName(ctx, groupID, ferry.DefaultName)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, nil
	}
	return d, err
}

func (a *api) listDeviceGroups(w http.ResponseWriter, r *http.Request) error {
	opt, err := paging(r, "devicegroups")
	if err != nil {
		return err
	}
	p, err := a.svc.ListDeviceGroups(r.Context(), ferry.DeviceGroupFilter{CatalogID: tenant(r).TenantID, ListOptions: opt})
	if err != nil {
		return err
	}
	return a.writeGroups(w, r, p, "devicegroups")
}

// CreateDeviceGroupRequest is the DeviceGroupV2CreateRequest.
type CreateDeviceGroupRequest struct {
	AllowCrashDumpsCollection *bool
	Description               string
	Name                      string
	OsFeedType                *int
	ProductId                 string
	UpdatePolicy              *int
}

// enumOf returns the value of an integer enum code, the first value when
// code is nil, and EINVALID for an unknown code.
func enumOf[T any](field string, codes []T, code *int) (T, error) {
	if code == nil {
		return codes[0], nil
	}
	if *code < 0 || *code >= len(codes) {
		var zero T
		return zero, badRequest("The %s %d is not valid: it must be an integer from 0 to %d.", field, *code, len(codes)-1)
	}
	return codes[*code], nil
}

func (a *api) createDeviceGroup(w http.ResponseWriter, r *http.Request) error {
	var in CreateDeviceGroupRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	feed, err := enumOf("OsFeedType", osFeedCodes, in.OsFeedType)
	if err != nil {
		return err
	}
	policy, err := enumOf("UpdatePolicy", updatePolicyCodes, in.UpdatePolicy)
	if err != nil {
		return err
	}
	if !ferry.IsUUID(in.ProductId) {
		return badRequest("The ProductId is required and must be a GUID.")
	}
	p, err := a.product(r, strings.ToLower(in.ProductId))
	if err != nil {
		return err
	}
	g := &ferry.DeviceGroup{ProductID: p.ID, Name: in.Name, Description: in.Description, OSFeedType: feed, UpdatePolicy: policy, AllowCrashDumps: true}
	if in.AllowCrashDumpsCollection != nil {
		g.AllowCrashDumps = *in.AllowCrashDumpsCollection
	}
	if err := a.svc.CreateDeviceGroup(r.Context(), g); err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, toDeviceGroup(g, nil))
}

func (a *api) getDeviceGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "deviceGroupId", "device group")
	if err != nil {
		return err
	}
	g, err := a.group(r, id)
	if err != nil {
		return err
	}
	cur, err := a.current(r.Context(), g.ID)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, toDeviceGroup(g, cur))
}

func (a *api) deleteDeviceGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "deviceGroupId", "device group")
	if err != nil {
		return err
	}
	if _, err := a.group(r, id); err != nil {
		return err
	}
	op, err := a.svc.DeleteDeviceGroup(r.Context(), id)
	if err != nil {
		return err
	}
	return writeOp(w, http.StatusOK, op)
}

// Deployments.

func (a *api) listDeployments(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "deviceGroupId", "device group")
	if err != nil {
		return err
	}
	if _, err := a.group(r, id); err != nil {
		return err
	}
	opt, err := paging(r, "deployments/"+id)
	if err != nil {
		return err
	}
	p, err := a.svc.ListDeployments(r.Context(), ferry.DeploymentFilter{DeviceGroupID: id, ListOptions: opt})
	if err != nil {
		return err
	}
	return writePage(w, r, "deployments/"+id, p, toDeployment)
}

// createDeployment deploys the images whose IDs the body lists (a bare
// JSON array) to the device group.
func (a *api) createDeployment(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "deviceGroupId", "device group")
	if err != nil {
		return err
	}
	if _, err := a.group(r, id); err != nil {
		return err
	}
	var imgs []string
	if err := decode(r, &imgs); err != nil {
		return err
	}
	if len(imgs) == 0 {
		return badRequest("At least one image ID is required.")
	}
	for i, img := range imgs {
		if !ferry.IsUUID(img) {
			return badRequest("The image ID '%s' is not a GUID.", truncate(img, 40))
		}
		imgs[i] = strings.ToLower(img)
	}
	op, err := a.svc.CreateDeployment(r.Context(), &ferry.Deployment{DeviceGroupID: id, ImageIDs: imgs})
	if err != nil {
		return err
	}
	return writeOp(w, http.StatusAccepted, op)
}

// Devices.

func (a *api) listDevices(w http.ResponseWriter, r *http.Request) error {
	opt, err := paging(r, "devices")
	if err != nil {
		return err
	}
	p, err := a.svc.ListDevices(r.Context(), ferry.DeviceFilter{CatalogID: tenant(r).TenantID, ListOptions: opt})
	if err != nil {
		return err
	}
	return writePage(w, r, "devices", p, toDevice)
}

func (a *api) getDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := a.device(r, r.PathValue("deviceId"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, toDevice(d))
}

// bulkClaim claims at most 1,000 devices (a bare JSON array of IDs) to
// the tenant, all or none.
func (a *api) bulkClaim(w http.ResponseWriter, r *http.Request) error {
	var ids []string
	if err := decode(r, &ids); err != nil {
		return err
	}
	op, err := a.svc.ClaimDevices(r.Context(), sphere.Claim{CatalogID: tenant(r).TenantID}, ids)
	if err != nil {
		return err
	}
	return writeOp(w, http.StatusAccepted, op)
}

// claimDevice claims one device to the tenant. Claiming a device the
// tenant already holds changes nothing; one another tenant holds is a
// conflict (claiming is irreversible).
func (a *api) claimDevice(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	op, err := a.svc.ClaimDevices(ctx, sphere.Claim{CatalogID: tenant(r).TenantID}, []string{r.PathValue("deviceId")})
	if err != nil {
		return err
	}
	// One device: the operation is a DeviceClaim, as PAPI reports it.
	op.Type = ferry.OpDeviceClaim
	if err := a.store.UpdateOperation(ctx, op); err != nil {
		return err
	}
	return writeOp(w, http.StatusAccepted, op)
}

// moveDevice moves a device to another device group of the tenant; the
// body is the group's GUID as a JSON string.
func (a *api) moveDevice(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	d, err := a.device(r, r.PathValue("deviceId"))
	if err != nil {
		return err
	}
	var gid string
	if err := decode(r, &gid); err != nil {
		return err
	}
	if !ferry.IsUUID(gid) {
		return badRequest("The device group ID '%s' is not a GUID.", truncate(gid, 40))
	}
	if _, err := a.group(r, strings.ToLower(gid)); err != nil {
		return err
	}
	if _, err := a.svc.MoveDevice(ctx, d.ID, strings.ToLower(gid), ""); err != nil {
		return err
	}
	op, err := recordOp(ctx, a.svc, a.store, ferry.OpDeviceUpdateDeviceGroup, d.CatalogID, r.URL.Path)
	if err != nil {
		return err
	}
	return writeOp(w, http.StatusOK, op)
}

// Images.

// uploadImage stores a raw image package (application/octet-stream).
func (a *api) uploadImage(w http.ResponseWriter, r *http.Request) error {
	content, err := io.ReadAll(io.LimitReader(r.Body, sphere.MaxImageBytes+1))
	if err != nil {
		return badRequest("The image could not be read.")
	}
	_, op, err := a.svc.UploadImage(r.Context(), sphere.ImageUpload{CatalogID: tenant(r).TenantID, Content: content})
	if err != nil {
		return err
	}
	return writeOp(w, http.StatusOK, op)
}

func (a *api) listImages(w http.ResponseWriter, r *http.Request) error {
	opt, err := paging(r, "images")
	if err != nil {
		return err
	}
	p, err := a.svc.ListImages(r.Context(), ferry.ImageFilter{CatalogID: tenant(r).TenantID, ListOptions: opt})
	if err != nil {
		return err
	}
	return writePage(w, r, "images", p, toImage)
}

func (a *api) getImageMetadata(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "imageId", "image")
	if err != nil {
		return err
	}
	img, err := a.svc.GetImage(r.Context(), id)
	cat := ""
	if err == nil {
		cat = img.CatalogID
	}
	if img, err = inTenant(r, "image", img, cat, err); err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, toImage(img))
}

// Device capability.

// CapabilityCodes are the PAPI capability integers Ferry accepts. The
// reference does not give PAPI's codes (sphere-surfaces.md §2.2: NOT
// FOUND); Ferry numbers the two capabilities ARM names.
var CapabilityCodes = map[int]string{
	1: sphere.CapabilityApplicationDevelopment,
	2: sphere.CapabilityFieldServicing,
}

func (a *api) deviceCapabilityImage(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Capabilities []int
		DeviceId     string
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Capabilities) == 0 {
		return badRequest("At least one capability is required.")
	}
	caps := make([]string, 0, len(in.Capabilities))
	for _, c := range in.Capabilities {
		name, ok := CapabilityCodes[c]
		if !ok {
			return badRequest("The capability %d is not valid: use 1 (ApplicationDevelopment) or 2 (FieldServicing).", c)
		}
		caps = append(caps, name)
	}
	d, err := a.device(r, in.DeviceId)
	if err != nil {
		return err
	}
	img, err := a.svc.GenerateCapabilityImage(r.Context(), d.ID, caps)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"SignedDeviceCapabilityImageBytes": base64.StdEncoding.EncodeToString(img)})
}

// Device insights and operations.

func (a *api) listDeviceInsights(w http.ResponseWriter, r *http.Request) error {
	opt, err := paging(r, "insights")
	if err != nil {
		return err
	}
	p, err := a.svc.ListDeviceInsights(r.Context(), ferry.DeviceInsightFilter{CatalogID: tenant(r).TenantID, ListOptions: opt})
	if err != nil {
		return err
	}
	return writePage(w, r, "insights", p, toInsight)
}

func (a *api) getOperation(w http.ResponseWriter, r *http.Request) error {
	id, err := guid(r, "operationId", "operation")
	if err != nil {
		return err
	}
	op, err := a.svc.GetOperation(r.Context(), id)
	cat := ""
	if err == nil {
		cat = op.CatalogID
	}
	if op, err = inTenant(r, "operation", op, cat, err); err != nil {
		return err
	}
	return writeOp(w, http.StatusOK, op)
}
