// Package jobs runs IoT Hub jobs: scheduled direct-method calls and twin
// updates over the devices of a hub that match a query condition. A job's
// devices are fixed when it starts and recorded one by one with their
// outcome, so a runner that restarts picks a running job up where it
// stopped: devices still pending (or running when it stopped) are done
// again, finished ones are not. Cancelling a job (its status set to
// cancelled in the store) stops it handing out devices.
//
// One runner per deployment: two nodes running jobs would both work on the
// same job.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
)

// Config holds what a runner needs.
type Config struct {
	Store  ferry.Store
	Hubs   ferry.HubService
	Logger *slog.Logger
	Now    func() time.Time
	// Concurrency bounds the device operations in flight across all jobs
	// (default 10, IoT Hub's job device-operation rate on S1).
	Concurrency int
	// PollInterval is how often the store is read for due jobs (default 1 s);
	// Wake shortens the wait.
	PollInterval time.Duration
}

// Runner runs due jobs.
type Runner struct {
	cfg    Config
	log    *slog.Logger
	sem    chan struct{}
	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	active map[string]bool // hubID/jobID of jobs running here
}

// New returns a runner; Start sets it going.
func New(cfg Config) (*Runner, error) {
	if cfg.Store == nil || cfg.Hubs == nil {
		return nil, errors.New("jobs: a store and a hub service are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	return &Runner{cfg: cfg, log: cfg.Logger.With("subsystem", "jobs"), sem: make(chan struct{}, cfg.Concurrency),
		wake: make(chan struct{}, 1), active: map[string]bool{}}, nil
}

// Start runs the runner until ctx ends or Close is called. Jobs found
// running in the store (left by a runner that stopped) are resumed.
func (r *Runner) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.cfg.PollInterval)
		defer t.Stop()
		for {
			if err := r.poll(ctx); err != nil && ctx.Err() == nil {
				r.log.ErrorContext(ctx, "poll jobs", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-r.wake:
			}
		}
	}()
}

// Wake makes the runner look for due jobs now, e.g. after one is created.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close stops the runner and waits for the device operations in flight.
// Running jobs stay running in the store and resume on the next Start.
func (r *Runner) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}

// poll starts every due job that is not running here yet.
func (r *Runner) poll(ctx context.Context) error {
	hopt := ferry.ListOptions{Limit: 1000}
	for {
		hubs, err := r.cfg.Store.ListHubs(ctx, ferry.HubFilter{ListOptions: hopt})
		if err != nil {
			return fmt.Errorf("list hubs: %w", err)
		}
		for _, h := range hubs.Items {
			for _, st := range []ferry.JobStatus{ferry.JobRunning, ferry.JobPending, ferry.JobScheduled} {
				if err := r.pollHub(ctx, h.ID, st); err != nil {
					return err
				}
			}
		}
		if hubs.Next == "" {
			return nil
		}
		hopt.After = hubs.Next
	}
}

func (r *Runner) pollHub(ctx context.Context, hubID string, st ferry.JobStatus) error {
	opt := ferry.ListOptions{Limit: 1000}
	now := r.cfg.Now()
	for {
		page, err := r.cfg.Store.ListJobs(ctx, ferry.JobFilter{HubID: hubID, Status: st, ListOptions: opt})
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		for _, j := range page.Items {
			if j.StartTime.After(now) {
				continue
			}
			k := j.HubID + "/" + j.ID
			r.mu.Lock()
			busy := r.active[k]
			r.active[k] = true
			r.mu.Unlock()
			if busy {
				continue
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() {
					r.mu.Lock()
					delete(r.active, k)
					r.mu.Unlock()
				}()
				if err := r.run(ctx, j); err != nil && ctx.Err() == nil {
					r.log.ErrorContext(ctx, "run job", "hub_id", j.HubID, "job_id", j.ID, "err", err)
				}
			}()
		}
		if page.Next == "" {
			return nil
		}
		opt.After = page.Next
	}
}

// errCancelled stops a job's loop when it was cancelled.
var errCancelled = errors.New("job cancelled")

// run takes a job from start (or where it stopped) to its end.
func (r *Runner) run(ctx context.Context, j *ferry.Job) error {
	log := r.log.With("hub_id", j.HubID, "job_id", j.ID)
	var patch ferry.TwinPatch
	if j.Type == ferry.JobUpdateTwin {
		p, err := ParseTwinPatch(j.TwinPatch)
		if err != nil {
			return r.finish(ctx, j, ferry.JobFailed, "The twin patch is not valid.")
		}
		patch = p
	}
	where, err := hubquery.ParseCondition(j.QueryCondition)
	if err != nil {
		return r.finish(ctx, j, ferry.JobFailed, "The query condition is not valid.")
	}
	if j.Status != ferry.JobRunning || j.Statistics.DeviceCount == 0 {
		n, err := r.materialize(ctx, j, where)
		if err != nil {
			return err
		}
		err = r.update(ctx, j, func(x *ferry.Job) {
			x.Status = ferry.JobRunning
			x.Statistics = ferry.JobStatistics{DeviceCount: n, PendingCount: n}
		})
		if errors.Is(err, errCancelled) {
			return nil
		}
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "job started", "devices", n)
	}
	deadline := j.StartTime.Add(j.MaxExecutionTime)
	for {
		todo, stats, err := r.unfinished(ctx, j)
		if err != nil {
			return err
		}
		j.Statistics = stats
		if len(todo) == 0 {
			break
		}
		if err := r.runDevices(ctx, j, patch, todo, deadline); err != nil {
			if errors.Is(err, errCancelled) {
				log.InfoContext(ctx, "job cancelled")
				return nil
			}
			return err
		}
	}
	status, msg := ferry.JobCompleted, ""
	if j.Statistics.FailedCount > 0 && r.cfg.Now().After(deadline) {
		status, msg = ferry.JobFailed, "The job exceeded its maximum execution time."
	}
	log.InfoContext(ctx, "job finished", "status", status)
	return r.finish(ctx, j, status, msg)
}

