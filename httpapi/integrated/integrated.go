// Package integrated serves the Microsoft.AzureSphere 2024-04-01 ARM
// surface: catalogs, certificates, images, products, device groups,
// deployments and devices at their ARM paths, over the sphere service.
// Every operation checks the api-version, authorizes the caller with the
// action of rbac's operation table over the target resource (for lists,
// their parent) and is audited; errors are ARM error JSON.
//
// The handler expects an authentication middleware in front of it (such
// as identity.Service.RequireAuth) to have put the ferry.Caller in the
// request context.
package integrated

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
)

// APIVersion is the Microsoft.AzureSphere API version Ferry serves.
const APIVersion = "2024-04-01"

// APIVersions are the accepted api-version values. The preview has the
// same models as the GA version.
var APIVersions = []string{APIVersion, "2022-09-01-preview"}

// Config configures the handler.
type Config struct {
	Sphere     *sphere.Service  // required
	Authorizer ferry.Authorizer // required
	Audit      audit.Recorder   // nil records nothing
	Logger     *slog.Logger     // nil discards
	Now        func() time.Time // nil is time.Now
}

// api holds the handlers.
type api struct {
	svc *sphere.Service
	srv *arm.Server
}

// New returns the handler of every Microsoft.AzureSphere operation. ARM
// paths are case-insensitive: a request whose path matches a route but for
// the case of its fixed segments is served by that route; others get ARM
// error JSON (404, or 405 for a known path with another method).
func New(cfg Config) http.Handler {
	mux := http.NewServeMux()
	routes := Register(mux, cfg)
	mux.Handle("/", fallback(mux, routes))
	return mux
}

// Register adds the Microsoft.AzureSphere operations to mux, for callers
// that serve several providers from one mux, and returns the registered
// patterns.
func Register(mux *http.ServeMux, cfg Config) []string {
	srv := arm.NewServer(mux, arm.Config{
		Provider: ferry.ProviderSphere, APIVersions: APIVersions,
		Authorizer: cfg.Authorizer, Audit: cfg.Audit, Operations: cfg.Sphere.Store(),
		Logger: cfg.Logger, Now: cfg.Now,
	})
	a := &api{svc: cfg.Sphere, srv: srv}
	handlers := a.handlers()
	var routes []string
	for _, op := range rbac.Operations() {
		if !isSphereOp(op) {
			continue
		}
		h, ok := handlers[op.ID]
		if !ok {
			continue
		}
		srv.Handle(op.Method+" "+op.Path, arm.Op{ID: op.ID, Action: op.Action}, h)
		routes = append(routes, op.Method+" "+op.Path)
		// azcore follows the nextLink of a POST list action with GET.
		if op.Method == http.MethodPost && pagedActions[op.ID] {
			srv.Handle(http.MethodGet+" "+op.Path, arm.Op{ID: op.ID, Action: op.Action}, h)
			routes = append(routes, http.MethodGet+" "+op.Path)
		}
	}
	// Listing the provider's operations needs only a signed-in caller.
	srv.Handle("GET /providers/Microsoft.AzureSphere/operations", arm.Op{ID: "Operations_List"}, a.listOperations)
	srv.HandleOperations()
	return append(routes, "GET /providers/Microsoft.AzureSphere/operations")
}

// fallback serves requests no route matched: it retries a path whose fixed
// segments differ from a route's only in case, and otherwise answers ARM
// error JSON.
func fallback(mux *http.ServeMux, routes []string) http.Handler {
	type route struct {
		method string
		segs   []string
	}
	rs := make([]route, 0, len(routes))
	for _, p := range routes {
		m, path, _ := strings.Cut(p, " ")
		rs = append(rs, route{m, strings.Split(strings.Trim(path, "/"), "/")})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
		pathMatched := false
		for _, rt := range rs {
			if len(rt.segs) != len(segs) {
				continue
			}
			canon, ok := make([]string, len(segs)), true
			for i, s := range rt.segs {
				switch {
				case strings.HasPrefix(s, "{"):
					canon[i] = segs[i]
				case strings.EqualFold(s, segs[i]):
					canon[i] = s
				default:
					ok = false
				}
				if !ok {
					break
				}
			}
			if !ok {
				continue
			}
			pathMatched = true
			if rt.method != r.Method {
				continue
			}
			if p := "/" + strings.Join(canon, "/"); p != r.URL.EscapedPath() {
				r2 := r.Clone(r.Context())
				r2.URL.RawPath = p
				r2.URL.Path, _ = url.PathUnescape(p)
				mux.ServeHTTP(w, r2)
				return
			}
		}
		if pathMatched {
			arm.Render(w, r, arm.Errorf(ferry.EINVALID, "MethodNotAllowed", "The method '%s' is not allowed on '%s'.", r.Method, r.URL.Path).WithStatus(http.StatusMethodNotAllowed))
			return
		}
		arm.Render(w, r, arm.Errorf(ferry.ENOTFOUND, "InvalidResourceType", "The resource type of '%s' could not be found in the namespace '%s' for api version '%s'.", r.URL.Path, ferry.ProviderSphere, r.URL.Query().Get("api-version")))
	})
}

