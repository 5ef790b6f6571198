package hubsvc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
	"github.com/ferry-iot/ferry/jobs"
)

// jobJSON is a job in the IoT Hub jobs v2 API's shape.
type jobJSON struct {
	JobID                     string          `json:"jobId"`
	QueryCondition            string          `json:"queryCondition,omitempty"`
	CreatedTime               string          `json:"createdTime,omitempty"`
	StartTime                 string          `json:"startTime,omitempty"`
	EndTime                   string          `json:"endTime,omitempty"`
	MaxExecutionTimeInSeconds int64           `json:"maxExecutionTimeInSeconds,omitempty"`
	Type                      string          `json:"type"`
	CloudToDeviceMethod       *methodRequest  `json:"cloudToDeviceMethod,omitempty"`
	UpdateTwin                json.RawMessage `json:"updateTwin,omitempty"`
	Status                    string          `json:"status,omitempty"`
	FailureReason             string          `json:"failureReason,omitempty"`
	StatusMessage             string          `json:"statusMessage,omitempty"`
	DeviceJobStatistics       *statsJSON      `json:"deviceJobStatistics,omitempty"`
}

type statsJSON struct {
	DeviceCount    int `json:"deviceCount"`
	FailedCount    int `json:"failedCount"`
	SucceededCount int `json:"succeededCount"`
	RunningCount   int `json:"runningCount"`
	PendingCount   int `json:"pendingCount"`
}

func jobOut(j *ferry.Job) jobJSON {
	out := jobJSON{
		JobID: j.ID, QueryCondition: j.QueryCondition, CreatedTime: timeString(j.CreatedAt),
		StartTime: timeString(j.StartTime), MaxExecutionTimeInSeconds: int64(j.MaxExecutionTime / time.Second),
		Type: string(j.Type), Status: string(j.Status), FailureReason: j.FailureReason, StatusMessage: j.StatusMessage,
		DeviceJobStatistics: &statsJSON{DeviceCount: j.Statistics.DeviceCount, FailedCount: j.Statistics.FailedCount,
			SucceededCount: j.Statistics.SucceededCount, RunningCount: j.Statistics.RunningCount, PendingCount: j.Statistics.PendingCount},
	}
	if !j.EndTime.IsZero() {
		out.EndTime = timeString(j.EndTime)
	}
	switch j.Type {
	case ferry.JobDeviceMethod:
		rt, ct := int(j.ResponseTimeout/time.Second), int(j.ConnectTimeout/time.Second)
		out.CloudToDeviceMethod = &methodRequest{MethodName: j.MethodName, Payload: j.MethodPayload,
			ResponseTimeoutInSeconds: &rt, ConnectTimeoutInSeconds: &ct}
	case ferry.JobUpdateTwin:
		out.UpdateTwin = j.TwinPatch
	}
	return out
}

func jobErr(id string, err error) error {
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return hubErr(http.StatusNotFound, "JobNotFound", 404002, ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("Job %s not found.", id), err))
	}
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return hubErr(http.StatusConflict, "JobAlreadyExists", 409002, ferry.WrapError(ferry.ECONFLICT, fmt.Sprintf("Job %s already exists.", id), err))
	}
	return err
}

// putJob serves PUT /jobs/v2/{id}: scheduleDeviceMethod or
// scheduleUpdateTwin over the devices matching queryCondition.
func (s *server) putJob(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	if err := validDeviceID(id); err != nil {
		return ferry.Errorf(ferry.EINVALID, "A job ID has 1 to 128 characters of those device IDs allow.")
	}
	var in jobJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.JobID != "" && in.JobID != id {
		return ferry.Errorf(ferry.EINVALID, "The jobId in the body does not match the one in the URI.")
	}
	if _, err := hubquery.ParseCondition(in.QueryCondition); err != nil {
		return err
	}
	now := s.now()
	j := &ferry.Job{ID: id, HubID: hub.ID, Type: ferry.JobType(in.Type), QueryCondition: in.QueryCondition,
		CreatedAt: now, StartTime: now, MaxExecutionTime: time.Hour}
	if in.StartTime != "" {
		t, err := time.Parse(time.RFC3339Nano, in.StartTime)
		if err != nil {
			return ferry.Errorf(ferry.EINVALID, "startTime must be an ISO 8601 time.")
		}
		if t.After(now) {
			j.StartTime = t
		}
	}
	if in.MaxExecutionTimeInSeconds < 0 {
		return ferry.Errorf(ferry.EINVALID, "maxExecutionTimeInSeconds must not be negative.")
	}
	if in.MaxExecutionTimeInSeconds > 0 {
		j.MaxExecutionTime = time.Duration(in.MaxExecutionTimeInSeconds) * time.Second
	}
	switch j.Type {
	case ferry.JobDeviceMethod:
		if in.CloudToDeviceMethod == nil {
			return ferry.Errorf(ferry.EINVALID, "A scheduleDeviceMethod job needs cloudToDeviceMethod.")
		}
		m, err := in.CloudToDeviceMethod.toDomain()
		if err != nil {
			return err
		}
		j.MethodName, j.MethodPayload, j.ResponseTimeout, j.ConnectTimeout = m.MethodName, m.Payload, m.ResponseTimeout, m.ConnectTimeout
	case ferry.JobUpdateTwin:
		if len(in.UpdateTwin) == 0 {
			return ferry.Errorf(ferry.EINVALID, "A scheduleUpdateTwin job needs updateTwin.")
		}
		p, err := jobs.ParseTwinPatch(in.UpdateTwin)
		if err != nil {
			return err
		}
		if len(p.Tags) == 0 && len(p.Desired) == 0 {
			return ferry.Errorf(ferry.EINVALID, "updateTwin changes neither tags nor desired properties.")
		}
		j.TwinPatch = in.UpdateTwin
	default:
		return ferry.Errorf(ferry.EINVALID, "The job type must be scheduleDeviceMethod or scheduleUpdateTwin.")
	}
	j.Status = ferry.JobScheduled
	if !j.StartTime.After(now) {
		j.Status = ferry.JobPending
	}
	if err := s.cfg.Store.CreateJob(r.Context(), j); err != nil {
		return jobErr(id, err)
	}
	if s.cfg.JobsChanged != nil {
		s.cfg.JobsChanged()
	}
	return writeJSON(w, http.StatusOK, "", jobOut(j))
}

