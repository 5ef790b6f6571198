package provisioning_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

// TestIndividualKeyAndReprovision registers a device of an individual
// symmetric-key enrollment on hub A, then moves the enrollment to hub B:
// with migrateDeviceData the twin follows; without it the device starts
// from the initial twin.
func TestIndividualKeyAndReprovision(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		key := ferry.NewKey(32)
		ie := &ferry.IndividualEnrollment{ServiceID: e.svc.ID, RegistrationID: "solo-1", DeviceID: "solo-device", Status: ferry.EnrollmentEnabled,
			Attestation: ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: key, SecondaryKey: ferry.NewKey(32)},
			IoTHubs:     []string{e.hubA.HostName}, AllocationPolicy: ferry.AllocationStatic,
			ReprovisionPolicy: ferry.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
			InitialTwin:       ferry.InitialTwin{Desired: map[string]any{"mode": "initial"}}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := s.PutIndividualEnrollment(ctx, ie, ""); err != nil {
			t.Fatal(err)
		}
		res := e.svc.IDScope + "/registrations/solo-1"
		register := func() map[string]any {
			t.Helper()
			tok, _ := sas.Sign(res, key, "registration", time.Now().Add(time.Hour))
			d, code := e.dial("solo-1", res+"/api-version=2019-03-31", tok, nil)
			if code != 0 {
				t.Fatalf("CONNACK %d", code)
			}
			defer d.c.Disconnect(0)
			return d.register(t, "solo-1", "")
		}
		st := register()
		if st["assignedHub"] != e.hubA.HostName || st["deviceId"] != "solo-device" || st["substatus"] != ferry.SubstatusInitialAssignment {
			t.Fatalf("first registration %v", st)
		}
		twA, err := s.GetTwin(ctx, e.hubA.ID, "solo-device")
		if err != nil || twA.Desired["mode"] != "initial" {
			t.Fatalf("initial twin %+v %v", twA, err)
		}
		twA.Reported = map[string]any{"fw": "2.0"}
		if err := s.UpdateTwin(ctx, twA, twA.ETag); err != nil {
			t.Fatal(err)
		}

		move := func(to *ferry.Hub, migrate bool) {
			t.Helper()
			cur, err := s.GetIndividualEnrollment(ctx, e.svc.ID, "solo-1")
			if err != nil {
				t.Fatal(err)
			}
			cur.IoTHubs = []string{to.HostName}
			cur.ReprovisionPolicy.MigrateDeviceData = migrate
			etag := cur.ETag
			if err := s.PutIndividualEnrollment(ctx, cur, etag); err != nil {
				t.Fatal(err)
			}
		}
		move(e.hubB, true)
		st = register()
		if st["assignedHub"] != e.hubB.HostName || st["substatus"] != ferry.SubstatusDeviceDataMigrated {
			t.Fatalf("migrated registration %v", st)
		}
		twB, err := s.GetTwin(ctx, e.hubB.ID, "solo-device")
		if err != nil || twB.Reported["fw"] != "2.0" {
			t.Errorf("migrated twin %+v %v", twB, err)
		}
		move(e.hubA, false)
		st = register()
		if st["assignedHub"] != e.hubA.HostName || st["substatus"] != ferry.SubstatusDeviceDataReset {
			t.Fatalf("reset registration %v", st)
		}
		rec, err := s.GetRegistration(ctx, e.svc.ID, "solo-1")
		if err != nil || rec.AssignedHub != e.hubA.HostName || rec.DeviceID != "solo-device" {
			t.Errorf("record %+v %v", rec, err)
		}
	})
}
