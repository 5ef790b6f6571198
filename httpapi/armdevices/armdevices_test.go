package armdevices_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/armdevices"
	"github.com/ferry-iot/ferry/store/storetest"
)

var _ armdevices.HubNotifier = (*changes)(nil)

type changes struct {
	mu  sync.Mutex
	ids []string
}

func (c *changes) HubChanged(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	return nil
}

func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func TestSDKHubsAndProvisioningServices(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ch := &changes{}
		e := newEnv(t, s, ch)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		must(t, s.PutSubscription(ctx, &ferry.Subscription{ID: e.sub, DisplayName: "t", State: "Enabled"}))
		must(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: e.sub, Name: "rg", Location: "westeurope"}))
		rg := "/subscriptions/" + e.sub + "/resourceGroups/rg"
		_, ownerCred := e.principal("owner", ferry.RoleOwner, rg)
		_, readerCred := e.principal("reader", ferry.RoleReader, rg)
		c, err := armresources.NewClient(e.sub, ownerCred, e.opts)
		must(t, err)

		hubID := rg + "/providers/Microsoft.Devices/IotHubs/hub-a"
		p, err := c.BeginCreateOrUpdateByID(ctx, hubID, "2023-06-30", armresources.GenericResource{
			Location: to("westeurope"), SKU: &armresources.SKU{Name: to("S1"), Capacity: to[int32](1)},
			Properties: map[string]any{"hostName": "127.0.0.2"},
		}, nil)
		must(t, err)
		_, err = p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
		must(t, err)
		got, err := c.GetByID(ctx, hubID, "2023-06-30", nil)
		must(t, err)
		props := got.Properties.(map[string]any)
		if *got.ID != hubID || props["hostName"] != "127.0.0.2" || props["state"] != "Active" || props["authorizationPolicies"] != nil {
			t.Errorf("hub = %s %v", *got.ID, props)
		}
		hub, err := s.GetHubByName(ctx, "hub-a")
		must(t, err)
		if len(ch.ids) != 1 || ch.ids[0] != hub.ID || hub.HostName != "127.0.0.2" {
			t.Errorf("HubChanged = %v, hub %+v", ch.ids, hub)
		}

		post := func(cred azcore.TokenCredential, path string) (*http.Response, error) {
			pl := runtime.NewPipeline("ferrytest", "v0", runtime.PipelineOptions{
				PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{audience + "/.default"}, nil)},
			}, &e.opts.ClientOptions)
			req, err := runtime.NewRequest(ctx, http.MethodPost, e.url+path)
			if err != nil {
				return nil, err
			}
			return pl.Do(req)
		}
		resp, err := post(ownerCred, hubID+"/listkeys?api-version=2023-06-30")
		must(t, err)
		var keys struct {
			Value []struct{ KeyName, PrimaryKey, Rights string }
		}
		must(t, json.NewDecoder(resp.Body).Decode(&keys))
		resp.Body.Close()
		if resp.StatusCode != 200 || len(keys.Value) != 5 || keys.Value[0].KeyName != "iothubowner" || keys.Value[0].PrimaryKey != hub.Policies[0].PrimaryKey {
			t.Fatalf("listkeys = %d %+v", resp.StatusCode, keys)
		}
		resp, err = post(readerCred, hubID+"/listkeys?api-version=2023-06-30")
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("listkeys as reader = %d", resp.StatusCode)
		}

		dpsID := rg + "/providers/Microsoft.Devices/provisioningServices/dps-a"
		cs := "HostName=127.0.0.2;SharedAccessKeyName=iothubowner;SharedAccessKey=" + keys.Value[0].PrimaryKey
		dp, err := c.BeginCreateOrUpdateByID(ctx, dpsID, "2022-02-05", armresources.GenericResource{
			Location: to("westeurope"), SKU: &armresources.SKU{Name: to("S1"), Capacity: to[int32](1)},
			Properties: map[string]any{"allocationPolicy": "Hashed", "iotHubs": []any{map[string]any{"connectionString": cs, "location": "westeurope"}}},
		}, nil)
		must(t, err)
		_, err = dp.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
		must(t, err)
		dg, err := c.GetByID(ctx, dpsID, "2022-02-05", nil)
		must(t, err)
		dprops := dg.Properties.(map[string]any)
		svc, err := s.GetProvisioningServiceByName(ctx, "dps-a")
		must(t, err)
		if dprops["idScope"] != svc.IDScope || len(svc.IDScope) != 11 || dprops["allocationPolicy"] != "Hashed" ||
			dprops["serviceOperationsHostName"] != "dps-a.localhost" || len(svc.LinkedHubs) != 1 || svc.LinkedHubs[0].HubID != hub.ID {
			t.Errorf("dps = %v, stored %+v", dprops, svc)
		}
		hubs := dprops["iotHubs"].([]any)
		if cs := hubs[0].(map[string]any)["connectionString"].(string); cs != "HostName=127.0.0.2;SharedAccessKeyName=iothubowner;SharedAccessKey=****" {
			t.Errorf("GET shows connection string %q", cs)
		}

		t.Run("BadInput", func(t *testing.T) {
			for _, c2 := range []struct {
				name, id, version string
				props             map[string]any
				want              int
			}{
				{"BadName", rg + "/providers/Microsoft.Devices/IotHubs/-x", "2023-06-30", nil, 400},
				{"WrongKey", rg + "/providers/Microsoft.Devices/provisioningServices/dps-b", "2022-02-05",
					map[string]any{"iotHubs": []any{map[string]any{"connectionString": "HostName=127.0.0.2;SharedAccessKeyName=iothubowner;SharedAccessKey=bad"}}}, 400},
				{"BadAllocation", rg + "/providers/Microsoft.Devices/provisioningServices/dps-c", "2022-02-05", map[string]any{"allocationPolicy": "Random"}, 400},
				{"OutsideTheGrant", "/subscriptions/" + e.sub + "/resourceGroups/nope/providers/Microsoft.Devices/IotHubs/hub-z", "2023-06-30", nil, 403},
				{"BadVersion", rg + "/providers/Microsoft.Devices/IotHubs/hub-y", "2022-02-05", nil, 400},
			} {
				t.Run(c2.name, func(t *testing.T) {
					_, err := c.BeginCreateOrUpdateByID(ctx, c2.id, c2.version, armresources.GenericResource{Location: to("westeurope"), Properties: c2.props}, nil)
					if st := status(err); st != c2.want {
						t.Errorf("= %d (%v), want %d", st, err, c2.want)
					}
				})
			}
		})

		dl, err := c.BeginDeleteByID(ctx, hubID, "2023-06-30", nil)
		must(t, err)
		_, err = dl.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
		must(t, err)
		if _, err := c.GetByID(ctx, hubID, "2023-06-30", nil); status(err) != 404 {
			t.Errorf("get deleted hub = %v", err)
		}
		if len(ch.ids) != 2 {
			t.Errorf("HubChanged calls = %d", len(ch.ids))
		}
	})
}
