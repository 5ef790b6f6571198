package migration_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

type migrationResource struct {
	ID         string
	Name       string
	Type       string
	ETag       string
	Properties struct {
		MigrationID string
		SourceHub   string
		Selection   struct {
			DeviceGroup        string
			DeviceIDs          []string
			CatalogDeviceGroup string
		}
		TargetProvisioningService string
		IDScope                   string
		Thresholds                struct {
			Success, Error int
			OnError        string
		}
		DeviceTimeout string
		CommandRate   float64
		State         string
		CurrentWave   int
		WaveCount     int
		DeviceCount   int
		Counts        map[string]int
	}
}

// fleetSetup makes hub A with four devices and a device group holding
// them, hub B, and provisioning services A and B linked to them, all in
// the test resource group.
func fleetSetup(e *env) (hubA *ferry.Hub, svcB *ferry.ProvisioningService) {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	mk := func(name, host string) *ferry.Hub {
		h := &ferry.Hub{ID: ferry.NewUUID(), Name: name, HostName: host, SubscriptionID: sub, ResourceGroup: rg, Location: "global",
			Policies: ferry.DefaultHubPolicies(), CreatedAt: now}
		must(e.t, e.store.CreateHub(ctx, h))
		return h
	}
	hubA, hubB := mk("hub-a", "127.0.0.1"), mk("hub-b", "127.0.0.2")
	svc := func(name string, h *ferry.Hub) *ferry.ProvisioningService {
		s := &ferry.ProvisioningService{ID: ferry.NewUUID(), Name: name, IDScope: "0ne" + strings.ToUpper(name[len(name)-1:]) + "0000001",
			HostName: "127.0.0.1", SubscriptionID: sub, ResourceGroup: rg, Location: "global", AllocationPolicy: ferry.AllocationHashed,
			Policies: ferry.DefaultProvisioningPolicies(), CreatedAt: now,
			LinkedHubs: []ferry.LinkedHub{{HubID: h.ID, HostName: h.HostName, AllocationWeight: 1, ApplyAllocationPolicy: true}}}
		must(e.t, e.store.CreateProvisioningService(ctx, s))
		return s
	}
	svc("dps-a", hubA)
	svcB = svc("dps-b", hubB)
	for i := range 4 {
		must(e.t, e.store.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: hubA.ID, DeviceID: "dev-" + string(rune('0'+i)),
			Status: ferry.DeviceEnabled, Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)}}))
	}
	must(e.t, e.store.CreateHubDeviceGroup(ctx, &ferry.HubDeviceGroup{ID: ferry.NewUUID(), HubID: hubA.ID, Name: "all", Query: "status = 'enabled'", CreatedAt: now}))
	return hubA, svcB
}

func migrationPath(name string) string {
	return rgPath() + "/providers/Ferry.Migration/migrations/" + name
}

