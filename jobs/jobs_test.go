package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hub"
	"github.com/ferry-iot/ferry/jobs"
	"github.com/ferry-iot/ferry/store/storetest"
)

type env struct {
	t     *testing.T
	store ferry.Store
	hubs  *hub.Service
	hub   *ferry.Hub
}

func newEnv(t *testing.T, s ferry.Store) *env {
	t.Helper()
	hs, err := hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	h := &ferry.Hub{ID: ferry.NewUUID(), Name: "hub-a", HostName: "hub-a.test", Policies: ferry.DefaultHubPolicies(), CreatedAt: time.Now()}
	if err := s.CreateHub(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: s, hubs: hs, hub: h}
}

func (e *env) devices(n int) {
	e.t.Helper()
	for i := range n {
		d := &ferry.DeviceIdentity{HubID: e.hub.ID, DeviceID: fmt.Sprintf("d%02d", i), GenerationID: "1", Status: ferry.DeviceEnabled,
			Auth: ferry.DeviceAuth{Type: ferry.AuthSAS, PrimaryKey: ferry.NewKey(32), SecondaryKey: ferry.NewKey(32)}, CreatedAt: time.Now()}
		if err := e.store.CreateDeviceIdentity(context.Background(), d); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) runner() *jobs.Runner {
	e.t.Helper()
	r, err := jobs.New(jobs.Config{Store: e.store, Hubs: e.hubs, PollInterval: 20 * time.Millisecond, Concurrency: 4})
	if err != nil {
		e.t.Fatal(err)
	}
	r.Start(context.Background())
	e.t.Cleanup(func() { r.Close() })
	return r
}

func (e *env) twinJob(id, cond string, status ferry.JobStatus) *ferry.Job {
	e.t.Helper()
	j := &ferry.Job{ID: id, HubID: e.hub.ID, Type: ferry.JobUpdateTwin, Status: status, QueryCondition: cond,
		TwinPatch: json.RawMessage(`{"tags":{"job":"` + id + `"},"properties":{"desired":{"fw":"2.0"}}}`),
		StartTime: time.Now(), CreatedAt: time.Now(), MaxExecutionTime: time.Hour}
	if err := e.store.CreateJob(context.Background(), j); err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *env) waitJob(id string, want ferry.JobStatus) *ferry.Job {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		j, err := e.store.GetJob(context.Background(), e.hub.ID, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if j.Status == want {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s is %s, want %s", id, j.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) tag(device string) any {
	e.t.Helper()
	tw, err := e.store.GetTwin(context.Background(), e.hub.ID, device)
	if err != nil {
		e.t.Fatal(err)
	}
	return tw.Tags["job"]
}

func TestTwinJob(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		e.devices(6)
		e.runner()
		e.twinJob("j1", "deviceId IN ['d01','d03','d05']", ferry.JobPending)
		j := e.waitJob("j1", ferry.JobCompleted)
		want := ferry.JobStatistics{DeviceCount: 3, SucceededCount: 3}
		if j.Statistics != want {
			t.Errorf("statistics %+v, want %+v", j.Statistics, want)
		}
		if j.EndTime.IsZero() {
			t.Error("no end time")
		}
		for i := range 6 {
			id := fmt.Sprintf("d%02d", i)
			got := e.tag(id)
			if (i%2 == 1) != (got == "j1") {
				t.Errorf("%s tag = %v", id, got)
			}
		}
		page, err := s.ListJobDevices(context.Background(), e.hub.ID, "j1", ferry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 3 {
			t.Fatalf("%d device outcomes", len(page.Items))
		}
		for _, d := range page.Items {
			if d.Status != ferry.JobCompleted || d.StartedAt.IsZero() || d.EndedAt.IsZero() {
				t.Errorf("outcome %+v", d)
			}
		}
	})
}

func TestMethodJobOffline(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		e.devices(2)
		e.runner()
		j := &ferry.Job{ID: "m1", HubID: e.hub.ID, Type: ferry.JobDeviceMethod, Status: ferry.JobPending, MethodName: "reboot",
			MethodPayload: json.RawMessage(`{}`), ResponseTimeout: 5 * time.Second, StartTime: time.Now(), CreatedAt: time.Now(), MaxExecutionTime: time.Hour}
		if err := s.CreateJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		j = e.waitJob("m1", ferry.JobCompleted)
		if want := (ferry.JobStatistics{DeviceCount: 2, FailedCount: 2}); j.Statistics != want {
			t.Errorf("statistics %+v, want %+v", j.Statistics, want)
		}
		page, err := s.ListJobDevices(context.Background(), e.hub.ID, "m1", ferry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			if d.Status != ferry.JobFailed || d.Error == "" {
				t.Errorf("outcome %+v", d)
			}
		}
	})
}

