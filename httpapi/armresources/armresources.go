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
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
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

// Config is what the handler needs.
type Config struct {
	Store      ferry.Store
	Authorizer ferry.Authorizer // the integrated surface's; if it has Reload(ctx) error, it is called after role assignments are removed
	Audit      audit.Recorder   // nil: no audit records
	Logger     *slog.Logger
	Now        func() time.Time
	// TenantID is the directory tenant shown as each subscription's tenantId.
	TenantID string
	// HubChanged and ServiceChanged, when set, are told about hubs and
	// provisioning services that a resource group delete removed.
	HubChanged     func(ctx context.Context, hubID string) error
	ServiceChanged func(ctx context.Context, serviceID string) error
}

type handler struct {
	cfg       Config
	subs, rgs *arm.Server // Microsoft.Resources subscriptions and resource groups (their api-versions differ)
}

// New returns the handler of subscriptions and resource groups. It serves
// the paths Match accepts.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{cfg: cfg}
	sc := arm.Config{Provider: "Microsoft.Resources", Authorizer: cfg.Authorizer, Audit: cfg.Audit, Logger: cfg.Logger, Now: cfg.Now}
	sc.APIVersions = SubscriptionAPIVersions
	h.subs = arm.NewServer(http.NewServeMux(), sc)
	sc.APIVersions = ResourceGroupAPIVersions
	h.rgs = arm.NewServer(http.NewServeMux(), sc)
	return h
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
		arm.Render(w, r, arm.NewError(ferry.ENOTFOUND, "NotFound", "No HTTP resource was found that matches the request URI."))
		return
	}
	serve := func(srv *arm.Server, op arm.Op, f httpapi.HandlerFunc) {
		if op.Scope == nil {
			op.Scope = func(*http.Request) string { return "/" }
		}
		srv.Wrap(op, f).ServeHTTP(w, r)
	}
	switch {
	case len(s) == 1:
		serve(h.subs, arm.Op{ID: "Subscriptions_List"}, only(http.MethodGet, h.listSubscriptions))
	case len(s) == 2:
		id := ferry.SubscriptionScope(s[1])
		switch r.Method {
		case http.MethodPut:
			serve(h.subs, arm.Op{ID: "Subscriptions_CreateOrUpdate", Action: ActionSubscriptionWrite, Scope: scope(id)}, h.putSubscription)
		default:
			serve(h.subs, arm.Op{ID: "Subscriptions_Get", Action: ActionSubscriptionRead, Scope: scope(id)}, only(http.MethodGet, h.getSubscription))
		}
	case len(s) == 3:
		serve(h.rgs, arm.Op{ID: "ResourceGroups_List"}, only(http.MethodGet, h.listResourceGroups))
	default:
		id := ferry.ResourceGroupScope(s[1], s[3])
		switch r.Method {
		case http.MethodPut:
			serve(h.rgs, arm.Op{ID: "ResourceGroups_CreateOrUpdate", Action: ActionResourceGroupWrite, Scope: scope(id)}, h.putResourceGroup)
		case http.MethodDelete:
			serve(h.rgs, arm.Op{ID: "ResourceGroups_Delete", Action: ActionResourceGroupDel, Scope: scope(id)}, h.deleteResourceGroup)
		case http.MethodHead:
			serve(h.rgs, arm.Op{ID: "ResourceGroups_CheckExistence", Action: ActionResourceGroupRead, Scope: scope(id)}, h.headResourceGroup)
		case http.MethodPatch:
			serve(h.rgs, arm.Op{ID: "ResourceGroups_Update", Action: ActionResourceGroupWrite, Scope: scope(id)}, h.patchResourceGroup)
		default:
			serve(h.rgs, arm.Op{ID: "ResourceGroups_Get", Action: ActionResourceGroupRead, Scope: scope(id)}, only(http.MethodGet, h.getResourceGroup))
		}
	}
}

// scope returns an arm.Op scope function for a fixed resource ID.
func scope(id string) func(*http.Request) string { return func(*http.Request) string { return id } }

// only refuses methods other than m.
func only(m string, h httpapi.HandlerFunc) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != m {
			w.Header().Set("Allow", m)
			return arm.Errorf(ferry.EINVALID, "MethodNotAllowed", "The requested resource does not support http method '%s'.", r.Method)
		}
		return h(w, r)
	}
}

// segments splits a request path into its non-empty segments, tolerating
// the doubled slashes some clients send.
func segments(path string) []string {
	var out []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var rgName = regexp.MustCompile(`^[-\w._()]{1,90}$`)

// validRGName reports whether name is a valid resource group name.
func validRGName(name string) bool {
	return rgName.MatchString(name) && !strings.HasSuffix(name, ".")
}