// unfinished returns a job's devices still pending (or running when a
// runner stopped) and statistics counted from every device's record.
func (r *Runner) unfinished(ctx context.Context, j *ferry.Job) ([]*ferry.JobDevice, ferry.JobStatistics, error) {
	var todo []*ferry.JobDevice
	var st ferry.JobStatistics
	opt := ferry.ListOptions{Limit: ferry.MaxPageSize}
	for {
		page, err := r.cfg.Store.ListJobDevices(ctx, j.HubID, j.ID, opt)
		if err != nil {
			return nil, st, fmt.Errorf("list job devices: %w", err)
		}
		for _, d := range page.Items {
			st.DeviceCount++
			switch d.Status {
			case ferry.JobCompleted:
				st.SucceededCount++
			case ferry.JobFailed:
				st.FailedCount++
			default:
				st.PendingCount++
				todo = append(todo, d)
			}
		}
		if page.Next == "" {
			return todo, st, nil
		}
		opt.After = page.Next
	}
}

// materialize records the devices matching the job's condition as
// pending and returns how many there are.
func (r *Runner) materialize(ctx context.Context, j *ferry.Job, where hubquery.Expr) (int, error) {
	n := 0
	opt := ferry.ListOptions{Limit: 1000}
	for {
		page, err := r.cfg.Store.ListDeviceIdentities(ctx, ferry.DeviceIdentityFilter{HubID: j.HubID, ListOptions: opt})
		if err != nil {
			return 0, fmt.Errorf("list devices: %w", err)
		}
		var batch []*ferry.JobDevice
		for _, d := range page.Items {
			if where != nil {
				t, err := r.cfg.Store.GetTwin(ctx, j.HubID, d.DeviceID)
				if ferry.IsCode(err, ferry.ENOTFOUND) {
					continue
				}
				if err != nil {
					return 0, fmt.Errorf("get twin: %w", err)
				}
				if !where.Match(hubquery.TwinDocument(d, t)) {
					continue
				}
			}
			batch = append(batch, &ferry.JobDevice{JobID: j.ID, DeviceID: d.DeviceID, Status: ferry.JobPending})
		}
		if err := r.cfg.Store.PutJobDevices(ctx, j.HubID, batch); err != nil {
			return 0, fmt.Errorf("record job devices: %w", err)
		}
		n += len(batch)
		if page.Next == "" {
			return n, nil
		}
		opt.After = page.Next
	}
}

