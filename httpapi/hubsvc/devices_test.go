package hubsvc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestDevices(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)

		r := e.owner("PUT", "/devices/d1", map[string]any{"deviceId": "d1",
			"authentication": map[string]any{"type": "sas", "symmetricKey": map[string]any{"primaryKey": "", "secondaryKey": ""}}})
		wantStatus(t, r, 200)
		d := r.obj(t)
		auth := d["authentication"].(map[string]any)
		keys := auth["symmetricKey"].(map[string]any)
		if keys["primaryKey"] == nil || keys["secondaryKey"] == nil || auth["type"] != "sas" {
			t.Fatalf("keys were not generated: %s", r.body)
		}
		for _, f := range []string{"deviceId", "generationId", "etag", "connectionState", "status", "connectionStateUpdatedTime",
			"statusUpdatedTime", "lastActivityTime", "cloudToDeviceMessageCount", "capabilities"} {
			if _, ok := d[f]; !ok {
				t.Errorf("device has no %s: %s", f, r.body)
			}
		}
		if d["status"] != "enabled" || d["connectionState"] != "Disconnected" {
			t.Errorf("new device: %s", r.body)
		}
		etag := d["etag"].(string)

		t.Run("AlreadyExists", func(t *testing.T) {
			wantHubError(t, e.owner("PUT", "/devices/d1", map[string]any{"deviceId": "d1"}), 409, "DeviceAlreadyExists")
		})
		t.Run("GetHasKeys", func(t *testing.T) {
			r := e.owner("GET", "/devices/d1", nil)
			wantStatus(t, r, 200)
			if !strings.Contains(string(r.body), keys["primaryKey"].(string)) {
				t.Errorf("GET does not return the key: %s", r.body)
			}
		})
		t.Run("StaleETag", func(t *testing.T) {
			wantHubError(t, e.owner("PUT", "/devices/d1", map[string]any{"deviceId": "d1", "status": "disabled"}, "If-Match", `"stale"`), 412, "PreconditionFailed")
		})
		t.Run("Disable", func(t *testing.T) {
			r := e.owner("PUT", "/devices/d1", map[string]any{"deviceId": "d1", "status": "disabled", "statusReason": "maintenance"}, "If-Match", `"`+etag+`"`)
			wantStatus(t, r, 200)
			d := r.obj(t)
			if d["status"] != "disabled" || d["statusReason"] != "maintenance" || d["etag"] == etag {
				t.Errorf("after update: %s", r.body)
			}
			if !strings.Contains(string(r.body), keys["primaryKey"].(string)) {
				t.Errorf("an update without keys changed them: %s", r.body)
			}
		})
		t.Run("UpdateMissing", func(t *testing.T) {
			wantHubError(t, e.owner("PUT", "/devices/nope", map[string]any{"deviceId": "nope"}, "If-Match", "*"), 404, "DeviceNotFound")
		})
		t.Run("SelfSigned", func(t *testing.T) {
			tp := strings.Repeat("ab", 20)
			r := e.owner("PUT", "/devices/x1", map[string]any{"deviceId": "x1",
				"authentication": map[string]any{"x509Thumbprint": map[string]any{"primaryThumbprint": tp}}})
			wantStatus(t, r, 200)
			a := r.obj(t)["authentication"].(map[string]any)
			if a["type"] != "selfSigned" || a["x509Thumbprint"].(map[string]any)["primaryThumbprint"] != strings.ToUpper(tp) {
				t.Errorf("self-signed device: %s", r.body)
			}
		})
		t.Run("CertificateAuthority", func(t *testing.T) {
			r := e.owner("PUT", "/devices/ca1", map[string]any{"deviceId": "ca1", "authentication": map[string]any{"type": "certificateAuthority"}})
			wantStatus(t, r, 200)
		})

		bad := []struct {
			name, id string
			body     map[string]any
		}{
			{"BadThumbprint", "x2", map[string]any{"authentication": map[string]any{"type": "selfSigned", "x509Thumbprint": map[string]any{"primaryThumbprint": "xyz"}}}},
			{"SelfSignedWithoutThumbprint", "x3", map[string]any{"authentication": map[string]any{"type": "selfSigned"}}},
			{"BadKey", "k1", map[string]any{"authentication": map[string]any{"symmetricKey": map[string]any{"primaryKey": "short"}}}},
			{"BadType", "k2", map[string]any{"authentication": map[string]any{"type": "tpm"}}},
			{"BadStatus", "k3", map[string]any{"status": "sleeping"}},
			{"IDMismatch", "k4", map[string]any{"deviceId": "other"}},
			{"BadID", "bad%23id%2F", map[string]any{}},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				wantHubError(t, e.owner("PUT", "/devices/"+b.id, b.body), 400, "ArgumentInvalid")
			})
		}
		t.Run("InvalidJSON", func(t *testing.T) {
			wantHubError(t, e.owner("PUT", "/devices/j1", "{not json"), 400, "ArgumentInvalid")
		})

		t.Run("ListHasNoKeys", func(t *testing.T) {
			r := e.owner("GET", "/devices", nil)
			wantStatus(t, r, 200)
			var list []map[string]any
			r.json(t, &list)
			if len(list) != 3 {
				t.Errorf("listed %d devices, want 3", len(list))
			}
			if strings.Contains(string(r.body), keys["primaryKey"].(string)) {
				t.Errorf("the list holds a key: %s", r.body)
			}
		})

		t.Run("OtherHubIsSeparate", func(t *testing.T) {
			tok := e.hubToken(e.hubB, "iothubowner")
			wantHubError(t, e.do("GET", hostB, "/devices/d1", tok, nil), 404, "DeviceNotFound")
			wantStatus(t, e.do("PUT", hostB, "/devices/d1", tok, map[string]any{"deviceId": "d1"}), 200)
		})

		t.Run("Delete", func(t *testing.T) {
			r := e.owner("DELETE", "/devices/d1", nil, "If-Match", "*")
			wantStatus(t, r, 204)
			wantHubError(t, e.owner("GET", "/devices/d1", nil), 404, "DeviceNotFound")
			wantHubError(t, e.owner("DELETE", "/devices/d1", nil), 404, "DeviceNotFound")
			wantStatus(t, e.do("GET", hostB, "/devices/d1", e.hubToken(e.hubB, "iothubowner"), nil), 200)
		})
	})
}

