package legacy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/integrated"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
	"github.com/ferry-iot/ferry/store/storetest"
)

const sub = "6f1e1c4e-6a6b-4b8e-9d42-3c3b1f0e0001"

// armGet reads a resource on the integrated surface (served from the same
// store) as p and returns its properties.
func armGet(t *testing.T, e *env, srv string, p *ferry.Principal, path string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", srv+path+"?api-version="+integrated.APIVersion, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+e.tokens[p.ID])
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, raw)
	}
	var out struct{ Properties map[string]any }
	must(t, json.Unmarshal(raw, &out))
	return out.Properties
}

// TestBothSurfaces creates each resource type as the integrated surface
// does (through the sphere service) and reads and changes it on the legacy
// surface, then the reverse, checking the field mappings of
// sphere-surfaces.md §2.4. A legacy NoUpdates group shows on the
// integrated surface as No3rdPartyAppUpdates (the closest ARM value that
// still withholds application updates); ARM cannot write NoUpdates.
func TestBothSurfaces(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		admin := e.user("admin")
		ctx := ferry.NewContextWithCaller(context.Background(), &ferry.Caller{Principal: admin})

		// The integrated surface, over the same store.
		must(t, rbac.SeedBuiltIns(ctx, s))
		authz := rbac.New(s)
		must(t, authz.Reload(ctx))
		must(t, s.PutSubscription(ctx, &ferry.Subscription{ID: sub, DisplayName: "Test", State: "Enabled", CreatedAt: time.Now()}))
		must(t, s.PutResourceGroup(ctx, &ferry.ResourceGroup{SubscriptionID: sub, Name: "rg", Location: "westeurope", CreatedAt: time.Now()}))
		must(t, authz.Store().CreateRoleAssignment(ctx, &ferry.RoleAssignment{ID: ferry.NewUUID(), Scope: "/subscriptions/" + sub,
			RoleDefinitionID: ferry.RoleOwner, PrincipalID: admin.ID, PrincipalType: ferry.PrincipalUser, CreatedAt: time.Now()}))
		arm := integrated.New(integrated.Config{Sphere: e.svc, Authorizer: authz, Audit: audit.NewStoreRecorder(s)})
		armSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, err := e.ids.Authenticate(r); err == nil {
				r = r.WithContext(ferry.NewContextWithCaller(r.Context(), c))
			}
			arm.ServeHTTP(w, r)
		}))
		t.Cleanup(armSrv.Close)

		cat := &ferry.Catalog{SubscriptionID: sub, ResourceGroup: "rg", Name: "Contoso"}
		must(t, e.svc.CreateCatalog(ctx, cat))
		e.grant(cat.TenantID, admin, ferry.LegacyAdministrator)
		tp := "/v2/tenants/" + cat.TenantID
		catPath := "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/Contoso"

		t.Run("IntegratedToLegacy", func(t *testing.T) {
			p := &ferry.Product{CatalogID: cat.TenantID, Name: "Washer", Description: "Front loader"}
			_, err := e.svc.CreateProduct(ctx, p, false)
			must(t, err)
			g := &ferry.DeviceGroup{ProductID: p.ID, Name: "Line", Description: "Factory line", OSFeedType: ferry.OSFeedRetailEval, UpdatePolicy: ferry.No3rdPartyAppUpdates}
			must(t, e.svc.CreateDeviceGroup(ctx, g))
			other := &ferry.DeviceGroup{ProductID: p.ID, Name: "Field", AllowCrashDumps: true}
			must(t, e.svc.CreateDeviceGroup(ctx, other))
			img, _, err := e.svc.UploadImage(ctx, sphere.ImageUpload{CatalogID: cat.TenantID, Content: []byte("x\n#ferry-image name=HelloApp type=Applications\n")})
			must(t, err)
			dep := &ferry.Deployment{DeviceGroupID: g.ID, ImageIDs: []string{img.ID}}
			_, err = e.svc.CreateDeployment(ctx, dep)
			must(t, err)
			dev := deviceID('I', 0)
			_, err = e.svc.ClaimDevices(ctx, sphere.Claim{CatalogID: cat.TenantID, DeviceGroupID: g.ID}, []string{dev})
			must(t, err)
			start := time.Unix(1700000000, 0).UTC()
			must(t, e.svc.AddDeviceInsights(ctx, []*ferry.DeviceInsight{{CatalogID: cat.TenantID, DeviceID: dev, Description: "crash",
				Start: start, End: start.Add(time.Hour), EventCategory: "AppCrash", EventClass: "Crash", EventType: "Exit", EventCount: 3}}))

			var tenant legacy.Tenant
			e.ok(e.do(admin, "GET", tp, nil), 200, &tenant)
			if diff := cmp.Diff(legacy.Tenant{Id: cat.TenantID, Name: "Contoso", Roles: []string{"Administrator"}}, tenant); diff != "" {
				t.Errorf("tenant (-want +got):\n%s", diff)
			}
			var prod legacy.Product
			e.ok(e.do(admin, "GET", tp+"/products/"+p.ID, nil), 200, &prod)
			desc := "Front loader"
			if diff := cmp.Diff(legacy.Product{Id: p.ID, Name: "Washer", Description: &desc}, prod); diff != "" {
				t.Errorf("product (-want +got):\n%s", diff)
			}
			var grp legacy.DeviceGroup
			e.ok(e.do(admin, "GET", tp+"/devicegroups/"+g.ID, nil), 200, &grp)
			if grp.OsFeedType != 1 || grp.UpdatePolicy != 1 || grp.AllowCrashDumpsCollection || grp.ProductId != p.ID || grp.TenantId != cat.TenantID ||
				grp.CurrentDeployment == nil || grp.CurrentDeployment.Id != dep.ID || !cmp.Equal(grp.CurrentDeployment.DeployedImages, []string{img.ID}) {
				t.Errorf("device group = %+v", grp)
			}
			var deps legacy.Collection[legacy.Deployment]
			e.ok(e.do(admin, "GET", tp+"/devicegroups/"+g.ID+"/deployments", nil), 200, &deps)
			if len(deps.Items) != 1 || deps.Items[0].Id != dep.ID {
				t.Errorf("deployments = %+v", deps)
			}
			var d legacy.Device
			e.ok(e.do(admin, "GET", tp+"/devices/"+dev, nil), 200, &d)
			if d.DeviceId != dev || d.DeviceGroupId == nil || *d.DeviceGroupId != g.ID || d.ProductId == nil || *d.ProductId != p.ID || d.ChipSku != 0 {
				t.Errorf("device = %+v", d)
			}
			var meta legacy.ImageMetadata
			e.ok(e.do(admin, "GET", tp+"/images/"+img.ID+"/metadata", nil), 200, &meta)
			if meta.Name != "HelloApp" || meta.Type != 10 || meta.ImageType != 10 || meta.ComponentId != img.ComponentID {
				t.Errorf("image = %+v", meta)
			}
			var ins legacy.Collection[legacy.DeviceInsight]
			e.ok(e.do(admin, "GET", tp+"/getDeviceInsights", nil), 200, &ins)
			if len(ins.Items) != 1 || ins.Items[0].StartTimestampInUnix != 1700000000 || ins.Items[0].EndTimestampInUnix != 1700003600 || ins.Items[0].EventCount != 3 {
				t.Errorf("insights = %+v", ins)
			}
			certs, err := e.svc.ListCertificates(ctx, cat.TenantID)
			must(t, err)
			var status []legacy.CertificateStatus
			e.ok(e.do(admin, "GET", tp+"/certificates", nil), 200, &status)
			if len(status) != 1 || status[0].Thumbprint != certs[0].Thumbprint || !status[0].IsActive || status[0].IsRevoked {
				t.Errorf("certificates = %+v", status)
			}
			var b64 string
			e.ok(e.do(admin, "GET", tp+"/cert?thumbprint="+certs[0].Thumbprint, nil), 200, &b64)
			if der, _ := base64.StdEncoding.DecodeString(b64); !cmp.Equal(der, certs[0].DER) {
				t.Error("cert is not the catalog CA")
			}
			e.ok(e.do(admin, "GET", tp+"/certchain", nil), 200, &b64)
			p7, _ := base64.StdEncoding.DecodeString(b64)
			chain, err := legacy.ParsePKCS7(p7)
			must(t, err)
			if len(chain) != 1 || !cmp.Equal(chain[0], certs[0].DER) {
				t.Errorf("chain has %d certificates", len(chain))
			}

			// Changes on the legacy surface show at once on the other.
			e.ok(e.do(admin, "PUT", tp+"/devices/"+dev+"/devicegroup", `"`+other.ID+`"`), 200, nil)
			got, err := e.svc.GetDevice(ctx, dev)
			must(t, err)
			if got.DeviceGroupID != other.ID {
				t.Errorf("device group after move = %s, want %s", got.DeviceGroupID, other.ID)
			}
			e.ok(e.do(admin, "PATCH", tp, map[string]string{"Name": "Contoso Legacy"}), 200, nil)
			c, err := e.svc.GetCatalog(ctx, cat.TenantID)
			must(t, err)
			if c.LegacyName != "Contoso Legacy" || c.Name != "Contoso" {
				t.Errorf("catalog after rename = %q / %q", c.LegacyName, c.Name)
			}
		})

		t.Run("LegacyToIntegrated", func(t *testing.T) {
			var op legacy.Operation
			e.ok(e.do(admin, "POST", tp+"/products", map[string]any{"Name": "Dryer", "Description": "Heat pump"}), 202, &op)
			p, err := e.svc.GetProductByName(ctx, cat.TenantID, "Dryer")
			must(t, err)
			if p.Description != "Heat pump" || op.TenantId != cat.TenantID {
				t.Errorf("product = %+v, op = %+v", p, op)
			}
			var polled legacy.Operation
			e.ok(e.do(admin, "GET", tp+"/operations/"+op.OperationId, nil), 200, &polled)
			if polled.State != int(ferry.OpComplete) || polled.OperationType != int(ferry.OpCreateProduct) {
				t.Errorf("polled operation = %+v", polled)
			}
			var g legacy.DeviceGroup
			e.ok(e.do(admin, "POST", tp+"/devicegroups", map[string]any{"Name": "Quiet", "ProductId": p.ID, "OsFeedType": 1, "UpdatePolicy": 2, "AllowCrashDumpsCollection": false}), 200, &g)
			sg, err := e.svc.GetDeviceGroup(ctx, g.Id)
			must(t, err)
			if sg.UpdatePolicy != ferry.NoUpdates || sg.OSFeedType != ferry.OSFeedRetailEval || sg.AllowCrashDumps {
				t.Errorf("group in the store = %+v", sg)
			}
			props := armGet(t, e, armSrv.URL, admin, catPath+"/products/Dryer/deviceGroups/Quiet")
			want := map[string]any{"updatePolicy": "No3rdPartyAppUpdates", "osFeedType": "RetailEval", "allowCrashDumpsCollection": "Disabled"}
			for k, v := range want {
				if props[k] != v {
					t.Errorf("integrated %s = %v, want %v", k, props[k], v)
				}
			}
			e.ok(e.do(admin, "POST", tp+"/images", []byte("y\n#ferry-image name=Blink type=Applications\n")), 200, &op)
			var imgs legacy.Collection[legacy.ImageMetadata]
			e.ok(e.do(admin, "GET", tp+"/images", nil), 200, &imgs)
			var blink string
			for _, i := range imgs.Items {
				if i.Name == "Blink" {
					blink = i.Id
				}
			}
			e.ok(e.do(admin, "POST", tp+"/devicegroups/"+g.Id+"/deployments", []string{blink}), 202, nil)
			cur, err := e.svc.GetDeploymentByName(ctx, g.Id, ferry.DefaultName)
			must(t, err)
			if !cmp.Equal(cur.ImageIDs, []string{blink}) {
				t.Errorf("current deployment = %+v", cur)
			}
			dev := deviceID('L', 0)
			e.ok(e.do(admin, "PUT", tp+"/devices/"+dev+"/claim", nil), 202, nil)
			e.ok(e.do(admin, "PUT", tp+"/devices/"+dev+"/devicegroup", `"`+g.Id+`"`), 200, nil)
			n, err := e.svc.CountDevices(ctx, ferry.DeviceFilter{DeviceGroupID: g.Id})
			must(t, err)
			if n != 1 {
				t.Errorf("devices in Quiet = %d, want 1", n)
			}
			dprops := armGet(t, e, armSrv.URL, admin, catPath+"/products/Dryer/deviceGroups/Quiet/devices/"+dev)
			if dprops["chipSku"] != "MT3620AN" {
				t.Errorf("integrated device = %v", dprops)
			}

			// A change on the integrated side shows on the legacy surface.
			sg.UpdatePolicy = ferry.UpdateAll
			must(t, e.svc.UpdateDeviceGroup(ctx, sg, ""))
			e.ok(e.do(admin, "GET", tp+"/devicegroups/"+g.Id, nil), 200, &g)
			if g.UpdatePolicy != 0 || g.CurrentDeployment == nil {
				t.Errorf("group after integrated update = %+v", g)
			}
			_, err = e.svc.DeleteDeviceGroup(ctx, e.mustGroup(t, p.ID, "Quiet"))
			if !ferry.IsCode(err, ferry.ECONFLICT) {
				t.Errorf("delete of a group with devices: %v", err)
			}
		})
	})
}

func (e *env) mustGroup(t *testing.T, productID, name string) string {
	t.Helper()
	g, err := e.svc.GetDeviceGroupByName(context.Background(), productID, name)
	must(t, err)
	return g.ID
}
