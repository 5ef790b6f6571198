package armdevices

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/arm"
)

var (
	hubName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{1,48}[a-zA-Z0-9]$`)
	dpsName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{1,62}[a-zA-Z0-9]$`)
)

type sku struct {
	Name     string `json:"name"`
	Tier     string `json:"tier,omitempty"`
	Capacity int    `json:"capacity"`
}

var defaultSKU = sku{Name: "S1", Tier: "Standard", Capacity: 1}

type policyJSON struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey,omitempty"`
	SecondaryKey string `json:"secondaryKey,omitempty"`
	Rights       string `json:"rights"`
}

type linkedHubJSON struct {
	Name                  string `json:"name,omitempty"`
	ConnectionString      string `json:"connectionString"`
	Location              string `json:"location,omitempty"`
	AllocationWeight      *int   `json:"allocationWeight,omitempty"`
	ApplyAllocationPolicy *bool  `json:"applyAllocationPolicy,omitempty"`
}

type props struct {
	HostName                   string          `json:"hostName,omitempty"`
	AuthorizationPolicies      []policyJSON    `json:"authorizationPolicies,omitempty"`
	State                      string          `json:"state,omitempty"`
	ProvisioningState          string          `json:"provisioningState,omitempty"`
	IDScope                    string          `json:"idScope,omitempty"`
	ServiceOperationsHostName  string          `json:"serviceOperationsHostName,omitempty"`
	DeviceProvisioningHostName string          `json:"deviceProvisioningHostName,omitempty"`
	IotHubs                    []linkedHubJSON `json:"iotHubs,omitempty"`
	AllocationPolicy           string          `json:"allocationPolicy,omitempty"`
}

type resourceJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	ETag       string            `json:"etag,omitempty"`
	SKU        sku               `json:"sku"`
	SystemData *arm.SystemData   `json:"systemData,omitempty"`
	Properties props             `json:"properties"`
}

type body struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SKU        *sku              `json:"sku"`
	Properties props             `json:"properties"`
}

func rgID(sub, rg string) string { return ferry.ResourceGroupScope(sub, rg) }

func (h *handler) hubJSON(x *ferry.Hub) resourceJSON {
	return resourceJSON{
		ID: x.ResourceID().String(), Name: x.Name, Type: ferry.TypeIotHub, Location: x.Location, Tags: x.Tags,
		ETag: x.ETag, SKU: defaultSKU, SystemData: arm.NewSystemData(x.SystemData),
		Properties: props{HostName: x.HostName, State: "Active", ProvisioningState: string(ferry.ProvisioningSucceeded)},
	}
}

var allocationNames = map[ferry.AllocationPolicy]string{
	ferry.AllocationHashed: "Hashed", ferry.AllocationGeoLatency: "GeoLatency", ferry.AllocationStatic: "Static",
}

func (h *handler) dpsJSON(x *ferry.ProvisioningService) resourceJSON {
	dev := h.cfg.DeviceProvisioningHost
	if dev == "" {
		dev = x.HostName
	}
	j := resourceJSON{
		ID: rgID(x.SubscriptionID, x.ResourceGroup) + "/providers/" + ferry.TypeProvisioningService + "/" + x.Name, Name: x.Name,
		Type: ferry.TypeProvisioningService, Location: x.Location, Tags: x.Tags, ETag: x.ETag, SKU: defaultSKU,
		SystemData: arm.NewSystemData(x.SystemData),
		Properties: props{State: "Active", ProvisioningState: string(ferry.ProvisioningSucceeded), IDScope: x.IDScope,
			ServiceOperationsHostName: x.HostName, DeviceProvisioningHostName: dev,
			AllocationPolicy: allocationNames[x.AllocationPolicy], IotHubs: []linkedHubJSON{}},
	}
	for _, l := range x.LinkedHubs {
		w, a := l.AllocationWeight, l.ApplyAllocationPolicy
		// Keys never leave through GET: the connection string is masked.
		j.Properties.IotHubs = append(j.Properties.IotHubs, linkedHubJSON{Name: l.HostName, Location: x.Location,
			ConnectionString: "HostName=" + l.HostName + ";SharedAccessKeyName=iothubowner;SharedAccessKey=****",
			AllocationWeight: &w, ApplyAllocationPolicy: &a})
	}
	return j
}

