package migration

import (
	"context"
	"crypto/x509"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/rbac"
)

// OpReport is the operation ID of a migration's report.
const OpReport = "Migrations_Report"

// pMigration is the path of one migration.
const pMigration = pFerryRG + "/migrations/{migrationName}"

// migrationName is the pattern of a migration's name.
var migrationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// maxWaves bounds the waves a plan may make.
const maxWaves = 1000

// registerMigrations adds the migrations resource to srv.
func (a *api) registerMigrations(srv *arm.Server) {
	path := func(id string) string {
		o, ok := rbac.OperationByID(id)
		if !ok {
			panic("migration: operation " + id + " is not in rbac's table")
		}
		return o.Method + " " + o.Path
	}
	op := func(id string) arm.Op { return arm.Op{ID: id, Action: rbac.Action(id)} }
	// The actions are checked over the migration itself; a list's over
	// the resource group.
	srv.Handle(path("Migrations_ListByResourceGroup"), op("Migrations_ListByResourceGroup"), a.listMigrations)
	srv.Handle(path("Migrations_Get"), op("Migrations_Get"), a.getMigration)
	srv.Handle(path("Migrations_CreateOrUpdate"), op("Migrations_CreateOrUpdate"), a.putMigration)
	srv.Handle(path("Migrations_Delete"), op("Migrations_Delete"), a.deleteMigration)
	srv.Handle(path("Migrations_ListDevices"), op("Migrations_ListDevices"), a.listDevices)
	srv.Handle(path("Migrations_ListWaves"), op("Migrations_ListWaves"), a.listWaves)
	srv.Handle(path("Migrations_Preflight"), op("Migrations_Preflight"), a.preflight)
	srv.Handle(path("Migrations_Start"), op("Migrations_Start"), a.action(a.mig.Begin))
	srv.Handle(path("Migrations_Pause"), op("Migrations_Pause"), a.action(a.mig.Pause))
	srv.Handle(path("Migrations_Resume"), op("Migrations_Resume"), a.action(a.mig.Resume))
	srv.Handle(path("Migrations_Cancel"), op("Migrations_Cancel"), a.action(a.mig.Cancel))
	srv.Handle(path("Migrations_FailBack"), op("Migrations_FailBack"), a.failBack)
	srv.Handle("GET "+pMigration+"/report", arm.Op{ID: OpReport, Action: rbac.Action(OpReport)}, a.report)
}

// selectionModel is a migration's selection on the wire: a hub device
// group of the source hub (by name or ID), a list of device IDs, or a
// catalog device group (its Microsoft.AzureSphere resource ID).
type selectionModel struct {
	DeviceGroup        string   `json:"deviceGroup,omitempty"`
	DeviceIDs          []string `json:"deviceIds,omitempty"`
	CatalogDeviceGroup string   `json:"catalogDeviceGroup,omitempty"`
}

// wavesModel is a wave plan: count equal waves, percentages of the
// selection, device counts per wave (the last takes the rest), or waves of
// size devices each.
type wavesModel struct {
	Count       int   `json:"count,omitempty"`
	Percentages []int `json:"percentages,omitempty"`
	Sizes       []int `json:"sizes,omitempty"`
	Size        int   `json:"size,omitempty"`
}

// thresholdsModel is a migration's per-wave thresholds.
type thresholdsModel struct {
	Success int    `json:"success"`
	Error   int    `json:"error"`
	OnError string `json:"onError,omitempty"`
}

// MigrationProperties are the properties of a migration resource. On PUT
// sourceHub and targetProvisioningService take a name or a resource ID;
// answers give resource IDs.
type MigrationProperties struct {
	MigrationID               string                             `json:"migrationId,omitempty"`
	SourceHub                 string                             `json:"sourceHub"`
	Selection                 selectionModel                     `json:"selection"`
	TargetProvisioningService string                             `json:"targetProvisioningService"`
	TargetFerry               *TargetFerry                       `json:"targetFerry,omitempty"`
	IDScope                   string                             `json:"idScope,omitempty"`
	ProvisioningHost          string                             `json:"provisioningHost,omitempty"`
	Waves                     *wavesModel                        `json:"waves,omitempty"`
	Thresholds                *thresholdsModel                   `json:"thresholds,omitempty"`
	DeviceTimeout             string                             `json:"deviceTimeout,omitempty"`
	CommandRate               float64                            `json:"commandRate,omitempty"`
	MethodName                string                             `json:"methodName,omitempty"`
	State                     ferry.MigrationState               `json:"state,omitempty"`
	StateReason               string                             `json:"stateReason,omitempty"`
	CurrentWave               int                                `json:"currentWave"`
	WaveCount                 int                                `json:"waveCount"`
	DeviceCount               int                                `json:"deviceCount"`
	Counts                    map[ferry.DeviceMigrationState]int `json:"counts,omitempty"`
	CreatedAt                 *time.Time                         `json:"createdAt,omitempty"`
	StartedAt                 *time.Time                         `json:"startedAt,omitempty"`
	CompletedAt               *time.Time                         `json:"completedAt,omitempty"`
}

