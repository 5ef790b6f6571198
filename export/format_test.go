package export_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 455_123_456, time.UTC)

// sampleEvents covers every kind of message the sink writes.
func sampleEvents() []ferry.Event {
	return []ferry.Event{
		{
			ID: "m1", Time: t0, Source: ferry.SourceTelemetry, HubID: "hub1", HubHost: "127.0.0.2",
			DeviceID: "dev-1", ModelID: "dtmi:com:example:Thermostat;1",
			Body:       []byte(`{ "temperature": 21.5, "humidity": {"value": 40} }`),
			Properties: map[string]string{"iothub-creation-time-utc": "2026-11-23T11:59:59.000Z", "a b": "c&d"},
			System:     map[string]string{"messageId": "m1", "contentType": "application/json", "contentEncoding": "utf-8"},
		},
		{
			ID: "m2", Time: t0.Add(time.Millisecond), Source: ferry.SourceTelemetry, HubID: "hub1",
			DeviceID: "dev-2", Module: "VitalsModule", Component: "DeviceComponent",
			Body: []byte(`{"HeartRate":88}`),
		},
		{
			ID: "m3", Time: t0.Add(2 * time.Millisecond), Source: ferry.SourceTelemetry, HubID: "hub1",
			DeviceID: "dev-3", Body: []byte("not json \x00\xff"),
		},
		{
			ID: "p1", Time: t0.Add(3 * time.Millisecond), Source: ferry.SourceProperties, Type: ferry.TypeDevicePropertyReportedChange,
			HubID: "hub1", DeviceID: "dev-1", ModelID: "dtmi:com:example:Thermostat;1",
			Data: json.RawMessage(`{"serialNumber":"abc","thermostat1":{"__t":"c","maxTempSinceLastReboot":38.2},"$version":4}`),
		},
		{
			ID: "p2", Time: t0.Add(4 * time.Millisecond), Source: ferry.SourceProperties, Type: ferry.TypeDevicePropertyDesiredChange,
			HubID: "hub1", DeviceID: "dev-1",
			Data: json.RawMessage(`[{"name":"targetTemperature","value":22,"component":"thermostat1"}]`),
		},
		{
			ID: "c1", Time: t0.Add(5 * time.Millisecond), Source: ferry.SourceDeviceConnectivity, Type: ferry.TypeConnected,
			HubID: "hub1", DeviceID: "dev-1", ModelID: "dtmi:com:example:Thermostat;1",
		},
		{
			ID: "c2", Time: t0.Add(6 * time.Millisecond), Source: ferry.SourceDeviceConnectivity, Type: ferry.TypeDisconnected,
			HubID: "hub1", DeviceID: "dev-1", Data: json.RawMessage(`{"reason": "keepalive"}`),
		},
		{
			ID: "l1", Time: t0.Add(7 * time.Millisecond), Source: ferry.SourceDeviceLifecycle, Type: ferry.TypeRegistered,
			HubID: "hub1", DeviceID: "dev-4",
		},
		{
			ID: "l2", Time: t0.Add(8 * time.Millisecond), Source: ferry.SourceDeviceLifecycle, Type: ferry.TypeProvisioned,
			HubID: "hub2", DeviceID: "dev-4", Data: json.RawMessage(`{"assignedHub":"127.0.0.3"}`),
		},
		{
			ID: "g1", Time: t0.Add(9 * time.Millisecond), Source: ferry.SourceMigration, Type: ferry.TypeMigrationTransition,
			HubID: "hub2", DeviceID: "dev-4", Data: json.RawMessage(`{"from":"connected","to":"verified"}`),
		},
	}
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func openSink(t *testing.T, cfg export.Config) *export.FileSink {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := export.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The file format is pinned by a golden file.
func TestFormatGolden(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, export.Config{
		Dir: dir, ApplicationID: "1dffa667-9bee-4f16-b243-25ad4151475e",
		Enrichments: map[string]string{"userSpecifiedKey": "sampleValue"}, Now: fixedClock(t0),
	})
	if err := s.Write(context.Background(), sampleEvents()...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := export.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "export-20261123T120000.455123456Z.ndjson")}, files); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "format.ndjson")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("export file differs from %s (-want +got, rerun with -update if intended):\n%s", golden, diff)
	}
}