func (s *server) getJob(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	j, err := s.cfg.Store.GetJob(r.Context(), hub.ID, id)
	if err != nil {
		return jobErr(id, err)
	}
	return writeJSON(w, http.StatusOK, "", jobOut(j))
}

// cancelJob marks a job cancelled; the runner stops giving it devices.
// Finished jobs are returned unchanged.
func (s *server) cancelJob(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	j, err := s.cfg.Store.GetJob(r.Context(), hub.ID, id)
	if err != nil {
		return jobErr(id, err)
	}
	switch j.Status {
	case ferry.JobPending, ferry.JobScheduled, ferry.JobRunning:
		j.Status, j.EndTime = ferry.JobCancelled, s.now()
		if err := s.cfg.Store.UpdateJob(r.Context(), j); err != nil {
			return jobErr(id, err)
		}
		if s.cfg.JobsChanged != nil {
			s.cfg.JobsChanged()
		}
	}
	return writeJSON(w, http.StatusOK, "", jobOut(j))
}

// queryJobs serves GET /jobs/v2/query?jobType=&jobStatus=.
func (s *server) queryJobs(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	size, err := pageSize(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.cfg.Store.ListJobs(r.Context(), ferry.JobFilter{HubID: hub.ID, Type: ferry.JobType(q.Get("jobType")),
		Status: ferry.JobStatus(q.Get("jobStatus")), ListOptions: ferry.ListOptions{After: r.Header.Get("x-ms-continuation"), Limit: size}})
	if err != nil {
		return continuationErr(err)
	}
	out := make([]jobJSON, 0, len(page.Items))
	for _, j := range page.Items {
		out = append(out, jobOut(j))
	}
	if page.Next != "" {
		w.Header().Set("x-ms-continuation", page.Next)
	}
	return writeJSON(w, http.StatusOK, "", out)
}

// deviceJobDoc renders a per-device job outcome as `SELECT * FROM
// devices.jobs` returns it.
func deviceJobDoc(j *ferry.Job, d *ferry.JobDevice) map[string]any {
	doc := map[string]any{
		"deviceId": d.DeviceID, "jobId": j.ID, "jobType": string(j.Type), "status": string(d.Status),
		"startTimeUtc": timeString(d.StartedAt), "endTimeUtc": timeString(d.EndedAt),
		"createdDateTimeUtc": timeString(j.CreatedAt), "lastUpdatedDateTimeUtc": timeString(maxTime(d.StartedAt, d.EndedAt)),
	}
	if j.Type == ferry.JobDeviceMethod && len(d.Result) > 0 {
		var res any
		if json.Unmarshal(d.Result, &res) == nil {
			doc["outcome"] = map[string]any{"deviceMethodResponse": res}
		}
	}
	if d.Error != "" {
		doc["error"] = map[string]any{"code": "JobRunPreconditionFailed", "description": d.Error}
	}
	return doc
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// matchDeviceJobs gathers the per-device outcomes of the hub's jobs that
// match, and pages them by offset.
func (s *server) matchDeviceJobs(r *http.Request, hub *ferry.Hub, q *hubquery.Query, size int, cont string) ([]any, string, error) {
	offset := 0
	if cont != "" {
		n, err := strconv.Atoi(cont)
		if err != nil || n < 0 {
			return nil, "", ferry.Errorf(ferry.EINVALID, "The continuation token is not valid.")
		}
		offset = n
	}
	ctx := r.Context()
	var all []any
	opt := ferry.ListOptions{Limit: ferry.MaxPageSize}
	for {
		page, err := s.cfg.Store.ListJobs(ctx, ferry.JobFilter{HubID: hub.ID, ListOptions: opt})
		if err != nil {
			return nil, "", fmt.Errorf("query jobs: %w", err)
		}
		for _, j := range page.Items {
			dopt := ferry.ListOptions{Limit: ferry.MaxPageSize}
			for {
				dp, err := s.cfg.Store.ListJobDevices(ctx, hub.ID, j.ID, dopt)
				if err != nil {
					return nil, "", fmt.Errorf("query jobs: %w", err)
				}
				for _, d := range dp.Items {
					doc := deviceJobDoc(j, d)
					match := map[string]any{"devices": map[string]any{"jobs": doc}}
					for k, v := range doc {
						match[k] = v
					}
					if q.Match(match) {
						all = append(all, doc)
					}
				}
				if dp.Next == "" {
					break
				}
				dopt.After = dp.Next
			}
		}
		if page.Next == "" {
			break
		}
		opt.After = page.Next
	}
	if offset >= len(all) {
		return nil, "", nil
	}
	end := min(offset+size, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[offset:end], next, nil
}
