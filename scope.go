package ferry

import (
	"net/url"
	"strings"
)

// Resource providers and types Ferry serves on its integrated surface.
const (
	ProviderSphere        = "Microsoft.AzureSphere"
	ProviderDevices       = "Microsoft.Devices"
	ProviderAuthorization = "Microsoft.Authorization"
	ProviderFerry         = "Ferry.Migration"

	TypeCatalog             = "Microsoft.AzureSphere/catalogs"
	TypeCertificate         = "Microsoft.AzureSphere/catalogs/certificates"
	TypeImage               = "Microsoft.AzureSphere/catalogs/images"
	TypeProduct             = "Microsoft.AzureSphere/catalogs/products"
	TypeDeviceGroup         = "Microsoft.AzureSphere/catalogs/products/deviceGroups"
	TypeDeployment          = "Microsoft.AzureSphere/catalogs/products/deviceGroups/deployments"
	TypeDevice              = "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices"
	TypeIotHub              = "Microsoft.Devices/IotHubs"
	TypeProvisioningService = "Microsoft.Devices/provisioningServices"
	TypeRoleAssignment      = "Microsoft.Authorization/roleAssignments"
	TypeRoleDefinition      = "Microsoft.Authorization/roleDefinitions"
	TypeMigration           = "Ferry.Migration/migrations"
	ResourceGroupsSegment   = "resourceGroups"
	SubscriptionsSegment    = "subscriptions"
	DefaultName             = ".default"
	UnassignedName          = ".unassigned"
)

// ResourceID is a parsed ARM resource ID: the subscription, resource group
// and the chain of typed names under one provider.
type ResourceID struct {
	SubscriptionID string
	ResourceGroup  string
	Provider       string   // "" for subscriptions and resource groups
	Types          []string // e.g. ["catalogs", "products"]
	Names          []string // one per type
}

// String renders the canonical resource ID.
func (r ResourceID) String() string {
	var b strings.Builder
	if r.SubscriptionID != "" {
		b.WriteString("/subscriptions/")
		b.WriteString(r.SubscriptionID)
	}
	if r.ResourceGroup != "" {
		b.WriteString("/resourceGroups/")
		b.WriteString(r.ResourceGroup)
	}
	if r.Provider != "" {
		b.WriteString("/providers/")
		b.WriteString(r.Provider)
		for i := range r.Types {
			b.WriteString("/")
			b.WriteString(r.Types[i])
			b.WriteString("/")
			b.WriteString(r.Names[i])
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// Type returns the full resource type, e.g. "Microsoft.AzureSphere/catalogs/products".
func (r ResourceID) Type() string {
	switch {
	case r.Provider != "":
		return r.Provider + "/" + strings.Join(r.Types, "/")
	case r.ResourceGroup != "":
		return "Microsoft.Resources/resourceGroups"
	case r.SubscriptionID != "":
		return "Microsoft.Resources/subscriptions"
	}
	return ""
}

// Name returns the last name of the ID.
func (r ResourceID) Name() string {
	switch {
	case len(r.Names) > 0:
		return r.Names[len(r.Names)-1]
	case r.ResourceGroup != "":
		return r.ResourceGroup
	}
	return r.SubscriptionID
}

// Child returns the ID of a child resource of r.
func (r ResourceID) Child(typ, name string) ResourceID {
	c := r
	c.Types = append(append([]string(nil), r.Types...), typ)
	c.Names = append(append([]string(nil), r.Names...), name)
	return c
}

// ParseResourceID parses an ARM resource ID or scope. Segment names are
// matched case-insensitively; names are kept as written (and unescaped).
// Returns EINVALID for anything that is not an ARM ID.
func ParseResourceID(s string) (ResourceID, error) {
	var r ResourceID
	if s == "" || s[0] != '/' {
		return r, Errorf(EINVALID, "The resource ID %q is not valid: it must start with '/'.", s)
	}
	segs := strings.Split(strings.Trim(s, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		return r, nil // the root scope "/"
	}
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil || u == "" {
			return r, Errorf(EINVALID, "The resource ID %q is not valid.", s)
		}
		segs[i] = u
	}
	bad := Errorf(EINVALID, "The resource ID %q is not valid.", s)
	i := 0
	if !strings.EqualFold(segs[i], "subscriptions") || len(segs) < 2 {
		return r, bad
	}
	r.SubscriptionID = segs[1]
	i = 2
	if i < len(segs) && strings.EqualFold(segs[i], "resourceGroups") {
		if i+1 >= len(segs) {
			return r, bad
		}
		r.ResourceGroup = segs[i+1]
		i += 2
	}
	if i == len(segs) {
		return r, nil
	}
	if !strings.EqualFold(segs[i], "providers") || i+1 >= len(segs) {
		return r, bad
	}
	r.Provider = segs[i+1]
	i += 2
	rest := segs[i:]
	if len(rest)%2 != 0 || len(rest) == 0 {
		return r, bad
	}
	for j := 0; j < len(rest); j += 2 {
		r.Types = append(r.Types, rest[j])
		r.Names = append(r.Names, rest[j+1])
	}
	return r, nil
}

// ScopeContains reports whether scope covers resourceID: scope is a prefix
// of resourceID by whole segments, compared case-insensitively, as Azure RBAC
// scopes are. "/" covers everything.
func ScopeContains(scope, resourceID string) bool {
	scope = strings.TrimRight(scope, "/")
	if scope == "" {
		return true
	}
	if len(resourceID) < len(scope) || !strings.EqualFold(resourceID[:len(scope)], scope) {
		return false
	}
	return len(resourceID) == len(scope) || resourceID[len(scope)] == '/'
}

// SubscriptionScope returns the ID of a subscription.
func SubscriptionScope(sub string) string { return "/subscriptions/" + sub }

// ResourceGroupScope returns the ID of a resource group.
func ResourceGroupScope(sub, rg string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + rg
}
