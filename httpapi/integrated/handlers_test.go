package integrated_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/store/storetest"
)

// fixture builds catalog cat1 (product Dishwasher with its default groups,
// an image, a deployment to Development and two devices there) through the
// API itself, and an empty catalog cat2.
type fixture struct {
	admin    *ferry.Principal
	imageID  string
	deployID string
}

func (e *env) fixture() fixture {
	e.t.Helper()
	admin := e.user("admin", ferry.RoleOwner, ferry.SubscriptionScope(sub))
	t := e.t
	for _, c := range []string{"cat1", "cat2"} {
		if r := e.do(admin, "PUT", catalogPath(c), map[string]any{"location": "global"}); r.status != 201 {
			t.Fatalf("PUT catalog %s = %d %s", c, r.status, r.raw)
		}
	}
	if r := e.do(admin, "PUT", productPath("cat1", "Dishwasher"), map[string]any{"properties": map[string]any{"description": "d"}}); r.status != 201 {
		t.Fatalf("PUT product = %d %s", r.status, r.raw)
	}
	if r := e.do(admin, "POST", productPath("cat1", "Dishwasher")+"/generateDefaultDeviceGroups", nil); r.status != 200 {
		t.Fatalf("generate defaults = %d %s", r.status, r.raw)
	}
	imageID := ferry.NewUUID()
	img := base64.StdEncoding.EncodeToString([]byte("app\n#ferry-image name=App componentId=" + ferry.NewUUID() + " type=Applications\n"))
	if r := e.do(admin, "PUT", catalogPath("cat1")+"/images/"+imageID, map[string]any{"properties": map[string]any{"image": img}}); r.status != 201 {
		t.Fatalf("PUT image = %d %s", r.status, r.raw)
	}
	dev := groupPath("cat1", "Dishwasher", "Development")
	r := e.do(admin, "PUT", dev+"/deployments/.default", map[string]any{"properties": map[string]any{"deployedImages": []any{map[string]any{"properties": map[string]any{"imageId": imageID}}}}})
	if r.status != 201 {
		t.Fatalf("PUT deployment = %d %s", r.status, r.raw)
	}
	deployID := r.body["name"].(string)
	if r := e.do(admin, "POST", dev+"/claimDevices", map[string]any{"deviceIdentifiers": []string{deviceID('a'), deviceID('b')}}); r.status != 202 {
		t.Fatalf("claim = %d %s", r.status, r.raw)
	}
	return fixture{admin: admin, imageID: imageID, deployID: deployID}
}

