package migrate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/store/storetest"
)

// addIdentities creates n offline identities at hub A, provisioned by the
// fleet's enrollment group, with the given model.
func (f *fleet) addIdentities(n int, model string) []string {
	f.t.Helper()
	ctx := context.Background()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("idle-%03d", i)
		must(f.t, f.store.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: f.hubA.ID, DeviceID: id, GenerationID: ferry.NewUUID(),
			Status: ferry.DeviceEnabled, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)},
			ConnectionState: ferry.Disconnected, ModelID: model, EnrollmentGroupID: groupID, CreatedAt: time.Now()}))
		ids = append(ids, id)
	}
	return ids
}

// sphereDeviceID returns a 128-character chip ID, as Azure Sphere devices
// have, in upper case as the catalog keeps it.
func sphereDeviceID(n int) string {
	return fmt.Sprintf("%0128X", n+0xABC000)
}

// addCatalogGroup claims the devices whose hub identities are ids, and two
// devices with no identity at hub A, into a catalog device group, and
// returns the group.
func (f *fleet) addCatalogGroup(ids []string) *ferry.DeviceGroup {
	f.t.Helper()
	ctx := context.Background()
	s := f.store
	cat := &ferry.Catalog{TenantID: ferry.NewUUID(), SubscriptionID: ferry.NewUUID(), ResourceGroup: "rg", Name: "fleet",
		Location: "global", State: ferry.ProvisioningSucceeded}
	must(f.t, s.CreateCatalog(ctx, cat))
	prod := &ferry.Product{ID: ferry.NewUUID(), CatalogID: cat.TenantID, Name: "Sensor"}
	must(f.t, s.CreateProduct(ctx, prod))
	g := &ferry.DeviceGroup{ID: ferry.NewUUID(), CatalogID: cat.TenantID, ProductID: prod.ID, Name: "Production",
		OSFeedType: ferry.OSFeedRetail, UpdatePolicy: ferry.UpdateAll, RegionalDataBoundary: ferry.BoundaryNone}
	must(f.t, s.CreateDeviceGroup(ctx, g))
	claim := func(id string) {
		must(f.t, s.CreateDevice(ctx, &ferry.Device{ID: id, CatalogID: cat.TenantID, ProductID: prod.ID, DeviceGroupID: g.ID, ClaimedAt: time.Now()}))
	}
	for _, id := range ids {
		claim(id)
	}
	claim(sphereDeviceID(900)) // claimed, but on no hub
	claim(sphereDeviceID(901))
	return g
}

// addSphereIdentities creates n offline identities at hub A named, as the
// Azure Sphere OS names them, by the lower-case chip ID.
func (f *fleet) addSphereIdentities(n int) []string {
	f.t.Helper()
	ctx := context.Background()
	var ids []string
	for i := range n {
		id := strings.ToLower(sphereDeviceID(i))
		must(f.t, f.store.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: f.hubA.ID, DeviceID: id, GenerationID: ferry.NewUUID(),
			Status: ferry.DeviceEnabled, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)},
			ConnectionState: ferry.Disconnected, ModelID: modelID, EnrollmentGroupID: groupID, CreatedAt: time.Now()}))
		ids = append(ids, id)
	}
	return ids
}