func notFound(t target) error {
	return arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound,
		"The Resource 'Microsoft.Devices/%s/%s' under resource group '%s' was not found.", t.kind, t.name, t.rg)
}

// inPlace reports whether a resource lives where the path says.
func inPlace(t target, sub, rg string) bool {
	return strings.EqualFold(sub, t.sub) && strings.EqualFold(rg, t.rg)
}

func (h *handler) hub(ctx context.Context, t target) (*ferry.Hub, error) {
	x, err := h.cfg.Store.GetHubByName(ctx, t.name)
	if ferry.IsCode(err, ferry.ENOTFOUND) || (err == nil && !inPlace(t, x.SubscriptionID, x.ResourceGroup)) {
		return nil, notFound(t)
	}
	if err != nil {
		return nil, fmt.Errorf("get hub: %w", err)
	}
	return x, nil
}

func (h *handler) service(ctx context.Context, t target) (*ferry.ProvisioningService, error) {
	x, err := h.cfg.Store.GetProvisioningServiceByName(ctx, t.name)
	if ferry.IsCode(err, ferry.ENOTFOUND) || (err == nil && !inPlace(t, x.SubscriptionID, x.ResourceGroup)) {
		return nil, notFound(t)
	}
	if err != nil {
		return nil, fmt.Errorf("get provisioning service: %w", err)
	}
	return x, nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, t target) error {
	if t.kind == "IotHubs" {
		x, err := h.hub(r.Context(), t)
		if err != nil {
			return err
		}
		arm.SetETag(w, x.ETag)
		return writeJSON(w, http.StatusOK, h.hubJSON(x))
	}
	x, err := h.service(r.Context(), t)
	if err != nil {
		return err
	}
	arm.SetETag(w, x.ETag)
	return writeJSON(w, http.StatusOK, h.dpsJSON(x))
}

// list lists the resources of a subscription or resource group that the
// caller may read.
func (h *handler) list(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	caller := ferry.CallerFromContext(ctx)
	pg, err := arm.ParsePaging(r)
	if err != nil {
		return err
	}
	var keepErr error
	may := func(action, id string) bool {
		err := h.cfg.Authorizer.Authorize(ctx, caller, action, id)
		if c := ferry.ErrorCode(err); c != "" && c != ferry.EFORBIDDEN {
			keepErr = err
		}
		return err == nil
	}
	var out arm.List[resourceJSON]
	if t.kind == "IotHubs" {
		items, next, err := arm.Paginate(r, pg, func(o ferry.ListOptions) (ferry.Page[*ferry.Hub], error) {
			return h.cfg.Store.ListHubs(ctx, ferry.HubFilter{SubscriptionID: t.sub, ResourceGroup: t.rg, ListOptions: o})
		}, func(x *ferry.Hub) bool { return may(ActionHubRead, x.ResourceID().String()) })
		if err == nil {
			err = keepErr
		}
		if err != nil {
			return fmt.Errorf("list hubs: %w", err)
		}
		out = arm.List[resourceJSON]{Value: []resourceJSON{}, NextLink: next}
		for _, x := range items {
			out.Value = append(out.Value, h.hubJSON(x))
		}
		return writeJSON(w, http.StatusOK, out)
	}
	items, next, err := arm.Paginate(r, pg, func(o ferry.ListOptions) (ferry.Page[*ferry.ProvisioningService], error) {
		return h.cfg.Store.ListProvisioningServices(ctx, ferry.ProvisioningServiceFilter{SubscriptionID: t.sub, ResourceGroup: t.rg, ListOptions: o})
	}, func(x *ferry.ProvisioningService) bool { return may(ActionDPSRead, h.dpsJSON(x).ID) })
	if err == nil {
		err = keepErr
	}
	if err != nil {
		return fmt.Errorf("list provisioning services: %w", err)
	}
	out = arm.List[resourceJSON]{Value: []resourceJSON{}, NextLink: next}
	for _, x := range items {
		out.Value = append(out.Value, h.dpsJSON(x))
	}
	return writeJSON(w, http.StatusOK, out)
}

