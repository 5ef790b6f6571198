package migrate

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ferry-iot/ferry"
)

// Report is a migration's account of every device: its state, and each
// transition with its time and reason.
type Report struct {
	MigrationID string                             `json:"migrationId"`
	Name        string                             `json:"name"`
	State       ferry.MigrationState               `json:"state"`
	StateReason string                             `json:"stateReason,omitempty"`
	CurrentWave int                                `json:"currentWave"`
	Waves       []WaveReport                       `json:"waves"`
	Counts      map[ferry.DeviceMigrationState]int `json:"counts"`
	Devices     []DeviceReport                     `json:"devices"`
}

// WaveReport is one wave of a report.
type WaveReport struct {
	Index       int                                `json:"index"`
	Size        int                                `json:"size"`
	State       ferry.WaveState                    `json:"state"`
	StartedAt   *time.Time                         `json:"startedAt,omitempty"`
	CompletedAt *time.Time                         `json:"completedAt,omitempty"`
	Counts      map[ferry.DeviceMigrationState]int `json:"counts"`
}

// DeviceReport is one device of a report.
type DeviceReport struct {
	DeviceID    string                     `json:"deviceId"`
	Wave        int                        `json:"wave"`
	State       ferry.DeviceMigrationState `json:"state"`
	Reason      string                     `json:"reason,omitempty"`
	Attempts    int                        `json:"attempts"`
	Transitions []TransitionReport         `json:"transitions"`
}

// TransitionReport is one step of a device.
type TransitionReport struct {
	From   ferry.DeviceMigrationState `json:"from"`
	To     ferry.DeviceMigrationState `json:"to"`
	At     time.Time                  `json:"at"`
	Reason string                     `json:"reason,omitempty"`
}

// Report builds a migration's report from the store. Returns ENOTFOUND.
func (o *Orchestrator) Report(ctx context.Context, id string) (*Report, error) {
	st := o.cfg.Store
	m, err := st.GetMigration(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("migrate: report: %w", err)
	}
	waves, err := st.ListMigrationWaves(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("migrate: report: %w", err)
	}
	recs, err := allDevices(ctx, st, id)
	if err != nil {
		return nil, fmt.Errorf("migrate: report: %w", err)
	}
	hist := map[string][]TransitionReport{}
	opt := ferry.ListOptions{Limit: ferry.MaxPageSize}
	for {
		p, err := st.ListMigrationTransitions(ctx, id, "", opt)
		if err != nil {
			return nil, fmt.Errorf("migrate: report: %w", err)
		}
		for _, t := range p.Items {
			hist[t.DeviceID] = append(hist[t.DeviceID], TransitionReport{From: t.From, To: t.To, At: t.At, Reason: t.Reason})
		}
		if p.Next == "" {
			break
		}
		opt.After = p.Next
	}
	r := &Report{MigrationID: m.ID, Name: m.Name, State: m.State, StateReason: m.StateReason, CurrentWave: m.CurrentWave,
		Counts: map[ferry.DeviceMigrationState]int{}}
	for _, w := range waves {
		r.Waves = append(r.Waves, WaveReport{Index: w.Index, Size: w.Size, State: w.State, StartedAt: timePtr(w.StartedAt),
			CompletedAt: timePtr(w.CompletedAt), Counts: map[ferry.DeviceMigrationState]int{}})
	}
	for _, rec := range recs {
		r.Counts[rec.State]++
		if rec.Wave >= 0 && rec.Wave < len(r.Waves) {
			r.Waves[rec.Wave].Counts[rec.State]++
		}
		ts := hist[rec.DeviceID]
		if ts == nil {
			ts = []TransitionReport{}
		}
		r.Devices = append(r.Devices, DeviceReport{DeviceID: rec.DeviceID, Wave: rec.Wave, State: rec.State, Reason: rec.Reason,
			Attempts: rec.Attempts, Transitions: ts})
	}
	return r, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("migrate: report: %w", err)
	}
	return nil
}

// CSVHeader is the first row of WriteCSV.
var CSVHeader = []string{"deviceId", "wave", "state", "attempts", "from", "to", "at", "reason"}

// WriteCSV writes one row per transition (one row for a device without
// any), each with the device's current state.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(CSVHeader)
	for _, d := range r.Devices {
		base := []string{d.DeviceID, strconv.Itoa(d.Wave), string(d.State), strconv.Itoa(d.Attempts)}
		if len(d.Transitions) == 0 {
			_ = cw.Write(append(base, "", "", "", d.Reason))
			continue
		}
		for _, t := range d.Transitions {
			_ = cw.Write(append(base[:4:4], string(t.From), string(t.To), t.At.UTC().Format(time.RFC3339Nano), t.Reason))
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("migrate: report: %w", err)
	}
	return nil
}
