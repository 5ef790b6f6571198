package hubquery_test

import (
	"encoding/json"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
)

const twinDoc = `{"deviceId":"d1","status":"enabled","connectionState":"Connected","modelId":"dtmi:x:y;1",
 "tags":{"site":"berlin","floor":3},
 "properties":{"desired":{"fw":"1.2"},"reported":{"temp":21.5,"ok":true}}}`

func TestMatch(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(twinDoc), &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query string
		want        bool
	}{
		{"All", "SELECT * FROM devices", true},
		{"LowerCase", "select * from devices where deviceId = 'd1'", true},
		{"Tag", "SELECT * FROM devices WHERE tags.site = 'berlin'", true},
		{"TagMismatch", "SELECT * FROM devices WHERE tags.site = 'paris'", false},
		{"Number", "SELECT * FROM devices WHERE tags.floor > 2 AND tags.floor < 4", true},
		{"Reported", "SELECT * FROM devices WHERE properties.reported.temp >= 21.5", true},
		{"Bool", "SELECT * FROM devices WHERE properties.reported.ok = true", true},
		{"Desired", "SELECT * FROM devices WHERE properties.desired.fw != '1.3'", true},
		{"Missing", "SELECT * FROM devices WHERE tags.nope = 'x'", false},
		{"Or", "SELECT * FROM devices WHERE status = 'disabled' OR connectionState = 'Connected'", true},
		{"Parens", "SELECT * FROM devices WHERE (status = 'disabled' OR tags.site = 'berlin') AND deviceId <> 'd2'", true},
		{"Not", "SELECT * FROM devices WHERE NOT status = 'enabled'", false},
		{"In", "SELECT * FROM devices WHERE deviceId IN ['a', 'd1']", true},
		{"NotIn", "SELECT * FROM devices WHERE deviceId NIN ['a', 'd1']", false},
		{"Template", "SELECT * FROM devices WHERE $template = 'dtmi:x:y;1'", true},
		{"TypeMismatch", "SELECT * FROM devices WHERE tags.floor = '3'", false},
		{"Escaped", "SELECT * FROM devices WHERE tags.site = 'ber''lin'", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := hubquery.Parse(tt.query)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := q.Match(doc); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, query string }{
		{"Empty", ""},
		{"NoFrom", "SELECT *"},
		{"Projection", "SELECT deviceId FROM devices"},
		{"UnknownCollection", "SELECT * FROM modules"},
		{"Unterminated", "SELECT * FROM devices WHERE a = 'x"},
		{"NoOperator", "SELECT * FROM devices WHERE a"},
		{"Trailing", "SELECT * FROM devices WHERE a = 1 b"},
		{"BadChar", "SELECT * FROM devices WHERE a ~ 1"},
		{"OpenParen", "SELECT * FROM devices WHERE (a = 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hubquery.Parse(tt.query)
			if !ferry.IsCode(err, ferry.EINVALID) {
				t.Fatalf("Parse(%q) = %v, want EINVALID", tt.query, err)
			}
		})
	}
}

func TestSource(t *testing.T) {
	q, err := hubquery.Parse("SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1'")
	if err != nil {
		t.Fatal(err)
	}
	if q.Source != hubquery.DevicesJobs {
		t.Errorf("Source = %q", q.Source)
	}
}

func TestParseCondition(t *testing.T) {
	e, err := hubquery.ParseCondition("")
	if err != nil || e != nil {
		t.Fatalf("empty condition = %v, %v", e, err)
	}
	e, err = hubquery.ParseCondition("deviceId IN ['a','b']")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Match(map[string]any{"deviceId": "b"}) || e.Match(map[string]any{"deviceId": "c"}) {
		t.Error("IN condition matched wrongly")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("SELECT * FROM devices WHERE tags.a = 'b' AND (x > 1 OR NOT y IN [1,2])")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := hubquery.Parse(s)
		if err == nil {
			q.Match(map[string]any{"a": "b"})
		}
	})
}