func rightsString(rs []ferry.AccessRight) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func keysJSON(ps []ferry.AccessPolicy) arm.List[policyJSON] {
	out := arm.List[policyJSON]{Value: []policyJSON{}}
	for _, p := range ps {
		out.Value = append(out.Value, policyJSON{KeyName: p.KeyName, PrimaryKey: p.PrimaryKey, SecondaryKey: p.SecondaryKey, Rights: rightsString(p.Rights)})
	}
	return out
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request, t target) error {
	if t.kind == "IotHubs" {
		x, err := h.hub(r.Context(), t)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, keysJSON(x.Policies))
	}
	x, err := h.service(r.Context(), t)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, keysJSON(x.Policies))
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	if t.kind == "IotHubs" {
		x, err := h.hub(ctx, t)
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if err != nil {
			return err
		}
		if err := h.cfg.Store.DeleteHub(ctx, x.ID); err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
			return fmt.Errorf("delete hub: %w", err)
		}
		if h.cfg.Hubs != nil {
			if err := h.cfg.Hubs.HubChanged(ctx, x.ID); err != nil {
				return fmt.Errorf("delete hub: notify device plane: %w", err)
			}
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	x, err := h.service(ctx, t)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteProvisioningService(ctx, x.ID); err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return fmt.Errorf("delete provisioning service: %w", err)
	}
	if h.cfg.Provisioning != nil {
		if err := h.cfg.Provisioning.ServiceChanged(ctx, x.ID); err != nil {
			return fmt.Errorf("delete provisioning service: notify device plane: %w", err)
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// readBody decodes and checks what every PUT needs: the name, the resource
// group and a location.
func (h *handler) readBody(r *http.Request, t target, pattern *regexp.Regexp) (*body, error) {
	if err := arm.CheckName(t.name, pattern); err != nil {
		return nil, err
	}
	var b body
	if err := arm.Decode(r, &b, true); err != nil {
		return nil, err
	}
	if strings.TrimSpace(b.Location) == "" {
		return nil, arm.Required("location")
	}
	if _, err := h.cfg.Store.GetResourceGroup(r.Context(), t.sub, t.rg); ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, arm.Errorf(ferry.ENOTFOUND, "ResourceGroupNotFound", "Resource group '%s' could not be found.", t.rg)
	} else if err != nil {
		return nil, fmt.Errorf("get resource group: %w", err)
	}
	return &b, nil
}

// policies turns requested authorization policies into access policies,
// generating missing keys. Returns InvalidRequestContent for unknown rights.
func policies(in []policyJSON, allowed []ferry.AccessRight, keyBytes int) ([]ferry.AccessPolicy, error) {
	var out []ferry.AccessPolicy
	seen := map[string]bool{}
	for _, p := range in {
		if p.KeyName == "" || seen[strings.ToLower(p.KeyName)] {
			return nil, arm.InvalidContent("properties.authorizationPolicies", "Every authorization policy needs a unique keyName.")
		}
		seen[strings.ToLower(p.KeyName)] = true
		ap := ferry.AccessPolicy{KeyName: p.KeyName, PrimaryKey: p.PrimaryKey, SecondaryKey: p.SecondaryKey}
		for _, r := range strings.Split(p.Rights, ",") {
			r = strings.TrimSpace(r)
			ok := false
			for _, a := range allowed {
				if strings.EqualFold(r, string(a)) {
					ap.Rights, ok = append(ap.Rights, a), true
				}
			}
			if !ok {
				return nil, arm.InvalidContent("properties.authorizationPolicies", "The right '%s' of policy '%s' is not valid.", r, p.KeyName)
			}
		}
		if ap.PrimaryKey == "" {
			ap.PrimaryKey = ferry.NewKey(keyBytes)
		}
		if ap.SecondaryKey == "" {
			ap.SecondaryKey = ferry.NewKey(keyBytes)
		}
		out = append(out, ap)
	}
	return out, nil
}

var hubRights = []ferry.AccessRight{ferry.RightRegistryRead, ferry.RightRegistryWrite, ferry.RightServiceConnect, ferry.RightDeviceConnect}

var dpsRights = []ferry.AccessRight{ferry.RightServiceConfig, ferry.RightDeviceConnect, ferry.RightEnrollmentRead,
	ferry.RightEnrollmentWrite, ferry.RightRegistrationStatusRead, ferry.RightRegistrationStatusWrite}

func (h *handler) putHub(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	b, err := h.readBody(r, t, hubName)
	if err != nil {
		return err
	}
	pol, err := policies(b.Properties.AuthorizationPolicies, hubRights, 32)
	if err != nil {
		return err
	}
	caller := ferry.CallerFromContext(ctx)
	now := h.cfg.Now().UTC()
	x, err := h.cfg.Store.GetHubByName(ctx, t.name)
	status := http.StatusOK
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		status = http.StatusCreated
		x = &ferry.Hub{ID: ferry.NewUUID(), Name: t.name, SubscriptionID: t.sub, ResourceGroup: t.rg,
			HostName: strings.ToLower(t.name) + "." + h.cfg.HubDomain, Policies: ferry.DefaultHubPolicies(), CreatedAt: now}
	case err != nil:
		return fmt.Errorf("put hub: %w", err)
	case !inPlace(t, x.SubscriptionID, x.ResourceGroup):
		return arm.Errorf(ferry.ECONFLICT, "IotHubNameNotAvailable", "The name '%s' of the IoT hub is already taken.", t.name)
	}
	x.Location, x.Tags = b.Location, b.Tags
	if b.Properties.HostName != "" {
		x.HostName = b.Properties.HostName
	}
	if pol != nil {
		x.Policies = pol
	}
	x.SystemData.Touch(principal(caller), now)
	if status == http.StatusCreated {
		err = h.cfg.Store.CreateHub(ctx, x)
	} else {
		err = h.cfg.Store.UpdateHub(ctx, x, arm.IfMatch(r))
	}
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return arm.Errorf(ferry.ECONFLICT, "IotHubNameNotAvailable", "The name '%s' or the host name '%s' of the IoT hub is already taken.", t.name, x.HostName)
	}
	if err != nil {
		return fmt.Errorf("put hub: %w", err)
	}
	if h.cfg.Hubs != nil {
		if err := h.cfg.Hubs.HubChanged(ctx, x.ID); err != nil {
			return fmt.Errorf("put hub: notify device plane: %w", err)
		}
	}
	arm.SetETag(w, x.ETag)
	return writeJSON(w, status, h.hubJSON(x))
}

