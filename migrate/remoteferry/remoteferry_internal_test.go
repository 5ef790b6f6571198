package remoteferry

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/events"
)

// TestDecodeEvent reads what the remote's event stream writes: events
// rendered by httpapi/events.NewMessage.
func TestDecodeEvent(t *testing.T) {
	at := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		in   ferry.Event
	}{
		{"Telemetry", ferry.Event{ID: "m1", Time: at, Source: ferry.SourceTelemetry, HubHost: "hub-b.example", DeviceID: "dev:1+x",
			ModelID: "dtmi:x;1", Body: []byte(`{"seq":42}`)}},
		{"Connected", ferry.Event{ID: "e2", Time: at, Source: ferry.SourceDeviceConnectivity, Type: ferry.TypeConnected,
			HubHost: "hub-b.example", DeviceID: "d2"}},
		{"Provisioned", ferry.Event{ID: "e3", Time: at, Source: ferry.SourceDeviceLifecycle, Type: ferry.TypeProvisioned,
			HubHost: "hub-b.example", DeviceID: "d3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := json.Marshal(events.NewMessage(c.in))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := decodeEvent(data, "remote:hub-b.example")
			if !ok {
				t.Fatalf("not decoded: %s", data)
			}
			want := c.in
			want.HubID = "remote:hub-b.example"
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if _, ok := decodeEvent([]byte(`{"messageSource":"telemetry"}`), "h"); ok {
		t.Error("an event without a device was decoded")
	}
	if _, ok := decodeEvent([]byte(`not json`), "h"); ok {
		t.Error("garbage was decoded")
	}
}

// TestStatusErr maps the remote's error answers, in each surface's shape,
// to error codes with the remote's message.
func TestStatusErr(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		body   string
		code   string
		msg    string
	}{
		{"ARM", 403, `{"error":{"code":"AuthorizationFailed","message":"The client may not."}}`, ferry.EFORBIDDEN, "The client may not."},
		{"DPS", 404, `{"errorCode":404201,"message":"Enrollment group g not found."}`, ferry.ENOTFOUND, "Enrollment group g not found."},
		{"IoTHub", 404, `{"Message":"ErrorCode:DeviceNotOnline;Device d is not online.","ExceptionMessage":""}`, ferry.ENOTFOUND, "Device d is not online."},
		{"Gateway", 504, `{"Message":"ErrorCode:GatewayTimeout;Timed out."}`, ferry.ETIMEOUT, "Timed out."},
		{"Unauthorized", 401, ``, ferry.EUNAUTHORIZED, "Unauthorized"},
		{"BadRequest", 400, `{"error":{"code":"InvalidRequestContent","message":"Bad."}}`, ferry.EINVALID, "Bad."},
		{"ServerError", 500, `oops`, ferry.EINTERNAL, "Internal Server Error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := statusErr(c.status, []byte(c.body))
			if ferry.ErrorCode(err) != c.code {
				t.Errorf("code %q, want %q", ferry.ErrorCode(err), c.code)
			}
			if want := "The target Ferry answered " + strconv.Itoa(c.status) + ": " + c.msg; ferry.ErrorMessage(err) != want {
				t.Errorf("message %q, want %q", ferry.ErrorMessage(err), want)
			}
		})
	}
}