// The messages match the examples of IoT Central's export documentation
// (reference iot-protocols.md 5.6) member for member, apart from Ferry's
// own "ferry" member.
func TestFormatMatchesCentralExamples(t *testing.T) {
	app := "1dffa667-9bee-4f16-b243-25ad4151475e"
	enq := time.Date(2020, 8, 5, 22, 26, 55, 455_000_000, time.UTC)
	tests := []struct {
		name  string
		event ferry.Event
		want  string
	}{
		{"Telemetry", ferry.Event{
			Time: enq, Source: ferry.SourceTelemetry, DeviceID: "1vzb5ghlsg1", ModelID: "urn:qugj6vbw5:___qbj_27r",
			Module: "VitalsModule", Component: "DeviceComponent",
			Body:       []byte(`{"Activity":"running","BloodPressure":{"Diastolic":7,"Systolic":71},"HeartRate":88}`),
			Properties: map[string]string{"messageProp": "value"},
		}, `{
			"applicationId": "1dffa667-9bee-4f16-b243-25ad4151475e",
			"messageSource": "telemetry",
			"deviceId": "1vzb5ghlsg1",
			"schema": "default@v1",
			"templateId": "urn:qugj6vbw5:___qbj_27r",
			"enqueuedTime": "2020-08-05T22:26:55.455Z",
			"telemetry": {"Activity": "running", "BloodPressure": {"Diastolic": 7, "Systolic": 71}, "HeartRate": 88},
			"enrichments": {"userSpecifiedKey": "sampleValue"},
			"module": "VitalsModule",
			"component": "DeviceComponent",
			"messageProperties": {"messageProp": "value"}
		}`},
		{"Properties", ferry.Event{
			Time: enq, Source: ferry.SourceProperties, Type: ferry.TypeDevicePropertyReportedChange,
			DeviceID: "18a985g1fta", ModelID: "urn:qugj6vbw5:___qbj_27r",
			Data: json.RawMessage(`[{"name":"MachineSerialNumber","value":"abc","module":"VitalsModule","component":"DeviceComponent"}]`),
		}, `{
			"applicationId": "1dffa667-9bee-4f16-b243-25ad4151475e",
			"messageSource": "properties",
			"messageType": "devicePropertyReportedChange",
			"deviceId": "18a985g1fta",
			"schema": "default@v1",
			"templateId": "urn:qugj6vbw5:___qbj_27r",
			"enqueuedTime": "2020-08-05T22:26:55.455Z",
			"properties": [{"name": "MachineSerialNumber", "value": "abc", "module": "VitalsModule", "component": "DeviceComponent"}],
			"enrichments": {"userSpecifiedKey": "sampleValue"}
		}`},
		{"DeviceConnectivity", ferry.Event{
			Time: enq, Source: ferry.SourceDeviceConnectivity, Type: ferry.TypeConnected,
			DeviceID: "1vzb5ghlsg1", ModelID: "urn:qugj6vbw5:___qbj_27r",
		}, `{
			"applicationId": "1dffa667-9bee-4f16-b243-25ad4151475e",
			"messageSource": "deviceConnectivity",
			"messageType": "connected",
			"deviceId": "1vzb5ghlsg1",
			"schema": "default@v1",
			"templateId": "urn:qugj6vbw5:___qbj_27r",
			"enqueuedTime": "2020-08-05T22:26:55.455Z",
			"enrichments": {"userSpecifiedKey": "sampleValue"}
		}`},
		{"DeviceLifecycle", ferry.Event{
			Time: enq, Source: ferry.SourceDeviceLifecycle, Type: ferry.TypeRegistered,
			DeviceID: "1vzb5ghlsg1", ModelID: "urn:qugj6vbw5:___qbj_27r",
		}, `{
			"applicationId": "1dffa667-9bee-4f16-b243-25ad4151475e",
			"messageSource": "deviceLifecycle",
			"messageType": "registered",
			"deviceId": "1vzb5ghlsg1",
			"schema": "default@v1",
			"templateId": "urn:qugj6vbw5:___qbj_27r",
			"enqueuedTime": "2020-08-05T22:26:55.455Z",
			"enrichments": {"userSpecifiedKey": "sampleValue"}
		}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := export.NewRecord(app, map[string]string{"userSpecifiedKey": "sampleValue"}, tt.event)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var got, want map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			delete(got, "ferry")
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-central +ferry):\n%s", diff)
			}
		})
	}
}

// Record.Event gives back the event written, with the documented
// normalizations.
func TestRecordEvent(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, export.Config{Dir: dir, ApplicationID: "app"})
	in := sampleEvents()
	if err := s.Write(context.Background(), in...); err != nil {
		t.Fatal(err)
	}
	recs, err := export.ReadAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(in) {
		t.Fatalf("read %d records, want %d", len(recs), len(in))
	}
	want := sampleEvents()
	for i := range want {
		want[i].Time = want[i].Time.Truncate(time.Millisecond)
	}
	want[0].Body = []byte(`{"temperature":21.5,"humidity":{"value":40}}`)
	want[3].Data = json.RawMessage(`[{"name":"serialNumber","value":"abc"},{"name":"maxTempSinceLastReboot","value":38.2,"component":"thermostat1"}]`)
	want[6].Data = json.RawMessage(`{"reason":"keepalive"}`)
	for i, r := range recs {
		got, err := r.Event()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("event %s (-want +got):\n%s", want[i].ID, diff)
		}
	}
}

func TestNewRecordErrors(t *testing.T) {
	tests := []struct {
		name  string
		event ferry.Event
	}{
		{"ErrPropertiesNotJSON", ferry.Event{Source: ferry.SourceProperties, Data: json.RawMessage(`{nope`)}},
		{"ErrPropertiesScalar", ferry.Event{Source: ferry.SourceProperties, Data: json.RawMessage(`42`)}},
		{"ErrDataNotJSON", ferry.Event{Source: ferry.SourceDeviceLifecycle, Data: json.RawMessage(`{`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := export.NewRecord("app", nil, tt.event); !ferry.IsCode(err, ferry.EINVALID) {
				t.Errorf("NewRecord = %v, want EINVALID", err)
			}
		})
	}
}
