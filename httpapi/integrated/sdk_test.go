package integrated_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/integrated"
	"github.com/ferry-iot/ferry/store/storetest"
)

// sdk drives the surface with the Azure SDK for Go: armresources' generic
// client by resource ID for resources, and azcore's ARM pipeline with its
// pollers and pagers for the POST actions. Tokens come from the identity
// service through azidentity's ClientSecretCredential.
type sdk struct {
	t   *testing.T
	res *armresources.Client
	cl  *azarm.Client
}

func (e *env) sdk(cred azcore.TokenCredential) *sdk {
	e.t.Helper()
	res, err := armresources.NewClient(sub, cred, e.opts)
	must(e.t, err)
	cl, err := azarm.NewClient("ferrytest", "v0.1.0", cred, e.opts)
	must(e.t, err)
	return &sdk{t: e.t, res: res, cl: cl}
}

var poll = &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}

func (s *sdk) put(ctx context.Context, id string, r armresources.GenericResource) map[string]any {
	s.t.Helper()
	p, err := s.res.BeginCreateOrUpdateByID(ctx, id, integrated.APIVersion, r, nil)
	must(s.t, err)
	out, err := p.PollUntilDone(ctx, poll)
	must(s.t, err)
	props, _ := out.Properties.(map[string]any)
	return props
}

// post sends a POST action and returns the response.
func (s *sdk) post(ctx context.Context, path string, body any, query map[string]string) (*http.Response, error) {
	req, err := runtime.NewRequest(ctx, http.MethodPost, runtime.JoinPaths(s.cl.Endpoint(), path))
	if err != nil {
		return nil, err
	}
	q := req.Raw().URL.Query()
	q.Set("api-version", integrated.APIVersion)
	for k, v := range query {
		q.Set(k, v)
	}
	req.Raw().URL.RawQuery = q.Encode()
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return nil, err
		}
	}
	resp, err := s.cl.Pipeline().Do(req)
	if err != nil {
		return nil, err
	}
	if !runtime.HasStatusCode(resp, http.StatusOK, http.StatusAccepted) {
		return nil, runtime.NewResponseError(resp)
	}
	return resp, nil
}

// action runs a long-running POST action to completion with a poller.
func (s *sdk) action(ctx context.Context, path string, body any) {
	s.t.Helper()
	resp, err := s.post(ctx, path, body, nil)
	must(s.t, err)
	if resp.StatusCode != http.StatusAccepted {
		s.t.Fatalf("POST %s = %d, want 202", path, resp.StatusCode)
	}
	p, err := runtime.NewPoller(resp, s.cl.Pipeline(), &runtime.NewPollerOptions[struct{}]{FinalStateVia: runtime.FinalStateViaLocation})
	must(s.t, err)
	_, err = p.PollUntilDone(ctx, poll)
	must(s.t, err)
}

type listPage struct {
	Value    []map[string]any `json:"value"`
	NextLink *string          `json:"nextLink"`
}

// list pages through a POST list action with azcore's pager; the nextLink
// is followed with GET, as generated clients do.
func (s *sdk) list(ctx context.Context, path string, pageSize string) (names []string, pages int) {
	s.t.Helper()
	pager := runtime.NewPager(runtime.PagingHandler[listPage]{
		More: func(p listPage) bool { return p.NextLink != nil && *p.NextLink != "" },
		Fetcher: func(ctx context.Context, cur *listPage) (listPage, error) {
			next := ""
			if cur != nil {
				next = *cur.NextLink
			}
			resp, err := runtime.FetcherForNextLink(ctx, s.cl.Pipeline(), next, func(ctx context.Context) (*policy.Request, error) {
				req, err := runtime.NewRequest(ctx, http.MethodPost, runtime.JoinPaths(s.cl.Endpoint(), path))
				if err != nil {
					return nil, err
				}
				req.Raw().URL.RawQuery = "api-version=" + integrated.APIVersion + "&$maxpagesize=" + pageSize
				return req, nil
			}, nil)
			if err != nil {
				return listPage{}, err
			}
			var p listPage
			return p, runtime.UnmarshalAsJSON(resp, &p)
		},
	})
	for pager.More() {
		p, err := pager.NextPage(ctx)
		must(s.t, err)
		pages++
		for _, v := range p.Value {
			names = append(names, v["name"].(string))
		}
	}
	return names, pages
}

