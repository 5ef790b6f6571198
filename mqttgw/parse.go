package mqttgw

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry"
)

// Kind tells provisioning sessions from hub sessions.
type Kind int

// Session kinds, told apart by the shape of the CONNECT username.
const (
	KindHub Kind = iota + 1 // {host}/{deviceId}[/{moduleId}]/?api-version=...
	KindDPS                 // {idScope}/registrations/{registrationId}/api-version=...
)

// Username is a parsed CONNECT username of an Azure IoT device.
type Username struct {
	Kind           Kind
	Host           string // hub sessions: the host the device names, port included if any
	DeviceID       string // hub sessions
	ModuleID       string // hub sessions of a module
	IDScope        string // DPS sessions
	RegistrationID string // DPS sessions
	APIVersion     string
	ModelID        string     // hub sessions: the model-id query key, if any
	Query          url.Values // every key after the path, decoded
}

// Resource returns the SAS resource the username claims:
// "{host}/devices/{deviceId}[/modules/{moduleId}]" or
// "{idScope}/registrations/{registrationId}".
func (u Username) Resource() string {
	if u.Kind == KindDPS {
		return u.IDScope + "/registrations/" + u.RegistrationID
	}
	r := u.Host + "/devices/" + u.DeviceID
	if u.ModuleID != "" {
		r += "/modules/" + u.ModuleID
	}
	return r
}

// ParseUsername reads a CONNECT username. A DPS username is split at the
// first "/api-version=" and must read {idScope}/registrations/{regId}; a hub
// username is split at the first "/?" (which may be absent) and must read
// {host}/{deviceId} or {host}/{deviceId}/{moduleId}. The query part is
// &-separated, URL-encoded key=value pairs. Returns EINVALID otherwise.
func ParseUsername(s string) (Username, error) {
	bad := func(why string) (Username, error) {
		return Username{}, ferry.Errorf(ferry.EINVALID, "malformed username: %s", why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > 2048 {
		return bad("too long")
	}
	if i := strings.Index(s, "/api-version="); i >= 0 && strings.Contains(s[:i], "/registrations/") {
		path, query := s[:i], s[i+1:]
		parts := strings.Split(path, "/")
		if len(parts) != 3 || parts[1] != "registrations" || parts[0] == "" || parts[2] == "" {
			return bad("want {idScope}/registrations/{registrationId}")
		}
		q, err := parseQuery(query)
		if err != nil {
			return bad("query: " + err.Error())
		}
		u := Username{Kind: KindDPS, IDScope: parts[0], RegistrationID: parts[2], Query: q, APIVersion: q.Get("api-version")}
		if !validID(u.RegistrationID) || !validID(u.IDScope) {
			return bad("invalid registration ID or ID scope")
		}
		return u, nil
	}
	path, query := s, ""
	if i := strings.Index(s, "/?"); i >= 0 {
		path, query = s[:i], s[i+2:]
	} else {
		path = strings.TrimSuffix(path, "/")
	}
	parts := strings.Split(path, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want {host}/{deviceId}/?api-version=...")
	}
	for _, p := range parts {
		if p == "" {
			return bad("empty segment")
		}
	}
	q, err := parseQuery(query)
	if err != nil {
		return bad("query: " + err.Error())
	}
	u := Username{Kind: KindHub, Host: parts[0], DeviceID: parts[1], Query: q,
		APIVersion: q.Get("api-version"), ModelID: q.Get("model-id")}
	if len(parts) == 3 {
		u.ModuleID = parts[2]
	}
	if !validID(u.DeviceID) || (u.ModuleID != "" && !validID(u.ModuleID)) {
		return bad("invalid device or module ID")
	}
	return u, nil
}

// validID accepts IoT Hub device IDs: up to 128 printable ASCII characters
// without '/', '?', '#', spaces or control characters.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '&' || c == '%' {
			return false
		}
	}
	return true
}

func parseQuery(s string) (url.Values, error) {
	q := url.Values{}
	if s == "" {
		return q, nil
	}
	for _, kv := range strings.Split(s, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		q.Add(dk, dv)
	}
	return q, nil
}

// ParsePropertyBag decodes an RFC 2396 property bag such as
// "%24.ct=application%2Fjson&%24.ce=utf-8&k=v&flag": keys and values are
// percent-decoded ('+' stays a plus), a key without '=' has the value "".
// A later duplicate key wins. Returns EINVALID for a bad escape or an empty
// key.
func ParsePropertyBag(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err := url.PathUnescape(k)
		if err != nil || dk == "" {
			return nil, ferry.Errorf(ferry.EINVALID, "malformed property bag")
		}
		dv, err := url.PathUnescape(v)
		if err != nil {
			return nil, ferry.Errorf(ferry.EINVALID, "malformed property bag")
		}
		m[dk] = dv
	}
	return m, nil
}

// EncodePropertyBag renders properties as a bag in key order, encoding keys
// and values as IoT Hub does.
func EncodePropertyBag(keys []string, m map[string]string) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escape(k))
		b.WriteByte('=')
		b.WriteString(escape(m[k]))
	}
	return b.String()
}

