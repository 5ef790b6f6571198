package migrate_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestEndToEnd moves 200 devices of a hub device group from hub A to hub B
// in three waves: all verify at B, none loses a message, identities exist at
// B and are disabled at A.
func TestEndToEnd(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		t.Parallel() // the backends' fleets mostly wait on the protocol's timers
		ctx := context.Background()
		f := newFleet(t, s)
		n := 200
		if raceEnabled {
			n = 50
		}
		start := time.Now()
		f.startDevices(n, 500*time.Millisecond)
		t.Logf("%d devices provisioned and connected in %s", n, time.Since(start).Round(time.Millisecond))
		var verifiedEvents atomic.Int64
		t.Cleanup(f.bus.Subscribe("test", func(ev ferry.Event) {
			if ev.Source == ferry.SourceMigration && ev.Type == ferry.TypeMigrationTransition && bytes.Contains(ev.Data, []byte(`"to":"verified"`)) {
				verifiedEvents.Add(1)
			}
		}))
		o := f.orchestrator()
		plan := f.plan("move-200")
		plan.Waves = ferry.WavePlan{Percentages: []int{10, 40, 50}}
		m, err := o.Create(ctx, plan)
		must(t, err)
		rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
		must(t, err)
		if !rep.OK || rep.Devices != n || rep.Online != n || len(rep.EnrollmentsCreated) != 1 {
			t.Fatalf("preflight = %+v", rep)
		}
		start = time.Now()
		must(t, o.Begin(ctx, m.ID))
		m = waitState(t, s, m.ID, 45*time.Second, ferry.MigrationCompleted, ferry.MigrationFailed, ferry.MigrationPaused)
		if m.State != ferry.MigrationCompleted || m.StateReason != "" {
			dumpFailures(t, o, m.ID)
			t.Fatalf("migration %s: %s", m.State, m.StateReason)
		}
		t.Logf("migrated in %s", time.Since(start).Round(time.Millisecond))
		waves, err := s.ListMigrationWaves(ctx, m.ID)
		must(t, err)
		var sizes []int
		for _, w := range waves {
			sizes = append(sizes, w.Size)
			if w.State != ferry.WaveSucceeded {
				t.Errorf("wave %d is %s", w.Index, w.State)
			}
		}
		if len(sizes) != 3 || sizes[0] != n/10 || sizes[1] != n*4/10 || sizes[2] != n/2 {
			t.Errorf("wave sizes = %v", sizes)
		}
		for _, d := range devicesIn(t, s, m.ID) {
			if d.State != ferry.DeviceVerified {
				t.Errorf("%s is %s: %s", d.DeviceID, d.State, d.Reason)
			}
			b, err := s.GetDeviceIdentity(ctx, f.hubB.ID, d.DeviceID)
			if err != nil || b.Status != ferry.DeviceEnabled {
				t.Errorf("identity at B: %v %v", b, err)
			}
			a, err := s.GetDeviceIdentity(ctx, f.hubA.ID, d.DeviceID)
			if err != nil || a.Status != ferry.DeviceDisabled {
				t.Errorf("identity at A: %v %v", a, err)
			}
		}
		devs := f.devices
		f.finish()
		f.checkNoGap(devs)
		if got := verifiedEvents.Load(); got != int64(n) {
			t.Errorf("%d verified transition events on the bus", got)
		}

		report, err := o.Report(ctx, m.ID)
		must(t, err)
		if report.Counts[ferry.DeviceVerified] != n || len(report.Devices) != n {
			t.Fatalf("report counts %v", report.Counts)
		}
		var path []string
		for _, tr := range report.Devices[0].Transitions {
			path = append(path, string(tr.To))
		}
		if got := strings.Join(path, ","); got != "commanded,acknowledged,provisioned,connected,verified" &&
			got != "commanded,provisioned,connected,verified" {
			// The method response may arrive after the registration, which
			// then implies it; the history still has every step.
			if !strings.HasSuffix(got, "verified") {
				t.Errorf("transitions of %s: %s", report.Devices[0].DeviceID, got)
			}
		}
		var buf bytes.Buffer
		must(t, report.WriteCSV(&buf))
		rows, err := csv.NewReader(&buf).ReadAll()
		must(t, err)
		if len(rows) < 1+n*4 || strings.Join(rows[0], ",") != strings.Join(migrate.CSVHeader, ",") {
			t.Errorf("CSV has %d rows, header %v", len(rows), rows[0])
		}
		buf.Reset()
		must(t, report.WriteJSON(&buf))
		if !bytes.Contains(buf.Bytes(), []byte(`"state": "verified"`)) {
			t.Errorf("JSON report lacks device states")
		}
	})
}