func principal(c *ferry.Caller) *ferry.Principal {
	if c == nil {
		return nil
	}
	return c.Principal
}

// NewIDScope returns a fresh ID scope in Azure's form: "0ne" and eight
// upper-case hex digits.
func NewIDScope() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "0ne" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// linkedHubs resolves the requested iotHubs: each connection string must
// name a hub of this deployment and hold a valid key of one of its policies.
func (h *handler) linkedHubs(ctx context.Context, in []linkedHubJSON) ([]ferry.LinkedHub, error) {
	var out []ferry.LinkedHub
	for _, l := range in {
		kv := map[string]string{}
		for _, part := range strings.Split(l.ConnectionString, ";") {
			k, v, _ := strings.Cut(part, "=")
			kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		bad := arm.InvalidContent("properties.iotHubs", "The connection string of linked hub '%s' is not valid for any IoT hub of this deployment.", kv["hostname"])
		hub, err := h.cfg.Store.GetHubByHost(ctx, kv["hostname"])
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return nil, bad
		}
		if err != nil {
			return nil, fmt.Errorf("link hub: %w", err)
		}
		p := hub.Policy(kv["sharedaccesskeyname"])
		if p == nil || kv["sharedaccesskey"] == "" || (kv["sharedaccesskey"] != p.PrimaryKey && kv["sharedaccesskey"] != p.SecondaryKey) {
			return nil, bad
		}
		lh := ferry.LinkedHub{HubID: hub.ID, HostName: hub.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true}
		if l.AllocationWeight != nil {
			lh.AllocationWeight = *l.AllocationWeight
		}
		if l.ApplyAllocationPolicy != nil {
			lh.ApplyAllocationPolicy = *l.ApplyAllocationPolicy
		}
		out = append(out, lh)
	}
	return out, nil
}

