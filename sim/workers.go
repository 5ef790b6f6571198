package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/ferry-iot/ferry"
)

// MaxPerWorker is the most devices one worker process holds. A process here
// may hold at most 20,000 open files; each device needs one socket, and its
// registration briefly a second.
const MaxPerWorker = 15000

// Worker is the slice of a fleet one worker process runs.
type Worker struct {
	Index      int
	Start      int    // index of its first device
	Count      int    // number of devices
	SourceAddr string // source IP its devices dial from
}

// Split divides count devices over n workers (0: as few as MaxPerWorker
// allows), giving worker i the source address addrs[i % len(addrs)], or
// 127.0.0.(10+i) when addrs is empty. Returns EINVALID when a worker would
// hold more than MaxPerWorker devices or n is negative.
func Split(count, n int, addrs []string) ([]Worker, error) {
	if n < 0 || count < 1 {
		return nil, ferry.Errorf(ferry.EINVALID, "sim: need at least one device and a non-negative worker count")
	}
	if n == 0 {
		n = (count + MaxPerWorker - 1) / MaxPerWorker
	}
	n = min(n, count)
	per := (count + n - 1) / n
	if per > MaxPerWorker {
		return nil, ferry.Errorf(ferry.EINVALID, "sim: %d workers would hold %d devices each; at most %d fit in one process", n, per, MaxPerWorker)
	}
	if len(addrs) == 0 && n > 240 {
		return nil, ferry.Errorf(ferry.EINVALID, "sim: too many workers for the default source addresses")
	}
	var out []Worker
	for i, start := 0, 0; start < count; i++ {
		w := Worker{Index: i, Start: start, Count: min(per, count-start)}
		if len(addrs) > 0 {
			w.SourceAddr = addrs[i%len(addrs)]
		} else {
			w.SourceAddr = fmt.Sprintf("127.0.0.%d", 10+i)
		}
		out = append(out, w)
		start += w.Count
	}
	return out, nil
}

// WriteStats writes s as one JSON line; worker processes report this way.
func WriteStats(w io.Writer, s Stats) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// waitDelay is how long a worker with count devices gets after the
// interrupt: the 30 s its devices have to flush, and time to close their
// connections, which on a loaded machine took more than the 15 s left of
// a fixed 45 s for 13,000 TLS devices (their final counts were lost).
func waitDelay(count int) time.Duration {
	return 45*time.Second + time.Duration(count)*2*time.Millisecond
}

// RunWorkers runs one process per worker: command returns the command of a
// worker (RunWorkers takes its stdout, which must carry WriteStats lines,
// and starts it). Every time a worker reports, onStats receives the sum of
// the latest reports of all workers. When ctx ends the workers are sent an
// interrupt and given waitDelay(its device count) to flush and close
// before they are killed; the summed final reports are returned, with an
// error if a worker failed.
func RunWorkers(ctx context.Context, workers []Worker, command func(Worker) *exec.Cmd, onStats func(Stats)) (Stats, error) {
	var mu sync.Mutex
	latest := make([]Stats, len(workers))
	for i, w := range workers {
		latest[i].Devices = w.Count // until the worker reports
	}
	sum := func() Stats {
		var s Stats
		for _, x := range latest {
			s = s.Add(x)
		}
		return s
	}
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		cmd := command(w)
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = waitDelay(w.Count)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return Stats{}, fmt.Errorf("sim: worker %d: %w", i, err)
		}
		if err := cmd.Start(); err != nil {
			return Stats{}, fmt.Errorf("sim: start worker %d: %w", i, err)
		}
		stop := context.AfterFunc(ctx, func() { _ = cmd.Cancel() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var s Stats
				if json.Unmarshal(sc.Bytes(), &s) != nil {
					continue
				}
				mu.Lock()
				latest[i] = s
				total := sum()
				mu.Unlock()
				if onStats != nil {
					onStats(total)
				}
			}
			if err := cmd.Wait(); err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("sim: worker %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return sum(), err
		}
	}
	return sum(), nil
}