// Operations returns the operation IDs the surface serves.
func Operations() []string {
	hs := (&api{}).handlers()
	var ids []string
	for _, op := range rbac.Operations() {
		if _, ok := hs[op.ID]; ok && isSphereOp(op) {
			ids = append(ids, op.ID)
		}
	}
	return ids
}

func isSphereOp(op rbac.Operation) bool {
	return strings.HasPrefix(op.Action, ferry.ProviderSphere+"/") && op.Path != "" &&
		strings.Contains(op.Path, "/providers/Microsoft.AzureSphere/catalogs")
}

// pagedActions are the POST list actions whose nextLink is a GET.
var pagedActions = map[string]bool{
	"Catalogs_ListDeployments": true, "Catalogs_ListDeviceGroups": true,
	"Catalogs_ListDeviceInsights": true, "Catalogs_ListDevices": true,
}

func (a *api) handlers() map[string]httpapi.HandlerFunc {
	return map[string]httpapi.HandlerFunc{
		"Catalogs_ListBySubscription":                 a.listCatalogs,
		"Catalogs_ListByResourceGroup":                a.listCatalogs,
		"Catalogs_Get":                                a.getCatalog,
		"Catalogs_CreateOrUpdate":                     a.putCatalog,
		"Catalogs_Update":                             a.patchCatalog,
		"Catalogs_Delete":                             a.deleteCatalog,
		"Catalogs_CountDevices":                       a.countCatalogDevices,
		"Catalogs_ListDeployments":                    a.listCatalogDeployments,
		"Catalogs_ListDeviceGroups":                   a.listCatalogDeviceGroups,
		"Catalogs_ListDeviceInsights":                 a.listDeviceInsights,
		"Catalogs_ListDevices":                        a.listCatalogDevices,
		"Catalogs_UploadImage":                        a.uploadImage,
		"Certificates_ListByCatalog":                  a.listCertificates,
		"Certificates_Get":                            a.getCertificate,
		"Certificates_RetrieveCertChain":              a.certChain,
		"Certificates_RetrieveProofOfPossessionNonce": a.proofOfPossession,
		"Images_ListByCatalog":                        a.listImages,
		"Images_Get":                                  a.getImage,
		"Images_CreateOrUpdate":                       a.putImage,
		"Images_Delete":                               a.deleteImage,
		"Products_ListByCatalog":                      a.listProducts,
		"Products_Get":                                a.getProduct,
		"Products_CreateOrUpdate":                     a.putProduct,
		"Products_Update":                             a.patchProduct,
		"Products_Delete":                             a.deleteProduct,
		"Products_CountDevices":                       a.countProductDevices,
		"Products_GenerateDefaultDeviceGroups":        a.generateDefaultDeviceGroups,
		"DeviceGroups_ListByProduct":                  a.listDeviceGroups,
		"DeviceGroups_Get":                            a.getDeviceGroup,
		"DeviceGroups_CreateOrUpdate":                 a.putDeviceGroup,
		"DeviceGroups_Update":                         a.patchDeviceGroup,
		"DeviceGroups_Delete":                         a.deleteDeviceGroup,
		"DeviceGroups_ClaimDevices":                   a.claimDevices,
		"DeviceGroups_CountDevices":                   a.countGroupDevices,
		"Deployments_ListByDeviceGroup":               a.listDeployments,
		"Deployments_Get":                             a.getDeployment,
		"Deployments_CreateOrUpdate":                  a.putDeployment,
		"Deployments_Delete":                          a.deleteDeployment,
		"Devices_ListByDeviceGroup":                   a.listDevices,
		"Devices_Get":                                 a.getDevice,
		"Devices_CreateOrUpdate":                      a.putDevice,
		"Devices_Update":                              a.patchDevice,
		"Devices_Delete":                              a.deleteDevice,
		"Devices_GenerateCapabilityImage":             a.generateCapabilityImage,
	}
}

// operationInfo is one entry of Operations_List.
type operationInfo struct {
	Name         string `json:"name"`
	IsDataAction bool   `json:"isDataAction"`
	Display      struct {
		Provider    string `json:"provider"`
		Resource    string `json:"resource"`
		Operation   string `json:"operation"`
		Description string `json:"description"`
	} `json:"display"`
	Origin string `json:"origin"`
}

func (a *api) listOperations(w http.ResponseWriter, r *http.Request) error {
	if ferry.CallerFromContext(r.Context()) == nil {
		return a.srv.Authorize(r.Context(), "", "/")
	}
	seen := map[string]bool{}
	var out []operationInfo
	for _, op := range rbac.Operations() {
		if !isSphereOp(op) || seen[op.Action] {
			continue
		}
		seen[op.Action] = true
		var o operationInfo
		o.Name, o.Origin = op.Action, "user,system"
		parts := strings.Split(strings.TrimPrefix(op.Action, ferry.ProviderSphere+"/"), "/")
		o.Display.Provider = ferry.ProviderSphere
		o.Display.Resource = strings.Join(parts[:len(parts)-1], "/")
		o.Display.Operation = op.ID
		o.Display.Description = fmt.Sprintf("%s (%s)", op.ID, parts[len(parts)-1])
		out = append(out, o)
	}
	return httpapi.WriteJSON(w, http.StatusOK, arm.List[operationInfo]{Value: out})
}
