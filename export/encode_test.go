package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
)

// The sink's own encoder writes exactly what encoding/json writes for a
// Record, whatever the strings hold.
func FuzzEncodeMatchesEncodingJSON(f *testing.F) {
	f.Add("dev-1", "k", "v", []byte(`{"a":1}`), "")
	f.Add("d\"\\\b\f\n\r\t\x00\x1f\x7f", "<&>", "\u2028\u2029", []byte("\xff"), "m")
	f.Add("\xed\xa0\x80bad", "é漢字🙂", "\xc3", []byte(`{"s":"\u2028 <"}`), "c\xfe")
	f.Add("", "", "", []byte(nil), "")
	f.Fuzz(func(t *testing.T, device, key, value string, body []byte, module string) {
		events := []ferry.Event{
			{ID: device, Source: ferry.SourceTelemetry, DeviceID: device, Module: module, HubHost: value,
				Body: body, Properties: map[string]string{key: value}, System: map[string]string{value: key}},
			{ID: key, Source: ferry.SourceProperties, Type: ferry.TypeDevicePropertyReportedChange, DeviceID: device,
				Data: mustJSON(t, map[string]string{key: value})},
			{Source: ferry.SourceDeviceLifecycle, Type: value, DeviceID: device, Component: module},
		}
		dir := t.TempDir()
		s, err := export.Open(export.Config{Dir: dir, ApplicationID: key, Enrichments: map[string]string{value: device}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Write(context.Background(), events...); err != nil {
			t.Fatal(err)
		}
		files, err := export.Files(dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		for _, e := range events {
			r, err := export.NewRecord(key, map[string]string{value: device}, e)
			if err != nil {
				t.Fatal(err)
			}
			if err := enc.Encode(r); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(want.Bytes(), got) {
			t.Errorf("encoding differs\nencoding/json: %q\nsink:          %q", want.String(), got)
		}
	})
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