func TestAzureSDK(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		_, cred := e.servicePrincipal("pipeline", ferry.RoleAzureSphereContributor, ferry.ResourceGroupScope(sub, rg))
		c := e.sdk(cred)
		cat := scopeOf(catalogPath("sdkcat"))
		product := cat + "/products/Thermostat"
		prod := product + "/deviceGroups/Production"

		// Catalog, product, default device groups.
		props := c.put(ctx, cat, armresources.GenericResource{Location: to("global"), Tags: map[string]*string{"env": to("test")}})
		if !ferry.IsUUID(props["tenantId"].(string)) || props["provisioningState"] != "Succeeded" {
			t.Errorf("catalog properties = %v", props)
		}
		c.put(ctx, product, armresources.GenericResource{Properties: map[string]any{"description": "Smart thermostat"}})
		resp, err := c.post(ctx, product+"/generateDefaultDeviceGroups", nil, nil)
		must(t, err)
		var groups listPage
		must(t, runtime.UnmarshalAsJSON(resp, &groups))
		if len(groups.Value) != 5 {
			t.Fatalf("default groups = %d", len(groups.Value))
		}

		// Device group update (PATCH through the generic client).
		up, err := c.res.BeginUpdateByID(ctx, prod, integrated.APIVersion, armresources.GenericResource{Properties: map[string]any{"regionalDataBoundary": "EU"}}, nil)
		must(t, err)
		got, err := up.PollUntilDone(ctx, poll)
		must(t, err)
		if got.Properties.(map[string]any)["regionalDataBoundary"] != "EU" {
			t.Errorf("updated group = %v", got.Properties)
		}

		// Image upload: by ID with PUT, and with the uploadImage action.
		imageID := ferry.NewUUID()
		img := base64.StdEncoding.EncodeToString([]byte("thermostat app\n#ferry-image name=Thermo type=Applications\n"))
		props = c.put(ctx, cat+"/images/"+imageID, armresources.GenericResource{Properties: map[string]any{"image": img}})
		if props["imageName"] != "Thermo" || props["imageType"] != "Applications" {
			t.Errorf("image = %v", props)
		}
		c.action(ctx, cat+"/uploadImage", map[string]any{"properties": map[string]any{"image": img}})

		// Deployment to Production, read back as .default.
		c.put(ctx, prod+"/deployments/.default", armresources.GenericResource{Properties: map[string]any{
			"deployedImages": []any{map[string]any{"id": cat + "/images/" + imageID}},
		}})
		def, err := c.res.GetByID(ctx, prod+"/deployments/.default", integrated.APIVersion, nil)
		must(t, err)
		if imgs := def.Properties.(map[string]any)["deployedImages"].([]any); len(imgs) != 1 {
			t.Errorf("deployment = %v", def.Properties)
		}

		// Claim five devices with the poller, count them, page through them.
		ids := []string{deviceID('1'), deviceID('2'), deviceID('3'), deviceID('4'), deviceID('5')}
		c.action(ctx, prod+"/claimDevices", map[string]any{"deviceIdentifiers": ids})
		resp, err = c.post(ctx, prod+"/countDevices", nil, nil)
		must(t, err)
		var count struct{ Value int }
		must(t, runtime.UnmarshalAsJSON(resp, &count))
		if count.Value != 5 {
			t.Errorf("count = %d, want 5", count.Value)
		}
		names, pages := c.list(ctx, cat+"/listDevices", "2")
		if len(names) != 5 || pages != 3 {
			t.Errorf("listed %d devices in %d pages, want 5 in 3", len(names), pages)
		}

		// A Reader is refused writes, in ARM's words.
		_, rcred := e.servicePrincipal("auditor", ferry.RoleAzureSphereReader, cat)
		r := e.sdk(rcred)
		if _, err := r.res.GetByID(ctx, prod, integrated.APIVersion, nil); err != nil {
			t.Errorf("reader GET = %v", err)
		}
		_, err = r.res.BeginCreateOrUpdateByID(ctx, cat+"/products/Other", integrated.APIVersion, armresources.GenericResource{}, nil)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 || re.ErrorCode != "AuthorizationFailed" {
			t.Errorf("reader PUT = %v", err)
		}

		// Deletes: a group with devices is refused; an empty one goes with
		// a poller; then the catalog.
		_, err = c.res.BeginDeleteByID(ctx, prod, integrated.APIVersion, nil)
		if !errors.As(err, &re) || re.StatusCode != 409 {
			t.Errorf("delete group with devices = %v", err)
		}
		del, err := c.res.BeginDeleteByID(ctx, product+"/deviceGroups/Development", integrated.APIVersion, nil)
		must(t, err)
		_, err = del.PollUntilDone(ctx, poll)
		must(t, err)
		if _, err := c.res.GetByID(ctx, product+"/deviceGroups/Development", integrated.APIVersion, nil); !errors.As(err, &re) || re.ErrorCode != "ResourceNotFound" {
			t.Errorf("GET deleted group = %v", err)
		}
		del, err = c.res.BeginDeleteByID(ctx, cat, integrated.APIVersion, nil)
		must(t, err)
		_, err = del.PollUntilDone(ctx, poll)
		must(t, err)
		if _, err := c.res.GetByID(ctx, cat, integrated.APIVersion, nil); !errors.As(err, &re) || re.StatusCode != 404 {
			t.Errorf("GET deleted catalog = %v", err)
		}
	})
}