// TestFailback disables the target enrollment while the second wave moves:
// its devices cannot register at B, the wave crosses its error threshold and
// fails back, and every device of it verifies at A again without losing a
// message. The first wave stays at B.
func TestFailback(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		t.Parallel() // the backends' fleets mostly wait on the protocol's timers
		ctx := context.Background()
		f := newFleet(t, s)
		f.startDevices(60, 500*time.Millisecond)
		o := f.orchestrator()
		plan := f.plan("failback")
		plan.Waves = ferry.WavePlan{Sizes: []int{20, 20, 20}}
		plan.ErrorThreshold = 10
		m, err := o.Create(ctx, plan)
		must(t, err)
		rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
		must(t, err)
		if !rep.OK {
			t.Fatalf("preflight = %+v", rep)
		}
		var once sync.Once
		f.mu.Lock()
		f.onMove = func(id string) {
			if id < "dev-0020" || id >= "dev-0040" {
				return
			}
			once.Do(func() {
				g, err := s.GetEnrollmentGroup(ctx, f.dpsB.ID, groupID)
				if err != nil {
					t.Errorf("target group: %v", err)
					return
				}
				g.Status = ferry.EnrollmentDisabled
				if err := s.PutEnrollmentGroup(ctx, g, g.ETag); err != nil {
					t.Errorf("disable target group: %v", err)
				}
			})
		}
		f.mu.Unlock()
		must(t, o.Begin(ctx, m.ID))
		m = waitState(t, s, m.ID, 45*time.Second, ferry.MigrationCompleted, ferry.MigrationFailed, ferry.MigrationPaused)
		if m.State != ferry.MigrationFailed || !strings.Contains(m.StateReason, "wave 1 failed back") {
			t.Fatalf("migration %s: %s", m.State, m.StateReason)
		}
		waves, err := s.ListMigrationWaves(ctx, m.ID)
		must(t, err)
		want := []ferry.WaveState{ferry.WaveSucceeded, ferry.WaveFailedBack, ferry.WavePending}
		for i, w := range waves {
			if w.State != want[i] {
				t.Errorf("wave %d is %s, want %s", i, w.State, want[i])
			}
		}
		for _, d := range devicesIn(t, s, m.ID) {
			a, err := s.GetDeviceIdentity(ctx, f.hubA.ID, d.DeviceID)
			must(t, err)
			switch d.Wave {
			case 0:
				if d.State != ferry.DeviceVerified || a.Status != ferry.DeviceDisabled {
					t.Errorf("%s: %s, at A %s", d.DeviceID, d.State, a.Status)
				}
			case 1:
				if d.State != ferry.DeviceFailedBack || a.Status != ferry.DeviceEnabled || !f.hubs.Connected(f.hubA.ID, d.DeviceID) {
					t.Errorf("%s: %s (%s), at A %s, connected %v", d.DeviceID, d.State, d.Reason, a.Status, f.hubs.Connected(f.hubA.ID, d.DeviceID))
				}
			case 2:
				if d.State != ferry.DevicePending || !f.hubs.Connected(f.hubA.ID, d.DeviceID) {
					t.Errorf("%s: %s", d.DeviceID, d.State)
				}
			}
		}
		devs := f.devices
		f.finish()
		f.checkNoGap(devs)
	})
}

// TestResume closes the orchestrator in the middle of a wave and starts
// another on the same store: the migration completes and no device is
// stranded or loses a message.
func TestResume(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		t.Parallel() // the backends' fleets mostly wait on the protocol's timers
		ctx := context.Background()
		f := newFleet(t, s)
		f.startDevices(60, 500*time.Millisecond)
		o1 := f.orchestrator()
		plan := f.plan("resume")
		plan.Waves = ferry.WavePlan{Sizes: []int{40, 20}}
		plan.CommandRate = 10
		m, err := o1.Create(ctx, plan)
		must(t, err)
		_, err = o1.Preflight(ctx, m.ID, migrate.PreflightOptions{})
		must(t, err)
		must(t, o1.Begin(ctx, m.ID))
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := s.CountMigrationDevices(ctx, m.ID)
			must(t, err)
			w := c[0]
			if w[ferry.DeviceAcknowledged]+w[ferry.DeviceProvisioned]+w[ferry.DeviceConnected]+w[ferry.DeviceVerified] >= 3 && w[ferry.DevicePending] > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("wave 0 did not get going: %v", c)
			}
			time.Sleep(20 * time.Millisecond)
		}
		must(t, o1.Close())
		c, err := s.CountMigrationDevices(ctx, m.ID)
		must(t, err)
		t.Logf("closed the orchestrator with %v", c)
		time.Sleep(time.Second) // devices keep moving while nobody watches
		f.orchestrator()
		m = waitState(t, s, m.ID, 45*time.Second, ferry.MigrationCompleted, ferry.MigrationFailed, ferry.MigrationPaused)
		if m.State != ferry.MigrationCompleted || m.StateReason != "" {
			t.Fatalf("migration %s: %s", m.State, m.StateReason)
		}
		for _, d := range devicesIn(t, s, m.ID) {
			if d.State != ferry.DeviceVerified || !f.hubs.Connected(f.hubB.ID, d.DeviceID) {
				t.Errorf("%s is %s: %s", d.DeviceID, d.State, d.Reason)
			}
		}
		checkRate(t, s, m.ID, plan.CommandRate)
		devs := f.devices
		f.finish()
		f.checkNoGap(devs)
	})
}

