package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/ferry-iot/ferry"
)

// Schema is the payload schema IoT Central names in every exported message.
const Schema = "default@v1"

// TimeFormat is how enqueuedTime is written: UTC with milliseconds, as IoT
// Central writes it ("2020-08-05T22:26:55.455Z").
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Record is one exported message: one line of an export file. Its fields are
// IoT Central's continuous data export fields, in IoT Central's order, plus
// one "ferry" member that keeps what Central's format has no room for, so
// that a record turns back into the event it came from.
type Record struct {
	ApplicationID     string            `json:"applicationId"`
	MessageSource     string            `json:"messageSource"`
	MessageType       string            `json:"messageType,omitempty"`
	DeviceID          string            `json:"deviceId"`
	Schema            string            `json:"schema"`
	TemplateID        string            `json:"templateId"`
	EnqueuedTime      string            `json:"enqueuedTime"`
	Telemetry         json.RawMessage   `json:"telemetry,omitzero"`
	Properties        []Property        `json:"properties,omitzero"`
	Enrichments       map[string]string `json:"enrichments"`
	Module            string            `json:"module,omitempty"`
	Component         string            `json:"component,omitempty"`
	MessageProperties map[string]string `json:"messageProperties,omitzero"`
	Ferry             *Extension        `json:"ferry,omitempty"`
}

// Property is one changed property of a properties message.
type Property struct {
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"`
	Module    string          `json:"module,omitempty"`
	Component string          `json:"component,omitempty"`
}

// Extension holds the parts of a ferry.Event that IoT Central's format does
// not carry. Consumers of Central exports ignore it.
type Extension struct {
	ID               string            `json:"id,omitempty"`
	HubID            string            `json:"hubId,omitempty"`
	HubHost          string            `json:"hubHost,omitempty"`
	SystemProperties map[string]string `json:"systemProperties,omitempty"`
	// Body is a telemetry payload that is not a JSON object in UTF-8, kept
	// as sent (base64 in the file); telemetry is {} then.
	Body []byte `json:"body,omitzero"`
	// Data is the detail of a connectivity, lifecycle or migration event.
	Data json.RawMessage `json:"data,omitempty"`
}

// NewRecord converts an event into its export message. Telemetry whose body
// is a JSON object becomes the telemetry member; any other body is kept in
// the extension. For properties events, Data is either the patch the
// device or service sent ({"name": value, ...}, where a member marked
// "__t": "c" is a component and "$version" is skipped) or an array of
// Property; either becomes the properties array.
func NewRecord(applicationID string, enrichments map[string]string, e ferry.Event) (Record, error) {
	if enrichments == nil {
		enrichments = map[string]string{}
	}
	r := Record{
		ApplicationID: applicationID,
		MessageSource: e.Source,
		MessageType:   e.Type,
		DeviceID:      e.DeviceID,
		Schema:        Schema,
		TemplateID:    e.ModelID,
		EnqueuedTime:  e.Time.UTC().Format(TimeFormat),
		Enrichments:   enrichments,
		Module:        e.Module,
		Component:     e.Component,
	}
	x := &Extension{ID: e.ID, HubID: e.HubID, HubHost: e.HubHost, SystemProperties: e.System}
	switch e.Source {
	case ferry.SourceTelemetry:
		r.MessageType = ""
		r.MessageProperties = e.Properties
		if r.MessageProperties == nil {
			r.MessageProperties = map[string]string{}
		}
		if isJSONObject(e.Body) {
			var buf bytes.Buffer
			if err := json.Compact(&buf, e.Body); err != nil {
				return Record{}, fmt.Errorf("compact telemetry: %w", err)
			}
			r.Telemetry = buf.Bytes()
		} else {
			r.Telemetry = json.RawMessage(`{}`)
			x.Body = e.Body
			if x.Body == nil {
				x.Body = []byte{}
			}
		}
	case ferry.SourceProperties:
		props, err := propertiesOf(e.Data)
		if err != nil {
			return Record{}, ferry.WrapError(ferry.EINVALID, "The properties event has malformed data.", err)
		}
		r.Properties = props
	default:
		if len(e.Data) > 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, e.Data); err != nil {
				return Record{}, ferry.WrapError(ferry.EINVALID, "The event has malformed data.", err)
			}
			x.Data = buf.Bytes()
		}
	}
	if x.ID != "" || x.HubID != "" || x.HubHost != "" || len(x.SystemProperties) > 0 || x.Body != nil || x.Data != nil {
		r.Ferry = x
	}
	return r, nil
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && utf8.Valid(b) && json.Valid(b)
}

// propertiesOf turns the Data of a properties event into Central's array.
func propertiesOf(data json.RawMessage) ([]Property, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return []Property{}, nil
	}
	if data[0] == '[' {
		var props []Property
		if err := json.Unmarshal(data, &props); err != nil {
			return nil, err
		}
		for i := range props {
			props[i].Value = compact(props[i].Value)
		}
		return props, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	props := []Property{}
	for _, name := range sortedKeys(top) {
		if name == "$version" || name == "$metadata" {
			continue
		}
		v := top[name]
		var inner map[string]json.RawMessage
		if json.Unmarshal(v, &inner) == nil && string(bytes.TrimSpace(inner["__t"])) == `"c"` {
			for _, sub := range sortedKeys(inner) {
				if sub == "__t" || sub == "$metadata" {
					continue
				}
				props = append(props, Property{Name: sub, Value: compact(inner[sub]), Component: name})
			}
			continue
		}
		props = append(props, Property{Name: name, Value: compact(v)})
	}
	return props, nil
}

func compact(v json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return v
	}
	return buf.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Time returns the enqueued time.
func (r *Record) Time() (time.Time, error) {
	return time.Parse(time.RFC3339Nano, r.EnqueuedTime)
}

// Event turns the record back into the event it was made from. The time
// keeps milliseconds; a telemetry JSON body comes back compacted; the data
// of a properties event comes back as a JSON array of Property.
func (r *Record) Event() (ferry.Event, error) {
	t, err := r.Time()
	if err != nil {
		return ferry.Event{}, fmt.Errorf("enqueuedTime: %w", err)
	}
	e := ferry.Event{
		Time:      t,
		Source:    r.MessageSource,
		Type:      r.MessageType,
		DeviceID:  r.DeviceID,
		ModelID:   r.TemplateID,
		Module:    r.Module,
		Component: r.Component,
	}
	if r.Ferry != nil {
		e.ID = r.Ferry.ID
		e.HubID = r.Ferry.HubID
		e.HubHost = r.Ferry.HubHost
		e.System = r.Ferry.SystemProperties
		e.Data = r.Ferry.Data
	}
	switch r.MessageSource {
	case ferry.SourceTelemetry:
		e.Properties = r.MessageProperties
		if len(e.Properties) == 0 {
			e.Properties = nil
		}
		if r.Ferry != nil && r.Ferry.Body != nil {
			e.Body = r.Ferry.Body
		} else {
			e.Body = r.Telemetry
		}
	case ferry.SourceProperties:
		b, err := json.Marshal(r.Properties)
		if err != nil {
			return ferry.Event{}, fmt.Errorf("properties: %w", err)
		}
		e.Data = b
	}
	return e, nil
}

// appendLine appends the NDJSON line of a record to buf.
func appendLine(buf *bytes.Buffer, r *Record) error {
	buf.Write(r.appendJSON(buf.AvailableBuffer()))
	buf.WriteByte('\n')
	return nil
}
