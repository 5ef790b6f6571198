// Package migration serves Ferry's own Ferry.Migration provider on the
// integrated surface, ARM-shaped with api-version 2026-11-01: fleet
// migrations under a resource group (see migrations.go), which package
// migrate runs, and the legacy-tenant steps: the Integrate proposal and
// its application,
// pausing, enabling and blocking legacy access, removing a user's legacy
// roles, the legacy usage and sidestep reports, and a query of the audit
// log in the ASCAuditLogs shape. Azure offers Integrate, Pause and Enable
// only in its portal (sphere-surfaces.md §4.4); Ferry gives them ARM
// actions so that RBAC and audit cover them like every other call.
//
// Every operation is authorized by the arm.Server wrapper with its action
// over its scope and audited; Integrate also needs the caller to be a
// legacy Administrator of the tenant. The handler expects an
// authentication middleware in front of it to have put the ferry.Caller in
// the request context.
package migration

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/integrate"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/rbac"
)

// APIVersion is the Ferry.Migration API version.
const APIVersion = "2026-11-01"

// Operation IDs and actions this package adds to those of rbac's table
// (Catalogs_Integrate and the three legacy access switches are there).
const (
	OpProposeIntegration = "Catalogs_ProposeIntegration"
	OpLegacyUsage        = "Catalogs_LegacyUsage"
	OpLegacySidestep     = "Catalogs_LegacySidestep"
	OpRemoveLegacyRoles  = "Catalogs_RemoveLegacyRoles"
	OpAuditLogs          = "AuditLogs_ListByCatalog"
	OpAuditLogsAll       = "AuditLogs_List"

	ActionLegacyUsage    = "Ferry.Migration/catalogs/legacyUsage/read"
	ActionLegacySidestep = "Ferry.Migration/catalogs/legacySidestep/read"
	ActionAuditLogs      = "Ferry.Migration/catalogs/auditLogs/read"
)

// Path prefixes.
const (
	pRG      = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
	pCatalog = pRG + "/providers/Microsoft.AzureSphere/catalogs/{catalogName}"
	pFerryRG = pRG + "/providers/Ferry.Migration"
	pFerryC  = pCatalog + "/providers/Ferry.Migration"
)

// Config configures the handler.
type Config struct {
	Integrate *integrate.Service // required
	// Migrations runs fleet migrations; nil serves no migrations resource.
	Migrations *migrate.Orchestrator
	Store      ferry.Store      // required: catalogs, legacy roles, audit log
	Authorizer ferry.Authorizer // required: the integrated RBAC authorizer
	Audit      audit.Recorder   // nil records nothing
	Logger     *slog.Logger     // nil discards
	Now        func() time.Time // nil is time.Now
}

type api struct {
	ig    *integrate.Service
	mig   *migrate.Orchestrator
	store ferry.Store
	srv   *arm.Server
}

// Match reports whether p is a path this package serves: the migrations
// of a resource group, the integrate actions under a resource group, or a
// Ferry.Migration action under a catalog. ARM matches provider names case-insensitively.
func Match(p string) bool {
	l := strings.ToLower(p)
	if strings.Contains(l, "/providers/microsoft.azuresphere/catalogs/") && strings.Contains(l, "/providers/ferry.migration/") {
		return true
	}
	if strings.HasPrefix(l, "/subscriptions/") && (strings.Contains(l, "/providers/ferry.migration/migrations/") || strings.HasSuffix(l, "/providers/ferry.migration/migrations")) {
		return true
	}
	return strings.HasSuffix(l, "/providers/ferry.migration/integrate") || strings.HasSuffix(l, "/providers/ferry.migration/proposeintegration") ||
		l == "/providers/ferry.migration/auditlogs"
}

// fixedSegments are the fixed path segments of the routes, by lower case.
// ARM matches them case-insensitively; the names between them (resource
// group, catalog) are case-insensitive in Ferry's store too, so every
// segment that spells one of these is rewritten to its canonical case.
var fixedSegments = map[string]string{}

func init() {
	for _, s := range []string{"subscriptions", "resourceGroups", "providers", ferry.ProviderSphere, "catalogs", ferry.ProviderFerry,
		"integrate", "proposeIntegration", "pauseLegacyAccess", "enableLegacyAccess", "blockLegacyAccess",
		"removeLegacyRoles", "legacyUsage", "legacySidestep", "auditLogs", "migrations"} {
		fixedSegments[strings.ToLower(s)] = s
	}
}

// migrationSegments are the segments after a migration's name.
var migrationSegments = map[string]string{}

