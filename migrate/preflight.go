package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry"
)

// PreflightOptions tune a preflight.
type PreflightOptions struct {
	// SkipModelCheck does not require the devices' models to declare
	// DeviceMove, for fleets whose firmware handles it without saying so.
	SkipModelCheck bool
}

// Preflight checks names.
const (
	CheckOnline     = "online"
	CheckModel      = "model"
	CheckEnrollment = "enrollment"
	CheckCapacity   = "capacity"
	CheckRemote     = "remote" // the target Ferry: reachable, credentials accepted
)

// Problem is one thing that would fail, and why.
type Problem struct {
	Check    string `json:"check"`
	DeviceID string `json:"deviceId,omitempty"`
	Reason   string `json:"reason"`
}

// PreflightReport says whether a migration can start and what would fail.
type PreflightReport struct {
	OK                 bool      `json:"ok"`
	Devices            int       `json:"devices"`
	Online             int       `json:"online"`
	EnrollmentGroups   []string  `json:"enrollmentGroups,omitempty"`   // target groups the devices attest with
	EnrollmentsCreated []string  `json:"enrollmentsCreated,omitempty"` // of those, the ones this preflight created
	Problems           []Problem `json:"problems,omitempty"`
}

// Preflight checks a created (or already preflighted) migration before
// anything moves: its devices are online, their models declare DeviceMove,
// the target has an enabled enrollment group with the same group key as
// the source (one is created when missing), and the target has room (see
// checkCapacity). The
// report is stored with the migration, which becomes Ready when nothing
// would fail. Returns ENOTFOUND, or ECONFLICT once the migration started.
func (o *Orchestrator) Preflight(ctx context.Context, id string, opt PreflightOptions) (*PreflightReport, error) {
	st := o.cfg.Store
	m, err := st.GetMigration(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("migrate: preflight: %w", err)
	}
	if m.State != ferry.MigrationCreated && m.State != ferry.MigrationReady {
		return nil, ferry.Errorf(ferry.ECONFLICT, "The migration is %s; preflight runs before it starts.", m.State)
	}
	recs, err := allDevices(ctx, st, id)
	if err != nil {
		return nil, fmt.Errorf("migrate: preflight: %w", err)
	}
	rep := &PreflightReport{Devices: len(recs)}
	add := func(check, dev, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Check: check, DeviceID: dev, Reason: fmt.Sprintf(format, args...)})
	}
	var target *ferry.ProvisioningService
	var tgroups targetGroups = localGroups{st}
	var rt RemoteTarget
	if m.Target.Remote != nil {
		rt, err = o.dialRemote(ctx, m)
		if err == nil {
			target, err = rt.Service(ctx)
		}
		if err != nil {
			add(CheckRemote, "", "the target Ferry at %s: %s", m.Target.Remote.APIEndpoint, ferry.ErrorMessage(err))
			target = nil
		}
		tgroups = remoteGroups{rt}
	} else {
		if target, err = st.GetProvisioningService(ctx, m.Target.ProvisioningServiceID); err != nil {
			return nil, fmt.Errorf("migrate: preflight: target: %w", err)
		}
	}
	if target != nil && len(target.LinkedHubs) == 0 {
		add(CheckCapacity, "", "the target provisioning service links no hub")
	}
	if target != nil {
		if err := o.checkCapacity(ctx, target, rt, recs, add); err != nil {
			return nil, fmt.Errorf("migrate: preflight: %w", err)
		}
	}
	source, err := o.sourceService(ctx, m, recs)
	if err != nil {
		return nil, fmt.Errorf("migrate: preflight: %w", err)
	}
	if source == nil {
		add(CheckEnrollment, "", "no provisioning service links the source hub, so devices could not fail back")
	}
	templates := map[string]*ferry.DeviceTemplate{}
	checked := map[string]string{} // source group ID → problem ("" when fine)
	for _, rec := range recs {
		ident, err := st.GetDeviceIdentity(ctx, m.SourceHubID, rec.DeviceID)
		if ferry.IsCode(err, ferry.ENOTFOUND) {
			add(CheckOnline, rec.DeviceID, "no longer exists at the source hub")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("migrate: preflight: %w", err)
		}
		if o.cfg.Hubs.Connected(m.SourceHubID, rec.DeviceID) {
			rep.Online++
		} else {
			add(CheckOnline, rec.DeviceID, "not connected to the source hub")
		}
		if !opt.SkipModelCheck && m.MethodName == "" {
			if reason := o.modelProblem(ctx, ident.ModelID, templates); reason != "" {
				add(CheckModel, rec.DeviceID, "%s", reason)
			}
		}
		if ident.EnrollmentGroupID == "" {
			add(CheckEnrollment, rec.DeviceID, "was not provisioned by an enrollment group; only group-attested devices can move")
			continue
		}
		reason, seen := checked[ident.EnrollmentGroupID]
		if !seen && source != nil && target != nil {
			created, r, err := o.targetGroup(ctx, m, source, target, tgroups, ident.EnrollmentGroupID)
			if err != nil && m.Target.Remote != nil {
				// The remote's answer is the problem: unreachable, 401/403.
				r, err = "the target Ferry: "+ferry.ErrorMessage(err), nil
			}
			if err != nil {
				return nil, fmt.Errorf("migrate: preflight: %w", err)
			}
			reason = r
			checked[ident.EnrollmentGroupID] = r
			if r == "" {
				rep.EnrollmentGroups = append(rep.EnrollmentGroups, targetGroupID(m, ident.EnrollmentGroupID))
				if created {
					rep.EnrollmentsCreated = append(rep.EnrollmentsCreated, targetGroupID(m, ident.EnrollmentGroupID))
				}
			}
		}
		if reason != "" {
			add(CheckEnrollment, rec.DeviceID, "%s", reason)
		}
	}
	rep.OK = len(rep.Problems) == 0
	doc, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("migrate: preflight: %w", err)
	}
	_, err = o.updateMigration(ctx, id, func(m *ferry.Migration) error {
		if m.State != ferry.MigrationCreated && m.State != ferry.MigrationReady {
			return ferry.Errorf(ferry.ECONFLICT, "The migration is %s.", m.State)
		}
		m.Preflight = doc
		m.State, m.StateReason = ferry.MigrationCreated, fmt.Sprintf("preflight found %d problems", len(rep.Problems))
		if rep.OK {
			m.State, m.StateReason = ferry.MigrationReady, ""
		}
		if m.Target.EnrollmentGroupID == "" && len(rep.EnrollmentGroups) == 1 {
			m.Target.EnrollmentGroupID = rep.EnrollmentGroups[0]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: preflight: %w", err)
	}
	return rep, nil
}

func (o *Orchestrator) modelProblem(ctx context.Context, modelID string, cache map[string]*ferry.DeviceTemplate) string {
	if modelID == "" {
		return "announces no model, so DeviceMove support is unknown"
	}
	t, ok := cache[modelID]
	if !ok {
		var err error
		t, err = o.cfg.Store.GetDeviceTemplate(ctx, modelID)
		if err != nil {
			t = nil
		}
		cache[modelID] = t
	}
	switch {
	case t == nil:
		return fmt.Sprintf("its model %s is not imported as a device template", modelID)
	case !t.HasDeviceMove:
		return fmt.Sprintf("its model %s does not declare DeviceMove (dtmi:azureiot:DeviceMigration;1)", modelID)
	}
	return ""
}

func targetGroupID(m *ferry.Migration, sourceGroup string) string {
	if m.Target.EnrollmentGroupID != "" {
		return m.Target.EnrollmentGroupID
	}
	return sourceGroup
}

// targetGroup makes sure the target has an enabled enrollment group with
// the source group's keys, creating it when missing. It returns a problem
// when there is one.
func (o *Orchestrator) targetGroup(ctx context.Context, m *ferry.Migration, source, target *ferry.ProvisioningService, tg targetGroups, groupID string) (created bool, problem string, err error) {
	st := o.cfg.Store
	src, err := st.GetEnrollmentGroup(ctx, source.ID, groupID)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return false, fmt.Sprintf("its source enrollment group %s no longer exists", groupID), nil
	}
	if err != nil {
		return false, "", err
	}
	if src.Attestation.Type != ferry.AttestSymmetricKey {
		return false, fmt.Sprintf("its enrollment group %s is not symmetric-key; create the target group by hand", groupID), nil
	}
	tid := targetGroupID(m, groupID)
	dst, err := tg.getGroup(ctx, target.ID, tid)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		now := o.now().UTC()
		g := &ferry.EnrollmentGroup{ServiceID: target.ID, ID: tid, Attestation: src.Attestation,
			ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
			Status:            ferry.EnrollmentEnabled, InitialTwin: src.InitialTwin, IoTEdge: src.IoTEdge, CreatedAt: now, UpdatedAt: now}
		if err := tg.createGroup(ctx, g); err != nil {
			return false, "", fmt.Errorf("create target enrollment group: %w", err)
		}
		o.log.Info("created target enrollment group", "migration_id", m.ID, "group", tid)
		return true, "", nil
	}
	if err != nil {
		return false, "", err
	}
	switch {
	case dst.Status == ferry.EnrollmentDisabled:
		return false, fmt.Sprintf("the target enrollment group %s is disabled", tid), nil
	case dst.Attestation.Type != ferry.AttestSymmetricKey ||
		!strings.EqualFold(dst.Attestation.PrimaryKey, src.Attestation.PrimaryKey) && !strings.EqualFold(dst.Attestation.SecondaryKey, src.Attestation.PrimaryKey):
		return false, fmt.Sprintf("the target enrollment group %s has other keys than the source group, so device keys would not attest", tid), nil
	}
	return false, "", nil
}

