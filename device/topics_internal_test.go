package device

import (
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/google/go-cmp/cmp"
)

func TestEncodeBag(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props map[string]string
		want  string
	}{
		{"Empty", nil, ""},
		// As the Node SDK sends it (reference 3.3): $ and / percent-encoded.
		{"SystemProperties", map[string]string{"$.ct": "application/json", "$.ce": "utf-8"}, "%24.ce=utf-8&%24.ct=application%2Fjson"},
		{"SpacesAndReserved", map[string]string{"a b": "x&y=z", "seq": "7"}, "a%20b=x%26y%3Dz&seq=7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := encodeBag(tc.props); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeBag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"Empty", "", nil, false},
		// The C2D example of reference 3.4: null, empty and a value.
		{"NullEmptyValue", "?prop1&prop2=&prop3=a%20string", map[string]string{"prop1": "", "prop2": "", "prop3": "a string"}, false},
		{"SystemProperties", "%24.mid=m1&%24.ct=application%2Fjson", map[string]string{"$.mid": "m1", "$.ct": "application/json"}, false},
		{"ErrBadEscape", "a=%zz", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeBag(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v", err)
			}
			if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		name, topic, prefix string
		want                response
		wantErr             bool
	}{
		{"DPSAssigning", "$dps/registrations/res/202/?$rid=1&retry-after=3", "$dps/registrations/res/",
			response{Status: 202, RID: "1", RetryAfter: 3, Extra: "$rid=1&retry-after=3"}, false},
		{"TwinPatched", "$iothub/twin/res/204/?$rid=ab&$version=12", "$iothub/twin/res/",
			response{Status: 204, RID: "ab", Version: 12, Extra: "$rid=ab&$version=12"}, false},
		{"ErrNoQuery", "$dps/registrations/res/200", "$dps/registrations/res/", response{}, true},
		{"ErrNoRID", "$dps/registrations/res/200/?x=1", "$dps/registrations/res/", response{}, true},
		{"ErrBadStatus", "$iothub/twin/res/ok/?$rid=1", "$iothub/twin/res/", response{}, true},
		{"ErrOtherTopic", "$iothub/methods/POST/x/?$rid=1", "$iothub/twin/res/", response{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseResponse(tc.topic, tc.prefix)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMethodTopic(t *testing.T) {
	for _, tc := range []struct {
		name, topic, wantName, wantRID string
		ok                             bool
	}{
		// A component command travels verbatim (reference 3.5).
		{"Component", "$iothub/methods/POST/migration*DeviceMove/?$rid=1", "migration*DeviceMove", "1", true},
		{"Plain", "$iothub/methods/POST/reboot/?$rid=42", "reboot", "42", true},
		{"NoRID", "$iothub/methods/POST/reboot/?", "reboot", "", false},
		{"NoName", "$iothub/methods/POST//?$rid=1", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, rid, ok := methodTopic(tc.topic)
			if ok != tc.ok || ok && (name != tc.wantName || rid != tc.wantRID) {
				t.Errorf("got %q %q %v", name, rid, ok)
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		code   string
	}{
		{"Unauthorized", 401, `{"errorCode":401002,"message":"bad"}`, ferry.EUNAUTHORIZED},
		{"NotFoundFromCode", 400, `{"errorCode":404203}`, ferry.ENOTFOUND},
		{"BadRequestNoBody", 400, ``, ferry.EINVALID},
		{"Throttled", 429, `{}`, ferry.ETHROTTLED},
		{"ServerError", 500, `{}`, ferry.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := statusError("op", tc.status, []byte(tc.body)); !ferry.IsCode(err, tc.code) {
				t.Errorf("got %v, want %s", err, tc.code)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{cfg: Config{MinBackoff: 100e6, MaxBackoff: 1e9}}
	for n := 0; n < 30; n++ {
		d := c.backoff(n)
		if d < 50e6 || d > 1e9 {
			t.Fatalf("attempt %d: %v out of bounds", n, d)
		}
	}
}