// TargetFerry is another Ferry deployment that holds the target
// provisioning service (then given by its resource ID there), and the
// service principal to act as there. The client secret is write-only: it
// is kept to resume the migration, never returned.
type TargetFerry struct {
	APIEndpoint   string `json:"apiEndpoint"`
	TenantID      string `json:"tenantId,omitempty"`
	ClientID      string `json:"clientId"`
	ClientSecret  string `json:"clientSecret,omitempty"`
	CACertificate string `json:"caCertificate,omitempty"` // PEM
}

// remoteFromWire validates a targetFerry.
func remoteFromWire(t *TargetFerry, serviceID string) (*ferry.RemoteFerry, error) {
	u, err := url.Parse(t.APIEndpoint)
	switch {
	case t.APIEndpoint == "":
		return nil, arm.Required("properties.targetFerry.apiEndpoint")
	case err != nil || u.Scheme != "https" || u.Host == "":
		return nil, arm.InvalidContent("properties.targetFerry.apiEndpoint", "The target Ferry's API endpoint must be an https:// URL.")
	case t.ClientID == "":
		return nil, arm.Required("properties.targetFerry.clientId")
	case t.ClientSecret == "":
		return nil, arm.Required("properties.targetFerry.clientSecret")
	case !strings.HasPrefix(serviceID, "/"):
		return nil, arm.InvalidContent("properties.targetProvisioningService",
			"With targetFerry, the target provisioning service is its resource ID on the target Ferry.")
	}
	rf := &ferry.RemoteFerry{APIEndpoint: strings.TrimRight(t.APIEndpoint, "/"), TenantID: t.TenantID, ClientID: t.ClientID, ClientSecret: t.ClientSecret}
	if t.CACertificate != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(t.CACertificate)) {
			return nil, arm.InvalidContent("properties.targetFerry.caCertificate", "The CA certificate must be PEM.")
		}
		rf.CACertPEM = []byte(t.CACertificate)
	}
	return rf, nil
}

// migrationID returns the ARM ID the request path gives the migration.
func migrationID(r *http.Request) ferry.ResourceID {
	return ferry.ResourceID{SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName"),
		Provider: ferry.ProviderFerry, Types: []string{"migrations"}, Names: []string{r.PathValue("migrationName")}}
}

// migration finds the migration of the request path.
func (a *api) migration(r *http.Request) (*ferry.Migration, error) {
	id := migrationID(r)
	m, err := a.store.GetMigrationByName(r.Context(), id.SubscriptionID, id.ResourceGroup, id.Name())
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, arm.NotFound(id)
	}
	return m, err
}

