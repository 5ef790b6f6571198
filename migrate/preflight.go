package migrate

import (
	"context"
	"encoding/json"
	"fmt"
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
// the source (one is created when missing), and the target hubs exist. The
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
	if m.Target.Remote != nil {
		rt, err := o.dialRemote(ctx, m)
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
		for _, l := range target.LinkedHubs {
			if _, err := st.GetHub(ctx, l.HubID); err != nil {
				add(CheckCapacity, "", "the target's linked hub %s does not exist", l.HostName)
			}
		}
	}
	if target != nil && len(target.LinkedHubs) == 0 {
		add(CheckCapacity, "", "the target provisioning service links no hub")
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
