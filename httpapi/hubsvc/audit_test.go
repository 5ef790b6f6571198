package hubsvc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestTemplateAndGroupWritesAudited checks that every write of a device
// template or device group, allowed or refused, is in the audit log, and
// that reads are not.
func TestTemplateAndGroupWritesAudited(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s, func(c *hubsvc.Config) { c.Audit = audit.NewStoreRecorder(s) })
		wantStatus(t, e.owner("PUT", templatePath(thermostat), centralTemplate(thermostat, "deviceMigration")), 200)
		wantStatus(t, e.owner("GET", templatePath(thermostat), nil), 200)
		wantStatus(t, e.owner("PUT", "/api/deviceGroups/berlin", map[string]any{"filter": "tags.site = 'berlin'"}), 200)
		wantStatus(t, e.owner("PATCH", "/api/deviceGroups/berlin", map[string]any{"description": "d"}), 200)
		wantStatus(t, e.owner("GET", "/api/deviceGroups", nil), 200)
		wantHubError(t, e.owner("PUT", "/api/deviceGroups/bad", map[string]any{"filter": "nope nope"}), 400, "ArgumentInvalid")
		wantHubError(t, e.do("DELETE", hostA, "/api/deviceGroups/berlin", e.hubToken(e.hubA, "registryRead"), nil), 401, "IotHubUnauthorizedAccess")
		wantStatus(t, e.owner("DELETE", "/api/deviceGroups/berlin", nil), 204)
		wantStatus(t, e.do("DELETE", hostB, templatePath(thermostat), e.hubToken(e.hubB, "iothubowner"), nil), 204)

		p, err := s.ListAudit(context.Background(), ferry.AuditFilter{Surface: ferry.SurfaceHub})
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			Op, Result, Resource, Principal string
			Status                          int
		}
		var got []row
		for i := len(p.Items) - 1; i >= 0; i-- { // newest first
			a := p.Items[i]
			if a.ClientIP == "" || a.UserAgent == "" || a.Time.IsZero() {
				t.Errorf("event %+v lacks where it came from", a)
			}
			if a.Result == ferry.ResultFailure && !strings.Contains(a.ResultDescription, "failed: ") {
				t.Errorf("refusal without its reason: %q", a.ResultDescription)
			}
			got = append(got, row{a.Operation, a.Result, a.ResourceID, a.PrincipalName, a.StatusCode})
		}
		want := []row{
			{"DeviceTemplates_Create", ferry.ResultSuccess, hostA + "/deviceTemplates/" + thermostat, "iothubowner", 200},
			{"DeviceGroups_Create", ferry.ResultSuccess, hostA + "/deviceGroups/berlin", "iothubowner", 200},
			{"DeviceGroups_Update", ferry.ResultSuccess, hostA + "/deviceGroups/berlin", "iothubowner", 200},
			{"DeviceGroups_Create", ferry.ResultFailure, hostA + "/deviceGroups/bad", "iothubowner", 400},
			{"DeviceGroups_Remove", ferry.ResultFailure, hostA + "/deviceGroups/berlin", "", 401},
			{"DeviceGroups_Remove", ferry.ResultSuccess, hostA + "/deviceGroups/berlin", "iothubowner", 204},
			{"DeviceTemplates_Remove", ferry.ResultSuccess, hostB + "/deviceTemplates/" + thermostat, "iothubowner", 204},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("audit events (-want +got):\n%s", d)
		}
	})
}
