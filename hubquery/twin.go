package hubquery

import (
	"time"

	"github.com/ferry-iot/ferry"
)

// TimeString renders a time as IoT Hub does, with the zero time as
// 0001-01-01T00:00:00Z.
func TimeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// TwinDocument renders an identity and its twin as the IoT Hub service API
// returns a twin, which is also the document `SELECT * FROM devices`
// conditions look at. It holds no keys.
func TwinDocument(d *ferry.DeviceIdentity, t *ferry.Twin) map[string]any {
	conn := d.ConnectionState
	if conn == "" {
		conn = ferry.Disconnected
	}
	tags := map[string]any{}
	for k, v := range t.Tags {
		tags[k] = v
	}
	doc := map[string]any{
		"deviceId":                  d.DeviceID,
		"modelId":                   d.ModelID,
		"etag":                      t.ETag,
		"deviceEtag":                d.ETag,
		"status":                    string(d.Status),
		"statusUpdateTime":          TimeString(d.StatusUpdatedAt),
		"connectionState":           string(conn),
		"lastActivityTime":          TimeString(d.LastActivityAt),
		"cloudToDeviceMessageCount": float64(d.C2DMessageCount),
		"authenticationType":        string(d.Auth.Type),
		"x509Thumbprint":            map[string]any{"primaryThumbprint": nullable(d.Auth.PrimaryThumbprint), "secondaryThumbprint": nullable(d.Auth.SecondaryThumbprint)},
		"version":                   float64(t.Version),
		"tags":                      tags,
		"properties": map[string]any{
			"desired":  section(t.Desired, t.DesiredVersion),
			"reported": section(t.Reported, t.ReportedVersion),
		},
		"capabilities": map[string]any{"iotEdge": d.IoTEdge},
	}
	if d.StatusReason != "" {
		doc["statusReason"] = d.StatusReason
	}
	return doc
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// section copies desired or reported properties with the $metadata and
// $version members IoT Hub adds.
func section(m map[string]any, version int64) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	out["$metadata"] = map[string]any{}
	out["$version"] = float64(version)
	return out
}
