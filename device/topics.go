package device

import (
	"encoding/json"
	"errors"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry"
)

var errTimeout = ferry.Errorf(ferry.ETIMEOUT, "timed out waiting for the server")

// System property keys of IoT Hub messages, as they appear in a property bag.
const (
	PropMessageID       = "$.mid"
	PropCorrelationID   = "$.cid"
	PropUserID          = "$.uid"
	PropTo              = "$.to"
	PropContentType     = "$.ct"
	PropContentEncoding = "$.ce"
	PropExpiry          = "$.exp"
)

// encodeBag renders a property bag as the Azure SDKs do: k=v pairs joined by
// &, keys and values percent-encoded (including the $ of system properties).
// Keys are sorted so that a message always yields the same topic.
func encodeBag(props map[string]string) string {
	if len(props) == 0 {
		return ""
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escape(k))
		b.WriteByte('=')
		b.WriteString(escape(props[k]))
	}
	return b.String()
}

// escape percent-encodes everything but RFC 3986 unreserved characters,
// like Python's quote(s, safe="") and Node's encodeURIComponent.
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// decodeBag parses a property bag: `k=v`, `k=` (empty) and `k` (null, read
// as empty) pairs joined by &, percent-decoded. A leading ? is skipped.
func decodeBag(s string) (map[string]string, error) {
	s = strings.TrimPrefix(s, "?")
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		dk, err := url.PathUnescape(k)
		if err != nil {
			return nil, ferry.Errorf(ferry.EINVALID, "bad property name %q", k)
		}
		dv, err := url.PathUnescape(v)
		if err != nil {
			return nil, ferry.Errorf(ferry.EINVALID, "bad property value for %q", dk)
		}
		out[dk] = dv
	}
	return out, nil
}

// response is a parsed `…/res/{status}/?$rid=…&…` topic of DPS or twins.
type response struct {
	Status     int
	RID        string
	RetryAfter int    // seconds; 0 when absent
	Version    int64  // twin $version; 0 when absent
	Extra      string // the raw query
}

// parseResponse parses the topic of a DPS or twin response; prefix is
// "$dps/registrations/res/" or "$iothub/twin/res/".
func parseResponse(topic, prefix string) (response, error) {
	rest, ok := strings.CutPrefix(topic, prefix)
	if !ok {
		return response{}, ferry.Errorf(ferry.EINVALID, "unexpected topic %q", topic)
	}
	status, query, ok := strings.Cut(rest, "/?")
	if !ok {
		return response{}, ferry.Errorf(ferry.EINVALID, "response topic %q has no query", topic)
	}
	var r response
	var err error
	if r.Status, err = strconv.Atoi(status); err != nil {
		return response{}, ferry.Errorf(ferry.EINVALID, "response topic %q has a bad status", topic)
	}
	r.Extra = query
	for _, pair := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(pair, "=")
		switch k {
		case "$rid":
			r.RID, _ = url.QueryUnescape(v)
		case "retry-after":
			r.RetryAfter, _ = strconv.Atoi(v)
		case "$version":
			r.Version, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if r.RID == "" {
		return response{}, ferry.Errorf(ferry.EINVALID, "response topic %q has no $rid", topic)
	}
	return r, nil
}

// methodTopic parses `$iothub/methods/POST/{name}/?$rid={rid}`.
func methodTopic(topic string) (name, rid string, ok bool) {
	rest, ok := strings.CutPrefix(topic, "$iothub/methods/POST/")
	if !ok {
		return "", "", false
	}
	name, query, ok := strings.Cut(rest, "/?")
	if !ok || name == "" {
		return "", "", false
	}
	for _, pair := range strings.Split(query, "&") {
		if v, found := strings.CutPrefix(pair, "$rid="); found {
			rid, _ = url.QueryUnescape(v)
		}
	}
	return name, rid, rid != ""
}

// serviceError is the body of a DPS or hub error response.
type serviceError struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
}

// statusError turns an error status and body into a *ferry.Error with the
// code that fits the HTTP status (the first three digits of errorCode).
func statusError(op string, status int, body []byte) error {
	var se serviceError
	_ = json.Unmarshal(body, &se)
	if se.ErrorCode >= 100000 {
		status = se.ErrorCode / 1000
	}
	msg := se.Message
	if msg == "" {
		msg = "status " + strconv.Itoa(status)
	}
	code := ferry.EINTERNAL
	switch {
	case status == 400:
		code = ferry.EINVALID
	case status == 401:
		code = ferry.EUNAUTHORIZED
	case status == 403:
		code = ferry.EFORBIDDEN
	case status == 404:
		code = ferry.ENOTFOUND
	case status == 409:
		code = ferry.ECONFLICT
	case status == 412:
		code = ferry.EPRECONDITION
	case status == 429:
		code = ferry.ETHROTTLED
	case status == 504:
		code = ferry.ETIMEOUT
	}
	return ferry.Errorf(code, "%s: %s (%d)", op, msg, se.ErrorCode)
}

// permanent reports whether err will not go away by retrying: bad
// credentials, a refused or unknown registration, bad input.
func permanent(err error) bool {
	var fe *ferry.Error
	if !errors.As(err, &fe) {
		return false
	}
	switch fe.Code {
	case ferry.EINVALID, ferry.EUNAUTHORIZED, ferry.EFORBIDDEN, ferry.ENOTFOUND, ferry.EPRECONDITION:
		return true
	}
	return false
}
