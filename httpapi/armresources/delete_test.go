package armresources_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestDeleteResourceGroupWithMigrations checks that a resource group is
// not deleted while a migration in it, or one moving devices through its
// hubs, is in flight, and that it is once they have ended.
func TestDeleteResourceGroupWithMigrations(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, cred := e.principal("owner", ferry.RoleOwner, "/")
		rgs, err := armresources.NewResourceGroupsClient(e.sub, cred, e.opts)
		must(t, err)
		for _, rg := range []string{"Mig-RG", "Other-RG"} {
			_, err := rgs.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to("westeurope")}, nil)
			must(t, err)
		}
		hub := &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-src", HostName: "hub-src.example", SubscriptionID: e.sub,
			ResourceGroup: "Mig-RG", Location: "westeurope", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
		must(t, s.CreateHub(ctx, hub))
		mk := func(rg, name string, st ferry.MigrationState) *ferry.Migration {
			m := &ferry.Migration{ID: ferry.NewUUID(), Name: name, SubscriptionID: e.sub, ResourceGroup: rg, SourceHubID: hub.ID,
				Selection: ferry.MigrationSelection{Kind: ferry.SelectDeviceIDs, DeviceIDs: []string{"d1"}}, State: st, CreatedAt: time.Now()}
			must(t, s.CreateMigration(ctx, m))
			return m
		}
		running, paused, cancelling := mk("Mig-RG", "running", ferry.MigrationRunning), mk("Mig-RG", "paused", ferry.MigrationPaused),
			mk("Mig-RG", "cancelling", ferry.MigrationCancelling)
		for _, st := range []ferry.MigrationState{ferry.MigrationCreated, ferry.MigrationCompleted, ferry.MigrationFailed, ferry.MigrationCancelled} {
			mk("Mig-RG", strings.ToLower(string(st)), st)
		}
		// In another group, moving devices off this group's hub.
		elsewhere := mk("Other-RG", "elsewhere", ferry.MigrationRunning)

		del := func() error {
			t.Helper()
			p, err := rgs.BeginDelete(ctx, "Mig-RG", nil)
			if err == nil {
				_, err = p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
			}
			return err
		}
		count := func() int {
			t.Helper()
			p, err := s.ListMigrations(ctx, ferry.MigrationFilter{SubscriptionID: e.sub, ResourceGroup: "Mig-RG"})
			must(t, err)
			return len(p.Items)
		}
		end := func(m *ferry.Migration, st ferry.MigrationState) {
			t.Helper()
			m.State = st
			must(t, s.UpdateMigration(ctx, m, ""))
		}
		blocked := func(t *testing.T, want ...string) {
			t.Helper()
			err := del()
			if st, code := respCode(err); st != 409 || code != "ResourceGroupDeletionBlocked" {
				t.Fatalf("delete = %v, want 409 ResourceGroupDeletionBlocked", err)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not name %q: %v", w, err)
				}
			}
			if n := count(); n != 7 {
				t.Errorf("%d migrations left after a refused delete, want 7", n)
			}
			if _, err := s.GetHub(ctx, hub.ID); err != nil {
				t.Errorf("hub after a refused delete: %v", err)
			}
			if ex, err := rgs.CheckExistence(ctx, "Mig-RG", nil); err != nil || !ex.Success {
				t.Errorf("group after a refused delete: %v, %v", ex.Success, err)
			}
		}

		t.Run("InFlight", func(t *testing.T) {
			blocked(t, "'running' is Running", "'paused' is Paused", "'cancelling' is Cancelling", "Other-RG/providers/Ferry.Migration/migrations/elsewhere")
		})
		t.Run("OneLeft", func(t *testing.T) {
			end(running, ferry.MigrationCompleted)
			end(paused, ferry.MigrationFailed)
			end(cancelling, ferry.MigrationCancelled)
			blocked(t, "elsewhere")
		})
		t.Run("AllEnded", func(t *testing.T) {
			end(elsewhere, ferry.MigrationCancelled)
			must(t, del())
			if n := count(); n != 0 {
				t.Errorf("%d migrations left in the deleted group", n)
			}
			if _, err := s.GetMigration(ctx, elsewhere.ID); err != nil {
				t.Errorf("the other group's migration: %v", err)
			}
		})
	})
}
