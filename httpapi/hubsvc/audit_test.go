package hubsvc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/audit"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/rbac"
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

// auditRow is what a test checks of an audit event.
type auditRow struct {
	Surface                         ferry.Surface
	Op, Result, Resource, Principal string
	Status                          int
}

// TestServiceWritesAudited checks that the writes of the IoT Hub and DPS
// service APIs, allowed or refused, are in the audit log under the
// operation IDs of the rbac operation table, that reads are not, and that
// no key or signature is in any event.
func TestServiceWritesAudited(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s, func(c *hubsvc.Config) { c.Audit = audit.NewStoreRecorder(s) })
		owner, reader, dpsOwner := e.hubToken(e.hubA, "iothubowner"), e.hubToken(e.hubA, "registryRead"), e.dpsToken()
		secrets := []string{owner, reader, dpsOwner}

		// Hub: identities, twins, methods, C2D, jobs.
		secrets = append(secrets, e.createDevice("d1"))
		wantStatus(t, e.owner("GET", "/devices/d1", nil), 200)
		wantStatus(t, e.owner("PATCH", "/twins/d1", map[string]any{"properties": map[string]any{"desired": map[string]any{"fw": "2"}}}), 200)
		wantStatus(t, e.owner("GET", "/twins/d1", nil), 200)
		wantHubError(t, e.owner("POST", "/twins/d1/methods", map[string]any{"methodName": "reboot", "responseTimeoutInSeconds": 5}), 404, "DeviceNotOnline")
		wantStatus(t, e.owner("POST", "/devices/d1/messages/deviceBound", "hello"), 204)
		r := e.owner("DELETE", "/devices/d1/commands", nil)
		wantStatus(t, r, 200)
		if m := r.obj(t); m["totalMessagesPurged"] != 1.0 || m["deviceId"] != "d1" {
			t.Errorf("purge result %s", r.body)
		}
		wantStatus(t, e.owner("PUT", "/jobs/v2/j1", map[string]any{"type": "scheduleUpdateTwin",
			"updateTwin": map[string]any{"tags": map[string]any{"x": 1}}, "startTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}), 200)
		wantStatus(t, e.owner("POST", "/jobs/v2/j1/cancel", nil), 200)
		wantHubError(t, e.do("DELETE", hostA, "/devices/d1", reader, nil), 401, "IotHubUnauthorizedAccess")
		wantStatus(t, e.owner("DELETE", "/devices/d1", nil), 204)

		// DPS: enrollment groups, enrollments, registrations.
		r = e.dpsOwner("PUT", "/enrollmentGroups/g1", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}})
		wantStatus(t, r, 200)
		var g struct {
			Attestation struct {
				SymmetricKey struct{ PrimaryKey, SecondaryKey string }
			}
		}
		r.json(t, &g)
		secrets = append(secrets, g.Attestation.SymmetricKey.PrimaryKey, g.Attestation.SymmetricKey.SecondaryKey)
		wantStatus(t, e.dpsOwner("GET", "/enrollmentGroups/g1", nil), 200)
		wantStatus(t, e.dpsOwner("PUT", "/enrollments/e1", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}}), 200)
		wantStatus(t, e.do("DELETE", hostDPS, "/enrollments/e1", owner, nil), 401) // a hub's policy
		wantStatus(t, e.dpsOwner("DELETE", "/enrollments/e1", nil), 204)
		wantDPSError(t, e.dpsOwner("DELETE", "/registrations/nobody", nil), 404, 404202)
		wantStatus(t, e.dpsOwner("DELETE", "/enrollmentgroups/g1", nil), 204)

		for i, secret := range secrets {
			if secret == "" {
				t.Fatalf("secret %d is empty: the check below would prove nothing", i)
			}
		}
		p, err := s.ListAudit(context.Background(), ferry.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []auditRow
		for i := len(p.Items) - 1; i >= 0; i-- { // newest first
			a := p.Items[i]
			if a.ClientIP == "" || a.UserAgent == "" || a.Time.IsZero() {
				t.Errorf("event %+v lacks where it came from", a)
			}
			if a.Result == ferry.ResultFailure && !strings.Contains(a.ResultDescription, "failed: ") {
				t.Errorf("refusal without its reason: %q", a.ResultDescription)
			}
			if _, ok := rbac.OperationByID(a.Operation); !ok {
				t.Errorf("operation %q is not in the rbac operation table", a.Operation)
			}
			all := fmt.Sprintf("%+v", *a)
			for _, secret := range secrets {
				if strings.Contains(all, secret) {
					t.Errorf("event %s holds a secret", a.Operation)
				}
			}
			got = append(got, auditRow{a.Surface, a.Operation, a.Result, a.ResourceID, a.PrincipalName, a.StatusCode})
		}
		hub, dps := ferry.SurfaceHub, ferry.SurfaceDPS
		ok, fail := ferry.ResultSuccess, ferry.ResultFailure
		want := []auditRow{
			{hub, "IotHub.Devices_CreateOrUpdateIdentity", ok, hostA + "/devices/d1", "iothubowner", 200},
			{hub, "IotHub.Devices_UpdateTwin", ok, hostA + "/twins/d1", "iothubowner", 200},
			{hub, "IotHub.Devices_InvokeMethod", fail, hostA + "/devices/d1", "iothubowner", 404},
			{hub, "IotHub.CloudToDeviceMessages_Send", ok, hostA + "/devices/d1", "iothubowner", 204},
			{hub, "IotHub.CloudToDeviceMessages_PurgeQueue", ok, hostA + "/devices/d1", "iothubowner", 200},
			{hub, "IotHub.Jobs_CreateScheduledJob", ok, hostA + "/jobs/j1", "iothubowner", 200},
			{hub, "IotHub.Jobs_CancelScheduledJob", ok, hostA + "/jobs/j1", "iothubowner", 200},
			{hub, "IotHub.Devices_DeleteIdentity", fail, hostA + "/devices/d1", "", 401},
			{hub, "IotHub.Devices_DeleteIdentity", ok, hostA + "/devices/d1", "iothubowner", 204},
			{dps, "Dps.EnrollmentGroup_CreateOrUpdate", ok, hostDPS + "/enrollmentGroups/g1", "provisioningserviceowner", 200},
			{dps, "Dps.IndividualEnrollment_CreateOrUpdate", ok, hostDPS + "/enrollments/e1", "provisioningserviceowner", 200},
			{dps, "Dps.IndividualEnrollment_Delete", fail, hostDPS + "/enrollments/e1", "", 401},
			{dps, "Dps.IndividualEnrollment_Delete", ok, hostDPS + "/enrollments/e1", "provisioningserviceowner", 204},
			{dps, "Dps.DeviceRegistrationState_Delete", fail, hostDPS + "/registrations/nobody", "provisioningserviceowner", 404},
			{dps, "Dps.EnrollmentGroup_Delete", ok, hostDPS + "/enrollmentGroups/g1", "provisioningserviceowner", 204},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("audit events (-want +got):\n%s", d)
		}
	})
}
