package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestDevicePlaneEndToEnd drives the wired server as an operator and a
// device would: ARM to create a hub, the hub service API (with a Ferry
// token) to register a device, MQTT over TLS to send telemetry and answer
// a direct method, and the export directory to find the telemetry.
func TestDevicePlaneEndToEnd(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			extra := []string{"--mqtt", "127.0.0.1:0"}
			if backend == "postgres" {
				extra = append(extra, "--db", storetest.NewPostgresSchema(t))
			}
			m, _ := startServer(t, extra...)
			testDevicePlane(t, m)
		})
	}
}

func testDevicePlane(t *testing.T, m *Main) {
	hc := httpsClient(t, m)
	_, port, _ := net.SplitHostPort(m.httpsLn.Addr().String())
	base := "https://127.0.0.1:" + port

	resp, err := hc.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	call := func(method, path string, in any, wantStatus int) map[string]any {
		t.Helper()
		var body io.Reader
		if in != nil {
			b, _ := json.Marshal(in)
			body = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &out)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, wantStatus)
		}
		return out
	}

	subs := call("GET", "/subscriptions?api-version=2022-12-01", nil, 200)
	list, _ := subs["value"].([]any)
	if len(list) == 0 {
		t.Fatalf("no default subscription: %v", subs)
	}
	sub := list[0].(map[string]any)["subscriptionId"].(string)
	rg := "/subscriptions/" + sub + "/resourceGroups/fleet"
	call("PUT", rg+"?api-version=2021-04-01", map[string]any{"location": "global"}, 201)
	// The Sphere provider shares the listener and the resource group.
	cat := rg + "/providers/Microsoft.AzureSphere/catalogs/fleet-catalog"
	call("PUT", cat+"?api-version=2024-04-01", map[string]any{"location": "global"}, 201)
	if got := call("GET", cat+"?api-version=2024-04-01", nil, 200); got["name"] != "fleet-catalog" {
		t.Fatalf("catalog %v", got)
	}
	call("GET", "/v2/tenants", nil, 200) // the legacy surface answers on the same listener
	call("PUT", rg+"/providers/Microsoft.Devices/IotHubs/hub-a?api-version=2023-06-30",
		map[string]any{"location": "global", "sku": map[string]any{"name": "S1", "capacity": 1},
			"properties": map[string]any{"hostName": "127.0.0.1"}}, 201)

	dev := call("PUT", "/devices/sensor-1?api-version=2021-04-12", map[string]any{"deviceId": "sensor-1"}, 200)
	key, _ := dev["authentication"].(map[string]any)["symmetricKey"].(map[string]any)["primaryKey"].(string)
	if key == "" {
		t.Fatalf("no generated key: %v", dev)
	}

	// The device: MQTT over TLS with a SAS, as the Azure SDKs connect.
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.CACert())
	pw, err := sas.Sign("127.0.0.1/devices/sensor-1", key, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mqttAddr := strings.TrimPrefix(m.mqttLns[0], "mqtts://")
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + mqttAddr).SetClientID("sensor-1").
		SetUsername("127.0.0.1/sensor-1/?api-version=2021-04-12").SetPassword(pw).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}).SetProtocolVersion(4).
		SetAutoReconnect(false).SetCleanSession(true)
	c := mqtt.NewClient(opts)
	if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer c.Disconnect(100)

	methods := "$iothub/methods/POST/#"
	if tk := c.Subscribe(methods, 0, func(c mqtt.Client, msg mqtt.Message) {
		// $iothub/methods/POST/{name}/?$rid={rid}
		rid := msg.Topic()[strings.Index(msg.Topic(), "$rid=")+5:]
		c.Publish(fmt.Sprintf("$iothub/methods/res/200/?$rid=%s", rid), 0, false, `{"rebooted":true}`)
	}); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe: %v", tk.Error())
	}

	tk := c.Publish("devices/sensor-1/messages/events/seq=1&%24.ct=application%2Fjson", 1, false, `{"temperature":21.5}`)
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("publish: %v", tk.Error())
	}
	// The PUBACK came after the durable write: the record is on disk now.
	recs, err := export.ReadAll(filepath.Join(m.Config.DataDir, "export"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.DeviceID == "sensor-1" && strings.Contains(string(r.Telemetry), "21.5") {
			found = true
		}
	}
	if !found {
		t.Fatalf("telemetry not in the export files: %+v", recs)
	}

	res := call("POST", "/twins/sensor-1/methods?api-version=2021-04-12",
		map[string]any{"methodName": "reboot", "payload": map[string]any{}, "responseTimeoutInSeconds": 10}, 200)
	if res["status"] != float64(200) || res["payload"].(map[string]any)["rebooted"] != true {
		t.Fatalf("method result %v", res)
	}

	t.Run("ErrNoDataRole", func(t *testing.T) {
		sp, secret, err := m.Identity.CreateServicePrincipal(context.Background(), "no roles")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.Name}, "client_secret": {secret}})
		if err != nil {
			t.Fatal(err)
		}
		var other struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&other)
		resp.Body.Close()
		req, _ := http.NewRequest("GET", base+"/devices/sensor-1?api-version=2021-04-12", nil)
		req.Header.Set("Authorization", "Bearer "+other.AccessToken)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a principal without a data role read a device: %d", resp.StatusCode)
		}
	})
}

// TestEveryServiceOperationOpenToTokens: each operation of the hub and DPS
// service APIs maps to an Azure data action, so that callers with Ferry
// tokens and a data role can use it, not only shared-access policies.
func TestEveryServiceOperationOpenToTokens(t *testing.T) {
	for _, op := range hubsvc.Operations() {
		action, ok := dataActions[op]
		if !ok {
			t.Errorf("operation %q has no data action", op)
			continue
		}
		if !rbac.IsDataAction(action) {
			t.Errorf("operation %q maps to %q, which the role evaluator does not know as a data action", op, action)
		}
	}
}