func init() {
	for _, s := range []string{"devices", "waves", "preflight", "start", "pause", "resume", "cancel", "failBack", "report"} {
		migrationSegments[strings.ToLower(s)] = s
	}
}

// canonical serves r with the fixed segments of its path in their
// canonical case.
func canonical(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(r.URL.EscapedPath(), "/")
		changed := false
		for i, s := range segs {
			if c, ok := fixedSegments[strings.ToLower(s)]; ok && c != s {
				segs[i], changed = c, true
			}
			// A migration's sub-resources and actions follow its name.
			if c, ok := migrationSegments[strings.ToLower(s)]; ok && c != s && i >= 2 && segs[i-2] == "migrations" {
				segs[i], changed = c, true
			}
		}
		if changed {
			p := strings.Join(segs, "/")
			r = r.Clone(r.Context())
			r.URL.RawPath = p
			r.URL.Path, _ = url.PathUnescape(p)
		}
		h.ServeHTTP(w, r)
	})
}

// New returns the handler.
func New(cfg Config) http.Handler {
	mux := http.NewServeMux()
	rec := cfg.Audit
	if rec == nil {
		rec = audit.Discard
	}
	// Denied calls stop before the handler resolves the catalog: fill it in
	// from the resource ID so that the catalog's audit query shows them.
	rec = audit.WithCatalog(rec, cfg.Store)
	srv := arm.NewServer(mux, arm.Config{
		Provider: ferry.ProviderFerry, APIVersions: []string{APIVersion},
		Authorizer: cfg.Authorizer, Audit: rec, Operations: cfg.Store,
		Logger: cfg.Logger, Now: cfg.Now,
	})
	a := &api{ig: cfg.Integrate, mig: cfg.Migrations, store: cfg.Store, srv: srv}
	if a.mig != nil {
		a.registerMigrations(srv)
	}
	rgScope := func(r *http.Request) string {
		return ferry.ResourceGroupScope(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
	}
	catScope := func(r *http.Request) string { return catalogID(r).String() }
	path := func(id string) string {
		o, ok := rbac.OperationByID(id)
		if !ok {
			panic("migration: operation " + id + " is not in rbac's table")
		}
		return o.Method + " " + o.Path
	}
	srv.Handle("POST "+pFerryRG+"/proposeIntegration", arm.Op{ID: OpProposeIntegration, Action: rbac.ActionIntegrate, Scope: rgScope}, a.propose)
	srv.Handle(path("Catalogs_Integrate"), arm.Op{ID: "Catalogs_Integrate", Action: rbac.ActionIntegrate, Scope: rgScope}, a.apply)
	srv.Handle(path("Catalogs_PauseLegacyAccess"), arm.Op{ID: "Catalogs_PauseLegacyAccess", Action: rbac.ActionPauseLegacyAccess, Scope: catScope}, a.access(ferry.LegacyPaused))
	srv.Handle(path("Catalogs_EnableLegacyAccess"), arm.Op{ID: "Catalogs_EnableLegacyAccess", Action: rbac.ActionEnableLegacyAccess, Scope: catScope}, a.access(ferry.LegacyEnabled))
	srv.Handle(path("Catalogs_BlockLegacyAccess"), arm.Op{ID: "Catalogs_BlockLegacyAccess", Action: rbac.ActionBlockLegacyAccess, Scope: catScope}, a.access(ferry.LegacyBlocked))
	srv.Handle("POST "+pFerryC+"/removeLegacyRoles", arm.Op{ID: OpRemoveLegacyRoles, Action: rbac.Action("RoleAssignments_Delete"), Scope: catScope}, a.removeLegacyRoles)
	srv.Handle("GET "+pFerryC+"/legacyUsage", arm.Op{ID: OpLegacyUsage, Action: ActionLegacyUsage, Scope: catScope}, a.usage)
	srv.Handle("GET "+pFerryC+"/legacySidestep", arm.Op{ID: OpLegacySidestep, Action: ActionLegacySidestep, Scope: catScope}, a.sidestep)
	srv.Handle("GET "+pFerryC+"/auditLogs", arm.Op{ID: OpAuditLogs, Action: ActionAuditLogs, Scope: catScope}, a.auditLogs)
	srv.Handle("GET /providers/Ferry.Migration/auditLogs", arm.Op{ID: OpAuditLogsAll, Action: ActionAuditLogs, Scope: func(*http.Request) string { return "/" }}, a.auditLogs)
	mux.Handle("/", srv.Wrap(arm.Op{ID: "NotFound"}, func(w http.ResponseWriter, r *http.Request) error {
		return arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound, "No Ferry.Migration operation matches %s %s.", r.Method, r.URL.Path)
	}))
	return canonical(mux)
}