func TestAuth(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		e.createDevice("d1")
		sign := func(h *ferry.Hub, policy, key, sr string, exp time.Time) string {
			t.Helper()
			tok, err := sas.Sign(sr, key, policy, exp)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		owner := e.hubA.Policy("iothubowner")
		hour := time.Now().Add(time.Hour)
		tests := []struct {
			name, method, path, auth string
			body                     any
			status                   int
		}{
			{"NoHeader", "GET", "/devices/d1", "", nil, 401},
			{"Garbage", "GET", "/devices/d1", "Basic Zm9vOmJhcg==", nil, 401},
			{"WrongKey", "GET", "/devices/d1", sign(e.hubA, "iothubowner", ferry.NewKey(32), hostA, hour), nil, 401},
			{"Expired", "GET", "/devices/d1", sign(e.hubA, "iothubowner", owner.PrimaryKey, hostA, time.Now().Add(-time.Minute)), nil, 401},
			{"OtherHubResource", "GET", "/devices/d1", sign(e.hubA, "iothubowner", owner.PrimaryKey, hostB, hour), nil, 401},
			{"UnknownPolicy", "GET", "/devices/d1", sign(e.hubA, "nobody", owner.PrimaryKey, hostA, hour), nil, 401},
			{"OtherHubKey", "GET", "/devices/d1", e.hubToken(e.hubB, "iothubowner"), nil, 401},
			{"SecondaryKey", "GET", "/devices/d1", sign(e.hubA, "iothubowner", owner.SecondaryKey, hostA, hour), nil, 200},
			{"ResourceWithPath", "GET", "/devices/d1", sign(e.hubA, "iothubowner", owner.PrimaryKey, hostA+"/devices", hour), nil, 401},
			{"RegistryReadGets", "GET", "/devices/d1", e.hubToken(e.hubA, "registryRead"), nil, 200},
			{"RegistryReadCannotWrite", "PUT", "/devices/d2", e.hubToken(e.hubA, "registryRead"), map[string]any{}, 401},
			{"RegistryReadWriteWrites", "PUT", "/devices/d2", e.hubToken(e.hubA, "registryReadWrite"), map[string]any{}, 200},
			{"ServiceCannotWriteRegistry", "PUT", "/devices/d3", e.hubToken(e.hubA, "service"), map[string]any{}, 401},
			{"ServiceReadsTwins", "GET", "/twins/d1", e.hubToken(e.hubA, "service"), nil, 200},
			{"DeviceCannotReadTwins", "GET", "/twins/d1", e.hubToken(e.hubA, "device"), nil, 401},
			{"RegistryReadCannotPatchTwins", "PATCH", "/twins/d1", e.hubToken(e.hubA, "registryRead"), map[string]any{"tags": map[string]any{"a": 1}}, 401},
			{"DeviceCannotInvoke", "POST", "/twins/d1/methods", e.hubToken(e.hubA, "device"), map[string]any{"methodName": "m"}, 401},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.do(tt.method, hostA, tt.path, tt.auth, tt.body)
				wantStatus(t, r, tt.status)
				if tt.status == 401 && r.header.Get("iothub-errorcode") != "IotHubUnauthorizedAccess" {
					t.Errorf("iothub-errorcode %q", r.header.Get("iothub-errorcode"))
				}
			})
		}
		t.Run("UnknownHost", func(t *testing.T) {
			// hostDPS serves no hub.
			r := e.do("GET", hostDPS, "/devices/d1", e.hubToken(e.hubA, "iothubowner"), nil)
			wantHubError(t, r, 404, "IotHubNotFound")
		})
	})
}