func TestFlow(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		f := e.fixture()
		admin := f.admin
		dev := groupPath("cat1", "Dishwasher", "Development")

		r := e.do(admin, "GET", catalogPath("cat1"), nil)
		props := r.body["properties"].(map[string]any)
		if r.status != 200 || r.body["type"] != ferry.TypeCatalog || r.body["location"] != "global" || !ferry.IsUUID(props["tenantId"].(string)) || props["provisioningState"] != "Succeeded" {
			t.Errorf("GET catalog = %d %s", r.status, r.raw)
		}
		if r.header.Get("ETag") == "" {
			t.Error("GET catalog: no ETag")
		}

		r = e.do(admin, "GET", dev, nil)
		props = r.body["properties"].(map[string]any)
		if props["updatePolicy"] != "No3rdPartyAppUpdates" || props["allowCrashDumpsCollection"] != "Enabled" || props["hasDeployment"] != true || props["osFeedType"] != "Retail" {
			t.Errorf("GET Development = %s", r.raw)
		}

		r = e.do(admin, "PATCH", groupPath("cat1", "Dishwasher", "Field Test"), map[string]any{"properties": map[string]any{"osFeedType": "RetailEval", "allowCrashDumpsCollection": "Disabled"}})
		props = r.body["properties"].(map[string]any)
		if r.status != 200 || props["osFeedType"] != "RetailEval" || props["allowCrashDumpsCollection"] != "Disabled" || props["updatePolicy"] != "UpdateAll" {
			t.Errorf("PATCH Field Test = %d %s", r.status, r.raw)
		}

		r = e.do(admin, "GET", dev+"/deployments/.default", nil)
		props = r.body["properties"].(map[string]any)
		imgs := props["deployedImages"].([]any)
		if r.status != 200 || r.body["name"] != f.deployID || len(imgs) != 1 || imgs[0].(map[string]any)["properties"].(map[string]any)["imageId"] != f.imageID {
			t.Errorf("GET .default deployment = %d %s", r.status, r.raw)
		}

		// Upload an image through the LRO action and poll the operation.
		img := base64.StdEncoding.EncodeToString([]byte{1, 2, 3})
		r = e.do(admin, "POST", catalogPath("cat1")+"/uploadImage", map[string]any{"properties": map[string]any{"image": img, "regionalDataBoundary": "EU"}})
		if r.status != 202 || r.header.Get("Location") == "" || r.header.Get("Azure-AsyncOperation") == "" || r.header.Get("Retry-After") == "" {
			t.Fatalf("uploadImage = %d %v", r.status, r.header)
		}
		st := e.do(admin, "GET", r.header.Get("Azure-AsyncOperation"), nil)
		if st.status != 200 || st.body["status"] != "Succeeded" || st.body["startTime"] == nil {
			t.Errorf("operation status = %d %s", st.status, st.raw)
		}
		if res := e.do(admin, "GET", r.header.Get("Location"), nil); res.status != 204 {
			t.Errorf("operation result = %d %s", res.status, res.raw)
		}
		r = e.do(admin, "GET", catalogPath("cat1")+"/images", nil)
		if n := len(r.body["value"].([]any)); r.status != 200 || n != 2 {
			t.Errorf("images = %d, %d items", r.status, n)
		}

		// Counts at every level.
		for path, want := range map[string]float64{
			catalogPath("cat1") + "/countDevices":                             2,
			productPath("cat1", "Dishwasher") + "/countDevices":               2,
			dev + "/countDevices":                                             2,
			groupPath("cat1", "Dishwasher", "Production") + "/countDevices":   0,
			groupPath("cat1", ".unassigned", ".unassigned") + "/countDevices": 0,
		} {
			if r := e.do(admin, "POST", path, nil); r.status != 200 || r.body["value"] != want {
				t.Errorf("POST %s = %d %s, want %v", path, r.status, r.raw, want)
			}
		}

		// Paging over listDevices: one per page, following nextLink
		// (a GET, as azcore follows it).
		var ids []string
		next := catalogPath("cat1") + "/listDevices?api-version=" + "2024-04-01" + "&$maxpagesize=1"
		method := "POST"
		for next != "" {
			r := e.do(admin, method, next, nil)
			if r.status != 200 {
				t.Fatalf("%s %s = %d %s", method, next, r.status, r.raw)
			}
			for _, v := range r.body["value"].([]any) {
				ids = append(ids, v.(map[string]any)["name"].(string))
			}
			next, _ = r.body["nextLink"].(string)
			method = "GET"
		}
		if len(ids) != 2 || ids[0] != deviceID('A') || ids[1] != deviceID('B') {
			t.Errorf("paged devices = %v", ids)
		}
		r = e.do(admin, "POST", catalogPath("cat1")+"/listDeviceGroups"+api+"&$filter="+strings.ReplaceAll("startswith(name,'Production')", " ", "%20"), map[string]any{})
		if n := len(r.body["value"].([]any)); r.status != 200 || n != 2 {
			t.Errorf("filtered device groups = %d %d %s", r.status, n, r.raw)
		}
		r = e.do(admin, "POST", catalogPath("cat1")+"/listDeviceGroups", map[string]any{"deviceGroupName": "field test"})
		if n := len(r.body["value"].([]any)); r.status != 200 || n != 1 {
			t.Errorf("device groups by name = %d %d", r.status, n)
		}

		// Move a device by PATCH, then find it under its new path.
		prod := groupPath("cat1", "Dishwasher", "Production")
		r = e.do(admin, "PATCH", dev+"/devices/"+deviceID('a'), map[string]any{"properties": map[string]any{"deviceGroupId": scopeOf(prod)}})
		if r.status != 200 || !strings.HasSuffix(r.body["id"].(string), "/deviceGroups/Production/devices/"+deviceID('A')) {
			t.Errorf("PATCH device = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "GET", dev+"/devices/"+deviceID('a'), nil); r.status != 404 || r.errorCode() != "ResourceNotFound" {
			t.Errorf("GET device at old path = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "GET", prod+"/devices/"+deviceID('a'), nil); r.status != 200 {
			t.Errorf("GET device at new path = %d %s", r.status, r.raw)
		}
		// To the catalog level and back through .unassigned paths.
		r = e.do(admin, "PATCH", prod+"/devices/"+deviceID('a'), map[string]any{"properties": map[string]any{"deviceGroupId": scopeOf(groupPath("cat1", ".unassigned", ".unassigned"))}})
		if r.status != 200 || !strings.Contains(r.body["id"].(string), "/products/.unassigned/deviceGroups/.unassigned/") {
			t.Errorf("PATCH to .unassigned = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "GET", groupPath("cat1", ".unassigned", ".unassigned")+"/devices", nil); r.status != 200 || len(r.body["value"].([]any)) != 1 {
			t.Errorf("unassigned devices = %d %s", r.status, r.raw)
		}
		// Claim to the catalog only with a PUT.
		if r := e.do(admin, "PUT", groupPath("cat1", ".default", ".default")+"/devices/"+deviceID('c'), map[string]any{}); r.status != 201 {
			t.Errorf("PUT device = %d %s", r.status, r.raw)
		}

		// Certificates.
		r = e.do(admin, "GET", catalogPath("cat1")+"/certificates/.default", nil)
		props = r.body["properties"].(map[string]any)
		if r.status != 200 || props["status"] != "Active" || props["certificate"] == nil || props["thumbprint"] == "" {
			t.Errorf("GET certificate = %d %s", r.status, r.raw)
		}
		serial := r.body["name"].(string)
		if r := e.do(admin, "POST", catalogPath("cat1")+"/certificates/"+serial+"/retrieveCertChain", nil); r.status != 200 || r.body["certificateChain"] == "" {
			t.Errorf("cert chain = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "POST", catalogPath("cat1")+"/certificates/.default/retrieveProofOfPossessionNonce", map[string]any{"proofOfPossessionNonce": "1234ABCD"}); r.status != 200 || r.body["certificate"] == nil {
			t.Errorf("PoP = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "GET", catalogPath("cat1")+"/certificates", nil); r.status != 200 || len(r.body["value"].([]any)) != 1 {
			t.Errorf("list certificates = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "POST", dev+"/devices/"+deviceID('b')+"/generateCapabilityImage", map[string]any{"capabilities": []string{"ApplicationDevelopment"}}); r.status != 200 || r.body["image"] == "" {
			t.Errorf("capability image = %d %s", r.status, r.raw)
		}

		// Deletes: a product with groups and a group with devices stay.
		if r := e.do(admin, "DELETE", productPath("cat1", "Dishwasher"), nil); r.status != 409 || r.errorCode() != "Conflict" {
			t.Errorf("DELETE product with groups = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "DELETE", dev, nil); r.status != 409 {
			t.Errorf("DELETE group with devices = %d %s", r.status, r.raw)
		}
		r = e.do(admin, "DELETE", groupPath("cat1", "Dishwasher", "Field Test"), nil)
		if r.status != 202 || r.header.Get("Location") == "" {
			t.Errorf("DELETE empty group = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "DELETE", groupPath("cat1", "Dishwasher", "Field Test"), nil); r.status != 204 {
			t.Errorf("DELETE gone group = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "DELETE", catalogPath("cat2"), nil); r.status != 200 {
			t.Errorf("DELETE catalog = %d %s", r.status, r.raw)
		}
		if r := e.do(admin, "GET", catalogPath("cat2"), nil); r.status != 404 {
			t.Errorf("GET deleted catalog = %d %s", r.status, r.raw)
		}
		r = e.do(admin, "GET", "/subscriptions/"+sub+"/providers/Microsoft.AzureSphere/catalogs", nil)
		if r.status != 200 || len(r.body["value"].([]any)) != 1 {
			t.Errorf("list by subscription = %d %s", r.status, r.raw)
		}

		// Every call above is in the audit log, with the catalog.
		recs, _, err := audit.FindASC(context.Background(), s, audit.Query{Operation: "Products_CreateOrUpdate"})
		must(t, err)
		if len(recs) != 1 || recs[0].OperationName != "ProductCreate" || recs[0].ResultType != "Success" || recs[0].Properties["CatalogId"] == "" {
			t.Errorf("audit of product create = %+v", recs)
		}
		fails, err := audit.Find(context.Background(), s, audit.Query{Result: ferry.ResultFailure, Operation: "Products_Delete"})
		must(t, err)
		if len(fails.Items) != 1 || fails.Items[0].StatusCode != 409 || fails.Items[0].PrincipalID != admin.ID {
			t.Errorf("audit of failed delete = %+v", fails.Items)
		}
	})
}

func TestBadInput(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		f := e.fixture()
		admin := f.admin
		dev := groupPath("cat1", "Dishwasher", "Development")
		many := make([]string, 1001)
		for i := range many {
			many[i] = fmt.Sprintf("%0128X", i)
		}
		tests := []struct {
			name, method, path string
			body               any
			status             int
			code, target       string
			hdr                []string
		}{
			{"MissingAPIVersion", "GET", catalogPath("cat1") + "?x=1", nil, 400, "MissingApiVersionParameter", "", nil},
			{"UnsupportedAPIVersion", "GET", catalogPath("cat1") + "?api-version=2020-01-01", nil, 400, "InvalidApiVersionParameter", "", nil},
			{"CatalogNameInvalid", "PUT", catalogPath("bad.name"), map[string]any{"location": "global"}, 400, "InvalidResourceName", "", nil},
			{"CatalogNameTooLong", "PUT", catalogPath(strings.Repeat("a", 51)), map[string]any{"location": "global"}, 400, "InvalidResourceName", "", nil},
			{"CatalogLocationMissing", "PUT", catalogPath("cat3"), map[string]any{}, 400, "InvalidRequestContent", "location", nil},
			{"CatalogBodyMissing", "PUT", catalogPath("cat3"), nil, 400, "InvalidRequestContent", "", nil},
			{"CatalogMalformed", "PUT", catalogPath("cat3"), `{"location":`, 400, "InvalidRequestContent", "", nil},
			{"CatalogTagsWrongType", "PATCH", catalogPath("cat1"), `{"tags":"x"}`, 400, "InvalidRequestContent", "tags", nil},
			{"ResourceGroupMissing", "PUT", strings.Replace(catalogPath("cat3"), rg, "nope", 1), map[string]any{"location": "global"}, 404, "ResourceGroupNotFound", "", nil},
			{"CatalogNotFound", "GET", catalogPath("ghost"), nil, 404, "ResourceNotFound", "", nil},
			{"ProductSystemName", "PUT", productPath("cat1", ".default"), map[string]any{}, 400, "InvalidResourceName", "", nil},
			{"ProductNameInvalid", "PUT", productPath("cat1", "a-b"), map[string]any{}, 400, "InvalidResourceName", "", nil},
			{"ProductNotFound", "GET", productPath("cat1", "Ghost"), nil, 404, "ResourceNotFound", "", nil},
			{"ProductDescriptionWrongType", "PUT", productPath("cat1", "Oven"), `{"properties":{"description":5}}`, 400, "InvalidRequestContent", "properties.description", nil},
			{"GroupNameInvalid", "PUT", groupPath("cat1", "Dishwasher", "Bad_Name"), map[string]any{}, 400, "InvalidResourceName", "", nil},
			{"GroupUnknownEnum", "PUT", groupPath("cat1", "Dishwasher", "Lab"), map[string]any{"properties": map[string]any{"osFeedType": "Beta"}}, 400, "InvalidRequestContent", "properties.osFeedType", nil},
			{"GroupNoUpdatesRefused", "PATCH", dev, map[string]any{"properties": map[string]any{"updatePolicy": "NoUpdates"}}, 400, "InvalidRequestContent", "properties.updatePolicy", nil},
			{"GroupCrashDumpsBool", "PATCH", dev, `{"properties":{"allowCrashDumpsCollection":true}}`, 400, "InvalidRequestContent", "properties.allowCrashDumpsCollection", nil},
			{"GroupETagMismatch", "PATCH", dev, map[string]any{"properties": map[string]any{"description": "x"}}, 412, "PreconditionFailed", "", []string{"If-Match", `"nope"`}},
			{"ClaimMissingIdentifiers", "POST", dev + "/claimDevices", map[string]any{}, 400, "InvalidRequestContent", "deviceIdentifiers", nil},
			{"ClaimEmpty", "POST", dev + "/claimDevices", map[string]any{"deviceIdentifiers": []string{}}, 400, "InvalidRequestContent", "deviceIdentifiers", nil},
			{"ClaimTooMany", "POST", dev + "/claimDevices", map[string]any{"deviceIdentifiers": many}, 400, "InvalidRequestContent", "deviceIdentifiers", nil},
			{"ClaimBadID", "POST", dev + "/claimDevices", map[string]any{"deviceIdentifiers": []string{"abc"}}, 400, "InvalidRequestContent", "deviceIdentifiers", nil},
			{"ClaimOtherCatalog", "POST", groupPath("cat2", ".unassigned", ".unassigned") + "/claimDevices", map[string]any{"deviceIdentifiers": []string{deviceID('a')}}, 409, "Conflict", "", nil},
			{"ClaimPutOtherCatalog", "PUT", groupPath("cat2", ".default", ".default") + "/devices/" + deviceID('b'), map[string]any{}, 409, "Conflict", "", nil},
			{"DeviceNameInvalid", "GET", dev + "/devices/short", nil, 400, "InvalidResourceName", "", nil},
			{"DeviceWrongGroup", "GET", groupPath("cat1", "Dishwasher", "Production") + "/devices/" + deviceID('a'), nil, 404, "ResourceNotFound", "", nil},
			{"DeviceDeleteIrreversible", "DELETE", dev + "/devices/" + deviceID('a'), nil, 409, "Conflict", "", nil},
			{"DeviceMoveMissing", "PATCH", dev + "/devices/" + deviceID('a'), map[string]any{"properties": map[string]any{}}, 400, "InvalidRequestContent", "properties.deviceGroupId", nil},
			{"DeviceMoveOtherCatalog", "PATCH", dev + "/devices/" + deviceID('a'), map[string]any{"properties": map[string]any{"deviceGroupId": scopeOf(groupPath("cat2", "X", "Y"))}}, 400, "InvalidRequestContent", "properties.deviceGroupId", nil},
			{"CapabilityUnknown", "POST", dev + "/devices/" + deviceID('a') + "/generateCapabilityImage", map[string]any{"capabilities": []string{"Root"}}, 400, "InvalidRequestContent", "capabilities", nil},
			{"ImageNotBase64", "POST", catalogPath("cat1") + "/uploadImage", map[string]any{"properties": map[string]any{"image": "%%%"}}, 400, "InvalidRequestContent", "properties.image", nil},
			{"ImageMissing", "POST", catalogPath("cat1") + "/uploadImage", map[string]any{"properties": map[string]any{}}, 400, "InvalidRequestContent", "properties.image", nil},
			{"ImageBoundaryUnknown", "POST", catalogPath("cat1") + "/uploadImage", map[string]any{"properties": map[string]any{"image": "AQID", "regionalDataBoundary": "US"}}, 400, "InvalidRequestContent", "properties.regionalDataBoundary", nil},
			{"ImageInUse", "DELETE", catalogPath("cat1") + "/images/" + f.imageID, nil, 409, "Conflict", "", nil},
			{"ImageNotFound", "GET", catalogPath("cat1") + "/images/" + ferry.NewUUID(), nil, 404, "ResourceNotFound", "", nil},
			{"DeploymentUnknownImage", "PUT", dev + "/deployments/d2", map[string]any{"properties": map[string]any{"deployedImages": []any{map[string]any{"properties": map[string]any{"imageId": ferry.NewUUID()}}}}}, 400, "InvalidRequestContent", "properties.deployedImages", nil},
			{"DeploymentExists", "PUT", dev + "/deployments/" + f.deployID, map[string]any{}, 409, "Conflict", "", nil},
			{"PoPNonceMissing", "POST", catalogPath("cat1") + "/certificates/.default/retrieveProofOfPossessionNonce", map[string]any{}, 400, "InvalidRequestContent", "proofOfPossessionNonce", nil},
			{"PoPNonceBad", "POST", catalogPath("cat1") + "/certificates/.default/retrieveProofOfPossessionNonce", map[string]any{"proofOfPossessionNonce": "a b"}, 400, "InvalidRequestContent", "proofOfPossessionNonce", nil},
			{"CertificateNotFound", "GET", catalogPath("cat1") + "/certificates/00", nil, 404, "ResourceNotFound", "", nil},
			{"TopZero", "GET", catalogPath("cat1") + "/products" + api + "&$top=0", nil, 400, "BadRequest", "$top", nil},
			{"SkipTokenForged", "GET", catalogPath("cat1") + "/products" + api + "&$skipToken=zzz", nil, 400, "BadRequest", "$skipToken", nil},
			{"FilterSyntax", "GET", catalogPath("cat1") + "/products" + api + "&$filter=name%20gt%201", nil, 400, "BadRequest", "$filter", nil},
			{"FilterField", "GET", catalogPath("cat1") + "/products" + api + "&$filter=color%20eq%20'red'", nil, 400, "BadRequest", "$filter", nil},
			{"DeleteProductWithGroups", "DELETE", productPath("cat1", "Dishwasher"), nil, 409, "Conflict", "", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.do(admin, tt.method, tt.path, tt.body, tt.hdr...)
				if r.status != tt.status || r.errorCode() != tt.code {
					t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, r.status, r.raw, tt.status, tt.code)
				}
				er := r.body["error"].(map[string]any)
				if tt.target != "" && er["target"] != tt.target {
					t.Errorf("target = %v, want %s", er["target"], tt.target)
				}
				if msg, _ := er["message"].(string); msg == "" {
					t.Error("empty message")
				}
				if _, ok := er["details"]; !ok {
					t.Error("no details array")
				}
			})
		}
		t.Run("NoCaller", func(t *testing.T) {
			r := e.do(nil, "GET", catalogPath("cat1"), nil)
			if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("no token = %d %s", r.status, r.raw)
			}
		})
		t.Run("BulkClaimLeavesNothing", func(t *testing.T) {
			r := e.do(admin, "POST", groupPath("cat2", ".unassigned", ".unassigned")+"/claimDevices", map[string]any{"deviceIdentifiers": []string{deviceID('e'), deviceID('a')}})
			if r.status != 409 {
				t.Fatalf("claim = %d", r.status)
			}
			if r := e.do(admin, "POST", catalogPath("cat2")+"/countDevices", nil); r.body["value"] != float64(0) {
				t.Errorf("cat2 devices after failed claim = %v", r.body["value"])
			}
		})
	})
}

func TestRouting(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	f := e.fixture()
	lower := strings.NewReplacer("/resourceGroups/", "/resourcegroups/", "/providers/Microsoft.AzureSphere/", "/providers/microsoft.azuresphere/", "/deviceGroups/", "/devicegroups/")
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"CaseInsensitiveSegments", "GET", lower.Replace(groupPath("cat1", "Dishwasher", "Development")), 200, ""},
		{"CaseInsensitiveAction", "POST", lower.Replace(catalogPath("cat1")) + "/COUNTDEVICES", 200, ""},
		{"UnknownType", "GET", catalogPath("cat1") + "/widgets", 404, "InvalidResourceType"},
		{"MethodNotAllowed", "PATCH", catalogPath("cat1") + "/images/" + f.imageID, 405, "MethodNotAllowed"},
		{"OperationsList", "GET", "/providers/Microsoft.AzureSphere/operations", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(f.admin, tt.method, tt.path, nil)
			if r.status != tt.status || r.errorCode() != tt.code {
				t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, r.status, r.raw, tt.status, tt.code)
			}
		})
	}
}