// runDevices runs the job on devices, Concurrency at a time across the
// runner, and records each outcome and the statistics.
func (r *Runner) runDevices(ctx context.Context, j *ferry.Job, patch ferry.TwinPatch, todo []*ferry.JobDevice, deadline time.Time) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	done := 0
	flush := func() error {
		return r.update(ctx, j, func(x *ferry.Job) {})
	}
	for _, d := range todo {
		if ctx.Err() != nil {
			break
		}
		// A cancelled job hands out no more devices.
		cur, err := r.cfg.Store.GetJob(ctx, j.HubID, j.ID)
		if err != nil {
			return fmt.Errorf("reload job: %w", err)
		}
		if cur.Status == ferry.JobCancelled {
			wg.Wait()
			return errCancelled
		}
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-r.sem }()
			out := r.runDevice(ctx, j, patch, d, deadline)
			if ctx.Err() != nil {
				return // stopping: leave the device for the next start
			}
			err := r.cfg.Store.PutJobDevices(ctx, j.HubID, []*ferry.JobDevice{out})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("record job device: %w", err)
			}
			j.Statistics.PendingCount--
			if out.Status == ferry.JobCompleted {
				j.Statistics.SucceededCount++
			} else {
				j.Statistics.FailedCount++
			}
			done++
			if done%50 == 0 {
				if err := flush(); err != nil && !errors.Is(err, errCancelled) && firstErr == nil {
					firstErr = err
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return flush()
}

// runDevice calls the method or applies the twin patch on one device.
func (r *Runner) runDevice(ctx context.Context, j *ferry.Job, patch ferry.TwinPatch, d *ferry.JobDevice, deadline time.Time) *ferry.JobDevice {
	out := &ferry.JobDevice{JobID: j.ID, DeviceID: d.DeviceID, StartedAt: r.cfg.Now()}
	defer func() { out.EndedAt = r.cfg.Now() }()
	if out.StartedAt.After(deadline) {
		out.Status, out.Error = ferry.JobFailed, "The job exceeded its maximum execution time."
		return out
	}
	switch j.Type {
	case ferry.JobDeviceMethod:
		resp, err := r.cfg.Hubs.InvokeMethod(ctx, j.HubID, d.DeviceID, ferry.MethodRequest{MethodName: j.MethodName,
			Payload: j.MethodPayload, ResponseTimeout: j.ResponseTimeout, ConnectTimeout: j.ConnectTimeout})
		if err != nil {
			out.Status, out.Error = ferry.JobFailed, ferry.ErrorMessage(err)
			return out
		}
		res, err := json.Marshal(map[string]any{"status": resp.Status, "payload": resp.Payload})
		if err != nil {
			out.Status, out.Error = ferry.JobFailed, "The device's answer could not be recorded."
			return out
		}
		out.Status, out.Result = ferry.JobCompleted, res
	case ferry.JobUpdateTwin:
		if _, err := r.cfg.Hubs.UpdateTwin(ctx, j.HubID, d.DeviceID, patch, "*"); err != nil {
			out.Status, out.Error = ferry.JobFailed, ferry.ErrorMessage(err)
			return out
		}
		out.Status = ferry.JobCompleted
	default:
		out.Status, out.Error = ferry.JobFailed, "Unknown job type."
	}
	return out
}

// update saves j's statistics, and applies change, in one transaction that
// keeps a cancellation made meanwhile; it returns errCancelled then.
func (r *Runner) update(ctx context.Context, j *ferry.Job, change func(*ferry.Job)) error {
	cancelled := false
	err := r.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		cur, err := tx.GetJob(ctx, j.HubID, j.ID)
		if err != nil {
			return err
		}
		change(j)
		if cur.Status == ferry.JobCancelled {
			cancelled = true
			j.Status, j.EndTime = cur.Status, cur.EndTime
		}
		return tx.UpdateJob(ctx, j)
	})
	if err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	if cancelled {
		return errCancelled
	}
	return nil
}

// finish records a job's end.
func (r *Runner) finish(ctx context.Context, j *ferry.Job, status ferry.JobStatus, msg string) error {
	err := r.update(ctx, j, func(x *ferry.Job) {
		x.Status, x.EndTime = status, r.cfg.Now()
		if status == ferry.JobFailed {
			x.FailureReason = msg
		}
		x.StatusMessage = msg
	})
	if errors.Is(err, errCancelled) {
		return nil
	}
	return err
}

// ParseTwinPatch reads the updateTwin member of a twin job, or the body of
// a twin PATCH ({"tags":{...},"properties":{"desired":{...}}}), into a
// patch. $version and $metadata members are dropped. Returns EINVALID for
// reported properties, keys IoT Hub does not allow, or nesting deeper than
// 10 levels.
func ParseTwinPatch(raw json.RawMessage) (ferry.TwinPatch, error) {
	var in struct {
		Tags       map[string]any `json:"tags"`
		Properties *struct {
			Desired  map[string]any `json:"desired"`
			Reported map[string]any `json:"reported"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return ferry.TwinPatch{}, ferry.WrapError(ferry.EINVALID, "The twin patch is not valid JSON.", err)
	}
	p := ferry.TwinPatch{Tags: in.Tags}
	if in.Properties != nil {
		if len(StripMeta(in.Properties.Reported)) > 0 {
			return ferry.TwinPatch{}, ferry.Errorf(ferry.EINVALID, "Reported properties can only be written by the device.")
		}
		p.Desired = StripMeta(in.Properties.Desired)
	}
	for _, m := range []map[string]any{p.Tags, p.Desired} {
		if err := CheckTwinKeys(m); err != nil {
			return ferry.TwinPatch{}, err
		}
	}
	return p, nil
}

// StripMeta drops the $version and $metadata members SDKs echo back.
func StripMeta(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	delete(m, "$version")
	delete(m, "$metadata")
	return m
}

// CheckTwinKeys applies IoT Hub's rules on twin keys: no '$' start, no '.'
// or ' ', at most 1 KiB, and at most 10 levels of nesting. Returns EINVALID.
func CheckTwinKeys(m map[string]any) error { return checkKeys(m, 1) }

func checkKeys(m map[string]any, depth int) error {
	if depth > 10 {
		return ferry.Errorf(ferry.EINVALID, "Twin documents nest at most 10 levels deep.")
	}
	for k, v := range m {
		if k == "" || strings.HasPrefix(k, "$") || strings.ContainsAny(k, ". ") || len(k) > 1024 {
			return ferry.Errorf(ferry.EINVALID, "The twin key %q is not allowed.", k)
		}
		if sub, ok := v.(map[string]any); ok {
			if err := checkKeys(sub, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
