// Package armauthz serves Microsoft.Authorization on Ferry's integrated
// (ARM) surface: role definitions and role assignments at any scope, at
// {scope}/providers/Microsoft.Authorization/roleAssignments/{name} and
// {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}, where the
// scope is "/" (nothing), a subscription, a resource group or any resource.
//
// A ServeMux cannot put a wildcard in the middle of a path, so the handler
// parses the scope itself; Match tells the paths it serves, and cmd/ferry
// sends them to it. Writes need Microsoft.Authorization/.../write at the
// scope (Owner, User Access Administrator), so a caller can only grant
// inside the scopes it controls; after every write the authorizer reloads
// (when it has a Reload method, as *rbac.Authorizer does).
//
// Role definitions are deployment-wide: the scope in their path only
// selects which custom roles a list shows (those assignable at or below
// it) and which subscription their IDs name. Built-in roles cannot be
// changed or deleted.
package armauthz

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
)

// APIVersions are the Microsoft.Authorization api-versions served;
// armauthorization/v2 sends 2022-04-01.
var APIVersions = []string{"2015-07-01", "2018-01-01-preview", "2020-04-01-preview", "2022-04-01"}

// Actions checked by this package.
const (
	ActionAssignmentRead   = "Microsoft.Authorization/roleAssignments/read"
	ActionAssignmentWrite  = "Microsoft.Authorization/roleAssignments/write"
	ActionAssignmentDelete = "Microsoft.Authorization/roleAssignments/delete"
	ActionDefinitionRead   = "Microsoft.Authorization/roleDefinitions/read"
	ActionDefinitionWrite  = "Microsoft.Authorization/roleDefinitions/write"
	ActionDefinitionDelete = "Microsoft.Authorization/roleDefinitions/delete"
)

// Config is what the handler needs.
type Config struct {
	Store      ferry.Store
	Authorizer ferry.Authorizer // if it has Reload(ctx) error, it is called after every write
	Audit      audit.Recorder   // nil: no audit records
	Logger     *slog.Logger
	Now        func() time.Time
}

type handler struct {
	cfg Config
	srv *arm.Server
}

// New returns the Microsoft.Authorization handler; it serves the paths
// Match accepts.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{cfg: cfg}
	h.srv = arm.NewServer(http.NewServeMux(), arm.Config{Provider: ferry.ProviderAuthorization, APIVersions: APIVersions,
		Authorizer: cfg.Authorizer, Audit: cfg.Audit, Logger: cfg.Logger, Now: cfg.Now})
	return h
}

// target is a parsed request path.
type target struct {
	scope string // canonical scope, "/" for the root
	kind  string // "roleAssignments" or "roleDefinitions"
	name  string // "" for the collection
}

// parse splits a path at its last /providers/Microsoft.Authorization/.
func parse(path string) (target, bool) {
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	at := -1
	for i := len(segs) - 2; i >= 0; i-- {
		if strings.EqualFold(segs[i], "providers") && strings.EqualFold(segs[i+1], ferry.ProviderAuthorization) {
			at = i
			break
		}
	}
	if at < 0 {
		return target{}, false
	}
	rest := segs[at+2:]
	if len(rest) < 1 || len(rest) > 2 {
		return target{}, false
	}
	var t target
	switch {
	case strings.EqualFold(rest[0], "roleAssignments"):
		t.kind = "roleAssignments"
	case strings.EqualFold(rest[0], "roleDefinitions"):
		t.kind = "roleDefinitions"
	default:
		return target{}, false
	}
	if len(rest) == 2 {
		t.name = rest[1]
	}
	t.scope = "/" + strings.Join(segs[:at], "/")
	return t, true
}

// Match reports whether path is one New's handler serves: role assignments
// or role definitions (a collection or one item) under any scope.
func Match(path string) bool {
	_, ok := parse(path)
	return ok
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := parse(r.URL.Path)
	if !ok {
		arm.Render(w, r, arm.NewError(ferry.ENOTFOUND, "NotFound", "No HTTP resource was found that matches the request URI."))
		return
	}
	id, err := ferry.ParseResourceID(t.scope)
	if err != nil {
		h.srv.Wrap(arm.Op{ID: "Authorization_InvalidScope", Scope: fixed("/")}, func(http.ResponseWriter, *http.Request) error {
			return arm.Errorf(ferry.EINVALID, "InvalidScope", "The scope '%s' is not valid.", t.scope)
		}).ServeHTTP(w, r)
		return
	}
	t.scope = id.String()
	type route struct {
		op, action string
		f          func(w http.ResponseWriter, r *http.Request, t target) error
	}
	var rt route
	switch {
	case t.kind == "roleAssignments" && t.name == "":
		rt = route{"RoleAssignments_ListForScope", ActionAssignmentRead, h.listAssignments}
	case t.kind == "roleAssignments" && r.Method == http.MethodPut:
		rt = route{"RoleAssignments_Create", ActionAssignmentWrite, h.putAssignment}
	case t.kind == "roleAssignments" && r.Method == http.MethodDelete:
		rt = route{"RoleAssignments_Delete", ActionAssignmentDelete, h.deleteAssignment}
	case t.kind == "roleAssignments":
		rt = route{"RoleAssignments_Get", ActionAssignmentRead, h.getAssignment}
	case t.name == "":
		rt = route{"RoleDefinitions_List", ActionDefinitionRead, h.listDefinitions}
	case r.Method == http.MethodPut:
		rt = route{"RoleDefinitions_CreateOrUpdate", ActionDefinitionWrite, h.putDefinition}
	case r.Method == http.MethodDelete:
		rt = route{"RoleDefinitions_Delete", ActionDefinitionDelete, h.deleteDefinition}
	default:
		rt = route{"RoleDefinitions_Get", ActionDefinitionRead, h.getDefinition}
	}
	want := http.MethodGet
	if r.Method == http.MethodPut || r.Method == http.MethodDelete {
		want = r.Method
	}
	h.srv.Wrap(arm.Op{ID: rt.op, Action: rt.action, Scope: fixed(t.scope)}, func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != want || (t.name == "" && r.Method != http.MethodGet) {
			return arm.Errorf(ferry.EINVALID, "MethodNotAllowed", "The requested resource does not support http method '%s'.", r.Method)
		}
		return rt.f(w, r, t)
	}).ServeHTTP(w, r)
}

func fixed(s string) func(*http.Request) string { return func(*http.Request) string { return s } }

// reload makes the authorizer see a write at once.
func (h *handler) reload(ctx context.Context) error {
	if rl, ok := h.cfg.Authorizer.(interface{ Reload(context.Context) error }); ok {
		if err := rl.Reload(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("reload authorizer: %w", err)
		}
	}
	return nil
}

// subscriptionOf returns "/subscriptions/{id}" for a scope inside a
// subscription, or "".
func subscriptionOf(scope string) string {
	id, err := ferry.ParseResourceID(scope)
	if err != nil || id.SubscriptionID == "" {
		return ""
	}
	return ferry.SubscriptionScope(id.SubscriptionID)
}

// under returns the ID of a Microsoft.Authorization item under scope.
func under(scope, kind, name string) string {
	return strings.TrimSuffix(scope, "/") + "/providers/" + ferry.ProviderAuthorization + "/" + kind + "/" + name
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	return httpapi.WriteJSON(w, status, v)
}