func TestDeviceInsights(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		f := e.fixture()
		c, err := e.svc.GetCatalogByName(t.Context(), sub, rg, "cat1")
		must(t, err)
		var in []*ferry.DeviceInsight
		for i := range 3 {
			in = append(in, &ferry.DeviceInsight{CatalogID: c.TenantID, DeviceID: deviceID('a'), Description: fmt.Sprintf("crash %d", i),
				Start: time.Unix(1700000000, 0), End: time.Unix(1700000060, 0), EventCategory: "AppCrash", EventClass: "Class" + fmt.Sprint(i%2), EventType: "Type", EventCount: i + 1})
		}
		must(t, e.svc.AddDeviceInsights(t.Context(), in))
		r := e.do(f.admin, "POST", catalogPath("cat1")+"/listDeviceInsights"+api+"&$filter=eventClass%20eq%20'Class0'", nil)
		if r.status != 200 || len(r.body["value"].([]any)) != 2 {
			t.Fatalf("insights = %d %s", r.status, r.raw)
		}
		v := r.body["value"].([]any)[0].(map[string]any)
		if v["deviceId"] != deviceID('A') || v["eventCategory"] != "AppCrash" || v["startTimestampUtc"] != "2023-11-14T22:13:20Z" {
			t.Errorf("insight = %v", v)
		}
	})
}