// TestResume starts a runner on a job left running by another: the device
// already done is not done again, the pending one is.
func TestResume(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.devices(3)
		j := e.twinJob("r1", "", ferry.JobRunning)
		j.Statistics = ferry.JobStatistics{DeviceCount: 3, SucceededCount: 1, PendingCount: 2}
		if err := s.UpdateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := s.PutJobDevices(ctx, e.hub.ID, []*ferry.JobDevice{
			{JobID: "r1", DeviceID: "d00", Status: ferry.JobCompleted, StartedAt: now, EndedAt: now},
			{JobID: "r1", DeviceID: "d01", Status: ferry.JobRunning, StartedAt: now},
			{JobID: "r1", DeviceID: "d02", Status: ferry.JobPending},
		}); err != nil {
			t.Fatal(err)
		}
		e.runner()
		j = e.waitJob("r1", ferry.JobCompleted)
		if want := (ferry.JobStatistics{DeviceCount: 3, SucceededCount: 3}); j.Statistics != want {
			t.Errorf("statistics %+v, want %+v", j.Statistics, want)
		}
		if e.tag("d00") != nil || e.tag("d01") != "r1" || e.tag("d02") != "r1" {
			t.Errorf("tags %v %v %v", e.tag("d00"), e.tag("d01"), e.tag("d02"))
		}
	})
}

func TestScheduledAndCancelled(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.devices(2)
		j := e.twinJob("later", "", ferry.JobScheduled)
		j.StartTime = time.Now().Add(time.Hour)
		if err := s.UpdateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		c := e.twinJob("cancelled", "", ferry.JobCancelled)
		r := e.runner()
		e.twinJob("now", "", ferry.JobPending)
		r.Wake()
		e.waitJob("now", ferry.JobCompleted)
		if j := e.waitJob("later", ferry.JobScheduled); !j.EndTime.IsZero() {
			t.Errorf("a future job ran: %+v", j)
		}
		e.waitJob(c.ID, ferry.JobCancelled)
		page, err := s.ListJobDevices(ctx, e.hub.ID, "later", ferry.ListOptions{})
		if err != nil || len(page.Items) != 0 {
			t.Errorf("future job has devices: %v %v", page.Items, err)
		}
	})
}

func TestInvalidJobs(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s)
		e.devices(1)
		e.runner()
		e.twinJob("badq", "deviceId ==", ferry.JobPending)
		j := e.waitJob("badq", ferry.JobFailed)
		if j.FailureReason == "" {
			t.Error("no failure reason")
		}
	})
}

func TestParseTwinPatch(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"TagsAndDesired", `{"tags":{"a":1},"properties":{"desired":{"b":{"c":2}}}}`, true},
		{"MetaDropped", `{"properties":{"desired":{"$version":3,"x":1}}}`, true},
		{"Reported", `{"properties":{"reported":{"x":1}}}`, false},
		{"DollarKey", `{"tags":{"$a":1}}`, false},
		{"DotKey", `{"tags":{"a.b":1}}`, false},
		{"Deep", `{"tags":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":1}}}}}}}}}}}}`, false},
		{"NotJSON", `{`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := jobs.ParseTwinPatch(json.RawMessage(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !ferry.IsCode(err, ferry.EINVALID) {
				t.Errorf("code %s", ferry.ErrorCode(err))
			}
			if _, has := p.Desired["$version"]; has {
				t.Error("$version kept")
			}
		})
	}
}
