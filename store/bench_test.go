package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

// benchBackends runs a benchmark on each database.
func benchBackends(b *testing.B, fn func(b *testing.B, s ferry.Store)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.OpenSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { fn(b, storetest.OpenPostgres(b)) })
}

func BenchmarkCreateDeviceIdentity(b *testing.B) {
	benchBackends(b, func(b *testing.B, s ferry.Store) {
		if err := s.CreateHub(ctx, &ferry.Hub{ID: "h", Name: "h", HostName: "h"}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d := &ferry.DeviceIdentity{HubID: "h", DeviceID: fmt.Sprintf("dev-%09d", i), Status: ferry.DeviceEnabled,
				Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)}}
			if err := s.CreateDeviceIdentity(ctx, d); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkListDeviceIdentities reads a page of 100 identities, with a
// filter, from the middle of a hub of 100,000.
func BenchmarkListDeviceIdentities(b *testing.B) {
	const rows = 100_000
	benchBackends(b, func(b *testing.B, s ferry.Store) {
		if err := s.CreateHub(ctx, &ferry.Hub{ID: "h", Name: "h", HostName: "h"}); err != nil {
			b.Fatal(err)
		}
		for chunk := 0; chunk < rows; chunk += 5000 {
			err := s.WithTx(ctx, func(tx ferry.Tx) error {
				for i := chunk; i < chunk+5000; i++ {
					st := ferry.DeviceEnabled
					if i%10 == 0 {
						st = ferry.DeviceDisabled
					}
					if err := tx.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: "h", DeviceID: fmt.Sprintf("dev-%09d", i), Status: st}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		// The cursor of the page starting at the middle.
		first, err := s.ListDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: "h", ListOptions: ferry.ListOptions{Limit: rows / 2}})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name string
			f    ferry.DeviceIdentityFilter
		}{
			{"all", ferry.DeviceIdentityFilter{HubID: "h"}},
			{"disabled", ferry.DeviceIdentityFilter{HubID: "h", Status: ferry.DeviceDisabled}},
		} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				f := c.f
				f.ListOptions = ferry.ListOptions{After: first.Next, Limit: 100}
				for b.Loop() {
					p, err := s.ListDeviceIdentities(ctx, f)
					if err != nil {
						b.Fatal(err)
					}
					if len(p.Items) != 100 {
						b.Fatalf("page of %d", len(p.Items))
					}
				}
			})
		}
	})
}

// BenchmarkUpdateConnections writes one batch of 1,000 activity updates, as
// the hub's periodic writer does; ns/op is per batch.
func BenchmarkUpdateConnections(b *testing.B) {
	const n = 1000
	benchBackends(b, func(b *testing.B, s ferry.Store) {
		if err := s.CreateHub(ctx, &ferry.Hub{ID: "h", Name: "h", HostName: "h"}); err != nil {
			b.Fatal(err)
		}
		u := make([]ferry.ConnectionUpdate, n)
		err := s.WithTx(ctx, func(tx ferry.Tx) error {
			for i := range u {
				u[i].DeviceID = fmt.Sprintf("dev-%09d", i)
				d := &ferry.DeviceIdentity{HubID: "h", DeviceID: u[i].DeviceID, Status: ferry.DeviceEnabled,
					Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)}}
				if err := tx.CreateDeviceIdentity(ctx, d); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			now := time.Now().UTC()
			for i := range u {
				u[i].LastActivityAt = now
			}
			if err := s.UpdateConnections(ctx, "h", u); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTransitionMigrationDevices writes one batch of transitions (each
// device one step on, as the orchestrator does per tick); ns/op is per
// batch.
func BenchmarkTransitionMigrationDevices(b *testing.B) {
	states := []ferry.DeviceMigrationState{ferry.DeviceCommanded, ferry.DeviceAcknowledged, ferry.DeviceProvisioned,
		ferry.DeviceConnected, ferry.DeviceVerified}
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			benchBackends(b, func(b *testing.B, s ferry.Store) {
				if err := s.CreateHub(ctx, &ferry.Hub{ID: "h", Name: "h", HostName: "h"}); err != nil {
					b.Fatal(err)
				}
				if err := s.CreateMigration(ctx, &ferry.Migration{ID: "m", Name: "m", SourceHubID: "h"}); err != nil {
					b.Fatal(err)
				}
				recs := make([]*ferry.MigrationDevice, n)
				for i := range recs {
					recs[i] = &ferry.MigrationDevice{MigrationID: "m", DeviceID: fmt.Sprintf("dev-%09d", i), State: states[0]}
				}
				if err := s.AddMigrationDevices(ctx, recs); err != nil {
					b.Fatal(err)
				}
				ts := make([]*ferry.MigrationTransition, n)
				b.ReportAllocs()
				step := 0
				for b.Loop() {
					from, to := states[step%len(states)], states[(step+1)%len(states)]
					now := time.Now().UTC()
					for i := range ts {
						ts[i] = &ferry.MigrationTransition{MigrationID: "m", DeviceID: recs[i].DeviceID, From: from, To: to, At: now,
							Reason: "benchmark", Deadline: now.Add(time.Minute)}
					}
					if err := s.TransitionMigrationDevices(ctx, ts); err != nil {
						b.Fatal(err)
					}
					step++
				}
			})
		})
	}
}
