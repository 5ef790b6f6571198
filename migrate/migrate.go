// Package migrate is Ferry's fleet migration orchestrator: it moves a
// selection of a hub's devices to a target provisioning service in waves,
// commands each device with DeviceMove (dtmi:azureiot:DeviceMigration;1),
// follows it through the real events of the device plane (its method
// response, its registration at the target, its connection there and its
// first telemetry there) and fails back what does not arrive in time.
//
// Every device transition is written to the store, with a compare-and-set,
// before it is acted on, so an orchestrator that stops in the middle of a
// wave is replaced by another on the same store and carries on: what it
// missed while down is re-derived from registration records and connection
// states rather than waited for.
package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
)

// Config configures an Orchestrator.
type Config struct {
	Store  ferry.Store
	Hubs   ferry.HubService // invokes DeviceMove and reports sessions
	Bus    ferry.EventBus   // provisioned, connected and telemetry events
	Logger *slog.Logger
	Now    func() time.Time
	// Tick is how often running migrations dispatch commands and check
	// deadlines and waves; 0: 200 ms.
	Tick time.Duration
	// MethodTimeout bounds the wait for a DeviceMove response; 0: 30 s.
	MethodTimeout time.Duration
	// Concurrency bounds DeviceMove calls in flight; 0: 256.
	Concurrency int
	// RetryInterval is how long a failback command waits before it is sent
	// again to a device that has not come back; 0: 5 s.
	RetryInterval time.Duration
	// Remote reaches target provisioning services on other Ferry
	// deployments; nil refuses migrations with a remote target.
	Remote RemoteDialer
	// MaxHubDevices is the most identities preflight lets a target hub
	// reach; 0: MaxHubDevices, IoT Hub's quota.
	MaxHubDevices int
}

// Orchestrator runs migrations. Create and Preflight work at any time;
// running migrations advance only between Start and Close.
type Orchestrator struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex // guards started, ops
	started bool
	ops     chan op

	events  chan ferry.Event
	results chan result
	sem     chan struct{}
	cancel  context.CancelFunc
	lctx    context.Context // the loop's: remote followers live in it
	unsub   func()
	done    chan struct{}
	calls   sync.WaitGroup

	watchMu sync.RWMutex
	watched map[string]int // device ID → runs in which it is in flight or failing back

	// Owned by the loop goroutine.
	runs     map[string]*run
	byDevice map[string][]*run
	// Transitions observed in events and method results since the last
	// tick, written together at the next one (or sooner when many), before
	// anything acts on them: until then devices keep their written state
	// and tent holds the states they will have.
	pending  map[*run][]*ferry.MigrationTransition
	npending int
	tent     map[*dev]ferry.DeviceMigrationState
}

type op struct {
	fn   func(ctx context.Context) error
	done chan error
}