// escape encodes every byte except A-Z a-z 0-9 - _ . ~ as %XX.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// TopicKind is what a device publishes to.
type TopicKind int

// Topics a device may publish to.
const (
	TopicTelemetry      TopicKind = iota + 1 // devices/{d}/messages/events/{bag}
	TopicTwinGet                             // $iothub/twin/GET/?$rid=
	TopicTwinPatch                           // $iothub/twin/PATCH/properties/reported/?$rid=
	TopicMethodResponse                      // $iothub/methods/res/{status}/?$rid=
	TopicDPSRegister                         // $dps/registrations/PUT/iotdps-register/?$rid=
	TopicDPSPoll                             // $dps/registrations/GET/iotdps-get-operationstatus/?$rid=&operationId=
)

// Topic is a parsed device publish topic.
type Topic struct {
	Kind        TopicKind
	DeviceID    string
	ModuleID    string
	Properties  map[string]string // telemetry: the decoded property bag
	RID         string
	Status      int    // method responses
	OperationID string // DPS polls
}

// ParseTopic reads the topic of a device's PUBLISH. Returns EINVALID for a
// topic IoT Hub or DPS does not document.
func ParseTopic(s string) (Topic, error) {
	bad := func() (Topic, error) { return Topic{}, ferry.Errorf(ferry.EINVALID, "unsupported topic") }
	switch {
	case strings.HasPrefix(s, "devices/"):
		rest := s[len("devices/"):]
		dev, rest, ok := strings.Cut(rest, "/")
		if !ok || dev == "" {
			return bad()
		}
		t := Topic{Kind: TopicTelemetry, DeviceID: dev}
		if strings.HasPrefix(rest, "modules/") {
			mod, r, ok := strings.Cut(rest[len("modules/"):], "/")
			if !ok || mod == "" {
				return bad()
			}
			t.ModuleID, rest = mod, r
		}
		const ev = "messages/events"
		if !strings.HasPrefix(rest, ev) {
			return bad()
		}
		rest = rest[len(ev):]
		if rest != "" {
			if rest[0] != '/' {
				return bad()
			}
			rest = strings.TrimPrefix(rest[1:], "?")
		}
		p, err := ParsePropertyBag(rest)
		if err != nil {
			return Topic{}, err
		}
		t.Properties = p
		return t, nil
	case strings.HasPrefix(s, "$iothub/twin/GET/?"):
		return withRID(Topic{Kind: TopicTwinGet}, s[len("$iothub/twin/GET/?"):])
	case strings.HasPrefix(s, "$iothub/twin/PATCH/properties/reported/?"):
		return withRID(Topic{Kind: TopicTwinPatch}, s[len("$iothub/twin/PATCH/properties/reported/?"):])
	case strings.HasPrefix(s, "$iothub/methods/res/"):
		status, q, ok := strings.Cut(s[len("$iothub/methods/res/"):], "/?")
		if !ok {
			return bad()
		}
		n, err := strconv.Atoi(status)
		if err != nil || n < 0 || n > 999999 {
			return bad()
		}
		return withRID(Topic{Kind: TopicMethodResponse, Status: n}, q)
	case strings.HasPrefix(s, "$dps/registrations/PUT/iotdps-register/?"):
		return withRID(Topic{Kind: TopicDPSRegister}, s[len("$dps/registrations/PUT/iotdps-register/?"):])
	case strings.HasPrefix(s, "$dps/registrations/GET/iotdps-get-operationstatus/?"):
		t, err := withRID(Topic{Kind: TopicDPSPoll}, s[len("$dps/registrations/GET/iotdps-get-operationstatus/?"):])
		if err != nil {
			return t, err
		}
		if t.OperationID == "" {
			return Topic{}, ferry.Errorf(ferry.EINVALID, "missing operationId")
		}
		return t, nil
	}
	return bad()
}

func withRID(t Topic, query string) (Topic, error) {
	q, err := parseQuery(query)
	if err != nil {
		return Topic{}, ferry.Errorf(ferry.EINVALID, "malformed topic query")
	}
	t.RID = q.Get("$rid")
	if t.RID == "" || len(t.RID) > 128 {
		return Topic{}, ferry.Errorf(ferry.EINVALID, "missing $rid")
	}
	t.OperationID = q.Get("operationId")
	return t, nil
}

// Subscription filters a device may use. Wildcards are allowed only as the
// trailing "#" of these filters, as IoT Hub and DPS allow.
const (
	FilterMethods     = "$iothub/methods/POST/#"
	FilterTwinRes     = "$iothub/twin/res/#"
	FilterTwinDesired = "$iothub/twin/PATCH/properties/desired/#"
	FilterDPSRes      = "$dps/registrations/res/#"
)

// C2DFilter returns the cloud-to-device filter of a device (or module).
func C2DFilter(deviceID, moduleID string) string {
	if moduleID != "" {
		return "devices/" + deviceID + "/modules/" + moduleID + "/messages/devicebound/#"
	}
	return "devices/" + deviceID + "/messages/devicebound/#"
}