// dumpFailures logs the history of the first devices that did not verify.
func dumpFailures(t testing.TB, o *migrate.Orchestrator, id string) {
	t.Helper()
	r, err := o.Report(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	first := func(d migrate.DeviceReport) bool { // failed first, rather than with its wave
		for _, tr := range d.Transitions {
			if tr.To == ferry.DeviceFailed || tr.To == ferry.DeviceFailingBack && !strings.HasPrefix(tr.Reason, "wave ") {
				return true
			}
		}
		return false
	}
	for _, d := range r.Devices {
		if !first(d) || n >= 5 {
			continue
		}
		n++
		for _, tr := range d.Transitions {
			t.Logf("%s %s → %s at %s: %s", d.DeviceID, tr.From, tr.To, tr.At.Format("15:04:05.000"), tr.Reason)
		}
	}
}

// TestCancelAndFailback cancels a migration in the middle of its wave: what
// is in flight comes back to A, what verified stays at B. Then the operator
// fails back the whole migration: the verified devices return to A too, and
// their identities there are enabled again.
func TestCancelAndFailback(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		t.Parallel() // the backends' fleets mostly wait on the protocol's timers
		ctx := context.Background()
		f := newFleet(t, s)
		f.startDevices(40, 500*time.Millisecond)
		o := f.orchestrator()
		plan := f.plan("cancel")
		plan.CommandRate = 10
		m, err := o.Create(ctx, plan)
		must(t, err)
		_, err = o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
		must(t, err)
		must(t, o.Begin(ctx, m.ID))
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := s.CountMigrationDevices(ctx, m.ID)
			must(t, err)
			if c[0][ferry.DeviceVerified] >= 5 && c[0][ferry.DevicePending] > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the wave did not get going: %v", c)
			}
			time.Sleep(20 * time.Millisecond)
		}
		must(t, o.Cancel(ctx, m.ID))
		m = waitState(t, s, m.ID, 30*time.Second, ferry.MigrationCancelled)
		verified := 0
		for _, d := range devicesIn(t, s, m.ID) {
			a, err := s.GetDeviceIdentity(ctx, f.hubA.ID, d.DeviceID)
			must(t, err)
			switch d.State {
			case ferry.DeviceVerified:
				verified++
				if a.Status != ferry.DeviceDisabled || !f.hubs.Connected(f.hubB.ID, d.DeviceID) {
					t.Errorf("verified %s: at A %s, connected at B %v", d.DeviceID, a.Status, f.hubs.Connected(f.hubB.ID, d.DeviceID))
				}
			case ferry.DeviceFailedBack, ferry.DevicePending:
				if a.Status != ferry.DeviceEnabled || !f.hubs.Connected(f.hubA.ID, d.DeviceID) {
					t.Errorf("%s %s: at A %s, connected at A %v", d.State, d.DeviceID, a.Status, f.hubs.Connected(f.hubA.ID, d.DeviceID))
				}
			default:
				t.Errorf("%s is %s: %s", d.DeviceID, d.State, d.Reason)
			}
		}
		if verified < 5 {
			t.Errorf("%d verified", verified)
		}

		must(t, o.Failback(ctx, m.ID, nil))
		m = waitState(t, s, m.ID, 30*time.Second, ferry.MigrationCancelled)
		for _, d := range devicesIn(t, s, m.ID) {
			a, err := s.GetDeviceIdentity(ctx, f.hubA.ID, d.DeviceID)
			must(t, err)
			if d.State == ferry.DeviceVerified || a.Status != ferry.DeviceEnabled || !f.hubs.Connected(f.hubA.ID, d.DeviceID) {
				t.Errorf("%s is %s (%s): at A %s, connected at A %v", d.DeviceID, d.State, d.Reason, a.Status, f.hubs.Connected(f.hubA.ID, d.DeviceID))
			}
		}
		devs := f.devices
		f.finish()
		f.checkNoGap(devs)
	})
}

// checkRate checks that no second saw more DeviceMove commands than the
// rate allows, with a burst of one second's worth.
func checkRate(t *testing.T, s ferry.Store, id string, rate float64) {
	t.Helper()
	p, err := s.ListMigrationTransitions(context.Background(), id, "", ferry.ListOptions{Limit: ferry.MaxPageSize})
	must(t, err)
	var at []time.Time
	for _, tr := range p.Items {
		if tr.To == ferry.DeviceCommanded {
			at = append(at, tr.At)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		if float64(j-i) > 2*rate {
			t.Fatalf("%d commands within a second from %s at a rate of %v/s", j-i, at[i].Format("15:04:05.000"), rate)
		}
	}
}
