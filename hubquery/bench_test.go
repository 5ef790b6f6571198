package hubquery_test

import (
	"fmt"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
)

// BenchmarkMatchTwin measures rendering a twin document and matching a
// typical device-group condition against it, the per-device cost of
// POST /devices/query and of a job's device selection.
func BenchmarkMatchTwin(b *testing.B) {
	q, err := hubquery.Parse("SELECT * FROM devices WHERE $template = 'dtmi:x:y;1' AND (tags.site = 'berlin' OR properties.reported.temp > 20)")
	if err != nil {
		b.Fatal(err)
	}
	d := &ferry.DeviceIdentity{DeviceID: "d1", Status: ferry.DeviceEnabled, ModelID: "dtmi:x:y;1", Auth: ferry.DeviceAuth{Type: ferry.AuthSAS}}
	tw := &ferry.Twin{Tags: map[string]any{"site": "paris", "floor": 3.0}, Desired: map[string]any{"fw": "1.0"},
		Reported: map[string]any{"temp": 21.5, "fw": "1.0"}, Version: 3}
	b.ReportAllocs()
	for b.Loop() {
		if !q.Match(hubquery.TwinDocument(d, tw)) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkParse measures parsing a query.
func BenchmarkParse(b *testing.B) {
	s := fmt.Sprintf("SELECT * FROM devices WHERE deviceId IN [%s] AND tags.site = 'berlin'", "'a','b','c','d','e','f'")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hubquery.Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}