func TestCreateFromCatalogDeviceGroup(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFleet(t, s)
		f.addIdentities(3, modelID) // on the hub, not in the catalog group
		sphere := f.addSphereIdentities(4)
		group := f.addCatalogGroup(sphere[:3])
		o, err := migrate.New(migrate.Config{Store: s, Hubs: f.hubs, Bus: f.bus})
		must(t, err)

		p := f.plan("catalog")
		p.Selection = ferry.MigrationSelection{Kind: ferry.SelectCatalogDeviceGroup, CatalogDeviceGroupID: group.ID}
		m, err := o.Create(ctx, p)
		must(t, err)
		var got []string
		for _, d := range devicesIn(t, s, m.ID) {
			got = append(got, d.DeviceID)
		}
		if diff := cmp.Diff(sphere[:3], got); diff != "" {
			t.Errorf("selected devices (-want +got):\n%s", diff)
		}

		t.Run("ErrUnknownGroup", func(t *testing.T) {
			p := f.plan("catalog-unknown")
			p.Selection = ferry.MigrationSelection{Kind: ferry.SelectCatalogDeviceGroup, CatalogDeviceGroupID: ferry.NewUUID()}
			if _, err := o.Create(ctx, p); ferry.ErrorCode(err) != ferry.ENOTFOUND {
				t.Fatalf("err = %v, want ENOTFOUND", err)
			}
		})
		t.Run("ErrNoDeviceOnSourceHub", func(t *testing.T) {
			elsewhere := &ferry.DeviceGroup{ID: ferry.NewUUID(), CatalogID: group.CatalogID, ProductID: group.ProductID, Name: "Field Test",
				OSFeedType: ferry.OSFeedRetail, UpdatePolicy: ferry.UpdateAll, RegionalDataBoundary: ferry.BoundaryNone}
			must(t, s.CreateDeviceGroup(ctx, elsewhere))
			must(t, s.CreateDevice(ctx, &ferry.Device{ID: sphereDeviceID(902), CatalogID: group.CatalogID, ProductID: group.ProductID,
				DeviceGroupID: elsewhere.ID, ClaimedAt: time.Now()}))
			p := f.plan("catalog-elsewhere")
			p.Selection = ferry.MigrationSelection{Kind: ferry.SelectCatalogDeviceGroup, CatalogDeviceGroupID: elsewhere.ID}
			if _, err := o.Create(ctx, p); ferry.ErrorCode(err) != ferry.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
		})
	})
}

func TestCreate(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFleet(t, s)
		ids := f.addIdentities(10, modelID)
		o, err := migrate.New(migrate.Config{Store: s, Hubs: f.hubs, Bus: f.bus})
		must(t, err)
		byIDs := func(p *ferry.Migration) *ferry.Migration {
			p.Selection = ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: ids}
			return p
		}
		tests := []struct {
			name  string
			edit  func(p *ferry.Migration)
			code  string
			sizes []int
		}{
			{name: "OneWaveByDefault", sizes: []int{10}},
			{name: "WaveSizes", edit: func(p *ferry.Migration) { p.Waves.Sizes = []int{3, 3} }, sizes: []int{3, 7}},
			{name: "WaveSizesStopWhenAllPlaced", edit: func(p *ferry.Migration) { p.Waves.Sizes = []int{6, 6, 6} }, sizes: []int{6, 4}},
			{name: "WavePercentages", edit: func(p *ferry.Migration) { p.Waves.Percentages = []int{10, 40, 50} }, sizes: []int{1, 4, 5}},
			{name: "HubDeviceGroup", edit: func(p *ferry.Migration) {
				p.Selection = ferry.MigrationSelection{Kind: ferry.SelectHubDeviceGroup, HubDeviceGroupID: f.group.ID}
			}, sizes: []int{10}},
			{name: "ErrNameRequired", edit: func(p *ferry.Migration) { p.Name = "" }, code: ferry.EINVALID},
			{name: "ErrTimeoutRequired", edit: func(p *ferry.Migration) { p.DeviceTimeout = 0 }, code: ferry.EINVALID},
			{name: "ErrThreshold", edit: func(p *ferry.Migration) { p.ErrorThreshold = 101 }, code: ferry.EINVALID},
			{name: "ErrOnError", edit: func(p *ferry.Migration) { p.OnError = "explode" }, code: ferry.EINVALID},
			{name: "ErrBothWavePlans", edit: func(p *ferry.Migration) { p.Waves = ferry.WavePlan{Sizes: []int{1}, Percentages: []int{50}} }, code: ferry.EINVALID},
			{name: "ErrPercentagesOver100", edit: func(p *ferry.Migration) { p.Waves.Percentages = []int{60, 60} }, code: ferry.EINVALID},
			{name: "ErrUnknownDevice", edit: func(p *ferry.Migration) { p.Selection.DeviceIDs = []string{"nobody"} }, code: ferry.ENOTFOUND},
			{name: "ErrEmptySelection", edit: func(p *ferry.Migration) { p.Selection.DeviceIDs = nil }, code: ferry.EINVALID},
			{name: "ErrTargetLinksSource", edit: func(p *ferry.Migration) { p.Target.ProvisioningServiceID = f.dpsA.ID }, code: ferry.EINVALID},
			{name: "ErrWrongScope", edit: func(p *ferry.Migration) { p.Target.IDScope = f.dpsA.IDScope }, code: ferry.EINVALID},
			{name: "ErrUnknownSourceHub", edit: func(p *ferry.Migration) { p.SourceHubID = ferry.NewUUID() }, code: ferry.ENOTFOUND},
			{name: "ErrRemoteTarget", edit: func(p *ferry.Migration) { p.Target.Remote = &ferry.RemoteFerry{APIEndpoint: "https://x"} }, code: ferry.EINVALID},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := byIDs(f.plan(fmt.Sprintf("m-%d", i)))
				if tc.edit != nil {
					tc.edit(p)
				}
				m, err := o.Create(ctx, p)
				if tc.code != "" {
					if ferry.ErrorCode(err) != tc.code {
						t.Fatalf("err = %v, want %s", err, tc.code)
					}
					return
				}
				must(t, err)
				if m.State != ferry.MigrationCreated || m.Target.IDScope != f.dpsB.IDScope {
					t.Errorf("created %s with scope %s", m.State, m.Target.IDScope)
				}
				waves, err := s.ListMigrationWaves(ctx, m.ID)
				must(t, err)
				var sizes []int
				for _, w := range waves {
					sizes = append(sizes, w.Size)
				}
				if diff := cmp.Diff(tc.sizes, sizes); diff != "" {
					t.Errorf("wave sizes (-want +got):\n%s", diff)
				}
				if n := len(devicesIn(t, s, m.ID)); n != 10 {
					t.Errorf("%d device records", n)
				}
			})
		}
		t.Run("ErrNameTaken", func(t *testing.T) {
			_, err := o.Create(ctx, byIDs(f.plan("m-0")))
			if ferry.ErrorCode(err) != ferry.ECONFLICT {
				t.Fatalf("err = %v", err)
			}
		})
	})
}

