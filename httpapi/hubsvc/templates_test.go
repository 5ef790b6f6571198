package hubsvc_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

const thermostat = "dtmi:com:example:Thermostat;1"

// centralTemplate is a device template as IoT Central exports it, with the
// DeviceMigration component.
func centralTemplate(id, component string) map[string]any {
	return map[string]any{"@id": id, "@type": []string{"ModelDefinition", "DeviceModel"}, "displayName": "Thermostat",
		"capabilityModel": map[string]any{"@id": "dtmi:com:example:ThermostatCM;1", "@type": "Interface",
			"contents": []any{
				map[string]any{"@type": "Telemetry", "name": "temperature", "schema": "double"},
				map[string]any{"@type": "Component", "name": component, "schema": "dtmi:azureiot:DeviceMigration;1"},
			}}}
}

func templatePath(id string) string { return "/api/deviceTemplates/" + url.PathEscape(id) }

func TestDeviceTemplates(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		r := e.owner("PUT", templatePath(thermostat), centralTemplate(thermostat, "deviceMigration"))
		wantStatus(t, r, 200)
		var tp struct {
			ID              string   `json:"@id"`
			Type            []string `json:"@type"`
			DisplayName     string
			CapabilityModel map[string]any
			DeviceMove      struct {
				Supported         bool
				Component, Method string
			}
			ETag string
		}
		r.json(t, &tp)
		if tp.ID != thermostat || tp.DisplayName != "Thermostat" || len(tp.Type) != 2 || tp.CapabilityModel["@id"] != "dtmi:com:example:ThermostatCM;1" {
			t.Errorf("PUT answered %s", r.body)
		}
		if !tp.DeviceMove.Supported || tp.DeviceMove.Component != "deviceMigration" || tp.DeviceMove.Method != "deviceMigration*DeviceMove" {
			t.Errorf("deviceMove %+v", tp.DeviceMove)
		}
		if r.header.Get("ETag") != `"`+tp.ETag+`"` || tp.ETag == "" {
			t.Errorf("ETag header %q, body etag %q", r.header.Get("ETag"), tp.ETag)
		}
		// What the migration orchestrator reads.
		stored, err := s.GetDeviceTemplate(t.Context(), thermostat)
		if err != nil || !stored.HasDeviceMove || stored.MigrationComponent != "deviceMigration" {
			t.Fatalf("stored template %+v, %v", stored, err)
		}

		t.Run("TemplatesAreGlobal", func(t *testing.T) {
			r := e.do("GET", hostB, templatePath(thermostat), e.hubToken(e.hubB, "registryRead"), nil)
			wantStatus(t, r, 200)
			if !strings.Contains(string(r.body), `"deviceMigration"`) {
				t.Errorf("hub B shows %s", r.body)
			}
		})
		t.Run("ReplaceWithETag", func(t *testing.T) {
			plain := `{"@context":"dtmi:dtdl:context;2","@id":"` + thermostat + `","@type":"Interface","displayName":{"en":"Plain"},"contents":[{"@type":"Command","name":"DeviceMove"}]}`
			wantHubError(t, e.owner("PUT", templatePath(thermostat), plain, "If-Match", `"stale"`), 412, "PreconditionFailed")
			wantHubError(t, e.owner("PUT", templatePath(thermostat), plain, "If-None-Match", "*"), 412, "PreconditionFailed")
			r := e.owner("PUT", templatePath(thermostat), plain, "If-Match", `"`+tp.ETag+`"`)
			wantStatus(t, r, 200)
			m := r.obj(t)
			if m["displayName"] != "Plain" || m["etag"] == tp.ETag {
				t.Errorf("replaced: %s", r.body)
			}
			if dm := m["deviceMove"].(map[string]any); dm["supported"] != true || dm["component"] != nil || dm["method"] != "DeviceMove" {
				t.Errorf("deviceMove of a root command: %v", dm)
			}
		})
		t.Run("List", func(t *testing.T) {
			for i := range 3 {
				id := fmt.Sprintf("dtmi:com:example:M%d;1", i)
				wantStatus(t, e.owner("PUT", templatePath(id), map[string]any{"@id": id, "@type": "Interface"}), 200)
			}
			var ids []string
			next := "/api/deviceTemplates?$top=2"
			for pages := 0; next != ""; pages++ {
				if pages > 3 {
					t.Fatal("too many pages")
				}
				r := e.do("GET", hostA, next, e.hubToken(e.hubA, "registryRead"), nil)
				wantStatus(t, r, 200)
				var page struct {
					Value []struct {
						ID string `json:"@id"`
					}
					NextLink string
				}
				r.json(t, &page)
				if len(page.Value) > 2 {
					t.Fatalf("a page of $top=2 holds %d", len(page.Value))
				}
				for _, v := range page.Value {
					ids = append(ids, v.ID)
				}
				next = ""
				if page.NextLink != "" {
					u, err := url.Parse(page.NextLink)
					if err != nil || u.Scheme != "https" || u.Host != strings.TrimPrefix(e.urls[hostA], "https://") {
						t.Fatalf("nextLink %q", page.NextLink)
					}
					q := u.Query()
					q.Del("api-version") // e.do adds it
					next = u.Path + "?" + q.Encode()
				}
			}
			want := "dtmi:com:example:M0;1 dtmi:com:example:M1;1 dtmi:com:example:M2;1 " + thermostat
			if got := strings.Join(ids, " "); got != want {
				t.Errorf("listed %s, want %s", got, want)
			}
		})
		t.Run("Delete", func(t *testing.T) {
			id := "dtmi:com:example:M0;1"
			wantHubError(t, e.owner("DELETE", templatePath(id), nil, "If-Match", `"stale"`), 412, "PreconditionFailed")
			wantStatus(t, e.owner("DELETE", templatePath(id), nil), 204)
			wantHubError(t, e.owner("GET", templatePath(id), nil), 404, "DeviceTemplateNotFound")
			wantHubError(t, e.owner("DELETE", templatePath(id), nil), 404, "DeviceTemplateNotFound")
		})
		t.Run("CentralIDFromURI", func(t *testing.T) {
			body := centralTemplate("", "mig")
			delete(body, "@id")
			r := e.owner("PUT", templatePath("dtmi:com:example:NoID;1"), body)
			wantStatus(t, r, 200)
			if m := r.obj(t); m["@id"] != "dtmi:com:example:NoID;1" {
				t.Errorf("template %s", r.body)
			}
		})
		t.Run("BadInput", func(t *testing.T) {
			for _, tc := range []struct {
				name, id string
				body     any
				want     string
			}{
				{"InvalidJSON", thermostat, `{"@id":`, "not valid JSON"},
				{"BadDTMIInURI", "thermostat", map[string]any{"@id": "thermostat", "@type": "Interface"}, "not a DTMI"},
				{"BadDTMIInBody", thermostat, centralTemplate("dtmi:bad", "m"), "not a DTMI"},
				{"IDMismatch", thermostat, map[string]any{"@id": "dtmi:com:example:Other;1", "@type": "Interface"}, "does not match"},
				{"NotAModel", thermostat, []int{1}, "not an Interface"},
				{"BadComponent", thermostat, map[string]any{"@id": thermostat, "@type": "Interface",
					"contents": []any{map[string]any{"@type": "Component", "name": "c", "schema": 5}}}, "needs a schema"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := e.owner("PUT", templatePath(tc.id), tc.body)
					wantHubError(t, r, 400, "ArgumentInvalid")
					if !strings.Contains(string(r.body), tc.want) {
						t.Errorf("error %s does not say %q", r.body, tc.want)
					}
				})
			}
			wantHubError(t, e.owner("GET", "/api/deviceTemplates?$top=0", nil), 400, "ArgumentInvalid")
			wantHubError(t, e.owner("GET", "/api/deviceTemplates?$skipToken=%21%21", nil), 400, "ArgumentInvalid")
		})
		t.Run("Access", func(t *testing.T) {
			body := map[string]any{"@id": thermostat, "@type": "Interface"}
			wantHubError(t, e.do("GET", hostA, templatePath(thermostat), "", nil), 401, "IotHubUnauthorizedAccess")
			wantHubError(t, e.do("PUT", hostA, templatePath(thermostat), e.hubToken(e.hubA, "registryRead"), body), 401, "IotHubUnauthorizedAccess")
			wantHubError(t, e.do("GET", hostA, templatePath(thermostat), e.hubToken(e.hubA, "service"), nil), 401, "IotHubUnauthorizedAccess")
			// A token of hub A does not open hub B.
			wantHubError(t, e.do("GET", hostB, templatePath(thermostat), e.hubToken(e.hubA, "iothubowner"), nil), 401, "IotHubUnauthorizedAccess")
			wantHubError(t, e.do("GET", hostDPS, templatePath(thermostat), e.hubToken(e.hubA, "iothubowner"), nil), 404, "IotHubNotFound")
		})
	})
}