// toResource renders a migration with its counts.
func (a *api) toResource(r *http.Request, m *ferry.Migration) (arm.Resource[MigrationProperties], error) {
	ctx := r.Context()
	p := MigrationProperties{MigrationID: m.ID, IDScope: m.Target.IDScope, ProvisioningHost: m.Target.ProvisioningHost,
		CommandRate: m.CommandRate, MethodName: m.MethodName, State: m.State, StateReason: m.StateReason, CurrentWave: m.CurrentWave,
		Thresholds:    &thresholdsModel{Success: m.SuccessThreshold, Error: m.ErrorThreshold, OnError: string(m.OnError)},
		DeviceTimeout: formatDuration(m.DeviceTimeout), CreatedAt: arm.TimePtr(m.CreatedAt), StartedAt: arm.TimePtr(m.StartedAt),
		CompletedAt: arm.TimePtr(m.CompletedAt), Counts: map[ferry.DeviceMigrationState]int{}}
	if h, err := a.store.GetHub(ctx, m.SourceHubID); err == nil {
		p.SourceHub = hubRef(h)
	} else {
		p.SourceHub = m.SourceHubID
	}
	if rf := m.Target.Remote; rf != nil {
		p.TargetProvisioningService = m.Target.ProvisioningServiceID
		p.TargetFerry = &TargetFerry{APIEndpoint: rf.APIEndpoint, TenantID: rf.TenantID, ClientID: rf.ClientID, CACertificate: string(rf.CACertPEM)}
	} else if s, err := a.store.GetProvisioningService(ctx, m.Target.ProvisioningServiceID); err == nil {
		p.TargetProvisioningService = serviceRef(s)
	} else {
		p.TargetProvisioningService = m.Target.ProvisioningServiceID
	}
	switch m.Selection.Kind {
	case ferry.SelectHubDeviceGroup:
		p.Selection.DeviceGroup = m.Selection.HubDeviceGroupID
		if g, err := a.store.GetHubDeviceGroup(ctx, m.SourceHubID, m.Selection.HubDeviceGroupID); err == nil {
			p.Selection.DeviceGroup = g.Name
		}
	case ferry.SelectDeviceIDs:
		p.Selection.DeviceIDs = m.Selection.DeviceIDs
	case ferry.SelectCatalogDeviceGroup:
		p.Selection.CatalogDeviceGroup = a.catalogGroupRef(ctx, m.Selection.CatalogDeviceGroupID)
	}
	if len(m.Waves.Sizes) > 0 || len(m.Waves.Percentages) > 0 {
		p.Waves = &wavesModel{Sizes: m.Waves.Sizes, Percentages: m.Waves.Percentages}
	}
	counts, err := a.store.CountMigrationDevices(ctx, m.ID)
	if err != nil {
		return arm.Resource[MigrationProperties]{}, err
	}
	p.WaveCount = len(counts)
	for _, byState := range counts {
		for s, n := range byState {
			p.Counts[s] += n
			p.DeviceCount += n
		}
	}
	if waves, err := a.store.ListMigrationWaves(ctx, m.ID); err == nil {
		p.WaveCount = len(waves)
	}
	res := arm.NewResource(m.ResourceID(), m.SystemData, p)
	res.ETag = m.ETag
	return res, nil
}

// hubRef names a hub on the wire: its resource ID, or its name when it
// has no ARM location.
func hubRef(h *ferry.Hub) string {
	if id := h.ResourceID(); id.SubscriptionID != "" {
		return id.String()
	}
	return h.Name
}

func serviceRef(s *ferry.ProvisioningService) string {
	if id := s.ResourceID(); id.SubscriptionID != "" {
		return id.String()
	}
	return s.Name
}

// scopeOf is the scope of a resource for authorization: its ID, or the
// root for a resource made outside ARM, which only a role there reaches.
func scopeOf(id ferry.ResourceID) string {
	if id.SubscriptionID == "" {
		return "/"
	}
	return id.String()
}

// refName returns the name a reference gives: the last segment of a
// resource ID, or the reference itself.
func refName(ref string) string {
	if strings.HasPrefix(ref, "/") {
		if id, err := ferry.ParseResourceID(ref); err == nil && id.Name() != "" {
			return id.Name()
		}
		return ref[strings.LastIndex(ref, "/")+1:]
	}
	return ref
}

// formatDuration writes d as an ISO 8601 duration in seconds, as ARM does.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}

