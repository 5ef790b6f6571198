package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
)

// run is a loaded migration the loop follows.
type run struct {
	m          *ferry.Migration
	waves      []*ferry.MigrationWave
	devs       map[string]*dev
	byWave     [][]*dev // sorted by device ID
	target     *ferry.ProvisioningService
	targetHubs map[string]bool
	source     *ferry.ProvisioningService // where failback sends devices; nil if unknown
	nextCmd    time.Time                  // when the next rate-limited command may go; zero: now
	methodsMu  sync.Mutex                 // methods is filled by command goroutines
	methods    map[string]string          // model ID → DeviceMove method name
	remote     *remoteRun                 // set when the target is on another Ferry

	// What each tick looks at, kept up to date as states change (track),
	// so that a tick costs the devices in motion rather than the whole
	// fleet: the devices on their way out or failing back, each wave's
	// count of devices by state, and each wave's first device that may
	// still be pending (no device goes back to pending).
	active  map[*dev]bool
	counts  []map[ferry.DeviceMigrationState]int
	pending []int
}

// dev is one device of a run. rec mirrors the store after every write.
type dev struct {
	rec      *ferry.MigrationDevice
	deadline time.Time // rec.Deadline, or later after a restart
	calling  bool      // a method call is in flight
	cmdAt    time.Time // when a failback command was last sent
	fbAcked  bool      // the device accepted the failback command (or came back by itself)
	fbSafeAt time.Time // telemetry at the source counts from then on
	resend   bool      // commanded before a restart without evidence: command again
	retryAt  time.Time // when to command again a device that was not online
	offline  bool      // the last DeviceMove found the device not online
	backAt   time.Time // when an acknowledged device was seen at the source again
	method   string
	sendAt   time.Time // when a dispatched command is due to go
}

// result is the outcome of a DeviceMove call.
type result struct {
	migrationID, deviceID string
	failback              bool
	hub                   string
	method                string // the method name looked up for the call, if it was not known
	resp                  ferry.MethodResponse
	err                   error
}

// transitionData is the Data of a migration transition event on the bus.
type transitionData struct {
	MigrationID string                     `json:"migrationId"`
	Migration   string                     `json:"migration"`
	Wave        int                        `json:"wave"`
	From        ferry.DeviceMigrationState `json:"from"`
	To          ferry.DeviceMigrationState `json:"to"`
	Reason      string                     `json:"reason,omitempty"`
}

// backGrace is how long an acknowledged device that reconnected to the
// source may take to leave again before it is taken for a failed move.
const backGrace = 2 * time.Second

// reasonCameBack is the reason of an accepted (or even registered) move
// that ended with the device at the source again, e.g. when its
// registration timed out on its side.
const reasonCameBack = "came back to the source hub: its move failed"

// moving lists the states on the way out, in order.
var moving = []ferry.DeviceMigrationState{ferry.DeviceCommanded, ferry.DeviceAcknowledged, ferry.DeviceProvisioned,
	ferry.DeviceConnected, ferry.DeviceVerified}

func stage(s ferry.DeviceMigrationState) int { return slices.Index(moving, s) }

// inFlight reports whether a device is on its way out but not verified.
func inFlight(s ferry.DeviceMigrationState) bool {
	i := stage(s)
	return i >= 0 && i < len(moving)-1
}

// watched reports whether telemetry of a device in state s matters: it is
// on its way out or coming back.
func watched(s ferry.DeviceMigrationState) bool {
	return inFlight(s) || s == ferry.DeviceFailingBack
}

// watch counts the devices whose telemetry the bus subscriber passes on,
// so that a fleet's steady telemetry never queues up in front of the few
// events that move devices.
func (o *Orchestrator) watch(deviceID string, from, to ferry.DeviceMigrationState) {
	a, b := watched(from), watched(to)
	if a == b {
		return
	}
	o.watchMu.Lock()
	defer o.watchMu.Unlock()
	if b {
		o.watched[deviceID]++
		return
	}
	if o.watched[deviceID]--; o.watched[deviceID] <= 0 {
		delete(o.watched, deviceID)
	}
}

func (o *Orchestrator) relevant(ev ferry.Event) bool {
	switch {
	case ev.Source == ferry.SourceTelemetry:
		o.watchMu.RLock()
		defer o.watchMu.RUnlock()
		return o.watched[ev.DeviceID] > 0
	case ev.Source == ferry.SourceDeviceConnectivity && ev.Type == ferry.TypeConnected:
		return true
	case ev.Source == ferry.SourceDeviceLifecycle && ev.Type == ferry.TypeProvisioned:
		return true
	}
	return false
}

