package migrate_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/store/storetest"
)

// capacityProblems returns the reasons of a report's capacity and remote
// problems: the devices of these tests are offline, which is not their
// point.
func capacityProblems(r *migrate.PreflightReport) []string {
	var out []string
	for _, p := range r.Problems {
		if p.Check == migrate.CheckCapacity || p.Check == migrate.CheckRemote {
			out = append(out, p.Check+": "+p.Reason)
		}
	}
	return out
}

// TestPreflightCapacityLocal fills the target hub up to a small quota: a
// moving device already registered there does not count twice.
func TestPreflightCapacityLocal(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFleet(t, s)
		moving := f.addIdentities(2, modelID)
		for _, id := range []string{moving[0], "resident"} {
			must(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: f.hubB.ID, DeviceID: id, Status: ferry.DeviceEnabled,
				Auth: ferry.DeviceAuth{Type: ferry.AuthSAS}, CreatedAt: time.Now()}))
		}
		p := f.plan("capacity")
		p.Selection = ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: moving}
		o, err := migrate.New(migrate.Config{Store: s, Hubs: f.hubs, Bus: f.bus, MaxHubDevices: 3})
		must(t, err)
		m, err := o.Create(ctx, p)
		must(t, err)

		t.Run("Fits", func(t *testing.T) {
			rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
			must(t, err)
			if got := capacityProblems(rep); len(got) != 0 {
				t.Errorf("problems %q", got)
			}
		})
		t.Run("HubFull", func(t *testing.T) {
			o, err := migrate.New(migrate.Config{Store: s, Hubs: f.hubs, Bus: f.bus, MaxHubDevices: 2})
			must(t, err)
			rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
			must(t, err)
			want := []string{"capacity: the target hub " + f.hubB.HostName + " holds 2 devices and this migration adds 1; a hub holds at most 2"}
			if got := capacityProblems(rep); !slices.Equal(got, want) || rep.OK {
				t.Errorf("problems %q, want %q", got, want)
			}
		})
		t.Run("LinkedHubGone", func(t *testing.T) {
			must(t, s.DeleteHub(ctx, f.hubB.ID))
			rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
			must(t, err)
			want := []string{"capacity: the target's linked hub " + f.hubB.HostName + " does not exist"}
			if got := capacityProblems(rep); !slices.Equal(got, want) {
				t.Errorf("problems %q, want %q", got, want)
			}
		})
	})
}