// New returns an orchestrator. Call Start to run migrations.
func New(cfg Config) (*Orchestrator, error) {
	if cfg.Store == nil || cfg.Hubs == nil || cfg.Bus == nil {
		return nil, ferry.Errorf(ferry.EINVALID, "The migration orchestrator needs a store, a hub service and an event bus.")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 200 * time.Millisecond
	}
	if cfg.MethodTimeout <= 0 {
		cfg.MethodTimeout = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	return &Orchestrator{cfg: cfg, log: cfg.Logger.With("subsystem", "migrate"), now: cfg.Now,
		runs: map[string]*run{}, byDevice: map[string][]*run{}, watched: map[string]int{},
		pending: map[*run][]*ferry.MigrationTransition{}, tent: map[*dev]ferry.DeviceMigrationState{}}, nil
}

// Start subscribes to the bus, loads the migrations that are running,
// paused or cancelling, re-derives what happened to their devices while no
// orchestrator watched, and carries them on in the background until Close.
func (o *Orchestrator) Start(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started {
		return ferry.Errorf(ferry.ECONFLICT, "The orchestrator is already started.")
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	o.events = make(chan ferry.Event, 16384)
	o.results = make(chan result, 1024)
	o.sem = make(chan struct{}, o.cfg.Concurrency)
	o.ops = make(chan op)
	o.done = make(chan struct{})
	o.cancel, o.lctx = cancel, lctx
	o.unsub = o.cfg.Bus.Subscribe("migrate", func(ev ferry.Event) {
		if !o.relevant(ev) {
			return
		}
		select {
		case o.events <- ev:
		case <-lctx.Done():
		}
	})
	page, err := o.listActive(ctx)
	if err != nil {
		o.unsub()
		cancel()
		return fmt.Errorf("migrate: start: %w", err)
	}
	for _, m := range page {
		if err := o.load(ctx, m.ID, true); err != nil {
			o.log.Error("resume migration", "migration_id", m.ID, "error", err)
		}
	}
	o.started = true
	go o.loop(lctx)
	return nil
}

// Close stops the orchestrator without finishing anything: running
// migrations stay running in the store, for the next Start to resume.
func (o *Orchestrator) Close() error {
	o.mu.Lock()
	if !o.started {
		o.mu.Unlock()
		return nil
	}
	o.started = false
	o.mu.Unlock()
	o.unsub()
	o.cancel()
	<-o.done
	o.calls.Wait()
	return nil
}

func (o *Orchestrator) listActive(ctx context.Context) ([]*ferry.Migration, error) {
	var out []*ferry.Migration
	f := ferry.MigrationFilter{States: []ferry.MigrationState{ferry.MigrationRunning, ferry.MigrationPaused, ferry.MigrationCancelling}}
	for {
		p, err := o.cfg.Store.ListMigrations(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		f.After = p.Next
	}
}

// do runs fn on the loop goroutine when the orchestrator is started, so it
// never races the loop, and inline otherwise.
func (o *Orchestrator) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return o.onLoopOr(ctx, fn, fn)
}

// onLoopOr runs fn on the loop goroutine and waits for its error; when the
// orchestrator is not started it runs notStarted instead.
func (o *Orchestrator) onLoopOr(ctx context.Context, fn, notStarted func(ctx context.Context) error) error {
	o.mu.Lock()
	started, ops, done := o.started, o.ops, o.done
	o.mu.Unlock()
	if !started {
		return notStarted(ctx)
	}
	req := op{fn: fn, done: make(chan error, 1)}
	select {
	case ops <- req:
	case <-done:
		return ferry.Errorf(ferry.ECONFLICT, "The orchestrator is closing.")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Create validates a migration, resolves its selection at the source hub,
// splits it into waves and stores it with one pending record per device.
// The ID, state and times are set here. Returns EINVALID for a bad plan or
// an empty selection, ENOTFOUND if the source hub, the target service or a
// listed device does not exist, ECONFLICT if the name is taken.
func (o *Orchestrator) Create(ctx context.Context, m *ferry.Migration) (*ferry.Migration, error) {
	if m.Name == "" {
		return nil, ferry.Errorf(ferry.EINVALID, "A migration needs a name.")
	}
	if m.DeviceTimeout <= 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "A migration needs a positive device timeout.")
	}
	if m.CommandRate < 0 || m.SuccessThreshold < 0 || m.SuccessThreshold > 100 || m.ErrorThreshold < 0 || m.ErrorThreshold > 100 {
		return nil, ferry.Errorf(ferry.EINVALID, "Thresholds are percentages from 0 to 100 and the command rate is not negative.")
	}
	switch m.OnError {
	case "":
		m.OnError = ferry.OnErrorPause
	case ferry.OnErrorPause, ferry.OnErrorFailback:
	default:
		return nil, ferry.Errorf(ferry.EINVALID, "onError must be pause or failback.")
	}
	if _, err := o.cfg.Store.GetHub(ctx, m.SourceHubID); err != nil {
		return nil, fmt.Errorf("migrate: source hub: %w", err)
	}
	if m.Target.Remote != nil {
		if err := o.createRemote(ctx, m); err != nil {
			return nil, fmt.Errorf("migrate: target Ferry: %w", err)
		}
	} else if err := o.checkLocalTarget(ctx, m); err != nil {
		return nil, err
	}
	ids, err := o.selectDevices(ctx, m)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "The selection holds no device.")
	}
	sizes, err := waveSizes(m.Waves, len(ids))
	if err != nil {
		return nil, err
	}
	now := o.now().UTC()
	m.ID, m.State, m.StateReason, m.CurrentWave, m.CreatedAt = ferry.NewUUID(), ferry.MigrationCreated, "", 0, now
	m.StartedAt, m.CompletedAt = time.Time{}, time.Time{}
	waves := make([]*ferry.MigrationWave, len(sizes))
	var recs []*ferry.MigrationDevice
	next := 0
	for i, n := range sizes {
		waves[i] = &ferry.MigrationWave{MigrationID: m.ID, Index: i, Size: n, State: ferry.WavePending}
		for _, id := range ids[next : next+n] {
			recs = append(recs, &ferry.MigrationDevice{MigrationID: m.ID, DeviceID: id, Wave: i, State: ferry.DevicePending, UpdatedAt: now})
		}
		next += n
	}
	err = o.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		if err := tx.CreateMigration(ctx, m); err != nil {
			return err
		}
		if err := tx.PutMigrationWaves(ctx, waves); err != nil {
			return err
		}
		return tx.AddMigrationDevices(ctx, recs)
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: create: %w", err)
	}
	return o.cfg.Store.GetMigration(ctx, m.ID)
}