func TestPreflight(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFleet(t, s)
		moving := f.addIdentities(2, modelID)
		must(t, s.PutDeviceTemplate(ctx, &ferry.DeviceTemplate{ID: "dtmi:ferry:static;1", CreatedAt: time.Now()}))
		o, err := migrate.New(migrate.Config{Store: s, Hubs: f.hubs, Bus: f.bus})
		must(t, err)
		create := func(name string, ids ...string) *ferry.Migration {
			t.Helper()
			p := f.plan(name)
			p.Selection = ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: ids}
			m, err := o.Create(ctx, p)
			must(t, err)
			return m
		}
		checks := func(r *migrate.PreflightReport) map[string]int {
			out := map[string]int{}
			for _, p := range r.Problems {
				out[p.Check]++
			}
			return out
		}

		t.Run("OfflineDevicesAndCreatedEnrollment", func(t *testing.T) {
			m := create("offline", moving...)
			rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
			must(t, err)
			if rep.OK || rep.Online != 0 || cmp.Diff(map[string]int{migrate.CheckOnline: 2}, checks(rep)) != "" {
				t.Fatalf("report %+v", rep)
			}
			if cmp.Diff([]string{groupID}, rep.EnrollmentsCreated) != "" {
				t.Errorf("created %v", rep.EnrollmentsCreated)
			}
			g, err := s.GetEnrollmentGroup(ctx, f.dpsB.ID, groupID)
			must(t, err)
			if g.Attestation.PrimaryKey != f.groupKey || g.Status != ferry.EnrollmentEnabled {
				t.Errorf("target group has other keys or is %s", g.Status)
			}
			m, err = s.GetMigration(ctx, m.ID)
			must(t, err)
			if m.State != ferry.MigrationCreated || !strings.Contains(string(m.Preflight), `"check":"online"`) {
				t.Errorf("stored %s with %s", m.State, m.Preflight)
			}
			if err := o.Begin(ctx, m.ID); err != nil {
				t.Fatal(err) // an operator may start anyway
			}
			if _, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{}); ferry.ErrorCode(err) != ferry.ECONFLICT {
				t.Errorf("preflight of a running migration: %v", err)
			}
		})

		t.Run("Models", func(t *testing.T) {
			for i, model := range []string{"", "dtmi:ferry:unknown;1", "dtmi:ferry:static;1"} {
				id := fmt.Sprintf("model-%d", i)
				must(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: f.hubA.ID, DeviceID: id, Status: ferry.DeviceEnabled,
					Auth: ferry.DeviceAuth{Type: ferry.AuthSAS}, ModelID: model, EnrollmentGroupID: groupID, CreatedAt: time.Now()}))
			}
			m := create("models", "model-0", "model-1", "model-2")
			rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
			must(t, err)
			if got := checks(rep); got[migrate.CheckModel] != 3 {
				t.Errorf("problems %+v", rep.Problems)
			}
			rep, err = o.Preflight(ctx, m.ID, migrate.PreflightOptions{SkipModelCheck: true})
			must(t, err)
			if got := checks(rep); got[migrate.CheckModel] != 0 {
				t.Errorf("problems with SkipModelCheck %+v", rep.Problems)
			}
		})

		t.Run("TargetGroupWithOtherKeys", func(t *testing.T) {
			g, err := s.GetEnrollmentGroup(ctx, f.dpsB.ID, groupID)
			must(t, err)
			g.Attestation.PrimaryKey, g.Attestation.SecondaryKey = ferry.NewKey(64), ferry.NewKey(64)
			must(t, s.PutEnrollmentGroup(ctx, g, g.ETag))
			m := create("keys", moving...)
			rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
			must(t, err)
			if got := checks(rep); got[migrate.CheckEnrollment] != 2 || !strings.Contains(rep.Problems[len(rep.Problems)-1].Reason, "other keys") {
				t.Errorf("problems %+v", rep.Problems)
			}
		})

		t.Run("TargetGroupDisabled", func(t *testing.T) {
			g, err := s.GetEnrollmentGroup(ctx, f.dpsB.ID, groupID)
			must(t, err)
			g.Attestation.PrimaryKey, g.Status = f.groupKey, ferry.EnrollmentDisabled
			must(t, s.PutEnrollmentGroup(ctx, g, g.ETag))
			m := create("disabled", moving...)
			rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
			must(t, err)
			if got := checks(rep); got[migrate.CheckEnrollment] != 2 || !strings.Contains(rep.Problems[len(rep.Problems)-1].Reason, "disabled") {
				t.Errorf("problems %+v", rep.Problems)
			}
		})
	})
}