// catalogID returns the ARM ID the request path gives the catalog.
func catalogID(r *http.Request) ferry.ResourceID {
	return ferry.ResourceID{SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName"),
		Provider: ferry.ProviderSphere, Types: []string{"catalogs"}, Names: []string{r.PathValue("catalogName")}}
}

// catalog finds the catalog of the request path.
func (a *api) catalog(r *http.Request) (*ferry.Catalog, error) {
	id := catalogID(r)
	c, err := a.store.GetCatalogByName(r.Context(), id.SubscriptionID, id.ResourceGroup, id.Name())
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, arm.NotFound(id)
	}
	if err != nil {
		return nil, err
	}
	arm.SetCatalog(r.Context(), c.TenantID)
	return c, nil
}

// integrateRequest is the body of proposeIntegration and integrate.
type integrateRequest struct {
	TenantID    string          `json:"tenantId"`
	CatalogName string          `json:"catalogName"`
	Decisions   []decisionModel `json:"decisions"`
}

type decisionModel struct {
	PrincipalID      string `json:"principalId"`
	Decision         string `json:"decision"` // Accept, Change or Reject
	RoleDefinitionID string `json:"roleDefinitionId,omitempty"`
}

// proposalModel is a proposal on the wire.
type proposalModel struct {
	TenantID       string            `json:"tenantId"`
	CatalogID      string            `json:"catalogId"`
	SubscriptionID string            `json:"subscriptionId"`
	ResourceGroup  string            `json:"resourceGroup"`
	CatalogName    string            `json:"catalogName"`
	Resources      map[string]int    `json:"resources"`
	Assignments    []assignmentModel `json:"assignments"`
	Warnings       []string          `json:"warnings"`
}

type assignmentModel struct {
	PrincipalID      string   `json:"principalId"`
	PrincipalName    string   `json:"principalName,omitempty"`
	LegacyRoles      []string `json:"legacyRoles,omitempty"`
	RoleAssignmentID string   `json:"roleAssignmentId"`
	RoleDefinitionID string   `json:"roleDefinitionId"`
	RoleName         string   `json:"roleName,omitempty"`
	Scope            string   `json:"scope"`
	Warning          string   `json:"warning,omitempty"`
}

func roleDefinitionARMID(sub, id string) string {
	return "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + id
}

func assignmentARMID(a ferry.RoleAssignment) string {
	return strings.TrimRight(a.Scope, "/") + "/providers/Microsoft.Authorization/roleAssignments/" + a.ID
}

func toProposal(p *integrate.Proposal) proposalModel {
	out := proposalModel{TenantID: p.TenantID, CatalogID: p.CatalogID, SubscriptionID: p.SubscriptionID,
		ResourceGroup: p.ResourceGroup, CatalogName: p.CatalogName, Resources: p.Resources,
		Assignments: []assignmentModel{}, Warnings: p.Warnings}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, x := range p.Assignments {
		m := assignmentModel{PrincipalID: x.PrincipalID, PrincipalName: x.PrincipalName,
			RoleAssignmentID: assignmentARMID(x.Assignment), RoleDefinitionID: roleDefinitionARMID(p.SubscriptionID, x.Assignment.RoleDefinitionID),
			RoleName: x.RoleName, Scope: x.Assignment.Scope, Warning: x.Warning}
		for _, r := range x.LegacyRoles {
			m.LegacyRoles = append(m.LegacyRoles, string(r))
		}
		out.Assignments = append(out.Assignments, m)
	}
	return out
}

// readIntegrate decodes the body, checks that the caller is a legacy
// Administrator of the tenant and returns the proposal.
func (a *api) readIntegrate(r *http.Request) (*integrateRequest, *integrate.Proposal, error) {
	var in integrateRequest
	if err := arm.Decode(r, &in, true); err != nil {
		return nil, nil, err
	}
	switch {
	case in.TenantID == "":
		return nil, nil, arm.Required("tenantId")
	case in.CatalogName == "":
		return nil, nil, arm.Required("catalogName")
	case !ferry.IsUUID(in.TenantID):
		return nil, nil, arm.InvalidContent("tenantId", "The tenantId '%s' is not a GUID.", truncate(in.TenantID, 40))
	}
	ctx := r.Context()
	arm.SetCatalog(ctx, strings.ToLower(in.TenantID))
	caller := ferry.CallerFromContext(ctx)
	roles, err := rbac.NewLegacy(a.store).Roles(ctx, strings.ToLower(in.TenantID), caller.ID())
	if err != nil {
		return nil, nil, err
	}
	if !rbac.LegacyAllowed(roles, rbac.ActionIntegrate) {
		return nil, nil, arm.Errorf(ferry.EFORBIDDEN, arm.CodeAuthorizationFailed,
			"The client '%s' with object id '%s' is not a legacy Administrator of the tenant '%s'; only a legacy Administrator can integrate it.",
			caller.Name(), caller.ID(), strings.ToLower(in.TenantID))
	}
	p, err := a.ig.Propose(ctx, in.TenantID, r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), in.CatalogName)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.EINVALID {
			return nil, nil, arm.InvalidContent("", "%s", ferry.ErrorMessage(err))
		}
		return nil, nil, err
	}
	return &in, p, nil
}