func TestConditionalPut(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	f := e.fixture()
	tests := []struct {
		name, path string
		body       any
		hdr        []string
		status     int
	}{
		{"IfNoneMatchExisting", productPath("cat1", "Dishwasher"), map[string]any{}, []string{"If-None-Match", "*"}, 412},
		{"IfNoneMatchNew", productPath("cat1", "Oven"), map[string]any{}, []string{"If-None-Match", "*"}, 201},
		{"IfMatchMissing", groupPath("cat1", "Dishwasher", "Lab"), map[string]any{}, []string{"If-Match", `"abc"`}, 412},
		{"IfMatchStale", catalogPath("cat1"), map[string]any{"location": "global"}, []string{"If-Match", `"abc"`}, 412},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(f.admin, "PUT", tt.path, tt.body, tt.hdr...); r.status != tt.status {
				t.Errorf("PUT %s = %d %s, want %d", tt.path, r.status, r.raw, tt.status)
			}
		})
	}
	r := e.do(f.admin, "GET", catalogPath("cat1"), nil)
	if r2 := e.do(f.admin, "PUT", catalogPath("cat1"), map[string]any{"location": "global"}, "If-Match", r.header.Get("ETag")); r2.status != 200 {
		t.Errorf("PUT with current ETag = %d %s", r2.status, r2.raw)
	}
}