// TestStates checks which operations each migration state allows, without
// devices: nothing moves while the orchestrator is not started.
func TestStates(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFleet(t, s)
		ids := f.addIdentities(3, modelID)
		o, err := migrate.New(migrate.Config{Store: s, Hubs: f.hubs, Bus: f.bus})
		must(t, err)
		p := f.plan("states")
		p.Selection = ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: ids}
		m, err := o.Create(ctx, p)
		must(t, err)
		steps := []struct {
			name string
			op   func(context.Context, string) error
			code string
			want ferry.MigrationState
		}{
			{"ErrPauseCreated", o.Pause, ferry.ECONFLICT, ferry.MigrationCreated},
			{"ErrResumeCreated", o.Resume, ferry.ECONFLICT, ferry.MigrationCreated},
			{"Begin", o.Begin, "", ferry.MigrationRunning},
			{"ErrBeginRunning", o.Begin, ferry.ECONFLICT, ferry.MigrationRunning},
			{"Pause", o.Pause, "", ferry.MigrationPaused},
			{"Resume", o.Resume, "", ferry.MigrationRunning},
			{"Cancel", o.Cancel, "", ferry.MigrationCancelling},
			{"ErrResumeCancelling", o.Resume, ferry.ECONFLICT, ferry.MigrationCancelling},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				err := st.op(ctx, m.ID)
				if ferry.ErrorCode(err) != st.code {
					t.Fatalf("err = %v, want code %q", err, st.code)
				}
				got, err := s.GetMigration(ctx, m.ID)
				must(t, err)
				if got.State != st.want {
					t.Errorf("state %s, want %s", got.State, st.want)
				}
			})
		}
		t.Run("ErrNotFound", func(t *testing.T) {
			if err := o.Begin(ctx, ferry.NewUUID()); ferry.ErrorCode(err) != ferry.ENOTFOUND {
				t.Errorf("err = %v", err)
			}
		})
		t.Run("ReportOfUntouchedDevices", func(t *testing.T) {
			r, err := o.Report(ctx, m.ID)
			must(t, err)
			if r.Counts[ferry.DevicePending] != 3 || len(r.Waves) != 1 || len(r.Devices[0].Transitions) != 0 {
				t.Errorf("report %+v", r)
			}
		})
	})
}