// load (re)reads a migration into the loop, re-deriving what its in-flight
// devices did while nobody watched. resume extends deadlines that passed
// while the orchestrator was down.
func (o *Orchestrator) load(ctx context.Context, id string, resume bool) error {
	st := o.cfg.Store
	m, err := st.GetMigration(ctx, id)
	if err != nil {
		return err
	}
	o.unload(id)
	if m.State.Terminal() || m.State == ferry.MigrationCreated || m.State == ferry.MigrationReady {
		return nil
	}
	r := &run{m: m, devs: map[string]*dev{}, targetHubs: map[string]bool{}, methods: map[string]string{}, active: map[*dev]bool{}}
	if r.waves, err = st.ListMigrationWaves(ctx, id); err != nil {
		return err
	}
	r.byWave = make([][]*dev, len(r.waves))
	r.counts = make([]map[ferry.DeviceMigrationState]int, len(r.waves))
	for i := range r.counts {
		r.counts[i] = map[ferry.DeviceMigrationState]int{}
	}
	r.pending = make([]int, len(r.waves))
	recs, err := allDevices(ctx, st, id)
	if err != nil {
		return err
	}
	if m.Target.Remote != nil {
		if err := o.loadRemote(ctx, r); err != nil {
			return err
		}
	} else if r.target, err = st.GetProvisioningService(ctx, m.Target.ProvisioningServiceID); err != nil {
		return fmt.Errorf("target provisioning service: %w", err)
	}
	for _, l := range r.target.LinkedHubs {
		r.targetHubs[l.HubID] = true
	}
	if r.source, err = o.sourceService(ctx, m, recs); err != nil {
		return err
	}
	now := o.now()
	for _, rec := range recs {
		d := &dev{rec: rec, deadline: rec.Deadline}
		if resume && (inFlight(rec.State) || rec.State == ferry.DeviceFailingBack) {
			d.deadline = later(d.deadline, now.Add(m.DeviceTimeout/2))
		}
		r.devs[rec.DeviceID] = d
		if rec.Wave >= 0 && rec.Wave < len(r.byWave) {
			r.byWave[rec.Wave] = append(r.byWave[rec.Wave], d)
		}
		r.track(d, "", rec.State)
		o.byDevice[rec.DeviceID] = append(o.byDevice[rec.DeviceID], r)
		o.watch(rec.DeviceID, "", rec.State)
	}
	o.runs[id] = r
	if err := o.derive(ctx, r); err != nil {
		return fmt.Errorf("re-derive device states: %w", err)
	}
	o.log.Info("following migration", "migration_id", id, "state", m.State, "devices", len(recs))
	return nil
}

// active reports whether a device in state s needs the tick's attention:
// it is on its way out or coming back.
func active(s ferry.DeviceMigrationState) bool { return inFlight(s) || s == ferry.DeviceFailingBack }

// track follows a device's change of state (from "" when it is loaded) in
// r.active and r.counts.
func (r *run) track(d *dev, from, to ferry.DeviceMigrationState) {
	if active(to) {
		r.active[d] = true
	} else {
		delete(r.active, d)
	}
	if w := d.rec.Wave; w >= 0 && w < len(r.counts) {
		if from != "" {
			if r.counts[w][from]--; r.counts[w][from] <= 0 {
				delete(r.counts[w], from)
			}
		}
		r.counts[w][to]++
	}
}

