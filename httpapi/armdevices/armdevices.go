// Package armdevices serves Microsoft.Devices on Ferry's integrated (ARM)
// surface: IoT hubs (Microsoft.Devices/IotHubs) and device provisioning
// services (Microsoft.Devices/provisioningServices) as ARM resources,
// mapped onto the device plane's ferry.Hub and ferry.ProvisioningService.
//
// It keeps the subset of the resource shapes clients use: name, location,
// tags, sku, etag and properties {hostName, state, provisioningState} for
// hubs (keys only through listkeys), and {idScope,
// serviceOperationsHostName, deviceProvisioningHostName, iotHubs,
// allocationPolicy, state, provisioningState} for provisioning services.
// Writes are synchronous: PUT answers 200 or 201 with provisioningState
// Succeeded, which azcore's pollers accept as done.
//
// Ferry extensions: a hub's properties.hostName and a provisioning
// service's properties.serviceOperationsHostName may be given (an IP
// address such as 127.0.0.2 in tests); they default to {name}.{HubDomain}
// and {name}.{DPSDomain}. After every change the device plane is told
// (HubChanged, ServiceChanged) so that live sessions follow.
package armdevices

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
)

// API versions served.
var (
	HubAPIVersions = []string{"2021-07-02", "2022-04-30-preview", "2023-06-30"}
	DPSAPIVersions = []string{"2021-10-15", "2022-02-05", "2022-12-12"}
)

// Actions checked by this package, as the rbac operation table names them.
const (
	ActionHubRead     = "Microsoft.Devices/IotHubs/Read"
	ActionHubWrite    = "Microsoft.Devices/IotHubs/Write"
	ActionHubDelete   = "Microsoft.Devices/IotHubs/Delete"
	ActionHubListKeys = "Microsoft.Devices/IotHubs/listkeys/Action"
	ActionDPSRead     = "Microsoft.Devices/provisioningServices/Read"
	ActionDPSWrite    = "Microsoft.Devices/provisioningServices/Write"
	ActionDPSDelete   = "Microsoft.Devices/provisioningServices/Delete"
	ActionDPSListKeys = "Microsoft.Devices/provisioningServices/listkeys/Action"
)

// HubNotifier is told about changed hubs; ferry.HubService satisfies it.
type HubNotifier interface {
	HubChanged(ctx context.Context, hubID string) error
}

// Config is what the handler needs.
type Config struct {
	Store      ferry.Store
	Authorizer ferry.Authorizer
	Audit      audit.Recorder // nil: no audit records
	Logger     *slog.Logger
	Now        func() time.Time
	// HubDomain names hubs that are given no host name: {name}.{HubDomain}.
	// Default "localhost".
	HubDomain string
	// DPSDomain names provisioning services likewise. Default "localhost".
	DPSDomain string
	// DeviceProvisioningHost is the global device endpoint shown as
	// deviceProvisioningHostName; "" shows each service's own host name.
	DeviceProvisioningHost string
	// Hubs and Provisioning are told about changes; nil skips them.
	Hubs         HubNotifier
	Provisioning ferry.ProvisioningChanged
}

type handler struct {
	cfg       Config
	hubs, dps *arm.Server
}

// New returns the Microsoft.Devices handler; it serves the paths Match
// accepts.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HubDomain == "" {
		cfg.HubDomain = "localhost"
	}
	if cfg.DPSDomain == "" {
		cfg.DPSDomain = "localhost"
	}
	h := &handler{cfg: cfg}
	ac := arm.Config{Provider: ferry.ProviderDevices, Authorizer: cfg.Authorizer, Audit: cfg.Audit, Logger: cfg.Logger, Now: cfg.Now}
	ac.APIVersions = HubAPIVersions
	h.hubs = arm.NewServer(http.NewServeMux(), ac)
	ac.APIVersions = DPSAPIVersions
	h.dps = arm.NewServer(http.NewServeMux(), ac)
	return h
}

