package provisioning_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/provisioning"
	"github.com/ferry-iot/ferry/sas"
	"github.com/ferry-iot/ferry/store/storetest"
)

// heldStore holds GetRegistration, the first read of an assignment, while
// a gate is set: it stands for a store that is slow for a while.
type heldStore struct {
	ferry.Store
	gate    atomic.Pointer[chan struct{}]
	entered chan struct{}
}

func (h *heldStore) GetRegistration(ctx context.Context, serviceID, registrationID string) (*ferry.RegistrationRecord, error) {
	if g := h.gate.Load(); g != nil {
		select {
		case h.entered <- struct{}{}:
		default:
		}
		select {
		case <-*g:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Store.GetRegistration(ctx, serviceID, registrationID)
}

// hold makes the next assignments wait until the returned func is called.
func (h *heldStore) hold() (release func()) {
	g := make(chan struct{})
	h.gate.Store(&g)
	return func() { h.gate.Store(nil); close(g) }
}

// groupDevice creates a symmetric-key group (static on hub B) and connects
// regID to the provisioning service.
func groupDevice(t *testing.T, e *env, regID string) *dev {
	t.Helper()
	groupKey := ferry.NewKey(64)
	e.group(&ferry.EnrollmentGroup{ID: "grp", Attestation: ferry.Attestation{Type: ferry.AttestSymmetricKey, PrimaryKey: groupKey},
		IoTHubs: []string{e.hubB.HostName}, AllocationPolicy: ferry.AllocationStatic})
	dk, err := sas.DeriveDeviceKey(groupKey, regID)
	if err != nil {
		t.Fatal(err)
	}
	res := e.svc.IDScope + "/registrations/" + regID
	d, code := e.dial(regID, res+"/api-version=2019-03-31", nodeToken(res, dk, time.Now().Add(time.Hour)), nil)
	if code != 0 {
		t.Fatalf("CONNACK %d", code)
	}
	return d
}

// TestRegisterAnsweredAssignedAtOnce: a quick assignment is answered 200
// assigned on the register request itself, with the registration state
// the SDKs read (Node's and Go's state machines take "assigned" from the
// register answer as from a poll), and the identity is there.
func TestRegisterAnsweredAssignedAtOnce(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		d := groupDevice(t, e, "quick-1")
		topic, v := d.call(t, "$dps/registrations/PUT/iotdps-register/?$rid=q1", `{"registrationId":"quick-1"}`)
		if topic != "$dps/registrations/res/200/?$rid=q1" || v["status"] != "assigned" {
			t.Fatalf("register: %s %v", topic, v)
		}
		op, _ := v["operationId"].(string)
		st, _ := v["registrationState"].(map[string]any)
		if !strings.HasPrefix(op, "4.") || st["assignedHub"] != e.hubB.HostName || st["deviceId"] != "quick-1" || st["status"] != "assigned" ||
			st["substatus"] != "initialAssignment" || st["etag"] == "" {
			t.Fatalf("answer %v", v)
		}
		if _, err := s.GetDeviceIdentity(context.Background(), e.hubB.ID, "quick-1"); err != nil {
			t.Fatalf("identity: %v", err)
		}
		rec, err := s.GetRegistration(context.Background(), e.svc.ID, "quick-1")
		if err != nil || rec.Status != ferry.RegistrationAssigned || rec.AssignedHub != e.hubB.HostName {
			t.Fatalf("record %+v %v", rec, err)
		}
	})
}

// TestSlowAssignmentIsPolled: an assignment that outlasts AssignWait is
// answered 202 assigning with retry-after; polls answer 202 while it runs
// and 200 with the final state once it is done.
func TestSlowAssignmentIsPolled(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		hs := &heldStore{Store: s, entered: make(chan struct{}, 1)}
		e := newEnvWith(t, s, provisioning.Config{Store: hs, AssignWait: 50 * time.Millisecond})
		d := groupDevice(t, e, "slow-1")
		release := hs.hold()
		defer func() {
			if hs.gate.Load() != nil {
				release()
			}
		}()
		topic, v := d.call(t, "$dps/registrations/PUT/iotdps-register/?$rid=s1", `{"registrationId":"slow-1"}`)
		op, _ := v["operationId"].(string)
		if topic != "$dps/registrations/res/202/?$rid=s1&retry-after=1" || v["status"] != "assigning" || op == "" {
			t.Fatalf("register: %s %v", topic, v)
		}
		<-hs.entered
		poll := "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=s2&operationId=" + op
		topic, v = d.call(t, poll, " ")
		if topic != "$dps/registrations/res/202/?$rid=s2&retry-after=1" || v["status"] != "assigning" || v["operationId"] != op {
			t.Fatalf("poll while assigning: %s %v", topic, v)
		}
		release()
		deadline := time.Now().Add(10 * time.Second)
		for {
			topic, v = d.call(t, poll, " ")
			if topic != "$dps/registrations/res/202/?$rid=s2&retry-after=1" || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		st, _ := v["registrationState"].(map[string]any)
		if topic != "$dps/registrations/res/200/?$rid=s2" || v["status"] != "assigned" || v["operationId"] != op ||
			st["assignedHub"] != e.hubB.HostName || st["deviceId"] != "slow-1" {
			t.Fatalf("poll after assignment: %s %v", topic, v)
		}
		if _, err := s.GetDeviceIdentity(context.Background(), e.hubB.ID, "slow-1"); err != nil {
			t.Fatalf("identity: %v", err)
		}
	})
}

