package hubsvc_test

import (
	"context"
	"fmt"
	paho "github.com/eclipse/paho.mqtt.golang"
	"net/url"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestDeviceGroups(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		// Five devices in Berlin, two elsewhere, one of them disabled.
		var key0 string
		for i := range 7 {
			id := fmt.Sprintf("d%d", i)
			key := e.createDevice(id)
			if i == 0 {
				key0 = key
			}
			site := "berlin"
			if i >= 5 {
				site = "paris"
			}
			wantStatus(t, e.owner("PATCH", "/twins/"+id, map[string]any{"tags": map[string]any{"site": site}}), 200)
		}

		r := e.owner("PUT", "/api/deviceGroups/berlin", map[string]any{"displayName": "Berlin sensors",
			"filter": "SELECT * FROM devices WHERE tags.site = 'berlin'", "description": "all of Berlin"})
		wantStatus(t, r, 200)
		g := r.obj(t)
		if g["id"] != "berlin" || g["displayName"] != "Berlin sensors" || g["filter"] != "SELECT * FROM devices WHERE tags.site = 'berlin'" ||
			g["description"] != "all of Berlin" || g["etag"] == nil {
			t.Fatalf("PUT answered %s", r.body)
		}
		etag := g["etag"].(string)
		// What migrations read: the condition alone, on hub A.
		stored, err := s.GetHubDeviceGroup(t.Context(), e.hubA.ID, "berlin")
		if err != nil || stored.Query != "tags.site = 'berlin'" || stored.HubID != e.hubA.ID || stored.Name != "Berlin sensors" {
			t.Fatalf("stored group %+v, %v", stored, err)
		}

		t.Run("Devices", func(t *testing.T) {
			// A connected device shows so at once, before the store hears.
			e.connect("d0", key0, func(paho.Client, paho.Message) {})
			var ids []string
			next := "/api/deviceGroups/berlin/devices?$top=2"
			for pages := 0; next != ""; pages++ {
				if pages > 5 {
					t.Fatal("too many pages")
				}
				r := e.do("GET", hostA, next, e.hubToken(e.hubA, "registryRead"), nil)
				wantStatus(t, r, 200)
				var page struct {
					Value []struct {
						ID              string
						Enabled         bool
						ConnectionState string
					}
					NextLink string
				}
				r.json(t, &page)
				for _, v := range page.Value {
					want := "Disconnected"
					if v.ID == "d0" {
						want = "Connected"
					}
					if !v.Enabled || v.ConnectionState != want {
						t.Errorf("device %+v, want %s", v, want)
					}
					ids = append(ids, v.ID)
				}
				next = ""
				if page.NextLink != "" {
					u, err := url.Parse(page.NextLink)
					if err != nil {
						t.Fatal(err)
					}
					q := u.Query()
					q.Del("api-version")
					next = u.Path + "?" + q.Encode()
				}
			}
			if got := strings.Join(ids, ","); got != "d0,d1,d2,d3,d4" {
				t.Errorf("group devices %s", got)
			}
		})
		t.Run("ConditionOnly", func(t *testing.T) {
			r := e.owner("PUT", "/api/deviceGroups/paris", map[string]any{"filter": "tags.site = 'paris'"})
			wantStatus(t, r, 200)
			if m := r.obj(t); m["displayName"] != "paris" || m["filter"] != "SELECT * FROM devices WHERE tags.site = 'paris'" {
				t.Errorf("condition-only group %s", r.body)
			}
			r = e.owner("GET", "/api/deviceGroups/paris/devices", nil)
			wantStatus(t, r, 200)
			if !strings.Contains(string(r.body), `"d5"`) || strings.Contains(string(r.body), `"d0"`) || strings.Contains(string(r.body), "nextLink") {
				t.Errorf("paris devices %s", r.body)
			}
		})
		t.Run("List", func(t *testing.T) {
			r := e.do("GET", hostA, "/api/deviceGroups", e.hubToken(e.hubA, "registryRead"), nil)
			wantStatus(t, r, 200)
			var page struct{ Value []struct{ ID string } }
			r.json(t, &page)
			if len(page.Value) != 2 || page.Value[0].ID != "berlin" || page.Value[1].ID != "paris" {
				t.Errorf("list %s", r.body)
			}
			// Groups belong to their hub.
			r = e.do("GET", hostB, "/api/deviceGroups", e.hubToken(e.hubB, "registryRead"), nil)
			wantStatus(t, r, 200)
			if strings.Contains(string(r.body), "berlin") {
				t.Errorf("hub B lists %s", r.body)
			}
			wantHubError(t, e.do("GET", hostB, "/api/deviceGroups/berlin", e.hubToken(e.hubB, "iothubowner"), nil), 404, "DeviceGroupNotFound")
		})
		t.Run("SameIDOnAnotherHub", func(t *testing.T) {
			// Group IDs are the hub's: hub B's berlin is another group.
			tokB := e.hubToken(e.hubB, "iothubowner")
			r := e.do("PUT", hostB, "/api/deviceGroups/berlin", tokB, map[string]any{"displayName": "B", "filter": "tags.a = 1"}, "If-None-Match", "*")
			wantStatus(t, r, 200)
			r = e.do("GET", hostB, "/api/deviceGroups/berlin", tokB, nil)
			wantStatus(t, r, 200)
			if m := r.obj(t); m["displayName"] != "B" {
				t.Errorf("hub B's berlin %s", r.body)
			}
			r = e.owner("GET", "/api/deviceGroups/berlin", nil)
			wantStatus(t, r, 200)
			if m := r.obj(t); m["displayName"] != "Berlin sensors" || m["etag"] != etag {
				t.Errorf("hub A's berlin after hub B's PUT %s", r.body)
			}
			wantStatus(t, e.do("DELETE", hostB, "/api/deviceGroups/berlin", tokB, nil), 204)
			wantStatus(t, e.owner("GET", "/api/deviceGroups/berlin", nil), 200)
			if g, err := s.GetHubDeviceGroup(t.Context(), e.hubA.ID, "berlin"); err != nil || g.Name != "Berlin sensors" {
				t.Errorf("hub A's berlin after hub B's DELETE: %+v, %v", g, err)
			}
		})
		t.Run("Patch", func(t *testing.T) {
			wantHubError(t, e.owner("PATCH", "/api/deviceGroups/berlin", map[string]any{"description": "x"}, "If-Match", `"stale"`), 412, "PreconditionFailed")
			r := e.owner("PATCH", "/api/deviceGroups/berlin", map[string]any{"filter": "tags.site IN ['berlin', 'paris']"}, "If-Match", `"`+etag+`"`)
			wantStatus(t, r, 200)
			m := r.obj(t)
			if m["displayName"] != "Berlin sensors" || m["description"] != "all of Berlin" || m["etag"] == etag ||
				m["filter"] != "SELECT * FROM devices WHERE tags.site IN ['berlin', 'paris']" {
				t.Errorf("patched %s", r.body)
			}
			// A name another group of the hub has is refused.
			wantHubError(t, e.owner("PATCH", "/api/deviceGroups/berlin", map[string]any{"displayName": "PARIS"}), 409, "DeviceGroupAlreadyExists")
			wantHubError(t, e.owner("PATCH", "/api/deviceGroups/nope", map[string]any{"description": "x"}), 404, "DeviceGroupNotFound")
		})
		t.Run("Replace", func(t *testing.T) {
			wantHubError(t, e.owner("PUT", "/api/deviceGroups/paris", map[string]any{"filter": "tags.a = 1"}, "If-None-Match", "*"), 412, "PreconditionFailed")
			wantHubError(t, e.owner("PUT", "/api/deviceGroups/new", map[string]any{"filter": "tags.a = 1"}, "If-Match", `"x"`), 412, "PreconditionFailed")
			r := e.owner("PUT", "/api/deviceGroups/paris", map[string]any{"displayName": "Paris", "filter": "tags.site = 'paris'"})
			wantStatus(t, r, 200)
			if m := r.obj(t); m["displayName"] != "Paris" || m["description"] != "" {
				t.Errorf("replaced %s", r.body)
			}
		})
		t.Run("Delete", func(t *testing.T) {
			wantHubError(t, e.owner("DELETE", "/api/deviceGroups/paris", nil, "If-Match", `"stale"`), 412, "PreconditionFailed")
			wantStatus(t, e.owner("DELETE", "/api/deviceGroups/paris", nil), 204)
			wantHubError(t, e.owner("GET", "/api/deviceGroups/paris", nil), 404, "DeviceGroupNotFound")
			wantHubError(t, e.owner("DELETE", "/api/deviceGroups/paris", nil), 404, "DeviceGroupNotFound")
			wantHubError(t, e.owner("GET", "/api/deviceGroups/paris/devices", nil), 404, "DeviceGroupNotFound")
		})
		t.Run("BadInput", func(t *testing.T) {
			for _, tc := range []struct {
				name, id string
				body     any
				want     string
			}{
				{"InvalidJSON", "g", `{"filter":`, "not valid JSON"},
				{"NoFilter", "g", map[string]any{"displayName": "g"}, "needs a filter"},
				{"BadFilter", "g", map[string]any{"filter": "SELECT * FROM devices WHERE tags.site = "}, "not a valid device query"},
				{"BadCondition", "g", map[string]any{"filter": "tags.site === 'x'"}, "not a valid device query"},
				{"JobsFilter", "g", map[string]any{"filter": "SELECT * FROM devices.jobs"}, "selects from devices"},
				{"BadID", "a%2Fb", map[string]any{"filter": "tags.a = 1"}, "device group ID"},
				{"IDMismatch", "g", map[string]any{"id": "h", "filter": "tags.a = 1"}, "does not match"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := e.owner("PUT", "/api/deviceGroups/"+tc.id, tc.body)
					wantHubError(t, r, 400, "ArgumentInvalid")
					if !strings.Contains(string(r.body), tc.want) {
						t.Errorf("error %s does not say %q", r.body, tc.want)
					}
				})
			}
			wantHubError(t, e.owner("PATCH", "/api/deviceGroups/berlin", map[string]any{"filter": "nope nope"}), 400, "ArgumentInvalid")
			wantHubError(t, e.owner("GET", "/api/deviceGroups/berlin/devices?$top=5000", nil), 400, "ArgumentInvalid")
			wantHubError(t, e.owner("GET", "/api/deviceGroups/berlin/devices?$skipToken=%21%21", nil), 400, "ArgumentInvalid")
		})
		t.Run("Access", func(t *testing.T) {
			body := map[string]any{"filter": "tags.a = 1"}
			wantHubError(t, e.do("GET", hostA, "/api/deviceGroups", "", nil), 401, "IotHubUnauthorizedAccess")
			wantHubError(t, e.do("PUT", hostA, "/api/deviceGroups/x", e.hubToken(e.hubA, "registryRead"), body), 401, "IotHubUnauthorizedAccess")
			wantHubError(t, e.do("DELETE", hostA, "/api/deviceGroups/berlin", e.hubToken(e.hubA, "service"), nil), 401, "IotHubUnauthorizedAccess")
			wantStatus(t, e.do("PUT", hostA, "/api/deviceGroups/x", e.hubToken(e.hubA, "registryReadWrite"), body), 200)
		})
	})
}