// targetGroups reads and creates enrollment groups at the target.
type targetGroups interface {
	getGroup(ctx context.Context, serviceID, id string) (*ferry.EnrollmentGroup, error)
	createGroup(ctx context.Context, g *ferry.EnrollmentGroup) error
}

// localGroups are a target's groups on this server.
type localGroups struct{ st ferry.Store }

func (l localGroups) getGroup(ctx context.Context, serviceID, id string) (*ferry.EnrollmentGroup, error) {
	return l.st.GetEnrollmentGroup(ctx, serviceID, id)
}

func (l localGroups) createGroup(ctx context.Context, g *ferry.EnrollmentGroup) error {
	return l.st.PutEnrollmentGroup(ctx, g, "")
}

// remoteGroups are a target's groups on another Ferry.
type remoteGroups struct{ t RemoteTarget }

func (r remoteGroups) getGroup(ctx context.Context, _, id string) (*ferry.EnrollmentGroup, error) {
	return r.t.GetEnrollmentGroup(ctx, id)
}

func (r remoteGroups) createGroup(ctx context.Context, g *ferry.EnrollmentGroup) error {
	return r.t.CreateEnrollmentGroup(ctx, g)
}

// MaxHubDevices is IoT Hub's quota of device identities per hub, which
// preflight keeps target hubs within unless Config.MaxHubDevices says
// otherwise.
const MaxHubDevices = 1_000_000