// propose answers the Integrate proposal without changing anything.
func (a *api) propose(w http.ResponseWriter, r *http.Request) error {
	_, p, err := a.readIntegrate(r)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, toProposal(p))
}

// integrateResult is the answer of integrate.
type integrateResult struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Type            string            `json:"type"`
	TenantID        string            `json:"tenantId"`
	LegacyAccess    string            `json:"legacyAccess"`
	IntegratedAt    time.Time         `json:"integratedAt"`
	RoleAssignments []assignmentModel `json:"roleAssignments"`
	Rejected        []string          `json:"rejected"`
}

// apply proposes again and applies the caller's decisions.
func (a *api) apply(w http.ResponseWriter, r *http.Request) error {
	in, p, err := a.readIntegrate(r)
	if err != nil {
		return err
	}
	var ds []integrate.Decision
	for i, d := range in.Decisions {
		v, err := arm.Enum(fmt.Sprintf("decisions[%d].decision", i), d.Decision, string(integrate.Accept), string(integrate.Change), string(integrate.Reject))
		if err != nil {
			return err
		}
		if v == "" {
			return arm.Required(fmt.Sprintf("decisions[%d].decision", i))
		}
		role := d.RoleDefinitionID
		if k := strings.LastIndex(role, "/"); k >= 0 {
			role = role[k+1:]
		}
		ds = append(ds, integrate.Decision{PrincipalID: d.PrincipalID, Verdict: integrate.Verdict(v), RoleDefinitionID: role})
	}
	res, err := a.ig.Apply(r.Context(), p, ds)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.EINVALID {
			return arm.InvalidContent("decisions", "%s", ferry.ErrorMessage(err))
		}
		return err
	}
	c := res.Catalog
	out := integrateResult{ID: c.ResourceID().String(), Name: c.Name, Type: ferry.TypeCatalog, TenantID: c.TenantID,
		LegacyAccess: string(c.LegacyAccess), IntegratedAt: c.IntegratedAt.UTC(), RoleAssignments: []assignmentModel{}, Rejected: res.Rejected}
	if out.Rejected == nil {
		out.Rejected = []string{}
	}
	for _, x := range res.Assignments {
		out.RoleAssignments = append(out.RoleAssignments, assignmentModel{PrincipalID: x.PrincipalID, RoleAssignmentID: assignmentARMID(x),
			RoleDefinitionID: roleDefinitionARMID(c.SubscriptionID, x.RoleDefinitionID), Scope: x.Scope})
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// accessModel is the answer of the legacy access switches.
type accessModel struct {
	TenantID     string `json:"tenantId"`
	LegacyAccess string `json:"legacyAccess"`
}

// access returns the handler of Pause, Enable or Block.
func (a *api) access(state ferry.LegacyAccess) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := a.catalog(r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		switch state {
		case ferry.LegacyPaused:
			err = a.ig.Pause(ctx, c.TenantID)
		case ferry.LegacyEnabled:
			err = a.ig.Enable(ctx, c.TenantID)
		default:
			err = a.ig.Block(ctx, c.TenantID)
		}
		if err != nil {
			return err
		}
		return httpapi.WriteJSON(w, http.StatusOK, accessModel{TenantID: c.TenantID, LegacyAccess: string(state)})
	}
}

