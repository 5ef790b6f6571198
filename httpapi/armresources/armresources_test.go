package armresources_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

func respCode(err error) (int, string) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	return 0, ""
}

func TestSDKResourceGroupsAndSubscriptions(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, ownerCred := e.principal("owner", ferry.RoleOwner, "/")

		subs, err := armsubscriptions.NewClient(ownerCred, e.opts)
		must(t, err)
		var got []string
		for pager := subs.NewListPager(nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			must(t, err)
			for _, s := range page.Value {
				got = append(got, *s.SubscriptionID)
				if *s.TenantID != e.tid || *s.State != armsubscriptions.SubscriptionStateEnabled {
					t.Errorf("subscription = %+v", s)
				}
			}
		}
		if !slices.Equal(got, []string{e.sub}) {
			t.Fatalf("subscriptions = %v, want [%s]", got, e.sub)
		}
		sg, err := subs.Get(ctx, e.sub, nil)
		must(t, err)
		if *sg.ID != "/subscriptions/"+e.sub || *sg.DisplayName != "Ferry" {
			t.Errorf("Get = %+v", sg.Subscription)
		}

		rgs, err := armresources.NewResourceGroupsClient(e.sub, ownerCred, e.opts)
		must(t, err)
		cr, err := rgs.CreateOrUpdate(ctx, "Fleet-RG", armresources.ResourceGroup{
			Location: to("westeurope"), Tags: map[string]*string{"team": to("ops")}}, nil)
		must(t, err)
		if *cr.ID != "/subscriptions/"+e.sub+"/resourceGroups/Fleet-RG" || *cr.Properties.ProvisioningState != "Succeeded" {
			t.Errorf("create = %+v", cr.ResourceGroup)
		}
		_, err = rgs.CreateOrUpdate(ctx, "other", armresources.ResourceGroup{Location: to("westus")}, nil)
		must(t, err)
		g, err := rgs.Get(ctx, "fleet-rg", nil)
		must(t, err)
		if *g.Name != "Fleet-RG" || *g.Tags["team"] != "ops" || *g.Location != "westeurope" {
			t.Errorf("get = %+v", g.ResourceGroup)
		}
		ex, err := rgs.CheckExistence(ctx, "FLEET-RG", nil)
		must(t, err)
		if !ex.Success {
			t.Error("CheckExistence = false")
		}
		var names []string
		for pager := rgs.NewListPager(nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			must(t, err)
			for _, g := range page.Value {
				names = append(names, *g.Name)
			}
		}
		if !slices.Equal(names, []string{"Fleet-RG", "other"}) {
			t.Errorf("list = %v", names)
		}

		t.Run("ReaderAtGroupSeesOnlyIt", func(t *testing.T) {
			rd, rdCred := e.principal("rg-reader", ferry.RoleReader, "/subscriptions/"+e.sub+"/resourceGroups/Fleet-RG")
			_ = rd
			c, err := armresources.NewResourceGroupsClient(e.sub, rdCred, e.opts)
			must(t, err)
			var names []string
			for pager := c.NewListPager(nil); pager.More(); {
				page, err := pager.NextPage(ctx)
				must(t, err)
				for _, g := range page.Value {
					names = append(names, *g.Name)
				}
			}
			if !slices.Equal(names, []string{"Fleet-RG"}) {
				t.Errorf("list = %v", names)
			}
			_, err = c.CreateOrUpdate(ctx, "nope", armresources.ResourceGroup{Location: to("westus")}, nil)
			if st, code := respCode(err); st != http.StatusForbidden || code != "AuthorizationFailed" {
				t.Errorf("create as reader = %d %s (%v)", st, code, err)
			}
			// The subscription is listed, since the reader holds a role inside it.
			sc, err := armsubscriptions.NewClient(rdCred, e.opts)
			must(t, err)
			page, err := sc.NewListPager(nil).NextPage(ctx)
			must(t, err)
			if len(page.Value) != 1 {
				t.Errorf("subscriptions seen by a group reader = %d", len(page.Value))
			}
			if _, err := sc.Get(ctx, e.sub, nil); err == nil {
				t.Error("a group reader read the subscription")
			}
		})

		t.Run("NoRoleSeesNothing", func(t *testing.T) {
			_, cred := e.principal("nobody", "", "")
			sc, err := armsubscriptions.NewClient(cred, e.opts)
			must(t, err)
			page, err := sc.NewListPager(nil).NextPage(ctx)
			must(t, err)
			if len(page.Value) != 0 {
				t.Errorf("subscriptions = %d", len(page.Value))
			}
			c, err := armresources.NewResourceGroupsClient(e.sub, cred, e.opts)
			must(t, err)
			if _, err := c.Get(ctx, "Fleet-RG", nil); err == nil {
				t.Error("got a group without a role")
			}
		})

		t.Run("BadInput", func(t *testing.T) {
			_, err := rgs.CreateOrUpdate(ctx, "bad.", armresources.ResourceGroup{Location: to("westus")}, nil)
			if st, code := respCode(err); st != 400 || code != "InvalidResourceGroup" {
				t.Errorf("bad name = %d %s", st, code)
			}
			_, err = rgs.CreateOrUpdate(ctx, "Fleet-RG", armresources.ResourceGroup{Location: to("eastus")}, nil)
			if st, code := respCode(err); st != 409 || code != "InvalidResourceGroupLocation" {
				t.Errorf("moved location = %d %s", st, code)
			}
			_, err = rgs.Get(ctx, "missing", nil)
			if st, code := respCode(err); st != 404 || code != "ResourceGroupNotFound" {
				t.Errorf("missing = %d %s", st, code)
			}
			other, err := armresources.NewResourceGroupsClient(ferry.NewUUID(), ownerCred, e.opts)
			must(t, err)
			_, err = other.Get(ctx, "Fleet-RG", nil)
			if st, code := respCode(err); st != 404 || code != "SubscriptionNotFound" {
				t.Errorf("unknown subscription = %d %s", st, code)
			}
		})

		t.Run("APIVersion", func(t *testing.T) {
			pl := runtime.NewPipeline("ferrytest", "v0", runtime.PipelineOptions{
				PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(ownerCred, []string{audience + "/.default"}, nil)},
			}, &e.opts.ClientOptions)
			for _, c := range []struct{ name, query, code string }{
				{"Missing", "", "MissingApiVersionParameter"},
				{"Unknown", "?api-version=1999-01-01", "InvalidApiVersionParameter"},
			} {
				t.Run(c.name, func(t *testing.T) {
					req, err := runtime.NewRequest(ctx, http.MethodGet, e.url+"/subscriptions/"+e.sub+"/resourcegroups/Fleet-RG"+c.query)
					must(t, err)
					resp, err := pl.Do(req)
					must(t, err)
					defer resp.Body.Close()
					err = runtime.NewResponseError(resp)
					if st, code := respCode(err); st != 400 || code != c.code {
						t.Errorf("= %d %s", st, code)
					}
				})
			}
		})

		t.Run("DeleteCascades", func(t *testing.T) {
			hub := &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-in-rg", HostName: "hub-in-rg.example", SubscriptionID: e.sub,
				ResourceGroup: "Fleet-RG", Location: "westeurope", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
			must(t, s.CreateHub(ctx, hub))
			scoped, scopedCred := e.principal("rg-contributor", ferry.RoleContributor, "/subscriptions/"+e.sub+"/resourceGroups/Fleet-RG/providers/Microsoft.Devices/IotHubs/hub-in-rg")
			_ = scoped
			c, err := armresources.NewResourceGroupsClient(e.sub, scopedCred, e.opts)
			must(t, err)
			p, err := c.BeginDelete(ctx, "Fleet-RG", nil)
			if err == nil {
				_, err = p.PollUntilDone(ctx, nil)
			}
			if st, _ := respCode(err); st != 403 {
				t.Errorf("delete by a hub-scoped contributor = %v", err)
			}
			poller, err := rgs.BeginDelete(ctx, "Fleet-RG", nil)
			must(t, err)
			_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
			must(t, err)
			if _, err := s.GetHub(ctx, hub.ID); !ferry.IsCode(err, ferry.ENOTFOUND) {
				t.Errorf("hub after group delete: %v", err)
			}
			n, err := s.ListRoleAssignments(ctx, ferry.RoleAssignmentFilter{ScopePrefix: "/subscriptions/" + e.sub + "/resourceGroups/Fleet-RG"})
			must(t, err)
			if len(n.Items) != 0 {
				t.Errorf("%d role assignments left in the deleted group", len(n.Items))
			}
			ex, err := rgs.CheckExistence(ctx, "Fleet-RG", nil)
			must(t, err)
			if ex.Success {
				t.Error("group still exists")
			}
			audit, err := s.ListAudit(ctx, ferry.AuditFilter{Operation: "ResourceGroups_Delete"})
			must(t, err)
			var ok, denied int
			for _, a := range audit.Items {
				switch a.Result {
				case ferry.ResultSuccess:
					ok++
				case ferry.ResultFailure:
					denied++
				}
			}
			if ok != 1 || denied != 1 {
				t.Errorf("audit of deletes: %d succeeded, %d failed", ok, denied)
			}
		})
	})
}