// checkLocalTarget checks a target provisioning service on this server and
// fills in its ID scope.
func (o *Orchestrator) checkLocalTarget(ctx context.Context, m *ferry.Migration) error {
	svc, err := o.cfg.Store.GetProvisioningService(ctx, m.Target.ProvisioningServiceID)
	if err != nil {
		return fmt.Errorf("migrate: target provisioning service: %w", err)
	}
	for _, l := range svc.LinkedHubs {
		if l.HubID == m.SourceHubID {
			return ferry.Errorf(ferry.EINVALID, "The target provisioning service links the source hub; devices would not move.")
		}
	}
	return adoptTarget(m, svc)
}

// adoptTarget checks that the target provisioning service links a hub and
// has the migration's ID scope, which it fills in when none was given.
func adoptTarget(m *ferry.Migration, svc *ferry.ProvisioningService) error {
	if len(svc.LinkedHubs) == 0 {
		return ferry.Errorf(ferry.EINVALID, "The target provisioning service links no hub.")
	}
	if m.Target.IDScope == "" {
		m.Target.IDScope = svc.IDScope
	} else if !strings.EqualFold(m.Target.IDScope, svc.IDScope) {
		return ferry.Errorf(ferry.EINVALID, "The target ID scope is not the target provisioning service's.")
	}
	return nil
}

// selectDevices returns the sorted device IDs a migration names.
func (o *Orchestrator) selectDevices(ctx context.Context, m *ferry.Migration) ([]string, error) {
	st := o.cfg.Store
	switch m.Selection.Kind {
	case ferry.SelectDeviceIDs:
		ids := slices.Clone(m.Selection.DeviceIDs)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for _, id := range ids {
			if _, err := st.GetDeviceIdentity(ctx, m.SourceHubID, id); err != nil {
				return nil, fmt.Errorf("migrate: device %q: %w", id, err)
			}
		}
		return ids, nil
	case ferry.SelectHubDeviceGroup:
		g, err := st.GetHubDeviceGroup(ctx, m.SourceHubID, m.Selection.HubDeviceGroupID)
		if err != nil {
			return nil, fmt.Errorf("migrate: device group: %w", err)
		}
		if g.HubID != m.SourceHubID {
			return nil, ferry.Errorf(ferry.EINVALID, "The device group belongs to another hub.")
		}
		where, err := hubquery.ParseCondition(g.Query)
		if err != nil {
			return nil, fmt.Errorf("migrate: device group query: %w", err)
		}
		var ids []string
		f := ferry.DeviceIdentityFilter{HubID: m.SourceHubID}
		for {
			p, err := st.ListDeviceIdentities(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("migrate: list devices: %w", err)
			}
			for _, d := range p.Items {
				t, err := st.GetTwin(ctx, d.HubID, d.DeviceID)
				if err != nil {
					return nil, fmt.Errorf("migrate: twin: %w", err)
				}
				if where.Match(hubquery.TwinDocument(d, t)) {
					ids = append(ids, d.DeviceID)
				}
			}
			if p.Next == "" {
				break
			}
			f.After = p.Next
		}
		slices.Sort(ids)
		return ids, nil
	case ferry.SelectCatalogDeviceGroup:
		return o.catalogGroupDevices(ctx, m)
	default:
		return nil, ferry.Errorf(ferry.EINVALID, "Unknown selection kind %q.", m.Selection.Kind)
	}
}