func (o *Orchestrator) unload(id string) {
	r := o.runs[id]
	if r == nil {
		return
	}
	delete(o.runs, id)
	if r.remote != nil {
		r.remote.cancel()
	}
	for devID, d := range r.devs {
		o.watch(devID, d.rec.State, "")
		rs := slices.DeleteFunc(o.byDevice[devID], func(x *run) bool { return x == r })
		if len(rs) == 0 {
			delete(o.byDevice, devID)
		} else {
			o.byDevice[devID] = rs
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sourceService finds the provisioning service devices fail back to: one
// linking the source hub, preferring the one holding the devices'
// registrations.
func (o *Orchestrator) sourceService(ctx context.Context, m *ferry.Migration, recs []*ferry.MigrationDevice) (*ferry.ProvisioningService, error) {
	var cands []*ferry.ProvisioningService
	f := ferry.ProvisioningServiceFilter{}
	for {
		p, err := o.cfg.Store.ListProvisioningServices(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("source provisioning service: %w", err)
		}
		for _, s := range p.Items {
			if s.ID == m.Target.ProvisioningServiceID {
				continue
			}
			if slices.ContainsFunc(s.LinkedHubs, func(l ferry.LinkedHub) bool { return l.HubID == m.SourceHubID }) {
				cands = append(cands, s)
			}
		}
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}
	if len(cands) <= 1 || len(recs) == 0 {
		if len(cands) == 0 {
			return nil, nil
		}
		return cands[0], nil
	}
	for _, s := range cands {
		if _, err := o.cfg.Store.GetRegistration(ctx, s.ID, strings.ToLower(recs[0].DeviceID)); err == nil {
			return s, nil
		}
	}
	return cands[0], nil
}

// derive advances in-flight devices by what the store and the hubs show:
// a registration at the target newer than the command, a session at a
// target hub. Telemetry is not stored; devices send more.
func (o *Orchestrator) derive(ctx context.Context, r *run) error {
	var ts []*ferry.MigrationTransition
	now := o.now().UTC()
	for _, d := range r.devs {
		if d.rec.State == ferry.DeviceFailingBack {
			d.cmdAt, d.fbAcked = time.Time{}, false
			continue
		}
		if !inFlight(d.rec.State) {
			continue
		}
		commandedAt := d.rec.Deadline.Add(-r.m.DeviceTimeout)
		to, reason := d.rec.State, ""
		if reg, err := o.targetRegistration(ctx, r, d.rec.DeviceID); err == nil {
			if reg.Status == ferry.RegistrationAssigned && !reg.UpdatedAt.Before(commandedAt) && stage(to) < stage(ferry.DeviceProvisioned) {
				to, reason = ferry.DeviceProvisioned, "registered at the target (found after a restart)"
			}
		} else if !ferry.IsCode(err, ferry.ENOTFOUND) {
			return err
		}
		for h := range r.targetHubs {
			if o.connected(r, h, d.rec.DeviceID) && stage(to) < stage(ferry.DeviceConnected) {
				to, reason = ferry.DeviceConnected, "connected at the target (found after a restart)"
			}
		}
		if to != d.rec.State {
			ts = append(ts, chain(r, d, to, now, reason)...)
			continue
		}
		if d.rec.State == ferry.DeviceCommanded {
			// The command may not have gone out (commands are written up
			// to commandLead before they are due), and after a restart
			// the device may not be back yet: send it again, and while it
			// is not online, again until its deadline.
			d.resend = true
		}
	}
	return o.apply(ctx, r, ts)
}

// chain returns the transitions that take d from its state up to "to" on
// the way out, naming the skipped steps as implied.
func chain(r *run, d *dev, to ferry.DeviceMigrationState, at time.Time, reason string) []*ferry.MigrationTransition {
	from := stage(d.rec.State)
	end := stage(to)
	var ts []*ferry.MigrationTransition
	for i := from; i < end; i++ {
		why := reason
		if i+1 < end {
			why = "implied: " + reason
		}
		dl := d.rec.Deadline
		if moving[i+1] == ferry.DeviceVerified {
			dl = time.Time{}
		}
		ts = append(ts, &ferry.MigrationTransition{MigrationID: r.m.ID, DeviceID: d.rec.DeviceID, From: moving[i], To: moving[i+1],
			At: at, Reason: why, Deadline: dl})
	}
	return ts
}

// apply writes transitions, all or nothing, and then mirrors them in
// memory. On a conflict the run is reloaded from the store.
func (o *Orchestrator) apply(ctx context.Context, r *run, ts []*ferry.MigrationTransition) error {
	if len(ts) == 0 {
		return nil
	}
	for start := 0; start < len(ts); {
		// A device's chain must not straddle two writes.
		end := min(start+1000, len(ts))
		for end < len(ts) && ts[end].DeviceID == ts[end-1].DeviceID {
			end++
		}
		part := ts[start:end]
		start = end
		if err := o.cfg.Store.TransitionMigrationDevices(ctx, part); err != nil {
			if ferry.IsCode(err, ferry.ECONFLICT) {
				if lerr := o.load(ctx, r.m.ID, false); lerr != nil {
					return errors.Join(err, lerr)
				}
			}
			return fmt.Errorf("write transitions: %w", err)
		}
		evs := make([]ferry.Event, 0, len(part))
		for _, t := range part {
			d := r.devs[t.DeviceID]
			if d == nil {
				continue
			}
			data, _ := json.Marshal(transitionData{MigrationID: t.MigrationID, Migration: r.m.Name, Wave: d.rec.Wave,
				From: t.From, To: t.To, Reason: t.Reason})
			evs = append(evs, ferry.Event{ID: ferry.NewUUID(), Time: t.At, Source: ferry.SourceMigration, Type: ferry.TypeMigrationTransition,
				HubID: r.m.SourceHubID, DeviceID: t.DeviceID, Data: data})
			o.watch(t.DeviceID, d.rec.State, t.To)
			r.track(d, d.rec.State, t.To)
			d.rec.State, d.rec.Reason, d.rec.Deadline, d.rec.UpdatedAt = t.To, t.Reason, t.Deadline, t.At
			d.deadline = t.Deadline
			if t.To == ferry.DeviceFailingBack {
				d.cmdAt, d.fbAcked, d.backAt = time.Time{}, t.Reason == reasonCameBack, time.Time{}
				d.fbSafeAt = t.At
			}
			if t.To == ferry.DeviceCommanded {
				d.rec.Attempts++
			}
		}
		if err := o.cfg.Bus.Publish(ctx, evs...); err != nil {
			// Written already: a lost event only costs a watcher a detail.
			o.log.Warn("publish transitions", "migration_id", r.m.ID, "error", err)
		}
	}
	return nil
}

// loop runs until Close.
func (o *Orchestrator) loop(ctx context.Context) {
	defer close(o.done)
	tick := time.NewTicker(o.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// What was observed is written still: a successor need not
			// wait for it again.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			o.flush(fctx)
			cancel()
			return
		case req := <-o.ops:
			o.flush(ctx) // ops read and reload from the store
			req.done <- req.fn(ctx)
		case ev := <-o.events:
			batch := []ferry.Event{ev}
			for len(batch) < 4096 {
				select {
				case ev := <-o.events:
					batch = append(batch, ev)
					continue
				default:
				}
				break
			}
			o.handleEvents(ctx, batch)
		case res := <-o.results:
			batch := []result{res}
			for len(batch) < 4096 {
				select {
				case res := <-o.results:
					batch = append(batch, res)
					continue
				default:
				}
				break
			}
			o.handleResults(ctx, batch)
		case <-tick.C:
			o.flush(ctx)
			for _, r := range o.runs {
				if err := o.step(ctx, r); err != nil && ctx.Err() == nil {
					o.log.Error("migration step", "migration_id", r.m.ID, "error", err)
				}
			}
		}
	}
}

// maxPending bounds the transitions gathered between ticks: more are
// written at once.
const maxPending = 2000

// state returns a device's state after the transitions gathered for it.
func (o *Orchestrator) state(d *dev) ferry.DeviceMigrationState {
	if s, ok := o.tent[d]; ok {
		return s
	}
	return d.rec.State
}

// gather queues transitions of a run for the next flush.
func (o *Orchestrator) gather(ctx context.Context, r *run, ts ...*ferry.MigrationTransition) {
	if len(ts) == 0 {
		return
	}
	o.tent[r.devs[ts[0].DeviceID]] = ts[len(ts)-1].To
	o.pending[r] = append(o.pending[r], ts...)
	if o.npending += len(ts); o.npending >= maxPending {
		o.flush(ctx)
	}
}

// flush writes the gathered transitions, one transaction per run (in
// parts of about 1,000), and only then applies them in memory.
func (o *Orchestrator) flush(ctx context.Context) {
	if o.npending == 0 {
		return
	}
	pending := o.pending
	o.pending, o.npending = map[*run][]*ferry.MigrationTransition{}, 0
	clear(o.tent)
	for r, ts := range pending {
		if o.runs[r.m.ID] != r {
			continue // ended or reloaded since: the store has the truth
		}
		// Keep each device's chain together for apply's batching.
		slices.SortStableFunc(ts, func(a, b *ferry.MigrationTransition) int { return strings.Compare(a.DeviceID, b.DeviceID) })
		if err := o.apply(ctx, r, ts); err != nil && ctx.Err() == nil {
			o.log.Error("write observed transitions", "migration_id", r.m.ID, "error", err)
		}
	}
}

// handleEvents advances devices by what the device plane reports.
func (o *Orchestrator) handleEvents(ctx context.Context, evs []ferry.Event) {
	for _, ev := range evs {
		for _, r := range o.byDevice[ev.DeviceID] {
			d := r.devs[ev.DeviceID]
			state := o.state(d)
			at := ev.Time
			if at.IsZero() {
				at = o.now().UTC()
			}
			var ts []*ferry.MigrationTransition
			toTarget, atSource := r.targetHubs[ev.HubID], ev.HubID == r.m.SourceHubID
			switch {
			case ev.Source == ferry.SourceTelemetry && toTarget && inFlight(state):
				ts = chainFrom(r, d, state, ferry.DeviceVerified, at, "first telemetry at the target hub "+ev.HubHost)
			case ev.Source == ferry.SourceTelemetry && atSource && state == ferry.DeviceFailingBack && d.fbAcked && !at.Before(d.fbSafeAt) &&
				o.cfg.Hubs.Connected(r.m.SourceHubID, d.rec.DeviceID):
				ts = []*ferry.MigrationTransition{{MigrationID: r.m.ID, DeviceID: d.rec.DeviceID, From: state, To: ferry.DeviceFailedBack,
					At: at, Reason: "telemetry at the source hub " + ev.HubHost}}
			case ev.Type == ferry.TypeConnected && toTarget && stage(state) >= 0 && stage(state) < stage(ferry.DeviceConnected):
				ts = chainFrom(r, d, state, ferry.DeviceConnected, at, "connected at the target hub "+ev.HubHost)
			case ev.Type == ferry.TypeConnected && atSource && (state == ferry.DeviceAcknowledged || state == ferry.DeviceProvisioned):
				// Its move failed, or its connection dropped before it
				// left: step fails it back if it is still there shortly.
				d.backAt = o.now()
			case ev.Type == ferry.TypeProvisioned && toTarget && stage(state) >= 0 && stage(state) < stage(ferry.DeviceProvisioned):
				ts = chainFrom(r, d, state, ferry.DeviceProvisioned, at, "registered at the target, assigned to "+ev.HubHost)
			}
			o.gather(ctx, r, ts...)
		}
	}
}

func chainFrom(r *run, d *dev, from, to ferry.DeviceMigrationState, at time.Time, reason string) []*ferry.MigrationTransition {
	saved := d.rec.State
	d.rec.State = from
	ts := chain(r, d, to, at, reason)
	d.rec.State = saved
	return ts
}

// handleResults advances devices by their answers to DeviceMove.
func (o *Orchestrator) handleResults(ctx context.Context, res []result) {
	now := o.now().UTC()
	for _, x := range res {
		r := o.runs[x.migrationID]
		if r == nil {
			continue
		}
		d := r.devs[x.deviceID]
		if d == nil {
			continue
		}
		d.calling = false
		if x.method != "" {
			d.method = x.method
		}
		ok := x.err == nil && x.resp.Status >= 200 && x.resp.Status < 300
		if x.failback {
			if !ok {
				// Try again soon: the device may be between connections.
				d.cmdAt, d.fbAcked = now.Add(time.Second-o.cfg.RetryInterval), false
				continue
			}
			// A device commanded at the source may still hold the move
			// it was sent before (the SDK keeps one pending move and
			// drops the next): only telemetry after it stayed a while
			// proves it is back.
			d.fbAcked, d.fbSafeAt = true, now
			if x.hub == r.m.SourceHubID {
				d.fbSafeAt = now.Add(backGrace)
			}
			continue
		}
		if o.state(d) != ferry.DeviceCommanded {
			continue // the device plane's events got there first
		}
		d.offline = ferry.IsDeviceNotOnline(x.err)
		t := &ferry.MigrationTransition{MigrationID: r.m.ID, DeviceID: x.deviceID, From: ferry.DeviceCommanded, At: now, Deadline: d.rec.Deadline}
		switch {
		case ok:
			t.To, t.Reason = ferry.DeviceAcknowledged, fmt.Sprintf("accepted DeviceMove (status %d)", x.resp.Status)
		case ferry.IsMethodTimeout(x.err):
			continue // it may have moved anyway: the deadline decides
		case d.offline:
			// Between connections, or moved already (after a restart): try
			// again until the deadline; events settle it meanwhile.
			d.retryAt = now.Add(time.Second)
			continue
		case x.err != nil:
			t.To, t.Reason, t.Deadline = ferry.DeviceFailed, "DeviceMove failed: "+ferry.ErrorMessage(x.err), time.Time{}
		default:
			t.To, t.Reason, t.Deadline = ferry.DeviceFailed, fmt.Sprintf("refused DeviceMove with status %d: %s", x.resp.Status, clip(x.resp.Payload)), time.Time{}
		}
		o.gather(ctx, r, t)
	}
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// step dispatches commands, enforces deadlines and settles waves.
func (o *Orchestrator) step(ctx context.Context, r *run) error {
	st := o.cfg.Store
	m, err := st.GetMigration(ctx, r.m.ID)
	if err != nil {
		return err
	}
	r.m = m
	now := o.now().UTC()
	var ts []*ferry.MigrationTransition
	for d := range r.active {
		switch {
		case inFlight(d.rec.State) && m.State == ferry.MigrationCancelling:
			ts = append(ts, &ferry.MigrationTransition{MigrationID: m.ID, DeviceID: d.rec.DeviceID, From: d.rec.State, To: ferry.DeviceFailingBack,
				At: now, Reason: "migration cancelled", Deadline: now.Add(m.DeviceTimeout)})
		case d.rec.State == ferry.DeviceCommanded && d.offline && now.After(d.deadline):
			// It never took the command: it stays at the source.
			ts = append(ts, &ferry.MigrationTransition{MigrationID: m.ID, DeviceID: d.rec.DeviceID, From: d.rec.State, To: ferry.DeviceFailed,
				At: now, Reason: fmt.Sprintf("not online at the source hub within %s", m.DeviceTimeout)})
		case (d.rec.State == ferry.DeviceAcknowledged || d.rec.State == ferry.DeviceProvisioned) && !d.backAt.IsZero() && now.Sub(d.backAt) >= backGrace &&
			o.cfg.Hubs.Connected(m.SourceHubID, d.rec.DeviceID):
			ts = append(ts, &ferry.MigrationTransition{MigrationID: m.ID, DeviceID: d.rec.DeviceID, From: d.rec.State, To: ferry.DeviceFailingBack,
				At: now, Reason: reasonCameBack, Deadline: now.Add(m.DeviceTimeout)})
		case inFlight(d.rec.State) && !d.deadline.IsZero() && now.After(d.deadline):
			ts = append(ts, &ferry.MigrationTransition{MigrationID: m.ID, DeviceID: d.rec.DeviceID, From: d.rec.State, To: ferry.DeviceFailingBack,
				At: now, Reason: fmt.Sprintf("not verified within %s (last %s)", m.DeviceTimeout, d.rec.State), Deadline: now.Add(m.DeviceTimeout)})
		case d.rec.State == ferry.DeviceFailingBack && now.After(d.deadline):
			d.deadline, d.cmdAt, d.fbAcked = now.Add(m.DeviceTimeout), time.Time{}, false // keep trying: never strand it
		}
	}
	if err := o.apply(ctx, r, ts); err != nil {
		return err
	}

	var cmds []*dev
	if m.State == ferry.MigrationRunning && (r.remote == nil || r.remote.ready) {
		if cmds, err = o.dispatch(ctx, r, now); err != nil {
			return err
		}
	} else {
		r.nextCmd = time.Time{} // no burst after a pause
	}
	o.resolveMethods(ctx, r, cmds)
	for _, d := range cmds {
		o.command(ctx, r, d, false)
	}
	for d := range r.active {
		switch {
		case d.rec.State == ferry.DeviceCommanded && !d.calling && (d.resend || !d.retryAt.IsZero() && now.After(d.retryAt)):
			d.resend, d.retryAt = false, time.Time{}
			o.command(ctx, r, d, false)
		case d.rec.State == ferry.DeviceFailingBack && !d.calling:
			if err := o.failback(ctx, r, d, now); err != nil {
				return err
			}
		}
	}
	return o.settle(ctx, r, now)
}

// commandLead is how far ahead of its time a rate-limited command is
// dispatched (written commanded, then held by its goroutine until due), so
// that a slow tick does not slow the commands down: in a 3,000-device
// migration on two busy cores the loop stalled for up to 2.8 s.
const commandLead = 2 * time.Second

// maxCommandLag is how far behind its rate a migration's commands may fall
// (a loop stalled longer than commandLead) and still catch up, in a burst
// of at most this long's worth of commands.
const maxCommandLag = 500 * time.Millisecond

// dispatch moves pending devices of the current wave to commanded, as fast
// as the command rate allows, and returns them to be commanded. With a
// rate, each is given the time it is due (its transition's time), spaced
// 1/rate apart and up to commandLead ahead.
func (o *Orchestrator) dispatch(ctx context.Context, r *run, now time.Time) ([]*dev, error) {
	m := r.m
	if m.CurrentWave >= len(r.waves) {
		r.nextCmd = time.Time{}
		return nil, nil
	}
	w := r.waves[m.CurrentWave]
	if w.State == ferry.WavePending {
		w.State, w.StartedAt = ferry.WaveRunning, now
		if err := o.cfg.Store.PutMigrationWaves(ctx, []*ferry.MigrationWave{w}); err != nil {
			return nil, err
		}
		o.log.Info("wave started", "migration_id", m.ID, "wave", w.Index, "devices", w.Size)
	}
	if w.State != ferry.WaveRunning {
		r.nextCmd = time.Time{}
		return nil, nil
	}
	var gap time.Duration
	next := now
	if m.CommandRate > 0 {
		gap = time.Duration(float64(time.Second) / m.CommandRate)
		if next = r.nextCmd; next.Before(now.Add(-maxCommandLag)) {
			next = now.Add(-maxCommandLag)
			if r.nextCmd.IsZero() {
				next = now
			}
		}
	}
	var picked []*dev
	var ts []*ferry.MigrationTransition
	devs, first := r.byWave[w.Index], r.pending[w.Index]
	for first < len(devs) && devs[first].rec.State != ferry.DevicePending {
		first++
	}
	r.pending[w.Index] = first
	for _, d := range devs[first:] {
		if gap > 0 && !next.Before(now.Add(commandLead)) {
			break
		}
		if d.rec.State != ferry.DevicePending {
			continue
		}
		at := later(next, now)
		d.sendAt = at
		picked = append(picked, d)
		ts = append(ts, &ferry.MigrationTransition{MigrationID: m.ID, DeviceID: d.rec.DeviceID, From: ferry.DevicePending,
			To: ferry.DeviceCommanded, At: at, Reason: "DeviceMove sent", Deadline: at.Add(m.DeviceTimeout)})
		next = next.Add(gap)
	}
	if err := o.apply(ctx, r, ts); err != nil {
		return nil, err
	}
	if gap > 0 {
		r.nextCmd = next
	}
	return picked, nil
}

// command sends DeviceMove towards the target (or, with failback, the
// source) to the hub the device holds a session on.
func (o *Orchestrator) command(ctx context.Context, r *run, d *dev, failback bool, hubID ...string) {
	payload := map[string]any{"idScope": r.target.IDScope, "dpsName": r.target.Name}
	if r.m.Target.ProvisioningHost != "" {
		payload["provisioningHost"] = r.m.Target.ProvisioningHost
	}
	hub := r.m.SourceHubID
	if failback {
		payload = map[string]any{"idScope": r.source.IDScope, "dpsName": r.source.Name}
		if r.m.Target.ProvisioningHost != "" {
			payload["provisioningHost"] = r.source.HostName
		}
		if r.remote != nil {
			payload["provisioningHost"] = r.remote.sourceHost
		}
		hub = hubID[0]
	}
	method := r.m.MethodName
	if method == "" {
		method = d.method
	}
	body, _ := json.Marshal(payload)
	req := ferry.MethodRequest{MethodName: method, Payload: body, ResponseTimeout: min(o.cfg.MethodTimeout, r.m.DeviceTimeout)}
	x := result{migrationID: r.m.ID, deviceID: d.rec.DeviceID, failback: failback, hub: hub}
	source := r.m.SourceHubID
	due := d.sendAt
	d.calling, d.sendAt = true, time.Time{}
	o.calls.Add(1)
	go func() {
		defer o.calls.Done()
		if wait := due.Sub(o.now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		select {
		case o.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if req.MethodName == "" {
			// Looked up here, not in the loop: a wave's first commands
			// would otherwise wait for one identity read per device.
			x.method = o.methodName(ctx, r, source, x.deviceID)
			req.MethodName = x.method
		}
		x.resp, x.err = o.invoke(ctx, r, hub, x.deviceID, req)
		<-o.sem
		select {
		case o.results <- x:
		case <-ctx.Done():
		}
	}()
}

// methodName is the DeviceMove method of a device's model: the component
// implementing dtmi:azureiot:DeviceMigration;1, or the root.
// It is called from command goroutines, never from the loop.
func (o *Orchestrator) methodName(ctx context.Context, r *run, sourceHubID, deviceID string) string {
	id, err := o.cfg.Store.GetDeviceIdentity(ctx, sourceHubID, deviceID)
	if err != nil || id.ModelID == "" {
		return "DeviceMove"
	}
	return o.modelMethod(ctx, r, id.ModelID)
}

// modelMethod is the DeviceMove method of a model, read once per run.
func (o *Orchestrator) modelMethod(ctx context.Context, r *run, modelID string) string {
	if modelID == "" {
		return "DeviceMove"
	}
	r.methodsMu.Lock()
	name, ok := r.methods[modelID]
	r.methodsMu.Unlock()
	if ok {
		return name
	}
	name = "DeviceMove"
	if t, err := o.cfg.Store.GetDeviceTemplate(ctx, modelID); err == nil && t.MigrationComponent != "" {
		name = t.MigrationComponent + "*DeviceMove"
	}
	r.methodsMu.Lock()
	r.methods[modelID] = name
	r.methodsMu.Unlock()
	return name
}

// resolveMethods finds the DeviceMove method of devices about to be
// commanded with one identity list per 1,000 devices, instead of one
// identity read per device. Devices it cannot resolve (a failed list, an
// identity gone) are looked up one by one when commanded.
func (o *Orchestrator) resolveMethods(ctx context.Context, r *run, ds []*dev) {
	if r.m.MethodName != "" {
		return
	}
	var ids []string
	for _, d := range ds {
		if d.method == "" {
			ids = append(ids, d.rec.DeviceID)
		}
	}
	for start := 0; start < len(ids); start += 1000 {
		part := ids[start:min(start+1000, len(ids))]
		p, err := o.cfg.Store.ListDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: r.m.SourceHubID, IDs: part,
			ListOptions: ferry.ListOptions{Limit: len(part)}})
		if err != nil {
			o.log.Warn("read identities for DeviceMove", "migration_id", r.m.ID, "error", err)
			return
		}
		for _, id := range p.Items {
			if d := r.devs[id.DeviceID]; d != nil {
				d.method = o.modelMethod(ctx, r, id.ModelID)
			}
		}
	}
}

// failback commands a failing-back device to the source scope through the
// hub it is connected to, until it accepts; it is sent again when it
// still shows up at a target after accepting.
func (o *Orchestrator) failback(ctx context.Context, r *run, d *dev, now time.Time) error {
	id := d.rec.DeviceID
	if r.source == nil {
		return ferry.Errorf(ferry.EPRECONDITION, "No provisioning service links the source hub; devices cannot fail back.")
	}
	hub := ""
	for h := range r.targetHubs {
		if o.connected(r, h, id) {
			hub = h
		}
	}
	if hub == "" && o.cfg.Hubs.Connected(r.m.SourceHubID, id) {
		hub = r.m.SourceHubID
	}
	switch {
	case hub == "":
		return nil // between connections: look again next tick
	case d.fbAcked && hub == r.m.SourceHubID:
		return nil // back: waiting for its telemetry
	case now.Sub(d.cmdAt) < o.cfg.RetryInterval:
		return nil
	}
	if err := o.enableSource(ctx, r, id); err != nil {
		return err
	}
	d.cmdAt, d.fbAcked = now, false
	o.command(ctx, r, d, true, hub)
	return nil
}

// settle closes the current wave when its devices are done and moves the
// migration on.
func (o *Orchestrator) settle(ctx context.Context, r *run, now time.Time) error {
	m := r.m
	switch m.State {
	case ferry.MigrationCancelling:
		if len(r.active) > 0 {
			return nil
		}
		if err := o.disableSources(ctx, r, r.devs); err != nil {
			return err
		}
		return o.finish(ctx, r, ferry.MigrationCancelled, m.StateReason, now)
	case ferry.MigrationRunning:
	default:
		return nil
	}
	if m.CurrentWave >= len(r.waves) {
		return o.finish(ctx, r, ferry.MigrationCompleted, "", now)
	}
	w := r.waves[m.CurrentWave]
	devs := r.byWave[w.Index]
	count := r.counts[w.Index]
	errs := count[ferry.DeviceFailed] + count[ferry.DeviceFailingBack] + count[ferry.DeviceFailedBack]
	done := true
	for st, n := range count {
		if n > 0 && !st.Terminal() {
			done = false
		}
	}
	switch w.State {
	case ferry.WaveRunning:
		if errs*100 > m.ErrorThreshold*len(devs) {
			reason := fmt.Sprintf("wave %d crossed its error threshold: %d of %d devices failed", w.Index, errs, len(devs))
			return o.waveError(ctx, r, w, reason, now)
		}
		if !done {
			return nil
		}
		w.State, w.CompletedAt = ferry.WaveSucceeded, now
		if count[ferry.DeviceVerified]*100 < m.SuccessThreshold*len(devs) {
			w.State = ferry.WaveFailed
		}
		if err := o.cfg.Store.PutMigrationWaves(ctx, []*ferry.MigrationWave{w}); err != nil {
			return err
		}
		o.log.Info("wave ended", "migration_id", m.ID, "wave", w.Index, "state", w.State, "verified", count[ferry.DeviceVerified])
		if w.State == ferry.WaveFailed {
			return o.pause(ctx, r, fmt.Sprintf("wave %d: %d of %d devices verified, below the success threshold of %d%%",
				w.Index, count[ferry.DeviceVerified], len(devs), m.SuccessThreshold))
		}
		return o.nextWave(ctx, r, w, now)
	case ferry.WaveSucceeded, ferry.WaveFailed:
		// Settled before (perhaps by an orchestrator that stopped): carry on.
		return o.nextWave(ctx, r, w, now)
	case ferry.WaveFailingBack:
		if !done {
			return nil
		}
		w.State, w.CompletedAt = ferry.WaveFailedBack, now
		if err := o.cfg.Store.PutMigrationWaves(ctx, []*ferry.MigrationWave{w}); err != nil {
			return err
		}
		fallthrough
	case ferry.WaveFailedBack:
		return o.finish(ctx, r, ferry.MigrationFailed, fmt.Sprintf("wave %d failed back: %d of %d devices failed", w.Index, errs, len(devs)), now)
	}
	return nil
}

// waveError applies the migration's OnError to a wave over its threshold.
func (o *Orchestrator) waveError(ctx context.Context, r *run, w *ferry.MigrationWave, reason string, now time.Time) error {
	m := r.m
	var ts []*ferry.MigrationTransition
	for _, d := range r.byWave[w.Index] {
		t := &ferry.MigrationTransition{MigrationID: m.ID, DeviceID: d.rec.DeviceID, From: d.rec.State, At: now}
		switch {
		case d.rec.State == ferry.DevicePending:
			t.To, t.Reason = ferry.DeviceFailed, fmt.Sprintf("not commanded: wave %d stopped at its error threshold", w.Index)
		case m.OnError == ferry.OnErrorFailback && leftSource(d.rec.State):
			t.To, t.Reason, t.Deadline = ferry.DeviceFailingBack, fmt.Sprintf("wave %d fails back", w.Index), now.Add(m.DeviceTimeout)
		default:
			continue
		}
		ts = append(ts, t)
	}
	// The wave's state is written first: a restart then finds it failing
	// back, or failed, and never commands the rest.
	w.State = ferry.WaveFailed
	if m.OnError == ferry.OnErrorFailback {
		w.State = ferry.WaveFailingBack
	} else {
		w.CompletedAt = now
	}
	if err := o.cfg.Store.PutMigrationWaves(ctx, []*ferry.MigrationWave{w}); err != nil {
		return err
	}
	if err := o.apply(ctx, r, ts); err != nil {
		return err
	}
	o.log.Warn("wave over its error threshold", "migration_id", m.ID, "wave", w.Index, "action", m.OnError, "reason", reason)
	if m.OnError == ferry.OnErrorPause {
		return o.pause(ctx, r, reason)
	}
	return nil
}

func (o *Orchestrator) pause(ctx context.Context, r *run, reason string) error {
	m, err := o.updateMigration(ctx, r.m.ID, func(m *ferry.Migration) error {
		if m.State != ferry.MigrationRunning {
			return nil
		}
		m.State, m.StateReason = ferry.MigrationPaused, reason
		return nil
	})
	if err != nil {
		return err
	}
	r.m = m
	return nil
}

// nextWave disables the source identities of the wave's verified devices
// and starts the next wave, or completes the migration.
func (o *Orchestrator) nextWave(ctx context.Context, r *run, w *ferry.MigrationWave, now time.Time) error {
	devs := map[string]*dev{}
	for _, d := range r.byWave[w.Index] {
		devs[d.rec.DeviceID] = d
	}
	if err := o.disableSources(ctx, r, devs); err != nil {
		return err
	}
	if w.Index+1 >= len(r.waves) {
		var failed int
		for _, d := range r.devs {
			if d.rec.State != ferry.DeviceVerified {
				failed++
			}
		}
		reason := ""
		if failed > 0 {
			reason = fmt.Sprintf("%d devices did not move", failed)
		}
		return o.finish(ctx, r, ferry.MigrationCompleted, reason, now)
	}
	m, err := o.updateMigration(ctx, r.m.ID, func(m *ferry.Migration) error {
		if m.CurrentWave == w.Index {
			m.CurrentWave++
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.m = m
	return nil
}

func (o *Orchestrator) finish(ctx context.Context, r *run, state ferry.MigrationState, reason string, now time.Time) error {
	_, err := o.updateMigration(ctx, r.m.ID, func(m *ferry.Migration) error {
		m.State, m.StateReason, m.CompletedAt = state, reason, now
		return nil
	})
	if err != nil {
		return err
	}
	o.log.Info("migration ended", "migration_id", r.m.ID, "state", state, "reason", reason)
	o.unload(r.m.ID)
	return nil
}

// disableSources disables, not deletes, the source identities of verified
// devices, so that a later cleanup can delete them and nothing connects
// there meanwhile. It is idempotent. Identities are read and written in
// parts of disableChunk, each written in one transaction: a wave of 10,000
// devices ends with 20 reads and 20 transactions, not 10,000 of each.
func (o *Orchestrator) disableSources(ctx context.Context, r *run, devs map[string]*dev) error {
	var ids []string
	for id, d := range devs {
		if d.rec.State == ferry.DeviceVerified {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for part := range slices.Chunk(ids, disableChunk) {
		if err := o.disableSourcesPart(ctx, r, part); err != nil {
			return fmt.Errorf("disable source identities: %w", err)
		}
	}
	return nil
}

// disableChunk bounds the identities disableSources reads and writes at once.
const disableChunk = 500

func (o *Orchestrator) disableSourcesPart(ctx context.Context, r *run, ids []string) error {
	st, hubID := o.cfg.Store, r.m.SourceHubID
	p, err := st.ListDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: hubID, IDs: ids, ListOptions: ferry.ListOptions{Limit: len(ids)}})
	if err != nil {
		return err
	}
	var change []*ferry.DeviceIdentity
	var match []string
	now := o.now().UTC()
	for _, ident := range p.Items {
		if ident.Status == ferry.DeviceDisabled {
			continue
		}
		match = append(match, ident.ETag)
		ident.Status, ident.StatusReason, ident.StatusUpdatedAt = ferry.DeviceDisabled, "moved by migration "+r.m.Name, now
		change = append(change, ident)
	}
	if len(change) == 0 {
		return nil
	}
	err = st.WithTx(ctx, func(tx ferry.Tx) error {
		for i, ident := range change {
			if err := tx.UpdateDeviceIdentity(ctx, ident, match[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if ferry.IsCode(err, ferry.EPRECONDITION) || ferry.IsCode(err, ferry.ENOTFOUND) {
		// One changed or went meanwhile: one by one, each read again.
		for _, ident := range change {
			if err := o.disableSource(ctx, r, ident.DeviceID); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	for _, ident := range change {
		if err := o.cfg.Hubs.IdentityChanged(ctx, hubID, ident.DeviceID); err != nil {
			return err
		}
	}
	return nil
}

// disableSource disables one source identity, if it is still there.
func (o *Orchestrator) disableSource(ctx context.Context, r *run, id string) error {
	st := o.cfg.Store
	ident, err := st.GetDeviceIdentity(ctx, r.m.SourceHubID, id)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil
	}
	if err != nil {
		return err
	}
	if ident.Status == ferry.DeviceDisabled {
		return nil
	}
	ident.Status, ident.StatusReason, ident.StatusUpdatedAt = ferry.DeviceDisabled, "moved by migration "+r.m.Name, o.now().UTC()
	if err := st.UpdateDeviceIdentity(ctx, ident, ident.ETag); err != nil {
		return err
	}
	return o.cfg.Hubs.IdentityChanged(ctx, r.m.SourceHubID, id)
}

// enableSource enables a source identity this orchestrator disabled, before
// its device is sent back.
func (o *Orchestrator) enableSource(ctx context.Context, r *run, id string) error {
	st := o.cfg.Store
	ident, err := st.GetDeviceIdentity(ctx, r.m.SourceHubID, id)
	if err != nil {
		return fmt.Errorf("enable source identity: %w", err)
	}
	if ident.Status == ferry.DeviceEnabled || !strings.HasPrefix(ident.StatusReason, "moved by migration ") {
		return nil
	}
	ident.Status, ident.StatusReason, ident.StatusUpdatedAt = ferry.DeviceEnabled, "", o.now().UTC()
	if err := st.UpdateDeviceIdentity(ctx, ident, ident.ETag); err != nil {
		return fmt.Errorf("enable source identity: %w", err)
	}
	return o.cfg.Hubs.IdentityChanged(ctx, r.m.SourceHubID, id)
}