// parseDuration reads an ISO 8601 time duration (PT1H30M, PT90S) or a Go
// duration (90s, 5m).
func parseDuration(s string) (time.Duration, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if rest, ok := strings.CutPrefix(u, "PT"); ok {
		if rest == "" {
			return 0, false
		}
		d, err := time.ParseDuration(strings.ToLower(rest))
		return d, err == nil
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// putMigration creates a migration, or replaces one that has not started.
func (a *api) putMigration(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := migrationID(r)
	if err := arm.CheckName(id.Name(), migrationName); err != nil {
		return err
	}
	var in struct {
		Properties *MigrationProperties `json:"properties"`
	}
	if err := arm.Decode(r, &in, true); err != nil {
		return err
	}
	if in.Properties == nil {
		return arm.Required("properties")
	}
	old, err := a.store.GetMigrationByName(ctx, id.SubscriptionID, id.ResourceGroup, id.Name())
	if err != nil && !ferry.IsCode(err, ferry.ENOTFOUND) {
		return err
	}
	if err := arm.CheckPutConditions(r, old != nil); err != nil {
		return err
	}
	if old != nil {
		if m := arm.IfMatch(r); m != "" && m != "*" && m != old.ETag {
			return arm.NewError(ferry.EPRECONDITION, arm.CodePreconditionFailed, "The migration's ETag does not match If-Match.")
		}
		if old.State != ferry.MigrationCreated && old.State != ferry.MigrationReady {
			return arm.Errorf(ferry.ECONFLICT, arm.CodeConflict, "The migration '%s' is %s; only a migration that has not started can be replaced.", id.Name(), old.State)
		}
	}
	if _, err := a.store.GetResourceGroup(ctx, id.SubscriptionID, id.ResourceGroup); err != nil {
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return arm.Errorf(ferry.ENOTFOUND, "ResourceGroupNotFound", "Resource group '%s' could not be found.", id.ResourceGroup)
		}
		return err
	}
	m, err := a.fromWire(r, in.Properties)
	if err != nil {
		return err
	}
	m.Name, m.SubscriptionID, m.ResourceGroup = id.Name(), id.SubscriptionID, id.ResourceGroup
	if old != nil {
		// Preflight and creation reread everything; the old plan goes.
		if err := a.store.DeleteMigration(ctx, old.ID); err != nil {
			return err
		}
		m.SystemData = old.SystemData
	}
	var p *ferry.Principal
	if c := ferry.CallerFromContext(ctx); c != nil {
		p = c.Principal
	}
	m.SystemData.Touch(p, a.srv.Now().UTC())
	created, err := a.mig.Create(ctx, m)
	if err != nil {
		return createError(err)
	}
	res, err := a.toResource(r, created)
	if err != nil {
		return err
	}
	arm.SetETag(w, created.ETag)
	status := http.StatusCreated
	if old != nil {
		status = http.StatusOK
	}
	return httpapi.WriteJSON(w, status, res)
}

// createError gives the orchestrator's refusals their ARM shape.
func createError(err error) error {
	switch ferry.ErrorCode(err) {
	case ferry.EINVALID:
		return arm.InvalidContent("properties", "%s", ferry.ErrorMessage(err))
	case ferry.ENOTFOUND:
		return arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound, "%s", ferry.ErrorMessage(err))
	}
	return err
}