// catalogGroupDevices returns the identities at the source hub of the
// devices claimed into a catalog device group. A Sphere device's hub
// identity is its chip ID in lower case (as the Azure Sphere OS registers
// it); the claimed form, in upper case, is tried as well. Devices of the
// group with no identity at the source hub are not on that hub, so they
// are not part of the selection.
func (o *Orchestrator) catalogGroupDevices(ctx context.Context, m *ferry.Migration) ([]string, error) {
	st := o.cfg.Store
	if _, err := st.GetDeviceGroup(ctx, m.Selection.CatalogDeviceGroupID); err != nil {
		return nil, fmt.Errorf("migrate: catalog device group: %w", err)
	}
	var ids []string
	f := ferry.DeviceFilter{DeviceGroupID: m.Selection.CatalogDeviceGroupID}
	for {
		p, err := st.ListDevices(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("migrate: list catalog devices: %w", err)
		}
		for _, d := range p.Items {
			for _, id := range []string{strings.ToLower(d.ID), d.ID} {
				_, err := st.GetDeviceIdentity(ctx, m.SourceHubID, id)
				if err == nil {
					ids = append(ids, id)
					break
				}
				if !ferry.IsCode(err, ferry.ENOTFOUND) {
					return nil, fmt.Errorf("migrate: device %q: %w", id, err)
				}
			}
		}
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}
	slices.Sort(ids)
	return ids, nil
}

// waveSizes splits n devices by a plan: counts (the last wave takes the
// rest) or percentages; no plan is one wave.
func waveSizes(p ferry.WavePlan, n int) ([]int, error) {
	var sizes []int
	switch {
	case len(p.Sizes) > 0 && len(p.Percentages) > 0:
		return nil, ferry.Errorf(ferry.EINVALID, "A wave plan has sizes or percentages, not both.")
	case len(p.Sizes) > 0:
		left := n
		for i, s := range p.Sizes {
			if s <= 0 {
				return nil, ferry.Errorf(ferry.EINVALID, "Wave sizes must be positive.")
			}
			if i == len(p.Sizes)-1 || s >= left {
				s = left
			}
			sizes = append(sizes, s)
			left -= s
			if left == 0 {
				break
			}
		}
	case len(p.Percentages) > 0:
		total, left := 0, n
		for i, pc := range p.Percentages {
			if pc <= 0 {
				return nil, ferry.Errorf(ferry.EINVALID, "Wave percentages must be positive.")
			}
			total += pc
			s := (n*total+99)/100 - (n - left)
			if i == len(p.Percentages)-1 {
				s = left
			}
			s = min(max(s, 0), left)
			if s > 0 {
				sizes = append(sizes, s)
			}
			left -= s
		}
		if total > 100 {
			return nil, ferry.Errorf(ferry.EINVALID, "Wave percentages add up to more than 100.")
		}
	default:
		sizes = []int{n}
	}
	return sizes, nil
}

// setState changes a migration's state when it is in one of from.
func (o *Orchestrator) setState(ctx context.Context, id string, to ferry.MigrationState, reason string, from ...ferry.MigrationState) error {
	return o.do(ctx, func(ctx context.Context) error {
		m, err := o.updateMigration(ctx, id, func(m *ferry.Migration) error {
			if !slices.Contains(from, m.State) {
				return ferry.Errorf(ferry.ECONFLICT, "The migration is %s.", m.State)
			}
			m.State, m.StateReason = to, reason
			if to == ferry.MigrationRunning && m.StartedAt.IsZero() {
				m.StartedAt = o.now().UTC()
			}
			return nil
		})
		if err != nil {
			return err
		}
		if o.isStarted() {
			if r := o.runs[id]; r != nil {
				r.m = m
				return nil
			}
			return o.load(ctx, id, false)
		}
		return nil
	})
}

func (o *Orchestrator) isStarted() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.started
}

