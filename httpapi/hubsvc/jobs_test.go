package hubsvc_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/hubsvc"
	"github.com/ferry-iot/ferry/jobs"
	"github.com/ferry-iot/ferry/store/storetest"
)

// withRunner wires a job runner into the handler, as cmd/ferry does.
func withRunner(t *testing.T, s ferry.Store) envOpt {
	return func(c *hubsvc.Config) {
		r, err := jobs.New(jobs.Config{Store: s, Hubs: c.Hubs, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r.Start(context.Background())
		t.Cleanup(func() { r.Close() })
		c.JobsChanged = r.Wake
	}
}

func TestJobs(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, s ferry.Store) {
		e := newEnv(t, s, withRunner(t, s))
		svc := e.hubToken(e.hubA, "service")
		for _, id := range []string{"j-a", "j-b", "j-off"} {
			key := e.createDevice(id)
			if id == "j-off" {
				continue
			}
			var c paho.Client
			c = e.connect(id, key, func(_ paho.Client, m paho.Message) {
				if topic := m.Topic(); strings.HasPrefix(topic, "$iothub/methods/POST/") {
					rid := topic[strings.Index(topic, "$rid=")+5:]
					c.Publish("$iothub/methods/res/200/?$rid="+rid, 0, false, []byte(`{"ok":true}`))
				}
			})
		}
		getJob := func(id string) map[string]any {
			t.Helper()
			r := e.do("GET", hostA, "/jobs/v2/"+id, svc, nil)
			wantStatus(t, r, 200)
			return r.obj(t)
		}
		waitJob := func(id, status string) map[string]any {
			t.Helper()
			var j map[string]any
			eventually(t, "job "+id+" "+status, func() bool { j = getJob(id); return j["status"] == status })
			return j
		}

		t.Run("DeviceMethod", func(t *testing.T) {
			r := e.do("PUT", hostA, "/jobs/v2/m1", svc, map[string]any{"jobId": "m1", "type": "scheduleDeviceMethod",
				"cloudToDeviceMethod": map[string]any{"methodName": "reboot", "payload": map[string]any{}, "responseTimeoutInSeconds": 5},
				"queryCondition":      "deviceId IN ['j-a','j-b','j-off']", "startTime": time.Now().UTC().Format(time.RFC3339), "maxExecutionTimeInSeconds": 300})
			wantStatus(t, r, 200)
			if st := r.obj(t)["status"]; st != "pending" && st != "running" {
				t.Errorf("new job status %v", st)
			}
			j := waitJob("m1", "completed")
			stats := j["deviceJobStatistics"].(map[string]any)
			if stats["deviceCount"] != 3.0 || stats["succeededCount"] != 2.0 || stats["failedCount"] != 1.0 || stats["pendingCount"] != 0.0 {
				t.Errorf("statistics %v", stats)
			}
			for _, f := range []string{"jobId", "type", "status", "createdTime", "startTime", "endTime", "cloudToDeviceMethod", "queryCondition"} {
				if _, ok := j[f]; !ok {
					t.Errorf("job has no %s", f)
				}
			}
			r = e.owner("POST", "/devices/query", map[string]any{"query": "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'm1' AND devices.jobs.status = 'completed'"})
			wantStatus(t, r, 200)
			var djs []map[string]any
			r.json(t, &djs)
			if len(djs) != 2 {
				t.Fatalf("devices.jobs: %s", r.body)
			}
			out := djs[0]["outcome"].(map[string]any)["deviceMethodResponse"].(map[string]any)
			if out["status"] != 200.0 || out["payload"].(map[string]any)["ok"] != true {
				t.Errorf("outcome %v", out)
			}
		})
		t.Run("TwinUpdate", func(t *testing.T) {
			r := e.do("PUT", hostA, "/jobs/v2/t1", svc, map[string]any{"jobId": "t1", "type": "scheduleUpdateTwin",
				"updateTwin":     map[string]any{"etag": "*", "tags": map[string]any{"wave": 1}, "properties": map[string]any{"desired": map[string]any{"fw": "3"}}},
				"queryCondition": "deviceId = 'j-off'"})
			wantStatus(t, r, 200)
			waitJob("t1", "completed")
			r = e.owner("GET", "/twins/j-off", nil)
			tw := r.obj(t)
			if tw["tags"].(map[string]any)["wave"] != 1.0 {
				t.Errorf("twin after job: %s", r.body)
			}
		})
		t.Run("ScheduledThenCancelled", func(t *testing.T) {
			r := e.do("PUT", hostA, "/jobs/v2/later", svc, map[string]any{"type": "scheduleUpdateTwin",
				"updateTwin": map[string]any{"tags": map[string]any{"x": 1}}, "startTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
			wantStatus(t, r, 200)
			if r.obj(t)["status"] != "scheduled" {
				t.Errorf("future job: %s", r.body)
			}
			r = e.do("POST", hostA, "/jobs/v2/later/cancel", svc, nil)
			wantStatus(t, r, 200)
			if r.obj(t)["status"] != "cancelled" {
				t.Errorf("after cancel: %s", r.body)
			}
		})
		t.Run("Query", func(t *testing.T) {
			r := e.do("GET", hostA, "/jobs/v2/query?jobType=scheduleUpdateTwin", svc, nil)
			wantStatus(t, r, 200)
			var list []map[string]any
			r.json(t, &list)
			if len(list) != 2 {
				t.Errorf("twin jobs: %s", r.body)
			}
			r = e.do("GET", hostA, "/jobs/v2/query?jobStatus=cancelled", svc, nil)
			r.json(t, &list)
			if len(list) != 1 || list[0]["jobId"] != "later" {
				t.Errorf("cancelled jobs: %s", r.body)
			}
			r = e.do("GET", hostA, "/jobs/v2/query", svc, nil, "x-ms-max-item-count", "1")
			if r.header.Get("x-ms-continuation") == "" {
				t.Error("no continuation with more jobs than the page")
			}
		})
		t.Run("NotFound", func(t *testing.T) {
			wantHubError(t, e.do("GET", hostA, "/jobs/v2/nope", svc, nil), 404, "JobNotFound")
			wantHubError(t, e.do("POST", hostA, "/jobs/v2/nope/cancel", svc, nil), 404, "JobNotFound")
		})
		t.Run("AlreadyExists", func(t *testing.T) {
			r := e.do("PUT", hostA, "/jobs/v2/m1", svc, map[string]any{"type": "scheduleUpdateTwin", "updateTwin": map[string]any{"tags": map[string]any{"x": 1}}})
			wantHubError(t, r, 409, "JobAlreadyExists")
		})
		bad := []struct {
			name string
			body map[string]any
		}{
			{"NoType", map[string]any{}},
			{"UnknownType", map[string]any{"type": "export"}},
			{"MethodMissing", map[string]any{"type": "scheduleDeviceMethod"}},
			{"TwinMissing", map[string]any{"type": "scheduleUpdateTwin"}},
			{"TwinEmpty", map[string]any{"type": "scheduleUpdateTwin", "updateTwin": map[string]any{"etag": "*"}}},
			{"TwinReported", map[string]any{"type": "scheduleUpdateTwin", "updateTwin": map[string]any{"properties": map[string]any{"reported": map[string]any{"a": 1}}}}},
			{"BadQuery", map[string]any{"type": "scheduleUpdateTwin", "updateTwin": map[string]any{"tags": map[string]any{"x": 1}}, "queryCondition": "deviceId ="}},
			{"BadStart", map[string]any{"type": "scheduleUpdateTwin", "updateTwin": map[string]any{"tags": map[string]any{"x": 1}}, "startTime": "tomorrow"}},
			{"IDMismatch", map[string]any{"jobId": "other", "type": "scheduleUpdateTwin", "updateTwin": map[string]any{"tags": map[string]any{"x": 1}}}},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				wantHubError(t, e.do("PUT", hostA, "/jobs/v2/bad", svc, b.body), 400, "ArgumentInvalid")
			})
		}
		t.Run("RegistryReadCannotSchedule", func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"type": "scheduleUpdateTwin", "updateTwin": map[string]any{"tags": map[string]any{"x": 1}}})
			wantStatus(t, e.do("PUT", hostA, "/jobs/v2/rr", e.hubToken(e.hubA, "registryRead"), body), 401)
		})
	})
}
