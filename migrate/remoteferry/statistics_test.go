package remoteferry_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/migrate"
	"github.com/ferry-iot/ferry/migrate/remoteferry"
)

// TestHubStatistics reads a hub's statistics at its host, with Ferry's
// extension and without it (an answer in Azure's shape alone).
func TestHubStatistics(t *testing.T) {
	for _, c := range []struct {
		name, service string
		want          migrate.HubStatistics
	}{
		{"Ferry", `{"connectedDeviceCount":7,"ferry":{"openConnections":17800,"connectionLimit":19000}}`,
			migrate.HubStatistics{Devices: 42, OpenConnections: 17800, ConnectionLimit: 19000}},
		{"AzureShape", `{"connectedDeviceCount":7}`, migrate.HubStatistics{Devices: 42}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":3600}`))
			})
			stat := func(body string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.Host != "hub-b.example" || r.Header.Get("Authorization") != "Bearer tok" || r.URL.Query().Get("api-version") == "" {
						http.Error(w, `{"Message":"ErrorCode:IotHubNotFound;wrong host"}`, http.StatusNotFound)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(body))
				}
			}
			mux.HandleFunc("GET /statistics/devices", stat(`{"totalDeviceCount":42,"enabledDeviceCount":40,"disabledDeviceCount":2}`))
			mux.HandleFunc("GET /statistics/service", stat(c.service))
			srv := httptest.NewTLSServer(mux)
			defer srv.Close()
			ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
			rt, err := remoteferry.Dial(context.Background(), &ferry.RemoteFerry{APIEndpoint: srv.URL, ClientID: "c", ClientSecret: "s", CACertPEM: ca},
				"/subscriptions/s/resourceGroups/g/providers/Microsoft.Devices/provisioningServices/dps-b")
			if err != nil {
				t.Fatal(err)
			}
			got, err := rt.HubStatistics(context.Background(), "hub-b.example")
			if err != nil || got != c.want {
				t.Errorf("statistics %+v, %v; want %+v", got, err, c.want)
			}
			if _, err := rt.HubStatistics(context.Background(), "hub-x.example"); !ferry.IsCode(err, ferry.ENOTFOUND) {
				t.Errorf("unknown hub: %v", err)
			}
		})
	}
}
