// Package armresources serves the Microsoft.Resources part of Ferry's
// integrated (ARM) surface: subscriptions and resource groups, the
// containers every other ARM resource lives in.
//
// Subscriptions: ARM has no public call that creates one, so Ferry keeps a
// default subscription, created on first use (its ID is stored as the
// setting "armresources.default_subscription" so that every node agrees).
// As a Ferry extension, PUT /subscriptions/{id} with {"displayName": ...}
// creates or renames a subscription; it needs Microsoft.Resources/
// subscriptions/write at the subscription (an Owner at "/").
//
// Resource groups follow ARM: segment names are case-insensitive
// (/resourcegroups/ and /resourceGroups/ both work), lists show only the
// groups the caller may read, and DELETE removes a group with everything in
// it (catalogs, hubs, provisioning services, migrations, and the role
// assignments at or below it), provided the caller may delete each of them,
// as ARM requires.
package armresources

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// API versions served.
var (
	SubscriptionAPIVersions  = []string{"2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01"}
	ResourceGroupAPIVersions = []string{"2019-10-01", "2020-06-01", "2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01"}
)

// SettingDefaultSubscription is the setting that holds the ID of the
// default subscription.
const SettingDefaultSubscription = "armresources.default_subscription"

// Actions checked by this package.
const (
	ActionSubscriptionRead   = "Microsoft.Resources/subscriptions/read"
	ActionSubscriptionWrite  = "Microsoft.Resources/subscriptions/write"
	ActionResourceGroupRead  = "Microsoft.Resources/subscriptions/resourceGroups/read"
	ActionResourceGroupWrite = "Microsoft.Resources/subscriptions/resourceGroups/write"
	ActionResourceGroupDel   = "Microsoft.Resources/subscriptions/resourceGroups/delete"
)

// Auditor records audit events; ferry.AuditStore satisfies it.
type Auditor interface {
	AppendAudit(ctx context.Context, e []*ferry.AuditEvent) error
}

// Config is what the handler needs.
type Config struct {
	Store      ferry.Store
	Authorizer ferry.Authorizer // the integrated surface's; if it has Reload(ctx) error, it is called after role assignments are removed
	Audit      Auditor          // nil: no audit records
	Logger     *slog.Logger
	Now        func() time.Time
	// TenantID is the directory tenant shown as each subscription's tenantId.
	TenantID string
	// HubChanged and ServiceChanged, when set, are told about hubs and
	// provisioning services that a resource group delete removed.
	HubChanged     func(ctx context.Context, hubID string) error
	ServiceChanged func(ctx context.Context, serviceID string) error
}

type handler struct{ cfg Config }

// New returns the handler of subscriptions and resource groups. It serves
// the paths Match accepts.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &handler{cfg: cfg}
}

// Match reports whether path is one New's handler serves: /subscriptions,
// /subscriptions/{id}, /subscriptions/{id}/resourcegroups and
// /subscriptions/{id}/resourcegroups/{name}, segment names in any case.
func Match(path string) bool {
	s := segments(path)
	if len(s) == 0 || len(s) > 4 || !strings.EqualFold(s[0], "subscriptions") {
		return false
	}
	return len(s) < 3 || strings.EqualFold(s[2], "resourceGroups")
}

// DefaultSubscription returns the default subscription, creating it on
// first use.
func DefaultSubscription(ctx context.Context, st ferry.Store, now time.Time) (*ferry.Subscription, error) {
	id, err := st.PutSettingIfAbsent(ctx, SettingDefaultSubscription, ferry.NewUUID())
	if err != nil {
		return nil, fmt.Errorf("default subscription: %w", err)
	}
	s, err := st.GetSubscription(ctx, id)
	if err == nil {
		return s, nil
	}
	if !ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, fmt.Errorf("default subscription: %w", err)
	}
	s = &ferry.Subscription{ID: id, DisplayName: "Ferry", State: "Enabled", CreatedAt: now.UTC()}
	if err := st.PutSubscription(ctx, s); err != nil {
		return nil, fmt.Errorf("default subscription: %w", err)
	}
	return s, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := segments(r.URL.Path)
	if !Match(r.URL.Path) {
		render(w, r, withCode("NotFound", ferry.ENOTFOUND, "No HTTP resource was found that matches the request URI."))
		return
	}
	cfg := &h.cfg
	switch {
	case len(s) == 1:
		serve(cfg, w, r, call{op: "Subscriptions_List"}, only(http.MethodGet, h.listSubscriptions))
	case len(s) == 2:
		id := ferry.SubscriptionScope(s[1])
		switch r.Method {
		case http.MethodPut:
			serve(cfg, w, r, call{op: "Subscriptions_CreateOrUpdate", action: ActionSubscriptionWrite, resourceID: id}, h.putSubscription)
		default:
			serve(cfg, w, r, call{op: "Subscriptions_Get", action: ActionSubscriptionRead, resourceID: id}, only(http.MethodGet, h.getSubscription))
		}
	case len(s) == 3:
		serve(cfg, w, r, call{op: "ResourceGroups_List"}, only(http.MethodGet, h.listResourceGroups))
	default:
		id := ferry.ResourceGroupScope(s[1], s[3])
		switch r.Method {
		case http.MethodPut:
			serve(cfg, w, r, call{op: "ResourceGroups_CreateOrUpdate", action: ActionResourceGroupWrite, resourceID: id}, h.putResourceGroup)
		case http.MethodDelete:
			serve(cfg, w, r, call{op: "ResourceGroups_Delete", action: ActionResourceGroupDel, resourceID: id}, h.deleteResourceGroup)
		case http.MethodHead:
			serve(cfg, w, r, call{op: "ResourceGroups_CheckExistence", action: ActionResourceGroupRead, resourceID: id}, h.headResourceGroup)
		case http.MethodPatch:
			serve(cfg, w, r, call{op: "ResourceGroups_Update", action: ActionResourceGroupWrite, resourceID: id}, h.patchResourceGroup)
		default:
			serve(cfg, w, r, call{op: "ResourceGroups_Get", action: ActionResourceGroupRead, resourceID: id}, only(http.MethodGet, h.getResourceGroup))
		}
	}
}

// only refuses methods other than m.
func only(m string, h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != m {
			w.Header().Set("Allow", m)
			return withCode("MethodNotAllowed", ferry.EINVALID, "The requested resource does not support http method '%s'.", r.Method)
		}
		return h(w, r)
	}
}

var rgName = regexp.MustCompile(`^[-\w._()]{1,90}$`)

// validRGName reports whether name is a valid resource group name.
func validRGName(name string) bool {
	return rgName.MatchString(name) && !strings.HasSuffix(name, ".")
}
