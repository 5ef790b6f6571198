// Command migtool supports bench/migrate.sh: it turns a migration report
// into per-phase times (phases) and checks a durable export for lost
// telemetry sequence numbers (seqcheck).
//
//	migtool phases < report.json
//	migtool seqcheck --export DIR --prefix sim- --count N [--sent S]
package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
	"github.com/ferry-iot/ferry/migrate"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: migtool phases|seqcheck [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "phases":
		err = phases(os.Stdin, os.Stdout)
	case "seqcheck":
		err = seqcheck(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "migtool:", err)
		os.Exit(1)
	}
}

// phaseOrder is the order in which a moving device passes the states.
var phaseOrder = []ferry.DeviceMigrationState{ferry.DeviceCommanded, ferry.DeviceAcknowledged, ferry.DeviceProvisioned,
	ferry.DeviceConnected, ferry.DeviceVerified}

// phases reads a migration report (JSON) and prints, for each state, when
// the last device reached it counted from the first command, and the p50
// and p99 over devices of the time from its own command to that state.
func phases(r io.Reader, w io.Writer) error {
	var rep migrate.Report
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return fmt.Errorf("phases: read report: %w", err)
	}
	var start, end time.Time
	reached := map[ferry.DeviceMigrationState][]time.Time{}
	since := map[ferry.DeviceMigrationState][]time.Duration{}
	for _, d := range rep.Devices {
		var cmdAt time.Time
		for _, t := range d.Transitions {
			if t.To == ferry.DeviceCommanded && cmdAt.IsZero() {
				cmdAt = t.At
			}
		}
		if cmdAt.IsZero() {
			continue
		}
		if start.IsZero() || cmdAt.Before(start) {
			start = cmdAt
		}
		seen := map[ferry.DeviceMigrationState]bool{}
		for _, t := range d.Transitions {
			if seen[t.To] || !slices.Contains(phaseOrder, t.To) {
				continue
			}
			seen[t.To] = true
			reached[t.To] = append(reached[t.To], t.At)
			since[t.To] = append(since[t.To], t.At.Sub(cmdAt))
			if t.At.After(end) {
				end = t.At
			}
		}
	}
	fmt.Fprintf(w, "migration %s: %s, %d devices, counts %v\n", rep.Name, rep.State, len(rep.Devices), rep.Counts)
	fmt.Fprintf(w, "first command to last verified: %.2f s\n", end.Sub(start).Seconds())
	fmt.Fprintf(w, "%-13s %8s %12s %12s %12s %12s\n", "state", "devices", "all by (s)", "half by (s)", "p50 (ms)", "p99 (ms)")
	for _, s := range phaseOrder {
		at, ds := reached[s], since[s]
		if len(at) == 0 {
			fmt.Fprintf(w, "%-13s %8d\n", s, 0)
			continue
		}
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		slices.Sort(ds)
		fmt.Fprintf(w, "%-13s %8d %12.2f %12.2f %12d %12d\n", s, len(at), at[len(at)-1].Sub(start).Seconds(),
			at[len(at)/2].Sub(start).Seconds(), pct(ds, 50).Milliseconds(), pct(ds, 99).Milliseconds())
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// seqcheck reads every export record and checks that each of the count
// devices has telemetry numbers 0..max with no gap. With --sent it also
// checks that the distinct numbers add up to what the simulator sent.
func seqcheck(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("seqcheck", flag.ContinueOnError)
	dir := fs.String("export", "", "the server's export directory")
	prefix := fs.String("prefix", "sim-", "device ID prefix")
	count := fs.Int("count", 0, "number of devices")
	sent := fs.Int64("sent", -1, "messages the simulator sent in all (-1: do not check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := export.Files(*dir)
	if err != nil {
		return err
	}
	seqs := map[string]map[int]bool{}
	records, dups := 0, 0
	for _, p := range files {
		rs, err := export.ReadFile(p)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.MessageSource != "telemetry" {
				continue
			}
			var body struct {
				Seq *int `json:"seq"`
			}
			if json.Unmarshal(r.Telemetry, &body) != nil || body.Seq == nil {
				continue
			}
			records++
			m := seqs[r.DeviceID]
			if m == nil {
				m = map[int]bool{}
				seqs[r.DeviceID] = m
			}
			if m[*body.Seq] {
				dups++
			}
			m[*body.Seq] = true
		}
	}
	var distinct int64
	var problems []string
	for i := range *count {
		id := *prefix + fmt.Sprintf("%06d", i)
		m := seqs[id]
		if len(m) == 0 {
			problems = append(problems, id+": no telemetry")
			continue
		}
		top := slices.MaxFunc(keys(m), cmp.Compare[int])
		for s := 0; s <= top; s++ {
			if !m[s] {
				problems = append(problems, id+": missing seq "+strconv.Itoa(s))
			}
		}
		distinct += int64(len(m))
	}
	fmt.Fprintf(w, "export: %d files, %d telemetry records, %d devices, %d distinct (device, seq), %d duplicates, %d gaps or silent devices\n",
		len(files), records, len(seqs), distinct, dups, len(problems))
	for i, p := range problems {
		if i == 10 {
			fmt.Fprintf(w, "  ... and %d more\n", len(problems)-10)
			break
		}
		fmt.Fprintln(w, "  "+p)
	}
	if *sent >= 0 && distinct != *sent {
		problems = append(problems, "count")
		fmt.Fprintf(w, "the simulator sent %d messages, the export holds %d distinct\n", *sent, distinct)
	}
	if len(problems) > 0 {
		return errors.New("seqcheck: telemetry lost")
	}
	fmt.Fprintln(w, "zero loss: every device's sequence numbers are complete")
	return nil
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
