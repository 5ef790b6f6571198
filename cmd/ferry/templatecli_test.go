package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-iot/ferry/store/storetest"
)

// TestTemplateCLI drives `ferry hub device-template` and `ferry hub
// device-group` against the real server on both databases.
func TestTemplateCLI(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var extra []string
			if backend == "postgres" {
				extra = []string{"--db", storetest.NewPostgresSchema(t)}
			}
			testTemplateCLI(t, loginCLI(t, extra...))
		})
	}
}

// writeFile writes a file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const sensorModel = `[
  {"@context":"dtmi:dtdl:context;2","@id":"dtmi:ferry:sensor;1","@type":"Interface","displayName":{"en":"Sensor"},
   "contents":[{"@type":"Telemetry","name":"seq","schema":"long"},
               {"@type":"Component","name":"migration","schema":"dtmi:azureiot:DeviceMigration;1"}]},
  {"@id":"dtmi:azureiot:DeviceMigration;1","@type":"Interface",
   "contents":[{"@type":"Command","name":"DeviceMove"}]}
]`

func testTemplateCLI(t *testing.T, ce *cliEnv) {
	ce.createResourceGroup(t, "fleet")
	ce.ok(t, nil, "hub", "create", "-n", "hub-a", "-g", "fleet", "--host-name", "127.0.0.1")
	hub := []string{"--hub-name", "hub-a", "-g", "fleet"}
	run := func(args ...string) []string { return append(args, hub...) }

	// Templates.
	var tp map[string]any
	ce.ok(t, &tp, run("hub", "device-template", "import", "--file", writeFile(t, "sensor.json", sensorModel))...)
	if str(tp, "@id") != "dtmi:ferry:sensor;1" || str(tp, "displayName") != "Sensor" || str(tp, "deviceMove.supported") != "true" ||
		str(tp, "deviceMove.component") != "migration" || str(tp, "deviceMove.method") != "migration*DeviceMove" {
		t.Fatalf("import: %v", tp)
	}
	plain := `{"@id":"dtmi:ferry:plain;1","@type":"Interface","contents":[{"@type":"Command","name":"reboot"}]}`
	ce.ok(t, nil, run("hub", "device-template", "import", "-f", writeFile(t, "plain.json", plain))...)
	out := ce.ok(t, nil, run("hub", "device-template", "list", "-o", "table")...)
	if !strings.Contains(out, "dtmi:ferry:sensor;1") || !strings.Contains(out, "migration*DeviceMove") || !strings.Contains(out, "dtmi:ferry:plain;1") {
		t.Errorf("template list:\n%s", out)
	}
	var shown map[string]any
	ce.ok(t, &shown, run("hub", "device-template", "show", "--id", "dtmi:ferry:plain;1")...)
	if str(shown, "deviceMove.supported") != "false" || str(shown, "capabilityModel.contents") == "" {
		t.Errorf("template show: %v", shown)
	}
	ce.ok(t, nil, run("hub", "device-template", "delete", "--id", "dtmi:ferry:plain;1")...)
	if code, _, errs := ce.run(t, run("hub", "device-template", "show", "--id", "dtmi:ferry:plain;1")...); code != 1 || !strings.Contains(errs, "DeviceTemplateNotFound") {
		t.Errorf("show after delete: exit %d: %s", code, errs)
	}
	bad := writeFile(t, "bad.json", `{"@id":"dtmi:ferry:bad","@type":"Interface"}`)
	if code, _, errs := ce.run(t, run("hub", "device-template", "import", "--file", bad)...); code != 2 || !strings.Contains(errs, "not a DTMI") {
		t.Errorf("import of a bad DTMI: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, run("hub", "device-template", "import")...); code != 2 || !strings.Contains(errs, "--file") {
		t.Errorf("import without --file: exit %d: %s", code, errs)
	}

	// Devices with tags, for the groups.
	for _, d := range []struct{ id, site string }{{"s1", "berlin"}, {"s2", "berlin"}, {"s3", "paris"}} {
		ce.ok(t, nil, run("hub", "device-identity", "create", "-d", d.id)...)
		ce.ok(t, nil, run("hub", "device-twin", "update", "-d", d.id, "--tags", `{"site":"`+d.site+`"}`)...)
	}

	// Groups.
	var g map[string]any
	ce.ok(t, &g, run("hub", "device-group", "create", "--name", "berlin", "--filter", "SELECT * FROM devices WHERE tags.site = 'berlin'",
		"--description", "Berlin's sensors")...)
	if str(g, "displayName") != "berlin" || str(g, "id") == "" || str(g, "description") != "Berlin's sensors" {
		t.Fatalf("group create: %v", g)
	}
	if code, _, errs := ce.run(t, run("hub", "device-group", "create", "--name", "BERLIN", "--filter", "tags.a = 1")...); code != 1 || !strings.Contains(errs, "DeviceGroupAlreadyExists") {
		t.Errorf("create of a taken name: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, run("hub", "device-group", "create", "--name", "x", "--filter", "tags.site = ")...); code != 1 || !strings.Contains(errs, "not a valid device query") {
		t.Errorf("create with a bad filter: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, run("hub", "device-group", "create", "--name", "x")...); code != 2 {
		t.Errorf("create without --filter: exit %d: %s", code, errs)
	}
	var devs []map[string]any
	ce.ok(t, &devs, run("hub", "device-group", "devices", "--name", "Berlin")...)
	if len(devs) != 2 || devs[0]["id"] != "s1" || devs[1]["id"] != "s2" {
		t.Errorf("group devices: %v", devs)
	}
	ce.ok(t, &g, run("hub", "device-group", "update", "--name", "berlin", "--filter", "tags.site IN ['berlin','paris']", "--new-name", "europe")...)
	if str(g, "displayName") != "europe" || str(g, "description") != "Berlin's sensors" {
		t.Errorf("group update: %v", g)
	}
	if code, _, errs := ce.run(t, run("hub", "device-group", "update", "--name", "europe", "--description", "x", "--etag", "stale")...); code != 1 || !strings.Contains(errs, "PreconditionFailed") {
		t.Errorf("update with a stale etag: exit %d: %s", code, errs)
	}
	ce.ok(t, &devs, run("hub", "device-group", "devices", "--id", str(g, "id"))...)
	if len(devs) != 3 {
		t.Errorf("devices after update: %v", devs)
	}
	var shownGroup map[string]any
	ce.ok(t, &shownGroup, run("hub", "device-group", "show", "--name", "europe")...)
	if str(shownGroup, "filter") != "SELECT * FROM devices WHERE tags.site IN ['berlin','paris']" {
		t.Errorf("group show: %v", shownGroup)
	}
	if out := ce.ok(t, nil, run("hub", "device-group", "list", "-o", "table")...); !strings.Contains(out, "europe") {
		t.Errorf("group list:\n%s", out)
	}
	ce.ok(t, nil, run("hub", "device-group", "delete", "--name", "europe")...)
	if code, _, errs := ce.run(t, run("hub", "device-group", "show", "--name", "europe")...); code != 1 || !strings.Contains(errs, "no device group named") {
		t.Errorf("show after delete: exit %d: %s", code, errs)
	}
	if code, _, errs := ce.run(t, run("hub", "device-group", "show", "--id", str(g, "id"))...); code != 1 || !strings.Contains(errs, "DeviceGroupNotFound") {
		t.Errorf("show by ID after delete: exit %d: %s", code, errs)
	}
	if code, _, _ := ce.run(t, run("hub", "device-group", "show")...); code != 2 {
		t.Errorf("show without --name or --id: exit %d", code)
	}
}