// removeLegacyRoles takes a principal's legacy roles away.
func (a *api) removeLegacyRoles(w http.ResponseWriter, r *http.Request) error {
	c, err := a.catalog(r)
	if err != nil {
		return err
	}
	var in struct {
		PrincipalID string `json:"principalId"`
	}
	if err := arm.Decode(r, &in, true); err != nil {
		return err
	}
	if in.PrincipalID == "" {
		return arm.Required("principalId")
	}
	removed, err := a.ig.RemoveLegacyRoles(r.Context(), c.TenantID, in.PrincipalID)
	if err != nil {
		return err
	}
	out := struct {
		PrincipalID string   `json:"principalId"`
		Removed     []string `json:"removedLegacyRoles"`
	}{PrincipalID: in.PrincipalID, Removed: []string{}}
	for _, x := range removed {
		out.Removed = append(out.Removed, string(x))
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// timeRange reads the from and to query parameters (RFC 3339).
func timeRange(q url.Values) (from, to time.Time, err error) {
	for _, x := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := q.Get(x.name)
		if v == "" {
			continue
		}
		*x.t, err = time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return from, to, arm.InvalidContent(x.name, "The '%s' parameter must be an RFC 3339 time, such as 2026-11-01T00:00:00Z.", x.name)
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, arm.InvalidContent("to", "The end of the time range must be after its start.")
	}
	return from, to, nil
}

type usageModel struct {
	PrincipalID   string    `json:"principalId"`
	PrincipalName string    `json:"principalName"`
	UserAgent     string    `json:"userAgent"`
	Count         int       `json:"count"`
	LastCall      time.Time `json:"lastCall"`
	Operations    []string  `json:"operations"`
}

// usage answers the legacy usage report.
func (a *api) usage(w http.ResponseWriter, r *http.Request) error {
	c, err := a.catalog(r)
	if err != nil {
		return err
	}
	from, to, err := timeRange(r.URL.Query())
	if err != nil {
		return err
	}
	rows, err := a.ig.Usage(r.Context(), c.TenantID, from, to)
	if err != nil {
		return err
	}
	out := arm.List[usageModel]{Value: []usageModel{}}
	for _, x := range rows {
		out.Value = append(out.Value, usageModel(x))
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

type sidestepModel struct {
	PrincipalID   string   `json:"principalId"`
	PrincipalName string   `json:"principalName"`
	LegacyRoles   []string `json:"legacyRoles"`
	Roles         []string `json:"roles"`
	Actions       []string `json:"actions"`
	Operations    []string `json:"operations"`
}

// sidestep answers the sidestep report.
func (a *api) sidestep(w http.ResponseWriter, r *http.Request) error {
	c, err := a.catalog(r)
	if err != nil {
		return err
	}
	rows, err := a.ig.Sidestep(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	out := arm.List[sidestepModel]{Value: []sidestepModel{}}
	for _, x := range rows {
		m := sidestepModel{PrincipalID: x.PrincipalID, PrincipalName: x.PrincipalName, Roles: x.Roles, Actions: x.Actions, Operations: x.Operations}
		for _, l := range x.LegacyRoles {
			m.LegacyRoles = append(m.LegacyRoles, string(l))
		}
		out.Value = append(out.Value, m)
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// MaxAuditPage bounds $top of the audit query.
const MaxAuditPage = 1000

// auditLogs answers the audit log in the ASCAuditLogs shape, newest
// first, filtered by time range, principal, operation, result and surface:
// a catalog's (under a catalog), or the whole deployment's (at the root
// scope, where the catalogId parameter selects one catalog by tenant ID).
func (a *api) auditLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	catalogID := strings.ToLower(q.Get("catalogId"))
	if r.PathValue("catalogName") != "" {
		c, err := a.catalog(r)
		if err != nil {
			return err
		}
		catalogID = c.TenantID
	}
	from, to, err := timeRange(q)
	if err != nil {
		return err
	}
	query := audit.Query{Since: from, Until: to, PrincipalID: q.Get("principalId"), Operation: q.Get("operation"),
		CatalogID: catalogID}
	if v := q.Get("result"); v != "" {
		if query.Result, err = arm.Enum("result", v, ferry.ResultSuccess, ferry.ResultFailure); err != nil {
			return err
		}
	}
	if v := q.Get("surface"); v != "" {
		s, err := arm.Enum("surface", v, string(ferry.SurfaceIntegrated), string(ferry.SurfaceLegacy), string(ferry.SurfaceHub),
			string(ferry.SurfaceDPS), string(ferry.SurfacePortal), string(ferry.SurfaceIdentity))
		if err != nil {
			return err
		}
		query.Surface = ferry.Surface(s)
	}
	query.Limit = 100
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAuditPage {
			return arm.InvalidContent("$top", "The $top parameter must be a number from 1 to %d.", MaxAuditPage)
		}
		query.Limit = n
	}
	query.After = q.Get("$skipToken")
	recs, next, err := audit.FindASC(r.Context(), a.store, query)
	if err != nil {
		return err
	}
	out := arm.List[audit.Record]{Value: recs}
	if out.Value == nil {
		out.Value = []audit.Record{}
	}
	if next != "" {
		nq := r.URL.Query()
		nq.Set("$skipToken", next)
		out.NextLink = arm.Scheme(r) + "://" + r.Host + r.URL.EscapedPath() + "?" + nq.Encode()
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
