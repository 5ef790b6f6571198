package hubsvc_test

import (
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestStatistics(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		key := e.createDevice("d1")
		e.createDevice("d2")
		e.createDevice("d3")
		wantStatus(t, e.owner("PUT", "/devices/d3", map[string]any{"deviceId": "d3", "status": "disabled"}, "If-Match", "*"), 200)
		e.connect("d1", key, nil)

		t.Run("Devices", func(t *testing.T) {
			r := e.do("GET", hostA, "/statistics/devices", e.hubToken(e.hubA, "registryRead"), nil)
			wantStatus(t, r, 200)
			got := r.obj(t)
			want := map[string]any{"totalDeviceCount": 3.0, "enabledDeviceCount": 2.0, "disabledDeviceCount": 1.0}
			if len(got) != len(want) {
				t.Errorf("statistics %s", r.body)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (%s)", k, got[k], v, r.body)
				}
			}
			// Hub B's registry is its own.
			r = e.do("GET", hostB, "/statistics/devices", e.hubToken(e.hubB, "registryRead"), nil)
			wantStatus(t, r, 200)
			if got := r.obj(t)["totalDeviceCount"]; got != 0.0 {
				t.Errorf("hub B: %s", r.body)
			}
		})

		t.Run("Service", func(t *testing.T) {
			r := e.do("GET", hostA, "/statistics/service", e.hubToken(e.hubA, "service"), nil)
			wantStatus(t, r, 200)
			var got struct {
				ConnectedDeviceCount *int64 `json:"connectedDeviceCount"`
				Ferry                *struct {
					OpenConnections *int64 `json:"openConnections"`
					ConnectionLimit *int64 `json:"connectionLimit"`
				} `json:"ferry"`
			}
			r.json(t, &got)
			if got.ConnectedDeviceCount == nil || *got.ConnectedDeviceCount != 1 || got.Ferry == nil ||
				got.Ferry.OpenConnections == nil || *got.Ferry.OpenConnections != 1 ||
				got.Ferry.ConnectionLimit == nil || *got.Ferry.ConnectionLimit != e.gw.Capacity().Limit {
				t.Errorf("statistics %s; gateway %+v", r.body, e.gw.Capacity())
			}
			r = e.do("GET", hostB, "/statistics/service", e.hubToken(e.hubB, "service"), nil)
			wantStatus(t, r, 200)
			if got := r.obj(t)["connectedDeviceCount"]; got != 0.0 {
				t.Errorf("hub B: %s", r.body)
			}
		})

		// Rights as in IoT Hub: the registry's statistics need RegistryRead
		// (or RegistryWrite, which implies it), the service's ServiceConnect.
		for _, c := range []struct {
			name, path, policy string
			status             int
		}{
			{"DevicesRegistryReadWrite", "/statistics/devices", "registryReadWrite", 200},
			{"DevicesNotService", "/statistics/devices", "service", 401},
			{"DevicesNotDevice", "/statistics/devices", "device", 401},
			{"ServiceNotRegistryRead", "/statistics/service", "registryRead", 401},
			{"ServiceNotDevice", "/statistics/service", "device", 401},
			{"ServiceOwner", "/statistics/service", "iothubowner", 200},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.do("GET", hostA, c.path, e.hubToken(e.hubA, c.policy), nil)
				if c.status == 401 {
					wantHubError(t, r, 401, "IotHubUnauthorizedAccess")
					return
				}
				wantStatus(t, r, c.status)
			})
		}
		t.Run("NoAuthorization", func(t *testing.T) {
			wantHubError(t, e.do("GET", hostA, "/statistics/service", "", nil), 401, "IotHubUnauthorizedAccess")
		})
		t.Run("UnknownHub", func(t *testing.T) {
			wantHubError(t, e.do("GET", hostDPS, "/statistics/devices", e.hubToken(e.hubA, "iothubowner"), nil), 404, "IotHubNotFound")
		})
	})
}

// TestServiceStatisticsWithoutCapacity checks that a server that reports
// no capacity answers in Azure's shape alone.
func TestServiceStatisticsWithoutCapacity(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s, func(c *hubsvc.Config) { c.Capacity = nil })
		r := e.do("GET", hostA, "/statistics/service", e.hubToken(e.hubA, "service"), nil)
		wantStatus(t, r, 200)
		if got := string(r.body); got != `{"connectedDeviceCount":0}`+"\n" && got != `{"connectedDeviceCount":0}` {
			t.Errorf("statistics %q", got)
		}
	})
}