func TestMigrationsResource(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		owner, reader, migrator := e.user("owner"), e.user("reader"), e.user("migrator")
		e.assign(owner, ferry.RoleOwner, ferry.SubscriptionScope(sub))
		e.assign(reader, ferry.RoleReader, ferry.ResourceGroupScope(sub, rg))
		// May write one migration, but not change the hubs it would touch.
		e.assign(migrator, ferry.RoleContributor, migrationPath("m2"))
		must(t, e.authz.Reload(context.Background()))
		hubA, svcB := fleetSetup(e)
		ua := "test"

		body := map[string]any{"properties": map[string]any{
			"sourceHub": "hub-a", "selection": map[string]any{"deviceIds": []string{"dev-0", "dev-1", "dev-2", "dev-3"}},
			"targetProvisioningService": svcB.ResourceID().String(), "waves": map[string]any{"count": 2},
			"thresholds": map[string]any{"success": 90, "error": 10, "onError": "FailBack"}, "deviceTimeout": "PT90S", "commandRate": 50}}
		var m migrationResource
		e.ok(t, e.do(owner, ua, http.MethodPut, migrationPath("m1")+api, body), http.StatusCreated, &m)
		p := m.Properties
		want := migrationResource{ID: migrationPath("m1"), Name: "m1", Type: "Ferry.Migration/migrations", ETag: m.ETag}
		want.Properties = p
		want.Properties.SourceHub = hubA.ResourceID().String()
		want.Properties.TargetProvisioningService = svcB.ResourceID().String()
		want.Properties.Selection.DeviceIDs = []string{"dev-0", "dev-1", "dev-2", "dev-3"}
		want.Properties.IDScope = svcB.IDScope
		want.Properties.Thresholds.Success, want.Properties.Thresholds.Error, want.Properties.Thresholds.OnError = 90, 10, "failback"
		want.Properties.DeviceTimeout, want.Properties.CommandRate = "PT90S", 50
		want.Properties.State, want.Properties.WaveCount, want.Properties.DeviceCount = "Created", 2, 4
		want.Properties.Counts = map[string]int{"pending": 4}
		if diff := cmp.Diff(want, m); diff != "" || p.MigrationID == "" || m.ETag == "" {
			t.Fatalf("PUT answer (-want +got):\n%s", diff)
		}
		var got migrationResource
		e.ok(t, e.do(reader, ua, http.MethodGet, migrationPath("m1")+api, nil), http.StatusOK, &got)
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("GET (-put +get):\n%s", diff)
		}
		var list struct{ Value []migrationResource }
		e.ok(t, e.do(reader, ua, http.MethodGet, rgPath()+"/providers/Ferry.Migration/migrations"+api, nil), http.StatusOK, &list)
		if len(list.Value) != 1 || list.Value[0].Name != "m1" {
			t.Errorf("list: %+v", list)
		}

		// Waves and devices, paged, filtered; paths in any case.
		var waves struct {
			Value []struct {
				Index, Size int
				State       string
				Counts      map[string]int
			}
		}
		e.ok(t, e.do(reader, ua, http.MethodGet, rgPath()+"/providers/ferry.migration/MIGRATIONS/m1/Waves"+api, nil), http.StatusOK, &waves)
		if len(waves.Value) != 2 || waves.Value[0].Size != 2 || waves.Value[1].Size != 2 || waves.Value[1].Counts["pending"] != 2 || waves.Value[0].State != "pending" {
			t.Errorf("waves: %+v", waves)
		}
		type devPage struct {
			Value    []struct{ DeviceID, State string }
			NextLink string
		}
		var page devPage
		e.ok(t, e.do(reader, ua, http.MethodGet, migrationPath("m1")+"/devices"+api+"&$maxpagesize=3", nil), http.StatusOK, &page)
		if len(page.Value) != 3 || page.NextLink == "" {
			t.Fatalf("devices page 1: %+v", page)
		}
		u, err := url.Parse(page.NextLink)
		must(t, err)
		page = devPage{}
		e.ok(t, e.do(reader, ua, http.MethodGet, u.RequestURI(), nil), http.StatusOK, &page)
		if len(page.Value) != 1 || page.Value[0].DeviceID != "dev-3" || page.NextLink != "" {
			t.Errorf("devices page 2: %+v", page)
		}
		page = devPage{}
		e.ok(t, e.do(reader, ua, http.MethodGet, migrationPath("m1")+"/devices"+api+"&state=verified", nil), http.StatusOK, &page)
		if len(page.Value) != 0 {
			t.Errorf("verified devices: %+v", page)
		}
		e.ok(t, e.do(reader, ua, http.MethodGet, migrationPath("m1")+"/devices"+api+"&$filter="+url.QueryEscape("deviceId eq 'dev-2'"), nil), http.StatusOK, &page)
		if len(page.Value) != 1 || page.Value[0].DeviceID != "dev-2" || page.Value[0].State != "pending" {
			t.Errorf("filtered devices: %+v", page)
		}

		// Refusals, in ARM's shape.
		for _, c := range []struct {
			name   string
			who    *ferry.Principal
			method string
			path   string
			body   any
			status int
			code   string
		}{
			{"UnknownHub", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "nope",
				"targetProvisioningService": "dps-b", "selection": map[string]any{"deviceGroup": "all"}}}, http.StatusNotFound, "ResourceNotFound"},
			{"UnknownGroup", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "hub-a",
				"targetProvisioningService": "dps-b", "selection": map[string]any{"deviceGroup": "nope"}}}, http.StatusNotFound, "ResourceNotFound"},
			{"UnknownDevice", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "hub-a",
				"targetProvisioningService": "dps-b", "selection": map[string]any{"deviceIds": []string{"ghost"}}}}, http.StatusNotFound, "ResourceNotFound"},
			{"NoTarget", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "hub-a",
				"selection": map[string]any{"deviceGroup": "all"}}}, http.StatusBadRequest, "InvalidRequestContent"},
			{"TargetLinksSource", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "hub-a",
				"targetProvisioningService": "dps-a", "selection": map[string]any{"deviceGroup": "all"}}}, http.StatusBadRequest, "InvalidRequestContent"},
			{"BadTimeout", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "hub-a",
				"targetProvisioningService": "dps-b", "selection": map[string]any{"deviceGroup": "all"}, "deviceTimeout": "soon"}}, http.StatusBadRequest, "InvalidRequestContent"},
			{"BadOnError", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "hub-a",
				"targetProvisioningService": "dps-b", "selection": map[string]any{"deviceGroup": "all"}, "thresholds": map[string]any{"onError": "panic"}}}, http.StatusBadRequest, "InvalidRequestContent"},
			{"TwoPlans", owner, http.MethodPut, migrationPath("m2"), map[string]any{"properties": map[string]any{"sourceHub": "hub-a",
				"targetProvisioningService": "dps-b", "selection": map[string]any{"deviceGroup": "all"}, "waves": map[string]any{"count": 2, "size": 1}}}, http.StatusBadRequest, "InvalidRequestContent"},
			{"RemotePlainHTTP", owner, http.MethodPut, migrationPath("m2"), remoteBody(map[string]any{"apiEndpoint": "http://b:8443"}), http.StatusBadRequest, "InvalidRequestContent"},
			{"RemoteNoSecret", owner, http.MethodPut, migrationPath("m2"), remoteBody(map[string]any{"clientSecret": ""}), http.StatusBadRequest, "InvalidRequestContent"},
			{"RemoteNoClient", owner, http.MethodPut, migrationPath("m2"), remoteBody(map[string]any{"clientId": ""}), http.StatusBadRequest, "InvalidRequestContent"},
			{"RemoteBadCA", owner, http.MethodPut, migrationPath("m2"), remoteBody(map[string]any{"caCertificate": "not PEM"}), http.StatusBadRequest, "InvalidRequestContent"},
			{"RemoteServiceByName", owner, http.MethodPut, migrationPath("m2"), remoteBody(map[string]any{"targetProvisioningService": "dps-b"}), http.StatusBadRequest, "InvalidRequestContent"},
			// This server is not wired to reach other Ferry deployments.
			{"RemoteNotWired", owner, http.MethodPut, migrationPath("m2"), remoteBody(nil), http.StatusBadRequest, "InvalidRequestContent"},
			{"BadName", owner, http.MethodPut, migrationPath("-bad"), map[string]any{"properties": map[string]any{}}, http.StatusBadRequest, "InvalidResourceName"},
			{"ReaderCreates", reader, http.MethodPut, migrationPath("m2"), body, http.StatusForbidden, "AuthorizationFailed"},
			{"MigratorWithoutHubRights", migrator, http.MethodPut, migrationPath("m2"), body, http.StatusForbidden, "AuthorizationFailed"},
			{"ReaderStarts", reader, http.MethodPost, migrationPath("m1") + "/start", nil, http.StatusForbidden, "AuthorizationFailed"},
			{"ReaderPreflights", reader, http.MethodPost, migrationPath("m1") + "/preflight", nil, http.StatusForbidden, "AuthorizationFailed"},
			{"NoToken", nil, http.MethodGet, migrationPath("m1"), nil, http.StatusUnauthorized, "InvalidAuthenticationToken"},
			{"Missing", owner, http.MethodGet, migrationPath("nope"), nil, http.StatusNotFound, "ResourceNotFound"},
			{"PauseCreated", owner, http.MethodPost, migrationPath("m1") + "/pause", nil, http.StatusConflict, "Conflict"},
			{"BadState", owner, http.MethodGet, migrationPath("m1") + "/devices?api-version=2026-11-01&state=lost", nil, http.StatusBadRequest, "InvalidRequestContent"},
			{"BadFormat", owner, http.MethodGet, migrationPath("m1") + "/report?api-version=2026-11-01&format=xml", nil, http.StatusBadRequest, "InvalidRequestContent"},
		} {
			t.Run(c.name, func(t *testing.T) {
				path := c.path
				if !strings.Contains(path, "api-version") {
					path += api
				}
				r := e.do(c.who, ua, c.method, path, c.body)
				if r.status != c.status || r.armCode() != c.code {
					t.Errorf("%d %s, want %d %s: %s", r.status, r.armCode(), c.status, c.code, r.raw)
				}
			})
		}

		if r := e.do(migrator, ua, http.MethodPut, migrationPath("m2")+api, body); !strings.Contains(string(r.raw), "IotHubs/Write") {
			t.Errorf("the migrator's refusal does not name the hub's action: %s", r.raw)
		}

		// Preflight answers its report; the devices are offline.
		var pre struct {
			OK       bool
			Devices  int
			Online   int
			Problems []struct{ Check, DeviceID, Reason string }
		}
		e.ok(t, e.do(owner, ua, http.MethodPost, migrationPath("m1")+"/preflight"+api, map[string]any{"skipModelCheck": true}), http.StatusOK, &pre)
		if pre.OK || pre.Devices != 4 || pre.Online != 0 || len(pre.Problems) == 0 {
			t.Errorf("preflight: %+v", pre)
		}

		// The life cycle.
		step := func(action, state string) {
			t.Helper()
			var m migrationResource
			e.ok(t, e.do(owner, ua, http.MethodPost, migrationPath("m1")+"/"+action+api, nil), http.StatusOK, &m)
			if m.Properties.State != state {
				t.Errorf("%s: state %s, want %s", action, m.Properties.State, state)
			}
		}
		step("start", "Running")
		if r := e.do(owner, ua, http.MethodPut, migrationPath("m1")+api, body); r.status != http.StatusConflict {
			t.Errorf("PUT over a running migration: %d %s", r.status, r.raw)
		}
		step("pause", "Paused")
		step("resume", "Running")
		if r := e.do(owner, ua, http.MethodDelete, migrationPath("m1")+api, nil); r.status != http.StatusConflict || r.armCode() != "Conflict" {
			t.Errorf("DELETE of a running migration: %d %s", r.status, r.raw)
		}
		var fb migrationResource
		if r := e.do(owner, ua, http.MethodPost, migrationPath("m1")+"/failBack"+api, map[string]any{"deviceIds": []string{"ghost"}}); r.status != http.StatusNotFound {
			t.Errorf("failBack of an unknown device: %d %s", r.status, r.raw)
		}
		e.ok(t, e.do(owner, ua, http.MethodPost, migrationPath("m1")+"/failBack"+api, map[string]any{"deviceIds": []string{"dev-0"}}), http.StatusOK, &fb)
		step("cancel", "Cancelling")

		var rep struct {
			MigrationID string
			Name        string
			State       string
			Devices     []struct{ DeviceID, State string }
		}
		e.ok(t, e.do(reader, ua, http.MethodGet, migrationPath("m1")+"/report"+api, nil), http.StatusOK, &rep)
		if rep.MigrationID != p.MigrationID || rep.Name != "m1" || len(rep.Devices) != 4 {
			t.Errorf("report: %+v", rep)
		}
		r := e.do(reader, ua, http.MethodGet, migrationPath("m1")+"/report"+api+"&format=csv", nil)
		rows, err := csv.NewReader(strings.NewReader(string(r.raw))).ReadAll()
		if r.status != http.StatusOK || err != nil || len(rows) < 5 || rows[0][0] != "deviceId" {
			t.Errorf("CSV report: %d %v\n%s", r.status, err, r.raw)
		}

		// A migration that has not started is replaced by PUT and deleted.
		body2 := map[string]any{"properties": map[string]any{"sourceHub": hubA.ResourceID().String(), "targetProvisioningService": "dps-b",
			"selection": map[string]any{"deviceGroup": "all"}, "waves": map[string]any{"size": 3}}}
		var m3 migrationResource
		e.ok(t, e.do(owner, ua, http.MethodPut, migrationPath("m3")+api, body2), http.StatusCreated, &m3)
		if m3.Properties.DeviceCount != 4 || m3.Properties.WaveCount != 2 || m3.Properties.Selection.DeviceGroup != "all" || m3.Properties.DeviceTimeout != "PT300S" {
			t.Errorf("group migration: %+v", m3.Properties)
		}
		body2["properties"].(map[string]any)["waves"] = map[string]any{"percentages": []int{50, 50}}
		e.ok(t, e.do(owner, ua, http.MethodPut, migrationPath("m3")+api, body2), http.StatusOK, &m3)
		if m3.Properties.WaveCount != 2 {
			t.Errorf("replaced migration: %+v", m3.Properties)
		}
		if r := e.do(owner, ua, http.MethodDelete, migrationPath("m3")+api, nil); r.status != http.StatusOK {
			t.Errorf("DELETE: %d %s", r.status, r.raw)
		}
		if r := e.do(owner, ua, http.MethodDelete, migrationPath("m3")+api, nil); r.status != http.StatusNoContent {
			t.Errorf("DELETE again: %d %s", r.status, r.raw)
		}
	})
}