// fromWire validates the properties of a PUT and resolves their references.
func (a *api) fromWire(r *http.Request, p *MigrationProperties) (*ferry.Migration, error) {
	ctx := r.Context()
	m := &ferry.Migration{CommandRate: p.CommandRate, MethodName: p.MethodName}
	if p.SourceHub == "" {
		return nil, arm.Required("properties.sourceHub")
	}
	hub, err := a.store.GetHubByName(ctx, refName(p.SourceHub))
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound, "The source IoT hub '%s' was not found.", truncate(p.SourceHub, 200)).WithTarget("properties.sourceHub")
	}
	if err != nil {
		return nil, err
	}
	// A migration disables identities at the source hub and may create
	// an enrollment group at the target: the caller must be allowed to
	// change both, not only the migration.
	if err := a.srv.Authorize(ctx, rbac.Action("IotHubResource_CreateOrUpdate"), scopeOf(hub.ResourceID())); err != nil {
		return nil, err
	}
	m.SourceHubID = hub.ID
	if p.TargetProvisioningService == "" {
		return nil, arm.Required("properties.targetProvisioningService")
	}
	if p.TargetFerry != nil {
		// The target Ferry authorizes its own resources: the service
		// principal's roles there are what the migration may do there.
		rf, err := remoteFromWire(p.TargetFerry, p.TargetProvisioningService)
		if err != nil {
			return nil, err
		}
		m.Target = ferry.MigrationTarget{ProvisioningServiceID: p.TargetProvisioningService, IDScope: p.IDScope, ProvisioningHost: p.ProvisioningHost, Remote: rf}
	} else {
		svc, err := a.store.GetProvisioningServiceByName(ctx, refName(p.TargetProvisioningService))
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return nil, arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound, "The target provisioning service '%s' was not found.",
				truncate(p.TargetProvisioningService, 200)).WithTarget("properties.targetProvisioningService")
		}
		if err != nil {
			return nil, err
		}
		if err := a.srv.Authorize(ctx, rbac.Action("IotDpsResource_CreateOrUpdate"), scopeOf(svc.ResourceID())); err != nil {
			return nil, err
		}
		m.Target = ferry.MigrationTarget{ProvisioningServiceID: svc.ID, IDScope: p.IDScope, ProvisioningHost: p.ProvisioningHost}
	}
	set := 0
	for _, b := range []bool{p.Selection.DeviceGroup != "", len(p.Selection.DeviceIDs) > 0, p.Selection.CatalogDeviceGroup != ""} {
		if b {
			set++
		}
	}
	switch sel := p.Selection; {
	case set > 1:
		return nil, arm.InvalidContent("properties.selection", "The selection names one of a device group, device IDs or a catalog device group.")
	case sel.CatalogDeviceGroup != "":
		g, err := a.catalogGroup(ctx, sel.CatalogDeviceGroup)
		if err != nil {
			return nil, err
		}
		m.Selection = ferry.MigrationSelection{Kind: ferry.SelectCatalogDeviceGroup, CatalogDeviceGroupID: g.ID}
	case sel.DeviceGroup != "":
		groups, err := a.store.ListHubDeviceGroups(ctx, hub.ID)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			if strings.EqualFold(g.Name, sel.DeviceGroup) || g.ID == sel.DeviceGroup {
				m.Selection = ferry.MigrationSelection{Kind: ferry.SelectHubDeviceGroup, HubDeviceGroupID: g.ID}
			}
		}
		if m.Selection.Kind == "" {
			return nil, arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound, "The IoT hub '%s' has no device group '%s'.", hub.Name,
				truncate(sel.DeviceGroup, 200)).WithTarget("properties.selection.deviceGroup")
		}
	case len(sel.DeviceIDs) > 0:
		m.Selection = ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: slices.Clone(sel.DeviceIDs)}
	default:
		return nil, arm.Required("properties.selection.deviceGroup")
	}
	if p.Waves != nil {
		if m.Waves, err = a.wavePlan(r, hub.ID, *p.Waves); err != nil {
			return nil, err
		}
	}
	m.SuccessThreshold, m.ErrorThreshold = 100, 0
	if t := p.Thresholds; t != nil {
		m.SuccessThreshold, m.ErrorThreshold = t.Success, t.Error
		if t.OnError != "" {
			v, err := arm.Enum("properties.thresholds.onError", t.OnError, string(ferry.OnErrorPause), string(ferry.OnErrorFailback))
			if err != nil {
				return nil, err
			}
			m.OnError = ferry.WaveFailureAction(v)
		}
		if t.Success < 0 || t.Success > 100 || t.Error < 0 || t.Error > 100 {
			return nil, arm.InvalidContent("properties.thresholds", "Thresholds are percentages from 0 to 100.")
		}
	}
	m.DeviceTimeout = 5 * time.Minute
	if p.DeviceTimeout != "" {
		d, ok := parseDuration(p.DeviceTimeout)
		if !ok || d <= 0 {
			return nil, arm.InvalidContent("properties.deviceTimeout", "The deviceTimeout '%s' is not a positive ISO 8601 duration such as PT5M.", truncate(p.DeviceTimeout, 40))
		}
		m.DeviceTimeout = d
	}
	if p.CommandRate < 0 || math.IsNaN(p.CommandRate) || math.IsInf(p.CommandRate, 0) {
		return nil, arm.InvalidContent("properties.commandRate", "The commandRate is a number of commands per second, not negative.")
	}
	return m, nil
}