func TestQuery(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		for i := range 12 {
			id := fmt.Sprintf("dev-%02d", i)
			e.createDevice(id)
			site := "berlin"
			if i%3 == 0 {
				site = "paris"
			}
			r := e.owner("PATCH", "/twins/"+id, map[string]any{"tags": map[string]any{"site": site, "n": i},
				"properties": map[string]any{"desired": map[string]any{"fw": "1.0"}}}, "If-Match", "*")
			wantStatus(t, r, 200)
		}
		query := func(q string, size int, cont string) ([]map[string]any, string, resp) {
			t.Helper()
			h := []string{}
			if size > 0 {
				h = append(h, "x-ms-max-item-count", fmt.Sprint(size))
			}
			if cont != "" {
				h = append(h, "x-ms-continuation", cont)
			}
			r := e.owner("POST", "/devices/query", map[string]any{"query": q}, h...)
			if r.status != 200 {
				return nil, "", r
			}
			var out []map[string]any
			r.json(t, &out)
			return out, r.header.Get("x-ms-continuation"), r
		}
		tests := []struct {
			name, q string
			want    int
		}{
			{"All", "SELECT * FROM devices", 12},
			{"Tag", "SELECT * FROM devices WHERE tags.site = 'paris'", 4},
			{"And", "SELECT * FROM devices WHERE tags.site = 'berlin' AND tags.n > 5", 4},
			{"Or", "SELECT * FROM devices WHERE deviceId = 'dev-01' OR deviceId = 'dev-02'", 2},
			{"Desired", "SELECT * FROM devices WHERE properties.desired.fw = '1.0'", 12},
			{"Status", "SELECT * FROM devices WHERE status = 'enabled' AND connectionState = 'Disconnected'", 12},
			{"None", "SELECT * FROM devices WHERE tags.site = 'rome'", 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, cont, r := query(tt.q, 0, "")
				wantStatus(t, r, 200)
				if len(got) != tt.want || cont != "" {
					t.Errorf("%d results (continuation %q), want %d", len(got), cont, tt.want)
				}
				if r.header.Get("x-ms-item-type") != "DeviceTwin" {
					t.Errorf("x-ms-item-type %q", r.header.Get("x-ms-item-type"))
				}
			})
		}
		t.Run("Paging", func(t *testing.T) {
			var ids []string
			cont, pages := "", 0
			for {
				got, next, r := query("SELECT * FROM devices WHERE tags.site = 'berlin'", 3, cont)
				wantStatus(t, r, 200)
				pages++
				for _, d := range got {
					ids = append(ids, d["deviceId"].(string))
				}
				if next == "" {
					break
				}
				cont = next
				if pages > 10 {
					t.Fatal("paging does not end")
				}
			}
			if len(ids) != 8 || pages < 3 {
				t.Errorf("paged %v in %d pages, want 8 devices in 3 or more", ids, pages)
			}
			for i := 1; i < len(ids); i++ {
				if ids[i] <= ids[i-1] {
					t.Errorf("pages overlap or are out of order: %v", ids)
				}
			}
		})
		t.Run("TwinShape", func(t *testing.T) {
			got, _, _ := query("SELECT * FROM devices WHERE deviceId = 'dev-03'", 0, "")
			if len(got) != 1 {
				t.Fatalf("%d results", len(got))
			}
			tw := got[0]
			for _, f := range []string{"deviceId", "etag", "deviceEtag", "status", "connectionState", "lastActivityTime", "version", "tags", "properties", "authenticationType", "modelId"} {
				if _, ok := tw[f]; !ok {
					t.Errorf("twin has no %s", f)
				}
			}
			desired := tw["properties"].(map[string]any)["desired"].(map[string]any)
			if desired["fw"] != "1.0" || desired["$version"] == nil || desired["$metadata"] == nil {
				t.Errorf("desired = %v", desired)
			}
			if strings.Contains(fmt.Sprint(tw), "primaryKey") {
				t.Errorf("a query result holds keys")
			}
		})
		bad := []struct{ name, q, size, cont string }{
			{"Syntax", "SELECT * FROM devices WHERE", "", ""},
			{"Collection", "SELECT * FROM modules", "", ""},
			{"PageSize", "SELECT * FROM devices", "0", ""},
			{"PageSizeHuge", "SELECT * FROM devices", "100000", ""},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				h := []string{}
				if b.size != "" {
					h = append(h, "x-ms-max-item-count", b.size)
				}
				wantHubError(t, e.owner("POST", "/devices/query", map[string]any{"query": b.q}, h...), 400, "ArgumentInvalid")
			})
		}
	})
}
