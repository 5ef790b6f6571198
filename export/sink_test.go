package export_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/export"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

const crashChildEnv = "FERRY_EXPORT_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func telemetry(seq int) ferry.Event {
	return ferry.Event{
		ID: strconv.Itoa(seq), Time: t0, Source: ferry.SourceTelemetry, HubID: "hub1",
		DeviceID: fmt.Sprintf("dev-%d", seq%100), Body: []byte(fmt.Sprintf(`{"seq":%d,"temperature":21.5}`, seq)),
	}
}

func readIDs(t *testing.T, dir string) []string {
	t.Helper()
	recs, err := export.ReadAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.Ferry.ID
	}
	return ids
}

func seqIDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// clock is a settable clock for the sink.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock        { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestRotation(t *testing.T) {
	ctx := context.Background()
	t.Run("BySize", func(t *testing.T) {
		dir := t.TempDir()
		const maxBytes = 2000
		s := openSink(t, export.Config{Dir: dir, MaxBytes: maxBytes, Now: newClock(t0).Now})
		for i := 0; i < 100; i++ {
			if err := s.Write(ctx, telemetry(i)); err != nil {
				t.Fatal(err)
			}
		}
		files, err := export.Files(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) < 5 {
			t.Fatalf("%d files, want several", len(files))
		}
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > maxBytes {
				t.Errorf("%s has %d bytes, more than MaxBytes %d", filepath.Base(f), fi.Size(), maxBytes)
			}
		}
		if diff := cmp.Diff(seqIDs(0, 100), readIDs(t, dir)); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if got, want := s.Stats().Rotations, uint64(len(files)-1); got != want {
			t.Errorf("rotations = %d, want %d", got, want)
		}
	})
	t.Run("ByAge", func(t *testing.T) {
		dir := t.TempDir()
		c := newClock(t0)
		s := openSink(t, export.Config{Dir: dir, MaxAge: time.Minute, Now: c.Now})
		for i := 0; i < 6; i++ {
			if err := s.Write(ctx, telemetry(i)); err != nil {
				t.Fatal(err)
			}
			c.Advance(30 * time.Second)
		}
		files, err := export.Files(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, filepath.Base(f))
		}
		want := []string{
			"export-20261123T120000.455123456Z.ndjson",
			"export-20261123T120100.455123456Z.ndjson",
			"export-20261123T120200.455123456Z.ndjson",
		}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(seqIDs(0, 6), readIDs(t, dir)); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
	})
	t.Run("ByAgeWhileIdle", func(t *testing.T) {
		dir := t.TempDir()
		c := newClock(t0)
		s := openSink(t, export.Config{Dir: dir, MaxAge: time.Minute, Now: c.Now})
		if err := s.Write(ctx, telemetry(0)); err != nil {
			t.Fatal(err)
		}
		c.Advance(2 * time.Minute)
		// The writer checks the age at least once a second.
		deadline := time.Now().Add(10 * time.Second)
		for s.Stats().Rotations == 0 {
			if time.Now().After(deadline) {
				t.Fatal("an idle file past MaxAge was not closed")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newClock(t0) // the clock does not move: names must still be new
	s1, err := export.Open(export.Config{Dir: dir, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Write(ctx, telemetry(0), telemetry(1)); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	first := hashFiles(t, dir)
	s2 := openSink(t, export.Config{Dir: dir, Now: c.Now})
	if err := s2.Write(ctx, telemetry(2)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	after := hashFiles(t, dir)
	if len(after) != 2 {
		t.Fatalf("%d files, want 2", len(after))
	}
	for name, h := range first {
		if after[name] != h {
			t.Errorf("closed file %s was rewritten", name)
		}
	}
	if diff := cmp.Diff(seqIDs(0, 3), readIDs(t, dir)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func hashFiles(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	files, err := export.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][32]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = sha256.Sum256(b)
	}
	return out
}

func TestReadPartialLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSink(t, export.Config{Dir: dir, Now: newClock(t0).Now})
	if err := s.Write(ctx, telemetry(0), telemetry(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := export.Files(dir)
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of a write leaves behind.
	if _, err := f.WriteString(`{"applicationId":"","messageSource":"telem`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Run("PartialLastLineIgnored", func(t *testing.T) {
		if diff := cmp.Diff(seqIDs(0, 2), readIDs(t, dir)); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
	})
	t.Run("RestartContinues", func(t *testing.T) {
		s := openSink(t, export.Config{Dir: dir, Now: newClock(t0).Now})
		if err := s.Write(ctx, telemetry(2)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seqIDs(0, 3), readIDs(t, dir)); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrCorruptLine", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "export-20261123T120000.000000000Z.ndjson")
		if err := os.WriteFile(p, []byte("{\"deviceId\":\"a\"}\nnot json\n{\"deviceId\":\"b\"}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := export.ReadFile(p)
		if !ferry.IsCode(err, ferry.EINVALID) || !strings.Contains(ferry.ErrorMessage(err), "line 2") {
			t.Errorf("ReadFile = %v, want EINVALID naming line 2", err)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Run("ErrDirRequired", func(t *testing.T) {
		if _, err := export.Open(export.Config{}); !ferry.IsCode(err, ferry.EINVALID) {
			t.Errorf("Open = %v, want EINVALID", err)
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		s := openSink(t, export.Config{})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), telemetry(0)); !ferry.IsCode(err, ferry.EPRECONDITION) {
			t.Errorf("Write after Close = %v, want EPRECONDITION", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
	t.Run("ErrBadEvent", func(t *testing.T) {
		s := openSink(t, export.Config{})
		err := s.Write(context.Background(), telemetry(0), ferry.Event{Source: ferry.SourceProperties, Data: []byte("{")})
		if !ferry.IsCode(err, ferry.EINVALID) {
			t.Errorf("Write = %v, want EINVALID", err)
		}
		if got := s.Stats().Events; got != 0 {
			t.Errorf("%d events written, want none of a rejected call", got)
		}
	})
	t.Run("ErrContextDone", func(t *testing.T) {
		s := openSink(t, export.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Write(ctx, telemetry(0)); !errors.Is(err, context.Canceled) {
			t.Errorf("Write = %v, want context.Canceled", err)
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, export.Config{Dir: dir, MaxBytes: 64 << 10})
	const writers, each = 64, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Write(context.Background(), telemetry(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := readIDs(t, dir)
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range seqIDs(0, writers*each) {
		if seen[id] != 1 {
			t.Errorf("event %s written %d times, want 1", id, seen[id])
		}
	}
	st := s.Stats()
	if st.Events != writers*each {
		t.Errorf("stats: %d events, want %d", st.Events, writers*each)
	}
	t.Logf("%d events in %d group commits, %d fsyncs, %d rotations", st.Events, st.Batches, st.Fsyncs, st.Rotations)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]bool{}
	for _, mf := range mfs {
		metrics[mf.GetName()] = true
	}
	for _, name := range []string{"ferry_export_events_total", "ferry_export_bytes_total", "ferry_export_fsyncs_total",
		"ferry_export_rotations_total", "ferry_export_failures_total", "ferry_export_batch_events"} {
		if !metrics[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

// crashChild runs in a child process: it writes from many goroutines and
// prints "ack N" for each event once Write has returned, until killed.
func crashChild(dir string) {
	s, err := export.Open(export.Config{Dir: dir, MaxBytes: 32 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var seq atomic.Int64
	var mu sync.Mutex
	for w := 0; w < 32; w++ {
		go func() {
			for {
				n := int(seq.Add(1))
				if err := s.Write(context.Background(), telemetry(n)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d\n", n)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// A real crash: the child is killed with SIGKILL while writing; every event
// it acknowledged must be in the files, and a new sink starts cleanly.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			t.Fatalf("child said %q", sc.Text())
		}
		acked[n] = true
		if len(acked) == 3000 && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", werr)
	}
	recs, err := export.ReadAll(dir)
	if err != nil {
		t.Fatalf("read after crash: %v", err)
	}
	found := map[string]bool{}
	for _, r := range recs {
		found[r.Ferry.ID] = true
	}
	missing := 0
	for id := range acked {
		if !found[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged events are missing after the crash", missing, len(acked))
	}
	files, _ := export.Files(dir)
	t.Logf("acknowledged %d, found %d in %d files", len(acked), len(recs), len(files))

	before := hashFiles(t, dir)
	s := openSink(t, export.Config{Dir: dir})
	if err := s.Write(context.Background(), telemetry(-1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := hashFiles(t, dir)
	for name, h := range before {
		if after[name] != h {
			t.Errorf("file %s left by the crash was rewritten", name)
		}
	}
	recs, err = export.ReadAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1].Ferry.ID; last != "-1" {
		t.Errorf("last record after restart = %s, want -1", last)
	}
}

// BenchmarkWriteParallel measures durable events/s when many device sessions
// each wait for their own event, and how many events share one fsync.
func BenchmarkWriteParallel(b *testing.B) {
	for _, writers := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			dir := os.Getenv("FERRY_BENCH_DIR")
			if dir == "" {
				dir = b.TempDir()
			} else {
				var err error
				if dir, err = os.MkdirTemp(dir, "export-bench"); err != nil {
					b.Fatal(err)
				}
				defer os.RemoveAll(dir)
			}
			s, err := export.Open(export.Config{Dir: dir, ApplicationID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			e := telemetry(1)
			var next atomic.Int64
			var wg sync.WaitGroup
			ctx := context.Background()
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := s.Write(ctx, e); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(st.Events)/float64(st.Fsyncs), "events/fsync")
		})
	}
}

// BenchmarkWriteBatch measures events/s when one caller writes 100 events
// per call: the cost of encoding and writing with fsyncs amortized.
func BenchmarkWriteBatch(b *testing.B) {
	s, err := export.Open(export.Config{Dir: b.TempDir(), ApplicationID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]ferry.Event, 100)
	for i := range batch {
		batch[i] = telemetry(i)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Write(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(s.Stats().Bytes)/float64(b.N*len(batch)), "bytes/event")
}

// TestLingerSharesAnFsync: writers arriving one after another within the
// linger share one group commit; without linger each pays its own.
func TestLingerSharesAnFsync(t *testing.T) {
	for _, tc := range []struct {
		name        string
		linger      time.Duration
		wantBatches uint64
	}{
		// Whichever write comes first waits for the others: only all three
		// together reach the 64 events that commit at once.
		{"linger", time.Hour, 1},
		{"no linger", -1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openSink(t, export.Config{Dir: dir, Linger: tc.linger})
			var first []ferry.Event
			for i := range 62 {
				first = append(first, telemetry(i))
			}
			writes := [][]ferry.Event{first, {telemetry(62)}, {telemetry(63)}}
			if tc.linger > 0 {
				var wg sync.WaitGroup
				for _, events := range writes {
					wg.Go(func() {
						if err := s.Write(context.Background(), events...); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			} else {
				for _, events := range writes {
					if err := s.Write(context.Background(), events...); err != nil {
						t.Fatal(err)
					}
				}
			}
			if st := s.Stats(); st.Batches != tc.wantBatches || st.Events != 64 {
				t.Errorf("%d events in %d group commits, want 64 in %d", st.Events, st.Batches, tc.wantBatches)
			}
			if got := readIDs(t, dir); len(got) != 64 {
				t.Errorf("%d events in the files, want 64", len(got))
			}
		})
	}
}

// TestLingerStopsWhenWritersStop: once requests have been coming close
// together, a lone request does not wait out the whole linger (a writer
// waiting for its own acknowledgement is not slowed by it).
func TestLingerStopsWhenWritersStop(t *testing.T) {
	const linger = time.Minute
	s := openSink(t, export.Config{Dir: t.TempDir(), Linger: linger})
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if err := s.Write(context.Background(), telemetry(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	start := time.Now()
	if err := s.Write(context.Background(), telemetry(64)); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited >= linger/2 {
		t.Errorf("a lone write waited %v, most of the %v linger", waited, linger)
	}
}