// wavePlan turns the wire's plan into the domain's. Waves of a fixed size
// are counted against the source hub's devices, the most the selection
// can hold.
func (a *api) wavePlan(r *http.Request, hubID string, w wavesModel) (ferry.WavePlan, error) {
	set := 0
	for _, b := range []bool{w.Count != 0, len(w.Percentages) > 0, len(w.Sizes) > 0, w.Size != 0} {
		if b {
			set++
		}
	}
	if set > 1 {
		return ferry.WavePlan{}, arm.InvalidContent("properties.waves", "A wave plan has one of count, percentages, sizes or size.")
	}
	switch {
	case w.Count < 0 || w.Size < 0:
		return ferry.WavePlan{}, arm.InvalidContent("properties.waves", "Wave counts and sizes must be positive.")
	case w.Count > 100:
		return ferry.WavePlan{}, arm.InvalidContent("properties.waves.count", "A migration has at most 100 waves of equal share.")
	case len(w.Percentages) > maxWaves || len(w.Sizes) > maxWaves:
		return ferry.WavePlan{}, arm.InvalidContent("properties.waves", "A migration has at most %d waves.", maxWaves)
	case w.Count > 0:
		pcs := make([]int, w.Count)
		for i := range pcs {
			pcs[i] = 100 / w.Count
		}
		pcs[len(pcs)-1] += 100 - (100/w.Count)*w.Count
		return ferry.WavePlan{Percentages: pcs}, nil
	case w.Size > 0:
		n, err := a.store.CountDeviceIdentities(r.Context(), ferry.DeviceIdentityFilter{HubID: hubID})
		if err != nil {
			return ferry.WavePlan{}, fmt.Errorf("count devices: %w", err)
		}
		k := max(1, (n+w.Size-1)/w.Size)
		if k > maxWaves {
			return ferry.WavePlan{}, arm.InvalidContent("properties.waves.size", "Waves of %d devices would make more than %d waves.", w.Size, maxWaves)
		}
		return ferry.WavePlan{Sizes: slices.Repeat([]int{w.Size}, k)}, nil
	}
	return ferry.WavePlan{Percentages: w.Percentages, Sizes: w.Sizes}, nil
}

// getMigration answers one migration.
func (a *api) getMigration(w http.ResponseWriter, r *http.Request) error {
	m, err := a.migration(r)
	if err != nil {
		return err
	}
	return a.writeMigration(w, r, m)
}

func (a *api) writeMigration(w http.ResponseWriter, r *http.Request, m *ferry.Migration) error {
	res, err := a.toResource(r, m)
	if err != nil {
		return err
	}
	arm.SetETag(w, m.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, res)
}