// updateMigration applies fn to the stored migration with a compare-and-set,
// retrying when someone else wrote in between.
func (o *Orchestrator) updateMigration(ctx context.Context, id string, fn func(m *ferry.Migration) error) (*ferry.Migration, error) {
	for range 10 {
		m, err := o.cfg.Store.GetMigration(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(m); err != nil {
			return nil, err
		}
		err = o.cfg.Store.UpdateMigration(ctx, m, m.ETag)
		if ferry.IsCode(err, ferry.EPRECONDITION) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return o.cfg.Store.GetMigration(ctx, id)
	}
	return nil, ferry.Errorf(ferry.ECONFLICT, "The migration kept changing; try again.")
}

// Begin starts a created or preflighted migration. Returns ECONFLICT in any
// other state.
func (o *Orchestrator) Begin(ctx context.Context, id string) error {
	return o.setState(ctx, id, ferry.MigrationRunning, "", ferry.MigrationCreated, ferry.MigrationReady)
}

// Pause stops commanding new devices; devices already commanded are still
// followed to the end. Returns ECONFLICT unless the migration is running.
func (o *Orchestrator) Pause(ctx context.Context, id string) error {
	return o.setState(ctx, id, ferry.MigrationPaused, "paused by the operator", ferry.MigrationRunning)
}

// Resume carries on a paused migration. Returns ECONFLICT unless paused.
func (o *Orchestrator) Resume(ctx context.Context, id string) error {
	return o.setState(ctx, id, ferry.MigrationRunning, "", ferry.MigrationPaused)
}

// Cancel stops the migration and fails back every device in flight; it
// ends Cancelled once they are all back at the source. Devices already
// verified stay at the target. Returns ECONFLICT when it has ended.
func (o *Orchestrator) Cancel(ctx context.Context, id string) error {
	return o.setState(ctx, id, ferry.MigrationCancelling, "cancelled by the operator",
		ferry.MigrationCreated, ferry.MigrationReady, ferry.MigrationRunning, ferry.MigrationPaused)
}

// Failback commands the named devices (every device that left the source
// when none is named) back to the source, verified ones included: their
// source identities are enabled again. A migration that had ended is set
// Cancelling until they are back. Returns ENOTFOUND for an unknown device.
func (o *Orchestrator) Failback(ctx context.Context, id string, deviceIDs []string) error {
	return o.do(ctx, func(ctx context.Context) error {
		m, err := o.cfg.Store.GetMigration(ctx, id)
		if err != nil {
			return fmt.Errorf("migrate: failback: %w", err)
		}
		var recs []*ferry.MigrationDevice
		if len(deviceIDs) == 0 {
			recs, err = allDevices(ctx, o.cfg.Store, id)
			if err != nil {
				return fmt.Errorf("migrate: failback: %w", err)
			}
		} else {
			for _, d := range deviceIDs {
				rec, err := o.cfg.Store.GetMigrationDevice(ctx, id, d)
				if err != nil {
					return fmt.Errorf("migrate: failback %q: %w", d, err)
				}
				recs = append(recs, rec)
			}
		}
		now := o.now().UTC()
		var ts []*ferry.MigrationTransition
		for _, rec := range recs {
			if !leftSource(rec.State) {
				continue
			}
			ts = append(ts, &ferry.MigrationTransition{MigrationID: id, DeviceID: rec.DeviceID, From: rec.State,
				To: ferry.DeviceFailingBack, At: now, Reason: "failback requested by the operator", Deadline: now.Add(m.DeviceTimeout)})
		}
		if len(ts) > 0 {
			if err := o.cfg.Store.TransitionMigrationDevices(ctx, ts); err != nil {
				return fmt.Errorf("migrate: failback: %w", err)
			}
		}
		if m.State.Terminal() || m.State == ferry.MigrationCreated || m.State == ferry.MigrationReady {
			if _, err := o.updateMigration(ctx, id, func(m *ferry.Migration) error {
				m.State, m.StateReason = ferry.MigrationCancelling, "failback requested by the operator"
				return nil
			}); err != nil {
				return fmt.Errorf("migrate: failback: %w", err)
			}
		}
		if o.isStarted() {
			return o.load(ctx, id, false)
		}
		return nil
	})
}

// leftSource reports whether a device in state s may be away from the
// source: commanded or further on the way out, or verified at the target.
func leftSource(s ferry.DeviceMigrationState) bool {
	switch s {
	case ferry.DeviceCommanded, ferry.DeviceAcknowledged, ferry.DeviceProvisioned, ferry.DeviceConnected, ferry.DeviceVerified:
		return true
	}
	return false
}

func allDevices(ctx context.Context, st ferry.Store, id string) ([]*ferry.MigrationDevice, error) {
	var out []*ferry.MigrationDevice
	f := ferry.MigrationDeviceFilter{MigrationID: id, Wave: -1, ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}}
	for {
		p, err := st.ListMigrationDevices(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		f.After = p.Next
	}
}