// TestPreflightCapacityRemote checks a target on another Ferry through
// the statistics its hubs report: device counts against the per-hub
// quota, and the target server's open connections against its limit.
func TestPreflightCapacityRemote(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		f := newFleet(t, s)
		moving := f.addIdentities(2, modelID)
		rt := &fakeRemote{groups: map[string]*ferry.EnrollmentGroup{}, svc: &ferry.ProvisioningService{Name: "dps-x", IDScope: "0neX0000001",
			HostName: "ferry-b.example", LinkedHubs: []ferry.LinkedHub{
				{HubID: migrate.RemoteHubID("hub-x.example"), HostName: "hub-x.example"},
				{HubID: migrate.RemoteHubID("hub-y.example"), HostName: "hub-y.example"}}}}
		o, err := migrate.New(migrate.Config{Store: s, Hubs: f.hubs, Bus: f.bus,
			Remote: func(context.Context, *ferry.RemoteFerry, string) (migrate.RemoteTarget, error) { return rt, nil }})
		must(t, err)
		p := f.plan("remote")
		p.Selection = ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: moving}
		p.Target = ferry.MigrationTarget{ProvisioningServiceID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Devices/provisioningServices/dps-x",
			Remote: &ferry.RemoteFerry{APIEndpoint: "https://ferry-b.example", ClientID: "migrator", ClientSecret: "s3cret"}}
		m, err := o.Create(ctx, p)
		must(t, err)

		for _, c := range []struct {
			name  string
			stats map[string]migrate.HubStatistics
			err   error
			want  []string
		}{
			{"Fits", map[string]migrate.HubStatistics{
				"hub-x.example": {Devices: 10, OpenConnections: 3, ConnectionLimit: 5},
				"hub-y.example": {Devices: 999_998, OpenConnections: 3, ConnectionLimit: 5}}, nil, nil},
			{"ConnectionsFull", map[string]migrate.HubStatistics{
				"hub-x.example": {Devices: 10, OpenConnections: 4, ConnectionLimit: 5},
				"hub-y.example": {Devices: 10, OpenConnections: 4, ConnectionLimit: 5}}, nil,
				[]string{"capacity: the target Ferry accepts 1 more device connections (limit 5, 4 open); this migration moves 2"}},
			{"OverLimit", map[string]migrate.HubStatistics{
				"hub-x.example": {OpenConnections: 19_500, ConnectionLimit: 19_000}}, nil,
				[]string{"capacity: the target Ferry accepts 0 more device connections (limit 19,000, 19,500 open); this migration moves 2"}},
			{"HubFull", map[string]migrate.HubStatistics{
				"hub-x.example": {Devices: 10},
				"hub-y.example": {Devices: 999_999}}, nil,
				[]string{"capacity: the target hub hub-y.example holds 999,999 devices and this migration adds up to 2; a hub holds at most 1,000,000"}},
			{"NoFerryExtension", map[string]migrate.HubStatistics{}, nil, nil},
			{"StatisticsRefused", nil, ferry.Errorf(ferry.EFORBIDDEN, "The target Ferry answered 403: no."),
				[]string{"remote: the target Ferry's statistics of hub hub-x.example: The target Ferry answered 403: no."}},
		} {
			t.Run(c.name, func(t *testing.T) {
				rt.set(c.stats, c.err)
				rep, err := o.Preflight(ctx, m.ID, migrate.PreflightOptions{})
				must(t, err)
				if got := capacityProblems(rep); !slices.Equal(got, c.want) {
					t.Errorf("problems %q, want %q", got, c.want)
				}
			})
		}
	})
}

// fakeRemote is a target Ferry that answers preflight's questions from
// memory.
type fakeRemote struct {
	svc *ferry.ProvisioningService

	mu     sync.Mutex
	groups map[string]*ferry.EnrollmentGroup
	stats  map[string]migrate.HubStatistics
	err    error
}

func (r *fakeRemote) set(stats map[string]migrate.HubStatistics, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats, r.err = stats, err
}

func (r *fakeRemote) Service(context.Context) (*ferry.ProvisioningService, error) { return r.svc, nil }

func (r *fakeRemote) GetEnrollmentGroup(_ context.Context, id string) (*ferry.EnrollmentGroup, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.groups[id]; ok {
		return g, nil
	}
	return nil, ferry.Errorf(ferry.ENOTFOUND, "No group %s.", id)
}

func (r *fakeRemote) CreateEnrollmentGroup(_ context.Context, g *ferry.EnrollmentGroup) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups[g.ID] = g
	return nil
}

func (r *fakeRemote) GetRegistration(context.Context, string) (*ferry.RegistrationRecord, error) {
	return nil, ferry.Errorf(ferry.ENOTFOUND, "No registration.")
}

func (r *fakeRemote) Connected(context.Context, string, string) (bool, error) { return false, nil }

func (r *fakeRemote) HubStatistics(_ context.Context, host string) (migrate.HubStatistics, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats[host], r.err
}

func (r *fakeRemote) InvokeMethod(context.Context, string, string, ferry.MethodRequest) (ferry.MethodResponse, error) {
	return ferry.MethodResponse{}, ferry.ErrDeviceNotOnline
}

func (r *fakeRemote) Follow(ctx context.Context, _ string, _ func(), _ func(ferry.Event)) error {
	<-ctx.Done()
	return ctx.Err()
}
