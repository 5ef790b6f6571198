package dtdl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry/dtdl"
	"github.com/google/go-cmp/cmp"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseFiles reads the models in testdata/, one per shape.
func TestParseFiles(t *testing.T) {
	for _, tc := range []struct {
		file, id, name, component string
		move                      bool
	}{
		{"central-template.json", "dtmi:contoso:sensorTemplate;1", "Sensor", "deviceMigration", true},
		{"interface-component.json", "dtmi:com:example:Thermostat;2", "Thermostat", "migration", true},
		{"array-extends.json", "dtmi:com:example:Gateway;1", "Gateway", "", true},
		{"root-command.json", "dtmi:ferry:plain;1", "Plain", "", true},
		{"no-move.json", "dtmi:ferry:stuck;1", "dtmi:ferry:stuck;1", "", false},
		{"migration-component.json", "dtmi:azureiot:DeviceMigration;1", "Device Migration", "", true},
		// Each interface names the next twice: resolving is bounded, not 2^40.
		{"many-references.json", "dtmi:x:i0;1", "dtmi:x:i0;1", "", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := dtdl.Parse(readFile(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.id || got.DisplayName != tc.name || got.MigrationComponent != tc.component || got.HasDeviceMove != tc.move {
				t.Errorf("Parse = {ID:%q DisplayName:%q MigrationComponent:%q HasDeviceMove:%v}, want {%q %q %q %v}",
					got.ID, got.DisplayName, got.MigrationComponent, got.HasDeviceMove, tc.id, tc.name, tc.component, tc.move)
			}
			var cm map[string]any
			if err := json.Unmarshal(got.CapabilityModel, &cm); err != nil {
				t.Fatalf("CapabilityModel is not an object: %v", err)
			}
			if cm["@type"] != "Interface" {
				t.Errorf("CapabilityModel @type = %v", cm["@type"])
			}
		})
	}
}

// TestParseArrayInlines checks that an array's root refers to the other
// interfaces inline in the capability model, as IoT Central shows it.
func TestParseArrayInlines(t *testing.T) {
	got, err := dtdl.Parse(readFile(t, "array-extends.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		ID       string `json:"@id"`
		Extends  map[string]any
		Contents []struct {
			Name   string
			Schema any
		}
	}
	if err := json.Unmarshal(got.CapabilityModel, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.ID != "dtmi:com:example:Gateway;1" || cm.Extends["@id"] != "dtmi:com:example:Movable;1" {
		t.Errorf("root %s extends %v", cm.ID, cm.Extends)
	}
	schema, ok := cm.Contents[0].Schema.(map[string]any)
	if !ok || schema["@id"] != "dtmi:com:example:DeviceInfo;1" {
		t.Errorf("component info's schema = %v, want the DeviceInfo interface inline", cm.Contents[0].Schema)
	}
}

// TestParseRoot finds the root of an array whatever its order.
func TestParseRoot(t *testing.T) {
	doc := `[{"@id":"dtmi:x:part;1","@type":"Interface"},
		{"@id":"dtmi:x:root;1","@type":"Interface","contents":[{"@type":"Component","name":"mig","schema":"dtmi:azureiot:DeviceMigration;1"},{"@type":"Component","name":"p","schema":"dtmi:x:part;1"}]}]`
	got, err := dtdl.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "dtmi:x:root;1" || got.MigrationComponent != "mig" {
		t.Errorf("Parse = %+v", got)
	}
}

func TestParseCases(t *testing.T) {
	iface := func(contents string) string {
		return `{"@id":"dtmi:x:y;1","@type":"Interface","contents":[` + contents + `]}`
	}
	for _, tc := range []struct {
		name, doc string
		component string
		move      bool
	}{
		{"ComponentByOwnID", iface(`{"@type":"Component","@id":"dtmi:azureiot:DeviceMigration;1","name":"m","schema":"dtmi:x:z;1"}`), "m", true},
		{"ComponentTypeArray", iface(`{"@type":["Component"],"name":"mover","schema":"dtmi:azureiot:DeviceMigration;1"}`), "mover", true},
		{"ComponentWinsOverCommand", iface(`{"@type":"Command","name":"DeviceMove"},{"@type":"Component","name":"migration","schema":"dtmi:azureiot:DeviceMigration;1"}`), "migration", true},
		{"FirstComponentWins", iface(`{"@type":"Component","name":"a","schema":"dtmi:azureiot:DeviceMigration;1"},{"@type":"Component","name":"b","schema":"dtmi:azureiot:DeviceMigration;1"}`), "a", true},
		{"OtherVersionIsNotIt", iface(`{"@type":"Component","name":"a","schema":"dtmi:azureiot:DeviceMigration;2"}`), "", false},
		{"CommandInComponentIsNotRoot", iface(`{"@type":"Component","name":"c","schema":{"@type":"Interface","contents":[{"@type":"Command","name":"DeviceMove"}]}}`), "", false},
		{"CommandNameCaseMatters", iface(`{"@type":"Command","name":"devicemove"}`), "", false},
		{"InlineExtends", `{"@id":"dtmi:x:y;1","@type":"Interface","extends":[{"@id":"dtmi:x:b;1","@type":"Interface","contents":[{"@type":"Command","name":"DeviceMove"}]}]}`, "", true},
		{"ExtendsUnknownInterface", `{"@id":"dtmi:x:y;1","@type":"Interface","extends":"dtmi:x:elsewhere;1"}`, "", false},
		{"MinorVersion", `{"@id":"dtmi:x:y;1.5","@type":"Interface"}`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dtdl.Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got.MigrationComponent != tc.component || got.HasDeviceMove != tc.move {
				t.Errorf("MigrationComponent %q HasDeviceMove %v, want %q %v", got.MigrationComponent, got.HasDeviceMove, tc.component, tc.move)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"Empty", ``, "empty"},
		{"NotJSON", `{"@id":`, "not valid JSON"},
		{"TwoValues", `{} {}`, "more than one JSON value"},
		{"Scalar", `42`, "must be an Interface"},
		{"EmptyArray", `[]`, "no interface"},
		{"ArrayOfStrings", `["x"]`, "item 0 is not an Interface"},
		{"NoID", `{"@type":"Interface"}`, "no @id"},
		{"BadDTMI", `{"@id":"urn:x:y","@type":"Interface"}`, "not a DTMI"},
		{"NoVersion", `{"@id":"dtmi:x:y","@type":"Interface"}`, "not a DTMI"},
		{"TrailingUnderscore", `{"@id":"dtmi:x_:y;1","@type":"Interface"}`, "not a DTMI"},
		{"ZeroVersion", `{"@id":"dtmi:x:y;0","@type":"Interface"}`, "not a DTMI"},
		{"NotInterface", `{"@id":"dtmi:x:y;1","@type":"Telemetry"}`, "@type Interface"},
		{"ContentsNotArray", `{"@id":"dtmi:x:y;1","@type":"Interface","contents":{}}`, "contents must be an array"},
		{"ContentNoName", `{"@id":"dtmi:x:y;1","@type":"Interface","contents":[{"@type":"Command"}]}`, "no name"},
		{"ContentNoType", `{"@id":"dtmi:x:y;1","@type":"Interface","contents":[{"name":"a"}]}`, "no @type"},
		{"ComponentNoSchema", `{"@id":"dtmi:x:y;1","@type":"Interface","contents":[{"@type":"Component","name":"c"}]}`, "needs a schema"},
		{"ComponentBadSchema", `{"@id":"dtmi:x:y;1","@type":"Interface","contents":[{"@type":"Component","name":"c","schema":"double"}]}`, "not a DTMI"},
		{"BadDisplayName", `{"@id":"dtmi:x:y;1","@type":"Interface","displayName":7}`, "displayName"},
		{"BadDisplayNameEntry", `{"@id":"dtmi:x:y;1","@type":"Interface","displayName":{"en":1}}`, "displayName"},
		{"BadContext", `{"@id":"dtmi:x:y;1","@type":"Interface","@context":5}`, "@context"},
		{"BadExtends", `{"@id":"dtmi:x:y;1","@type":"Interface","extends":"nope"}`, "not a DTMI"},
		{"ExtendsCycle", `[{"@id":"dtmi:x:a;1","@type":"Interface","extends":"dtmi:x:b;1"},{"@id":"dtmi:x:b;1","@type":"Interface","extends":"dtmi:x:a;1"}]`, "extends itself"},
		{"DuplicateID", `[{"@id":"dtmi:x:a;1","@type":"Interface"},{"@id":"dtmi:x:a;1","@type":"Interface","displayName":"other"}]`, "defined twice"},
		{"CentralBadType", `{"@id":"dtmi:x:t;1","@type":"Interface","capabilityModel":{"@type":"Interface"}}`, "ModelDefinition"},
		{"CentralBadID", `{"@id":"x","@type":["ModelDefinition","DeviceModel"],"capabilityModel":{"@type":"Interface"}}`, "not a DTMI"},
		{"CentralNoID", `{"@type":["ModelDefinition","DeviceModel"],"capabilityModel":{"@type":"Interface"}}`, "no @id"},
		{"CentralBadModel", `{"@id":"dtmi:x:t;1","@type":["ModelDefinition","DeviceModel"],"capabilityModel":"dtmi:x:y;1"}`, "capabilityModel must be"},
		{"CentralModelNotInterface", `{"@id":"dtmi:x:t;1","@type":["ModelDefinition","DeviceModel"],"capabilityModel":{"@type":"Object"}}`, "@type Interface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dtdl.Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestValidDTMI(t *testing.T) {
	good := []string{"dtmi:x;1", "dtmi:com:example:Thermostat;1", "dtmi:a_b:C9;123456789", "dtmi:_x:y;1", "dtmi:x:y;2.3"}
	bad := []string{"", "dtmi:;1", "dtmi:x", "dtmi:x;", "dtmi:1x;1", "dtmi:x:;1", "DTMI:x;1", "dtmi:x;01", "dtmi:x;1234567890",
		"dtmi:x-y;1", "dtmi:x;1.0", "dtmi:x;1 ", "dtmi:" + strings.Repeat("a", 2048) + ";1"}
	for _, s := range good {
		if !dtdl.ValidDTMI(s) {
			t.Errorf("ValidDTMI(%q) = false", s)
		}
	}
	for _, s := range bad {
		if dtdl.ValidDTMI(s) {
			t.Errorf("ValidDTMI(%q) = true", truncate(s))
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// TestParseKeepsFields checks that the capability model keeps what Ferry
// does not interpret.
func TestParseKeepsFields(t *testing.T) {
	got, err := dtdl.Parse(readFile(t, "interface-component.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want, have any
	if err := json.Unmarshal(readFile(t, "interface-component.json"), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got.CapabilityModel, &have); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, have); d != "" {
		t.Errorf("CapabilityModel (-want +got):\n%s", d)
	}
}

// FuzzParse checks that no document makes Parse panic, and that what it
// accepts is consistent: a valid ID and a capability model that parses
// again to the same template.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"@id":"dtmi:x:a;1","@type":"Interface","extends":"dtmi:x:a;1"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tp, err := dtdl.Parse(data)
		if err != nil {
			return
		}
		if !dtdl.ValidDTMI(tp.ID) {
			t.Fatalf("accepted ID %q is not a DTMI", tp.ID)
		}
		if tp.MigrationComponent != "" && !tp.HasDeviceMove {
			t.Fatalf("component %q without HasDeviceMove", tp.MigrationComponent)
		}
		if !json.Valid(tp.CapabilityModel) {
			t.Fatalf("capability model is not JSON: %s", tp.CapabilityModel)
		}
	})
}
