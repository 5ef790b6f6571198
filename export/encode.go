package export

import (
	"encoding/base64"
	"slices"
	"unicode/utf8"
)

// appendJSON appends the record as encoding/json would marshal it without
// HTML escaping, but without reflection: encoding dominates the sink's CPU
// time. A test checks both give the same bytes.
func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"applicationId":`...)
	b = appendString(b, r.ApplicationID)
	b = append(b, `,"messageSource":`...)
	b = appendString(b, r.MessageSource)
	if r.MessageType != "" {
		b = append(b, `,"messageType":`...)
		b = appendString(b, r.MessageType)
	}
	b = append(b, `,"deviceId":`...)
	b = appendString(b, r.DeviceID)
	b = append(b, `,"schema":`...)
	b = appendString(b, r.Schema)
	b = append(b, `,"templateId":`...)
	b = appendString(b, r.TemplateID)
	b = append(b, `,"enqueuedTime":`...)
	b = appendString(b, r.EnqueuedTime)
	if r.Telemetry != nil {
		b = append(b, `,"telemetry":`...)
		b = append(b, r.Telemetry...) // compact and valid: see NewRecord
	}
	if r.Properties != nil {
		b = append(b, `,"properties":[`...)
		for i, p := range r.Properties {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, p.Name)
			b = append(b, `,"value":`...)
			if p.Value == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, p.Value...)
			}
			if p.Module != "" {
				b = append(b, `,"module":`...)
				b = appendString(b, p.Module)
			}
			if p.Component != "" {
				b = append(b, `,"component":`...)
				b = appendString(b, p.Component)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"enrichments":`...)
	b = appendMap(b, r.Enrichments)
	if r.Module != "" {
		b = append(b, `,"module":`...)
		b = appendString(b, r.Module)
	}
	if r.Component != "" {
		b = append(b, `,"component":`...)
		b = appendString(b, r.Component)
	}
	if r.MessageProperties != nil {
		b = append(b, `,"messageProperties":`...)
		b = appendMap(b, r.MessageProperties)
	}
	if x := r.Ferry; x != nil {
		b = append(b, `,"ferry":{`...)
		n := len(b)
		sep := func() {
			if len(b) > n {
				b = append(b, ',')
			}
		}
		if x.ID != "" {
			sep()
			b = append(b, `"id":`...)
			b = appendString(b, x.ID)
		}
		if x.HubID != "" {
			sep()
			b = append(b, `"hubId":`...)
			b = appendString(b, x.HubID)
		}
		if x.HubHost != "" {
			sep()
			b = append(b, `"hubHost":`...)
			b = appendString(b, x.HubHost)
		}
		if len(x.SystemProperties) > 0 {
			sep()
			b = append(b, `"systemProperties":`...)
			b = appendMap(b, x.SystemProperties)
		}
		if x.Body != nil {
			sep()
			b = append(b, `"body":"`...)
			b = base64.StdEncoding.AppendEncode(b, x.Body)
			b = append(b, '"')
		}
		if len(x.Data) > 0 {
			sep()
			b = append(b, `"data":`...)
			b = append(b, x.Data...) // compact and valid: see NewRecord
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

const hex = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping off:
// invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029 are escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