// idChunk bounds the device IDs of one count query.
const idChunk = 500

// checkCapacity checks that the target can take the migration's devices.
// Each linked hub must exist, and its identities plus the moving devices
// not there yet must stay within MaxHubDevices: each hub, because the
// allocation policy may send any device to any of them. A remote target
// is a different server, which the devices will connect to on top of the
// connections it holds, so its open connections plus the moving devices
// must stay within its connection limit. A local target needs no such
// check: the devices leave connections of this same process.
func (o *Orchestrator) checkCapacity(ctx context.Context, target *ferry.ProvisioningService, rt RemoteTarget,
	recs []*ferry.MigrationDevice, add func(check, dev, format string, args ...any)) error {
	st := o.cfg.Store
	maxDevices := int64(o.cfg.MaxHubDevices)
	if maxDevices <= 0 {
		maxDevices = MaxHubDevices
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.DeviceID
	}
	moving := int64(len(ids))
	hubFull := func(host string, devices, arriving int64, upTo string) {
		if devices+arriving > maxDevices {
			add(CheckCapacity, "", "the target hub %s holds %s devices and this migration adds %s%s; a hub holds at most %s",
				host, thousands(devices), upTo, thousands(arriving), thousands(maxDevices))
		}
	}
	if rt == nil {
		for _, l := range target.LinkedHubs {
			if _, err := st.GetHub(ctx, l.HubID); ferry.IsCode(err, ferry.ENOTFOUND) {
				add(CheckCapacity, "", "the target's linked hub %s does not exist", l.HostName)
				continue
			} else if err != nil {
				return fmt.Errorf("target hub %s: %w", l.HostName, err)
			}
			devices, err := st.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: l.HubID})
			if err != nil {
				return fmt.Errorf("count the devices of target hub %s: %w", l.HostName, err)
			}
			there := 0
			for i := 0; i < len(ids) && devices > 0; i += idChunk {
				n, err := st.CountDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: l.HubID, IDs: ids[i:min(i+idChunk, len(ids))]})
				if err != nil {
					return fmt.Errorf("count the devices of target hub %s: %w", l.HostName, err)
				}
				there += n
			}
			hubFull(l.HostName, int64(devices), moving-int64(there), "")
		}
		return nil
	}
	var server *HubStatistics // the target Ferry's connections, from the first hub that reports them
	for _, l := range target.LinkedHubs {
		stats, err := rt.HubStatistics(ctx, l.HostName)
		if err != nil {
			add(CheckRemote, "", "the target Ferry's statistics of hub %s: %s", l.HostName, ferry.ErrorMessage(err))
			return nil
		}
		// A remote registry is not searched device by device: every
		// moving device counts as new, which errs on the safe side.
		hubFull(l.HostName, stats.Devices, moving, "up to ")
		if server == nil && stats.ConnectionLimit > 0 {
			server = &stats
		}
	}
	if server != nil && server.OpenConnections+moving > server.ConnectionLimit {
		add(CheckCapacity, "", "the target Ferry accepts %s more device connections (limit %s, %s open); this migration moves %s",
			thousands(max(0, server.ConnectionLimit-server.OpenConnections)), thousands(server.ConnectionLimit),
			thousands(server.OpenConnections), thousands(moving))
	}
	return nil
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