// TestTemplatesAndGroupsBearer checks that token callers are authorized
// with the registry operations: reads with registry/read, writes with
// registry/write, and a refusal is a 403.
func TestTemplatesAndGroupsBearer(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ids, _, bearer := adminBearer(t, s)
		var seen []hubsvc.Operation
		e := newEnv(t, s, func(c *hubsvc.Config) {
			c.Tokens = ids
			c.Authorize = func(ctx context.Context, caller *ferry.Caller, tgt hubsvc.Target, op hubsvc.Operation) error {
				seen = append(seen, op)
				if op == hubsvc.OpRegistryWrite && tgt.Hub.HostName == hostB {
					return ferry.Errorf(ferry.EFORBIDDEN, "Not on hub B.")
				}
				return nil
			}
		})
		wantStatus(t, e.do("PUT", hostA, "/api/deviceGroups/g", bearer, map[string]any{"filter": "tags.a = 1"}), 200)
		wantStatus(t, e.do("GET", hostB, "/api/deviceTemplates", bearer, nil), 200)
		wantHubError(t, e.do("PUT", hostB, "/api/deviceGroups/g2", bearer, map[string]any{"filter": "tags.a = 1"}), 403, "Forbidden")
		wantHubError(t, e.do("DELETE", hostB, templatePath(thermostat), bearer, nil), 403, "Forbidden")
		want := []hubsvc.Operation{hubsvc.OpRegistryWrite, hubsvc.OpRegistryRead, hubsvc.OpRegistryWrite, hubsvc.OpRegistryWrite}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("Authorize saw %v, want %v", seen, want)
		}
	})
}