// target is a parsed request path.
type target struct {
	sub, rg string // rg "" for subscription-wide lists
	kind    string // "IotHubs" or "provisioningServices"
	name    string // "" for a list
	action  string // "listkeys" or ""
}

func parse(path string) (target, bool) {
	var s []string
	for _, x := range strings.Split(path, "/") {
		if x != "" {
			s = append(s, x)
		}
	}
	var t target
	if len(s) < 4 || !strings.EqualFold(s[0], "subscriptions") {
		return t, false
	}
	t.sub, s = s[1], s[2:]
	if strings.EqualFold(s[0], "resourceGroups") {
		if len(s) < 4 {
			return t, false
		}
		t.rg, s = s[1], s[2:]
	}
	if len(s) < 3 || len(s) > 5 || !strings.EqualFold(s[0], "providers") || !strings.EqualFold(s[1], ferry.ProviderDevices) {
		return t, false
	}
	switch {
	case strings.EqualFold(s[2], "IotHubs"):
		t.kind = "IotHubs"
	case strings.EqualFold(s[2], "provisioningServices"):
		t.kind = "provisioningServices"
	default:
		return t, false
	}
	if len(s) >= 4 {
		if t.rg == "" {
			return t, false
		}
		t.name = s[3]
	}
	if len(s) == 5 {
		if !strings.EqualFold(s[4], "listkeys") {
			return t, false
		}
		t.action = "listkeys"
	}
	return t, true
}

// Match reports whether path is one New's handler serves: hub and
// provisioning service lists (by subscription or resource group), single
// resources, and their listkeys actions.
func Match(path string) bool {
	_, ok := parse(path)
	return ok
}

// id returns the ARM ID of the target resource (or of its list's parent).
func (t target) id() string {
	if t.name == "" {
		if t.rg == "" {
			return ferry.SubscriptionScope(t.sub)
		}
		return ferry.ResourceGroupScope(t.sub, t.rg)
	}
	return ferry.ResourceGroupScope(t.sub, t.rg) + "/providers/" + ferry.ProviderDevices + "/" + t.kind + "/" + t.name
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := parse(r.URL.Path)
	if !ok {
		arm.Render(w, r, arm.NewError(ferry.ENOTFOUND, "NotFound", "No HTTP resource was found that matches the request URI."))
		return
	}
	hub := t.kind == "IotHubs"
	srv, prefix := h.dps, "IotDpsResource_"
	read, write, del, keys := ActionDPSRead, ActionDPSWrite, ActionDPSDelete, ActionDPSListKeys
	if hub {
		srv, prefix = h.hubs, "IotHubResource_"
		read, write, del, keys = ActionHubRead, ActionHubWrite, ActionHubDelete, ActionHubListKeys
	}
	var op arm.Op
	var f func(w http.ResponseWriter, r *http.Request, t target) error
	method := http.MethodGet
	switch {
	case t.name == "" && t.rg == "":
		op, f = arm.Op{ID: prefix + "ListBySubscription"}, h.list
	case t.name == "":
		op, f = arm.Op{ID: prefix + "ListByResourceGroup"}, h.list
	case t.action == "listkeys":
		op, f, method = arm.Op{ID: prefix + "ListKeys", Action: keys}, h.listKeys, http.MethodPost
	case r.Method == http.MethodPut:
		op, f, method = arm.Op{ID: prefix + "CreateOrUpdate", Action: write}, h.putHub, http.MethodPut
		if !hub {
			f = h.putDPS
		}
	case r.Method == http.MethodDelete:
		op, f, method = arm.Op{ID: prefix + "Delete", Action: del}, h.delete, http.MethodDelete
	default:
		op, f = arm.Op{ID: prefix + "Get", Action: read}, h.get
	}
	id := t.id()
	op.Scope = func(*http.Request) string { return id }
	srv.Wrap(op, func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != method {
			return arm.Errorf(ferry.EINVALID, "MethodNotAllowed", "The requested resource does not support http method '%s'.", r.Method)
		}
		return f(w, r, t)
	}).ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	return httpapi.WriteJSON(w, status, v)
}
