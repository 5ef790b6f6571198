package migration_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/store/storetest"
)

// remoteService is the far side of a remote migration: a provisioning
// service that describes itself and does nothing else.
type remoteService struct{ svc *ferry.ProvisioningService }

var errRemoteIdle = errors.New("the test's remote Ferry does not do that")

func (r remoteService) Service(context.Context) (*ferry.ProvisioningService, error) {
	return r.svc, nil
}
func (r remoteService) GetEnrollmentGroup(context.Context, string) (*ferry.EnrollmentGroup, error) {
	return nil, errRemoteIdle
}
func (r remoteService) CreateEnrollmentGroup(context.Context, *ferry.EnrollmentGroup) error {
	return errRemoteIdle
}
func (r remoteService) GetRegistration(context.Context, string) (*ferry.RegistrationRecord, error) {
	return nil, errRemoteIdle
}
func (r remoteService) Connected(context.Context, string, string) (bool, error) {
	return false, errRemoteIdle
}
func (r remoteService) InvokeMethod(context.Context, string, string, ferry.MethodRequest) (ferry.MethodResponse, error) {
	return ferry.MethodResponse{}, errRemoteIdle
}
func (r remoteService) HubStatistics(context.Context, string) (migrate.HubStatistics, error) {
	return migrate.HubStatistics{}, nil
}

func (r remoteService) Follow(context.Context, string, func(), func(ferry.Event)) error {
	return errRemoteIdle
}

// TestRemoteClientSecretWriteOnly creates a migration to another Ferry and
// checks that its client secret reaches the orchestrator's dialer, is read
// back from the store (to resume), and is in no answer of the API.
func TestRemoteClientSecretWriteOnly(t *testing.T) {
	const secret = "s3cret" // remoteBody's
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		var (
			mu     sync.Mutex
			dialed []string
		)
		dial := func(_ context.Context, rf *ferry.RemoteFerry, _ string) (migrate.RemoteTarget, error) {
			mu.Lock()
			defer mu.Unlock()
			dialed = append(dialed, rf.ClientSecret)
			return remoteService{&ferry.ProvisioningService{Name: "dps-x", IDScope: "0neX0000001", HostName: "ferry-b.example",
				LinkedHubs: []ferry.LinkedHub{{HubID: migrate.RemoteHubID("hub-x.example"), HostName: "hub-x.example"}}}}, nil
		}
		e := newEnvRemote(t, s, dial)
		owner := e.user("owner")
		e.assign(owner, ferry.RoleOwner, ferry.SubscriptionScope(sub))
		must(t, e.authz.Reload(context.Background()))
		fleetSetup(e)

		answers := []response{e.do(owner, "test", http.MethodPut, migrationPath("remote")+api, remoteBody(nil))}
		if answers[0].status != http.StatusCreated {
			t.Fatalf("PUT: %d %s", answers[0].status, answers[0].raw)
		}
		var m migrationResource
		answers[0].decode(t, &m)
		answers = append(answers,
			e.do(owner, "test", http.MethodGet, migrationPath("remote")+api, nil),
			e.do(owner, "test", http.MethodGet, rgPath()+"/providers/Ferry.Migration/migrations"+api, nil),
		)
		for i, r := range answers {
			if r.status != http.StatusOK && r.status != http.StatusCreated {
				t.Errorf("answer %d: %d %s", i, r.status, r.raw)
			}
			if strings.Contains(string(r.raw), secret) || strings.Contains(string(r.raw), "clientSecret") {
				t.Errorf("answer %d shows the client secret: %s", i, r.raw)
			}
			if !strings.Contains(string(r.raw), `"clientId":"c1"`) {
				t.Errorf("answer %d lacks the target Ferry: %s", i, r.raw)
			}
		}
		got, err := s.GetMigration(context.Background(), m.Properties.MigrationID)
		must(t, err)
		if got.Target.Remote == nil || got.Target.Remote.ClientSecret != secret {
			t.Errorf("stored target %+v, want the client secret kept", got.Target.Remote)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dialed) == 0 || dialed[0] != secret {
			t.Errorf("dialled with %q", dialed)
		}
	})
}