// TestSlowAssignmentFailsOnPoll: a slow assignment that then fails (its
// hub was deleted meanwhile) is reported to the poll as DPS does: 200 with
// status failed and the error in registrationState.
func TestSlowAssignmentFailsOnPoll(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		hs := &heldStore{Store: s, entered: make(chan struct{}, 1)}
		e := newEnvWith(t, s, provisioning.Config{Store: hs, AssignWait: 50 * time.Millisecond})
		d := groupDevice(t, e, "slow-2")
		release := hs.hold()
		topic, v := d.call(t, "$dps/registrations/PUT/iotdps-register/?$rid=f1", `{"registrationId":"slow-2"}`)
		op, _ := v["operationId"].(string)
		if topic != "$dps/registrations/res/202/?$rid=f1&retry-after=1" {
			release()
			t.Fatalf("register: %s %v", topic, v)
		}
		<-hs.entered
		if err := s.DeleteHub(context.Background(), e.hubB.ID); err != nil {
			release()
			t.Fatal(err)
		}
		release()
		poll := "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=f2&operationId=" + op
		deadline := time.Now().Add(10 * time.Second)
		for {
			topic, v = d.call(t, poll, " ")
			if topic != "$dps/registrations/res/202/?$rid=f2&retry-after=1" || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		st, _ := v["registrationState"].(map[string]any)
		if topic != "$dps/registrations/res/200/?$rid=f2" || v["status"] != "failed" || st["status"] != "failed" ||
			st["errorCode"] != float64(400207) || st["errorMessage"] == "" || st["registrationId"] != "slow-2" {
			t.Fatalf("poll after failure: %s %v", topic, v)
		}
		rec, err := s.GetRegistration(context.Background(), e.svc.ID, "slow-2")
		if err != nil || rec.Status != ferry.RegistrationFailed || rec.ErrorCode != 400207 {
			t.Fatalf("record %+v %v", rec, err)
		}
	})
}

// TestAlwaysPoll: a negative AssignWait answers 202 even to a quick
// assignment, and the poll then finds it done.
func TestAlwaysPoll(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnvWith(t, s, provisioning.Config{AssignWait: -1})
		d := groupDevice(t, e, "poll-1")
		topic, v := d.call(t, "$dps/registrations/PUT/iotdps-register/?$rid=p1", `{"registrationId":"poll-1"}`)
		if topic != "$dps/registrations/res/202/?$rid=p1&retry-after=1" || v["status"] != "assigning" {
			t.Fatalf("register: %s %v", topic, v)
		}
		st := d.register(t, "poll-1", "")
		if st["assignedHub"] != e.hubB.HostName {
			t.Fatalf("state %v", st)
		}
	})
}

// TestGroupKeyChangedAfterConnect: a session admitted by a group key that
// was replaced meanwhile (the service's groups are kept for a few seconds
// to authenticate a fleet's sessions) is refused when it registers; once
// the service is reported changed, such a device is refused at once.
func TestGroupKeyChangedAfterConnect(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		ctx := context.Background()
		d := groupDevice(t, e, "rot-1") // reads the group for the scope
		if topic, v := d.call(t, "$dps/registrations/PUT/iotdps-register/?$rid=1", `{"registrationId":"rot-1"}`); topic != "$dps/registrations/res/200/?$rid=1" {
			t.Fatalf("register: %s %v", topic, v)
		}
		g, err := s.GetEnrollmentGroup(ctx, e.svc.ID, "grp")
		if err != nil {
			t.Fatal(err)
		}
		old := g.Attestation.PrimaryKey
		g.Attestation.PrimaryKey = ferry.NewKey(64)
		if err := s.PutEnrollmentGroup(ctx, g, ""); err != nil {
			t.Fatal(err)
		}
		dk, err := sas.DeriveDeviceKey(old, "rot-2")
		if err != nil {
			t.Fatal(err)
		}
		res := e.svc.IDScope + "/registrations/rot-2"
		d2, code := e.dial("rot-2", res+"/api-version=2019-03-31", nodeToken(res, dk, time.Now().Add(time.Hour)), nil)
		if code == 0 {
			t.Log("admitted by the kept group; the registration must refuse it")
			topic, v := d2.call(t, "$dps/registrations/PUT/iotdps-register/?$rid=2", `{"registrationId":"rot-2"}`)
			if topic != "$dps/registrations/res/401/?$rid=2" {
				t.Fatalf("register with a replaced key: %s %v", topic, v)
			}
			if _, err := s.GetDeviceIdentity(ctx, e.hubB.ID, "rot-2"); !ferry.IsCode(err, ferry.ENOTFOUND) {
				t.Fatalf("identity of a refused device: %v", err)
			}
		}
		if err := e.prov.ServiceChanged(ctx, e.svc.ID); err != nil {
			t.Fatal(err)
		}
		dk3, _ := sas.DeriveDeviceKey(old, "rot-3")
		res = e.svc.IDScope + "/registrations/rot-3"
		if _, code := e.dial("rot-3", res+"/api-version=2019-03-31", nodeToken(res, dk3, time.Now().Add(time.Hour)), nil); code == 0 {
			t.Fatal("a replaced key was admitted after ServiceChanged")
		}
	})
}