// TestMigrationFromCatalogDeviceGroup selects the devices of an Azure
// Sphere device group: those of its claimed devices that have an identity
// (the lower-case chip ID) at the source hub.
func TestMigrationFromCatalogDeviceGroup(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		owner, hubsOnly := e.user("owner"), e.user("hubs-only")
		e.assign(owner, ferry.RoleOwner, ferry.SubscriptionScope(sub))
		hubA, svcB := fleetSetup(e)
		e.assign(hubsOnly, ferry.RoleContributor, hubA.ResourceID().String())
		e.assign(hubsOnly, ferry.RoleContributor, svcB.ResourceID().String())
		e.assign(hubsOnly, ferry.RoleContributor, migrationPath("m-hubs"))
		must(t, e.authz.Reload(ctx))

		cat := &ferry.Catalog{TenantID: ferry.NewUUID(), SubscriptionID: sub, ResourceGroup: rg, Name: "fleet", Location: "global",
			State: ferry.ProvisioningSucceeded}
		must(t, s.CreateCatalog(ctx, cat))
		prod := &ferry.Product{ID: ferry.NewUUID(), CatalogID: cat.TenantID, Name: "Widget"}
		must(t, s.CreateProduct(ctx, prod))
		group := &ferry.DeviceGroup{ID: ferry.NewUUID(), CatalogID: cat.TenantID, ProductID: prod.ID, Name: "Production",
			OSFeedType: ferry.OSFeedRetail, UpdatePolicy: ferry.UpdateAll, RegionalDataBoundary: ferry.BoundaryNone}
		must(t, s.CreateDeviceGroup(ctx, group))
		var onHub []string
		for i := range 3 {
			chip := deviceID('C', i)
			must(t, s.CreateDevice(ctx, &ferry.Device{ID: chip, CatalogID: cat.TenantID, ProductID: prod.ID, DeviceGroupID: group.ID}))
			if i == 2 {
				continue // claimed, but not on hub A
			}
			id := strings.ToLower(chip)
			must(t, s.CreateDeviceIdentity(ctx, &ferry.DeviceIdentity{HubID: hubA.ID, DeviceID: id, Status: ferry.DeviceEnabled,
				Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)}}))
			onHub = append(onHub, id)
		}
		groupID := catalogPath("fleet") + "/products/Widget/deviceGroups/Production"
		body := func(sel map[string]any) map[string]any {
			return map[string]any{"properties": map[string]any{"sourceHub": "hub-a", "targetProvisioningService": "dps-b", "selection": sel}}
		}

		var m migrationResource
		e.ok(t, e.do(owner, "test", http.MethodPut, migrationPath("m-cat")+api, body(map[string]any{"catalogDeviceGroup": strings.ToLower(groupID)})),
			http.StatusCreated, &m)
		if m.Properties.Selection.CatalogDeviceGroup != groupID || m.Properties.DeviceCount != 2 {
			t.Fatalf("selection %+v, %d devices", m.Properties.Selection, m.Properties.DeviceCount)
		}
		var page struct{ Value []struct{ DeviceID string } }
		e.ok(t, e.do(owner, "test", http.MethodGet, migrationPath("m-cat")+"/devices"+api, nil), http.StatusOK, &page)
		var got []string
		for _, d := range page.Value {
			got = append(got, d.DeviceID)
		}
		if diff := cmp.Diff(onHub, got); diff != "" {
			t.Errorf("devices (-want +got):\n%s", diff)
		}

		for _, c := range []struct {
			name   string
			who    *ferry.Principal
			sel    map[string]any
			status int
			code   string
		}{
			{"NotADeviceGroup", owner, map[string]any{"catalogDeviceGroup": catalogPath("fleet")}, http.StatusBadRequest, "InvalidRequestContent"},
			{"NotAnID", owner, map[string]any{"catalogDeviceGroup": "Production"}, http.StatusBadRequest, "InvalidRequestContent"},
			{"UnknownGroup", owner, map[string]any{"catalogDeviceGroup": catalogPath("fleet") + "/products/Widget/deviceGroups/Nope"}, http.StatusNotFound, "ResourceNotFound"},
			{"UnknownProduct", owner, map[string]any{"catalogDeviceGroup": catalogPath("fleet") + "/products/Gadget/deviceGroups/Production"}, http.StatusNotFound, "ResourceNotFound"},
			{"TwoSelections", owner, map[string]any{"catalogDeviceGroup": groupID, "deviceGroup": "all"}, http.StatusBadRequest, "InvalidRequestContent"},
			{"NoRightsOnCatalog", hubsOnly, map[string]any{"catalogDeviceGroup": groupID}, http.StatusForbidden, "AuthorizationFailed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(c.who, "test", http.MethodPut, migrationPath("m-hubs")+api, body(c.sel))
				if r.status != c.status || r.armCode() != c.code {
					t.Errorf("%d %s, want %d %s: %s", r.status, r.armCode(), c.status, c.code, r.raw)
				}
			})
		}
		// The same caller may select by device IDs: the refusal was about the catalog.
		if r := e.do(hubsOnly, "test", http.MethodPut, migrationPath("m-hubs")+api, body(map[string]any{"deviceIds": onHub})); r.status != http.StatusCreated {
			t.Errorf("hubs-only caller with device IDs: %d %s", r.status, r.raw)
		}
	})
}

// remoteBody is a migration to a provisioning service on another Ferry,
// with the targetFerry members (or targetProvisioningService) in change
// replaced.
func remoteBody(change map[string]any) map[string]any {
	tf := map[string]any{"apiEndpoint": "https://ferry-b.example:8443", "clientId": "c1", "clientSecret": "s3cret"}
	props := map[string]any{"sourceHub": "hub-a", "selection": map[string]any{"deviceGroup": "all"}, "targetFerry": tf,
		"targetProvisioningService": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/dps-x"}
	for k, v := range change {
		if k == "targetProvisioningService" {
			props[k] = v
			continue
		}
		tf[k] = v
	}
	return map[string]any{"properties": props}
}
