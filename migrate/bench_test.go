package migrate_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/store/storetest"
)

// BenchmarkMigrate moves a fleet of devices from hub A to hub B in one wave
// at 250 commands a second over TLS on SQLite and reports the median time of each phase: command to
// acknowledgement, to registration at the target, to connection there, to
// first telemetry there. The DPS protocol's retry-after of one second is
// part of every registration.
func BenchmarkMigrate(b *testing.B) {
	for _, n := range []int{200, 1000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			phases := map[ferry.DeviceMigrationState][]time.Duration{}
			var total time.Duration
			for range b.N {
				b.StopTimer()
				s := storetest.OpenSQLite(b)
				f := newFleet(b, s)
				f.startDevices(n, time.Second)
				o := f.orchestrator()
				ctx := context.Background()
				plan := f.plan("bench")
				plan.DeviceTimeout = 2 * time.Minute
				plan.CommandRate = 250
				m, err := o.Create(ctx, plan)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := o.Begin(ctx, m.ID); err != nil {
					b.Fatal(err)
				}
				m = waitState(f.t, s, m.ID, 2*time.Minute, ferry.MigrationCompleted, ferry.MigrationFailed, ferry.MigrationPaused)
				total += time.Since(start)
				b.StopTimer()
				if m.State != ferry.MigrationCompleted {
					dumpFailures(b, o, m.ID)
					b.Fatalf("migration %s: %s", m.State, m.StateReason)
				}
				p, err := s.ListMigrationTransitions(ctx, m.ID, "", ferry.ListOptions{Limit: ferry.MaxPageSize})
				if err != nil {
					b.Fatal(err)
				}
				commanded := map[string]time.Time{}
				for _, tr := range p.Items {
					if tr.To == ferry.DeviceCommanded {
						commanded[tr.DeviceID] = tr.At
					} else if !tr.At.IsZero() {
						phases[tr.To] = append(phases[tr.To], tr.At.Sub(commanded[tr.DeviceID]))
					}
				}
				o.Close()
				f.stopDevices()
				b.StartTimer()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/migration")
			for _, st := range []ferry.DeviceMigrationState{ferry.DeviceAcknowledged, ferry.DeviceProvisioned, ferry.DeviceConnected, ferry.DeviceVerified} {
				d := phases[st]
				if len(d) == 0 {
					continue
				}
				slices.Sort(d)
				b.ReportMetric(float64(d[len(d)/2].Milliseconds()), "ms-to-"+string(st)+"-p50")
			}
		})
	}
}