func (h *handler) putDPS(w http.ResponseWriter, r *http.Request, t target) error {
	ctx := r.Context()
	b, err := h.readBody(r, t, dpsName)
	if err != nil {
		return err
	}
	pol, err := policies(b.Properties.AuthorizationPolicies, dpsRights, 32)
	if err != nil {
		return err
	}
	alloc, err := arm.Enum("properties.allocationPolicy", b.Properties.AllocationPolicy, "Hashed", "GeoLatency", "Static")
	if err != nil {
		return err
	}
	caller := ferry.CallerFromContext(ctx)
	now := h.cfg.Now().UTC()
	x, err := h.cfg.Store.GetProvisioningServiceByName(ctx, t.name)
	status := http.StatusOK
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		status = http.StatusCreated
		x = &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: t.name, SubscriptionID: t.sub, ResourceGroup: t.rg,
			IDScope: NewIDScope(), HostName: strings.ToLower(t.name) + "." + h.cfg.DPSDomain,
			AllocationPolicy: ferry.AllocationHashed, Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: now}
	case err != nil:
		return fmt.Errorf("put provisioning service: %w", err)
	case !inPlace(t, x.SubscriptionID, x.ResourceGroup):
		return arm.Errorf(ferry.ECONFLICT, "ProvisioningServiceNameNotAvailable", "The name '%s' of the provisioning service is already taken.", t.name)
	}
	links, err := h.linkedHubs(ctx, b.Properties.IotHubs)
	if err != nil {
		return err
	}
	x.Location, x.Tags, x.LinkedHubs = b.Location, b.Tags, links
	for p, name := range allocationNames {
		if name == alloc {
			x.AllocationPolicy = p
		}
	}
	if b.Properties.ServiceOperationsHostName != "" {
		x.HostName = b.Properties.ServiceOperationsHostName
	}
	if pol != nil {
		x.Policies = pol
	}
	x.SystemData.Touch(principal(caller), now)
	if status == http.StatusCreated {
		err = h.cfg.Store.CreateProvisioningService(ctx, x)
	} else {
		err = h.cfg.Store.UpdateProvisioningService(ctx, x, arm.IfMatch(r))
	}
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return arm.Errorf(ferry.ECONFLICT, "ProvisioningServiceNameNotAvailable", "The name '%s' of the provisioning service is already taken.", t.name)
	}
	if err != nil {
		return fmt.Errorf("put provisioning service: %w", err)
	}
	if h.cfg.Provisioning != nil {
		if err := h.cfg.Provisioning.ServiceChanged(ctx, x.ID); err != nil {
			return fmt.Errorf("put provisioning service: notify device plane: %w", err)
		}
	}
	arm.SetETag(w, x.ETag)
	return writeJSON(w, status, h.dpsJSON(x))
}
