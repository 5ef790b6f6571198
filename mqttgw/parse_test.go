package mqttgw_test

import (
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/mqttgw"
	"github.com/google/go-cmp/cmp"
)

func TestParseUsername(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want mqttgw.Username // Query not compared
	}{
		{"node dps", "0ne0000TEST/registrations/dev-001/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1",
			mqttgw.Username{Kind: mqttgw.KindDPS, IDScope: "0ne0000TEST", RegistrationID: "dev-001", APIVersion: "2019-03-31"}},
		{"docs dps", "0ne00000000/registrations/sn-007/api-version=2019-03-31",
			mqttgw.Username{Kind: mqttgw.KindDPS, IDScope: "0ne00000000", RegistrationID: "sn-007", APIVersion: "2019-03-31"}},
		{"node hub with port", "localhost:18883/dev-001/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)",
			mqttgw.Username{Kind: mqttgw.KindHub, Host: "localhost:18883", DeviceID: "dev-001", APIVersion: "2021-04-12"}},
		{"python hub with model", "hub.example.com/d1/?api-version=2020-09-30&DeviceClientType=x&model-id=dtmi%3Ax%3Ay%3B1",
			mqttgw.Username{Kind: mqttgw.KindHub, Host: "hub.example.com", DeviceID: "d1", APIVersion: "2020-09-30", ModelID: "dtmi:x:y;1"}},
		{"hub ip", "127.0.0.2/d1/?api-version=2021-04-12",
			mqttgw.Username{Kind: mqttgw.KindHub, Host: "127.0.0.2", DeviceID: "d1", APIVersion: "2021-04-12"}},
		{"hub module", "hub/d1/m1/?api-version=2021-04-12",
			mqttgw.Username{Kind: mqttgw.KindHub, Host: "hub", DeviceID: "d1", ModuleID: "m1", APIVersion: "2021-04-12"}},
		{"hub without query", "hub/d1",
			mqttgw.Username{Kind: mqttgw.KindHub, Host: "hub", DeviceID: "d1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mqttgw.ParseUsername(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got.Query = nil
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseUsernameBad(t *testing.T) {
	for name, in := range map[string]string{
		"empty":           "",
		"one segment":     "hub",
		"empty device":    "hub//?api-version=1",
		"too many":        "hub/a/b/c/?api-version=1",
		"dps extra":       "scope/registrations/a/b/api-version=2019-03-31",
		"dps empty id":    "scope/registrations//api-version=2019-03-31",
		"bad escape":      "hub/d1/?api-version=%zz",
		"space in device": "hub/d 1/?api-version=1",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := mqttgw.ParseUsername(in); ferry.ErrorCode(err) != ferry.EINVALID {
				t.Errorf("ParseUsername(%q) = %v, want EINVALID", in, err)
			}
		})
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want mqttgw.Topic
	}{
		{"node telemetry", "devices/dev-001/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&iothub-creation-time-utc=2024-01-01T00%3A00%3A00Z",
			mqttgw.Topic{Kind: mqttgw.TopicTelemetry, DeviceID: "dev-001", Properties: map[string]string{
				"$.ct": "application/json", "$.ce": "utf-8", "iothub-creation-time-utc": "2024-01-01T00:00:00Z"}}},
		{"bare telemetry", "devices/d/messages/events/", mqttgw.Topic{Kind: mqttgw.TopicTelemetry, DeviceID: "d", Properties: map[string]string{}}},
		{"no slash telemetry", "devices/d/messages/events", mqttgw.Topic{Kind: mqttgw.TopicTelemetry, DeviceID: "d", Properties: map[string]string{}}},
		{"plus kept, flag key", "devices/d/messages/events/a=1+2&flag&e=",
			mqttgw.Topic{Kind: mqttgw.TopicTelemetry, DeviceID: "d", Properties: map[string]string{"a": "1+2", "flag": "", "e": ""}}},
		{"module telemetry", "devices/d/modules/m/messages/events/",
			mqttgw.Topic{Kind: mqttgw.TopicTelemetry, DeviceID: "d", ModuleID: "m", Properties: map[string]string{}}},
		{"twin get", "$iothub/twin/GET/?$rid=42", mqttgw.Topic{Kind: mqttgw.TopicTwinGet, RID: "42"}},
		{"twin patch", "$iothub/twin/PATCH/properties/reported/?$rid=ab-c", mqttgw.Topic{Kind: mqttgw.TopicTwinPatch, RID: "ab-c"}},
		{"method res", "$iothub/methods/res/200/?$rid=1", mqttgw.Topic{Kind: mqttgw.TopicMethodResponse, RID: "1", Status: 200}},
		{"dps register", "$dps/registrations/PUT/iotdps-register/?$rid=5436ec3d", mqttgw.Topic{Kind: mqttgw.TopicDPSRegister, RID: "5436ec3d"}},
		{"dps poll", "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=a7&operationId=4.fake.op1",
			mqttgw.Topic{Kind: mqttgw.TopicDPSPoll, RID: "a7", OperationID: "4.fake.op1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mqttgw.ParseTopic(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseTopicBad(t *testing.T) {
	for name, in := range map[string]string{
		"unknown":         "foo/bar",
		"devicebound":     "devices/d/messages/devicebound/",
		"events typo":     "devices/d/messages/eventsx",
		"twin no rid":     "$iothub/twin/GET/?",
		"method bad code": "$iothub/methods/res/abc/?$rid=1",
		"poll no op":      "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1",
		"bad bag escape":  "devices/d/messages/events/a=%zz",
		"empty bag key":   "devices/d/messages/events/=v",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := mqttgw.ParseTopic(in); ferry.ErrorCode(err) != ferry.EINVALID {
				t.Errorf("ParseTopic(%q) = %v, want EINVALID", in, err)
			}
		})
	}
}

func TestPropertyBagRoundTrip(t *testing.T) {
	m := map[string]string{"$.mid": "m 1", "a/b": "x&y=z", "e": ""}
	s := mqttgw.EncodePropertyBag([]string{"$.mid", "a/b", "e"}, m)
	if s != "%24.mid=m%201&a%2Fb=x%26y%3Dz&e=" {
		t.Errorf("encoded %q", s)
	}
	got, err := mqttgw.ParsePropertyBag(s)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func FuzzParseUsername(f *testing.F) {
	f.Add("0ne0000TEST/registrations/dev-001/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1")
	f.Add("localhost:18883/dev-001/?api-version=2021-04-12&DeviceClientType=x")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := mqttgw.ParseUsername(s)
		if err != nil {
			return
		}
		switch u.Kind {
		case mqttgw.KindHub:
			if u.Host == "" || u.DeviceID == "" {
				t.Fatalf("hub username %q parsed without host or device: %+v", s, u)
			}
		case mqttgw.KindDPS:
			if u.IDScope == "" || u.RegistrationID == "" {
				t.Fatalf("dps username %q parsed without scope or id: %+v", s, u)
			}
		default:
			t.Fatalf("no kind for %q", s)
		}
	})
}

func FuzzParsePropertyBag(f *testing.F) {
	f.Add("%24.ct=application%2Fjson&%24.ce=utf-8")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := mqttgw.ParsePropertyBag(s)
		if err != nil {
			return
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		again, err := mqttgw.ParsePropertyBag(mqttgw.EncodePropertyBag(keys, m))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if d := cmp.Diff(m, again); d != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", s, d)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	f.Add("devices/d/messages/events/%24.mid=1")
	f.Add("$iothub/methods/res/200/?$rid=1")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := mqttgw.ParseTopic(s)
		if err == nil && tp.Kind == 0 {
			t.Fatalf("no kind for %q", s)
		}
	})
}