// listMigrations answers the migrations of a resource group, a page at a
// time.
func (a *api) listMigrations(w http.ResponseWriter, r *http.Request) error {
	pg, err := arm.ParsePaging(r)
	if err != nil {
		return err
	}
	f := ferry.MigrationFilter{SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName")}
	items, next, err := arm.Paginate(r, pg, func(o ferry.ListOptions) (ferry.Page[*ferry.Migration], error) {
		f.ListOptions = o
		return a.store.ListMigrations(r.Context(), f)
	}, nil)
	if err != nil {
		return err
	}
	out := arm.List[arm.Resource[MigrationProperties]]{Value: []arm.Resource[MigrationProperties]{}, NextLink: next}
	for _, m := range items {
		res, err := a.toResource(r, m)
		if err != nil {
			return err
		}
		out.Value = append(out.Value, res)
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// deleteMigration removes a migration that is not moving devices.
func (a *api) deleteMigration(w http.ResponseWriter, r *http.Request) error {
	m, err := a.migration(r)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	switch m.State {
	case ferry.MigrationRunning, ferry.MigrationPaused, ferry.MigrationCancelling:
		return arm.Errorf(ferry.ECONFLICT, arm.CodeConflict, "The migration '%s' is %s; cancel it and wait until it ends before deleting it.", m.Name, m.State)
	}
	if err := a.store.DeleteMigration(r.Context(), m.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// DeviceModel is one device of a migration on the wire.
type DeviceModel struct {
	DeviceID  string                     `json:"deviceId"`
	Wave      int                        `json:"wave"`
	State     ferry.DeviceMigrationState `json:"state"`
	Reason    string                     `json:"reason,omitempty"`
	Attempts  int                        `json:"attempts"`
	Deadline  *time.Time                 `json:"deadline,omitempty"`
	UpdatedAt *time.Time                 `json:"updatedAt,omitempty"`
}

var deviceStates = []string{string(ferry.DevicePending), string(ferry.DeviceCommanded), string(ferry.DeviceAcknowledged),
	string(ferry.DeviceProvisioned), string(ferry.DeviceConnected), string(ferry.DeviceVerified), string(ferry.DeviceFailed),
	string(ferry.DeviceFailingBack), string(ferry.DeviceFailedBack)}

// listDevices answers a migration's device records, a page at a time,
// filtered by state (state=verified,failed or $filter=state eq 'verified')
// and wave.
func (a *api) listDevices(w http.ResponseWriter, r *http.Request) error {
	m, err := a.migration(r)
	if err != nil {
		return err
	}
	pg, err := arm.ParsePaging(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := ferry.MigrationDeviceFilter{MigrationID: m.ID, Wave: -1}
	if v := q.Get("state"); v != "" {
		for _, s := range strings.Split(v, ",") {
			st, err := arm.Enum("state", strings.TrimSpace(s), deviceStates...)
			if err != nil {
				return err
			}
			f.States = append(f.States, ferry.DeviceMigrationState(st))
		}
	}
	if v := q.Get("wave"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return arm.InvalidContent("wave", "The wave parameter is a wave index from 0.")
		}
		f.Wave = n
	}
	filter, err := arm.ParseFilter(pg.Filter)
	if err != nil {
		return err
	}
	for _, fd := range filter.Fields() {
		if fd != "state" && fd != "deviceid" && fd != "wave" {
			return arm.InvalidContent("$filter", "A migration's devices filter by state, deviceId or wave, not '%s'.", fd)
		}
	}
	keep := func(d *ferry.MigrationDevice) bool {
		return filter.Match(func(field string) (string, bool) {
			switch field {
			case "state":
				return string(d.State), true
			case "deviceid":
				return d.DeviceID, true
			case "wave":
				return strconv.Itoa(d.Wave), true
			}
			return "", false
		})
	}
	items, next, err := arm.Paginate(r, pg, func(o ferry.ListOptions) (ferry.Page[*ferry.MigrationDevice], error) {
		f.ListOptions = o
		return a.store.ListMigrationDevices(r.Context(), f)
	}, keep)
	if err != nil {
		return err
	}
	out := arm.List[DeviceModel]{Value: []DeviceModel{}, NextLink: next}
	for _, d := range items {
		out.Value = append(out.Value, DeviceModel{DeviceID: d.DeviceID, Wave: d.Wave, State: d.State, Reason: d.Reason, Attempts: d.Attempts,
			Deadline: arm.TimePtr(d.Deadline), UpdatedAt: arm.TimePtr(d.UpdatedAt)})
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// WaveModel is one wave of a migration on the wire, with its devices'
// counts by state.
type WaveModel struct {
	Index       int                                `json:"index"`
	Size        int                                `json:"size"`
	State       ferry.WaveState                    `json:"state"`
	StartedAt   *time.Time                         `json:"startedAt,omitempty"`
	CompletedAt *time.Time                         `json:"completedAt,omitempty"`
	Counts      map[ferry.DeviceMigrationState]int `json:"counts"`
}

// listWaves answers a migration's waves.
func (a *api) listWaves(w http.ResponseWriter, r *http.Request) error {
	m, err := a.migration(r)
	if err != nil {
		return err
	}
	waves, err := a.store.ListMigrationWaves(r.Context(), m.ID)
	if err != nil {
		return err
	}
	counts, err := a.store.CountMigrationDevices(r.Context(), m.ID)
	if err != nil {
		return err
	}
	out := arm.List[WaveModel]{Value: []WaveModel{}}
	for _, x := range waves {
		c := map[ferry.DeviceMigrationState]int{}
		for s, n := range counts[x.Index] {
			c[s] = n
		}
		out.Value = append(out.Value, WaveModel{Index: x.Index, Size: x.Size, State: x.State, StartedAt: arm.TimePtr(x.StartedAt),
			CompletedAt: arm.TimePtr(x.CompletedAt), Counts: c})
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// preflight runs the checks and answers the report.
func (a *api) preflight(w http.ResponseWriter, r *http.Request) error {
	m, err := a.migration(r)
	if err != nil {
		return err
	}
	var in struct {
		SkipModelCheck bool `json:"skipModelCheck"`
	}
	if err := arm.Decode(r, &in, false); err != nil {
		return err
	}
	rep, err := a.mig.Preflight(r.Context(), m.ID, migrate.PreflightOptions{SkipModelCheck: in.SkipModelCheck})
	if err != nil {
		return err
	}
	if rep.Problems == nil {
		rep.Problems = []migrate.Problem{}
	}
	return httpapi.WriteJSON(w, http.StatusOK, rep)
}

// action returns the handler of start, pause, resume or cancel: it applies
// fn and answers the migration.
func (a *api) action(fn func(ctx context.Context, id string) error) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := a.migration(r)
		if err != nil {
			return err
		}
		if err := fn(r.Context(), m.ID); err != nil {
			if ferry.IsCode(err, ferry.ECONFLICT) {
				return arm.Errorf(ferry.ECONFLICT, arm.CodeConflict, "%s", ferry.ErrorMessage(err))
			}
			return err
		}
		if m, err = a.store.GetMigration(r.Context(), m.ID); err != nil {
			return err
		}
		return a.writeMigration(w, r, m)
	}
}

// failBack commands devices back to the source: those named, or every
// device that left it.
func (a *api) failBack(w http.ResponseWriter, r *http.Request) error {
	m, err := a.migration(r)
	if err != nil {
		return err
	}
	var in struct {
		DeviceIDs []string `json:"deviceIds"`
	}
	if err := arm.Decode(r, &in, false); err != nil {
		return err
	}
	if err := a.mig.Failback(r.Context(), m.ID, in.DeviceIDs); err != nil {
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			return arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound, "A device named in deviceIds is not in the migration '%s'.", m.Name).WithTarget("deviceIds")
		}
		return err
	}
	if m, err = a.store.GetMigration(r.Context(), m.ID); err != nil {
		return err
	}
	return a.writeMigration(w, r, m)
}

// report answers a migration's report as JSON (the default) or CSV.
func (a *api) report(w http.ResponseWriter, r *http.Request) error {
	m, err := a.migration(r)
	if err != nil {
		return err
	}
	format, err := arm.Enum("format", r.URL.Query().Get("format"), "json", "csv")
	if err != nil {
		return err
	}
	rep, err := a.mig.Report(r.Context(), m.ID)
	if err != nil {
		return err
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", m.Name+".csv"))
		w.WriteHeader(http.StatusOK)
		return rep.WriteCSV(w)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return rep.WriteJSON(w)
}

// catalogGroup resolves a catalog device group's resource ID and checks
// that the caller may list its devices, since the migration will.
func (a *api) catalogGroup(ctx context.Context, ref string) (*ferry.DeviceGroup, error) {
	const target = "properties.selection.catalogDeviceGroup"
	id, err := ferry.ParseResourceID(ref)
	if err != nil || !strings.EqualFold(id.Provider, ferry.ProviderSphere) || len(id.Types) != 3 ||
		!strings.EqualFold(id.Types[0], "catalogs") || !strings.EqualFold(id.Types[1], "products") || !strings.EqualFold(id.Types[2], "deviceGroups") {
		return nil, arm.InvalidContent(target, "The catalog device group must be a resource ID such as "+
			"/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.AzureSphere/catalogs/{c}/products/{p}/deviceGroups/{g}.")
	}
	notFound := arm.Errorf(ferry.ENOTFOUND, arm.CodeResourceNotFound, "The catalog device group '%s' was not found.", truncate(ref, 300)).WithTarget(target)
	c, err := a.store.GetCatalogByName(ctx, id.SubscriptionID, id.ResourceGroup, id.Names[0])
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	prods, err := a.store.ListProducts(ctx, ferry.ProductFilter{CatalogID: c.TenantID, Name: id.Names[1], ListOptions: ferry.ListOptions{Limit: 1}})
	if err != nil {
		return nil, err
	}
	if len(prods.Items) == 0 {
		return nil, notFound
	}
	groups, err := a.store.ListDeviceGroups(ctx, ferry.DeviceGroupFilter{ProductID: prods.Items[0].ID, Name: id.Names[2], ListOptions: ferry.ListOptions{Limit: 1}})
	if err != nil {
		return nil, err
	}
	if len(groups.Items) == 0 {
		return nil, notFound
	}
	if err := a.srv.Authorize(ctx, rbac.Action("Devices_ListByDeviceGroup"), scopeOf(id)); err != nil {
		return nil, err
	}
	return groups.Items[0], nil
}

// catalogGroupRef returns a catalog device group's resource ID, or its
// stored ID if it no longer resolves.
func (a *api) catalogGroupRef(ctx context.Context, groupID string) string {
	g, err := a.store.GetDeviceGroup(ctx, groupID)
	if err != nil {
		return groupID
	}
	c, err := a.store.GetCatalog(ctx, g.CatalogID)
	if err != nil {
		return groupID
	}
	p, err := a.store.GetProduct(ctx, g.ProductID)
	if err != nil {
		return groupID
	}
	return c.ResourceID().Child("products", p.Name).Child("deviceGroups", g.Name).String()
}
