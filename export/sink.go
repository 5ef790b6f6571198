// Package export writes device events durably to NDJSON files in IoT
// Central's continuous data export format, so that tools that consume
// Central exports read Ferry's unchanged.
//
// FileSink is a ferry.EventSink. Write returns only once the events are on
// disk (written and fsynced), which lets the hub send a QoS 1 PUBACK only for
// telemetry that survives a crash. Concurrent writers are batched: one writer
// goroutine takes every request waiting, writes them in one write and one
// fsync, and wakes them all, so thousands of device sessions each waiting
// for their own acknowledgement share a few fsyncs (group commit).
//
// The current file, export-<timestamp>.ndjson, is closed and a new one
// started when it would grow past MaxBytes or is older than MaxAge. Closed
// files are never written again, and a restarted sink always starts a new
// file. A crash can leave a partial last line in the file being written;
// the readers (ReadFile, ReadAll) ignore it.
package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used when Config leaves a limit at zero.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxAge   = time.Hour
	DefaultLinger   = 5 * time.Millisecond
)

// lingerEvents is the batch size from which a group commit does not linger:
// with that many writers waiting, an fsync is already well shared.
const lingerEvents = 64

// minLingerGap: a batch does not linger when requests come closer together
// than this (twice the mean gap). The writers are then few and fast, each
// waiting for its own answer, and a timer under a millisecond costs more
// than it saves.
const minLingerGap = time.Millisecond

// maxBatchBytes bounds one group commit so that a flood of writers cannot
// make one write unbounded.
const maxBatchBytes = 8 << 20

// Config configures a FileSink.
type Config struct {
	Dir           string            // where export files live; created if missing
	ApplicationID string            // applicationId of every message
	Enrichments   map[string]string // enrichments of every message
	MaxBytes      int64             // rotate before a file passes this size; 0: DefaultMaxBytes
	MaxAge        time.Duration     // rotate files older than this; 0: DefaultMaxAge, <0: never
	Now           func() time.Time  // clock for file names and ages; nil: time.Now
	Logger        *slog.Logger      // nil discards
	// Linger is how long at most a small batch (under 64 events) waits for
	// more writers before its write and fsync; 0: DefaultLinger, <0: never.
	// Under a light load every event would otherwise cost its own fsync:
	// 250 events a second from 15,000 idle devices spent a fifth of the
	// process's CPU in fsync. A batch stops waiting sooner when requests
	// stop coming (see linger), so a few writers in a closed loop are not
	// slowed by it.
	Linger time.Duration
}

// FileSink writes events to rotating NDJSON files. It is safe for
// concurrent use.
type FileSink struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex // held for reading while a request is queued, for writing by Close
	closed  bool
	reqs    chan *request
	closing chan struct{}
	done    chan struct{}

	// Owned by the writer goroutine.
	f        *os.File
	name     string
	size     int64
	opened   time.Time
	lastName string
	batch    bytes.Buffer
	// lastArrival and gap (the moving mean of the time between requests)
	// let a small batch linger only while more requests are likely.
	lastArrival time.Time
	gap         time.Duration

	events, bytes, fsyncs, batches, rotations, failures atomic.Uint64

	batchSize prometheus.Histogram
	descs     []*prometheus.Desc
}

var (
	_ ferry.EventSink      = (*FileSink)(nil)
	_ prometheus.Collector = (*FileSink)(nil)
)

type request struct {
	buf  *bytes.Buffer
	n    int
	at   time.Time // when it was queued
	done chan error
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Open starts a sink writing into cfg.Dir. It never appends to files left by
// an earlier run: the first write starts a new file named after the clock,
// later than every existing one.
func Open(cfg Config) (*FileSink, error) {
	if cfg.Dir == "" {
		return nil, ferry.Errorf(ferry.EINVALID, "The export directory is required.")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(cfg.Dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("open export sink: %w", err)
		}
		// Make the new directory's own entry durable too.
		if err := syncDir(filepath.Dir(filepath.Clean(cfg.Dir))); err != nil {
			return nil, fmt.Errorf("open export sink: %w", err)
		}
	}
	files, err := Files(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open export sink: %w", err)
	}
	s := &FileSink{
		cfg:     cfg,
		log:     cfg.Logger.With("subsystem", "export", "dir", cfg.Dir),
		gap:     max(cfg.Linger, 0), // until requests are seen, linger fully
		reqs:    make(chan *request, 4096),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ferry_export_batch_events",
			Help:    "Events written per group commit (one write and one fsync).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
	}
	if len(files) > 0 {
		s.lastName = filepath.Base(files[len(files)-1])
	}
	s.descs = []*prometheus.Desc{
		prometheus.NewDesc("ferry_export_events_total", "Events written durably to export files.", nil, nil),
		prometheus.NewDesc("ferry_export_bytes_total", "Bytes written durably to export files.", nil, nil),
		prometheus.NewDesc("ferry_export_fsyncs_total", "File fsyncs done by the export sink.", nil, nil),
		prometheus.NewDesc("ferry_export_rotations_total", "Export files closed and replaced by a new one.", nil, nil),
		prometheus.NewDesc("ferry_export_failures_total", "Group commits that failed to write or fsync.", nil, nil),
	}
	go s.run()
	return s, nil
}

// WriteEvents implements ferry.EventSink.
func (s *FileSink) WriteEvents(ctx context.Context, events []ferry.Event) error {
	return s.Write(ctx, events...)
}

// Write appends events and returns once they are written and fsynced. If ctx
// ends first it returns ctx's error, and the events may still be written
// (export is at least once). Returns EINVALID for an event that cannot be
// encoded and EPRECONDITION once the sink is closed.
func (s *FileSink) Write(ctx context.Context, events ...ferry.Event) error {
	if len(events) == 0 {
		return nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	for i := range events {
		r, err := NewRecord(s.cfg.ApplicationID, s.cfg.Enrichments, events[i])
		if err == nil {
			err = appendLine(buf, &r)
		}
		if err != nil {
			bufPool.Put(buf)
			return fmt.Errorf("export event %q of device %q: %w", events[i].ID, events[i].DeviceID, err)
		}
	}
	req := &request{buf: buf, n: len(events), at: time.Now(), done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		bufPool.Put(buf)
		return ferry.Errorf(ferry.EPRECONDITION, "The export sink is closed.")
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		bufPool.Put(buf)
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued, closes the current file and stops the sink.
func (s *FileSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	<-s.done
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("close export file: %w", err)
	}
	return nil
}

// run is the single writer goroutine.
func (s *FileSink) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.cfg.MaxAge > 0 {
		t := time.NewTicker(min(s.cfg.MaxAge, time.Second))
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*request, 0, 1024)
	for {
		select {
		case r := <-s.reqs:
			batch = s.gather(append(batch[:0], r))
			batch = s.linger(batch)
			s.commit(batch)
		case <-tick:
			if s.f != nil && s.cfg.Now().Sub(s.opened) >= s.cfg.MaxAge {
				if err := s.closeFile(); err != nil {
					s.log.Error("rotate export file", "err", err)
				}
			}
		case <-s.closing:
			// Close holds no lock now and no Write can queue more.
			for {
				select {
				case r := <-s.reqs:
					batch = s.gather(append(batch[:0], r))
					s.commit(batch)
					continue
				default:
				}
				return
			}
		}
	}
}

// gather adds every request already waiting, up to maxBatchBytes.
func (s *FileSink) gather(batch []*request) []*request {
	s.arrived(batch[0])
	n := batch[0].buf.Len()
	for n < maxBatchBytes {
		select {
		case r := <-s.reqs:
			s.arrived(r)
			batch = append(batch, r)
			n += r.buf.Len()
		default:
			return batch
		}
	}
	return batch
}

// arrived notes when a request was queued, for the mean gap between
// requests that linger uses.
func (s *FileSink) arrived(r *request) {
	if !s.lastArrival.IsZero() {
		gap := max(r.at.Sub(s.lastArrival), 0)
		s.gap += (gap - s.gap) / 8
	}
	s.lastArrival = r.at
}

// linger waits for more requests while the batch holds fewer than
// lingerEvents events, then returns it. It waits at most cfg.Linger from the
// batch's first request, and stops sooner once no request has come for
// twice the recent mean gap between requests: writers that each wait for
// their own acknowledgement (a few devices sending as fast as they are
// answered) then stop coming, and waiting longer would only slow them,
// while the independent writers of a large, quiet fleet keep coming.
//
// Each wait takes a new timer: resetting one long-lived timer to an earlier
// time makes the runtime re-sort its whole timer heap, which holds a read
// deadline per device connection (with 12,000 devices that was a fifth of
// the process's CPU).
func (s *FileSink) linger(batch []*request) []*request {
	if s.cfg.Linger < 0 {
		return batch
	}
	events, n := 0, 0
	for _, r := range batch {
		events += r.n
		n += r.buf.Len()
	}
	deadline := batch[0].at.Add(s.cfg.Linger)
	for events < lingerEvents && n < maxBatchBytes {
		if 2*s.gap < minLingerGap {
			return batch // requests come too fast for a wait to pay
		}
		until := s.lastArrival.Add(2 * s.gap)
		if deadline.Before(until) {
			until = deadline
		}
		wait := time.Until(until)
		if wait <= 0 {
			return batch
		}
		t := time.NewTimer(wait)
		select {
		case r := <-s.reqs:
			s.arrived(r)
			batch = append(batch, r)
			events += r.n
			n += r.buf.Len()
		case <-t.C:
		case <-s.closing:
			t.Stop()
			return batch
		}
		t.Stop()
	}
	return batch
}

// commit writes a batch, rotating between requests when a file is full or
// old, and fsyncs before answering anyone.
func (s *FileSink) commit(batch []*request) {
	err := s.writeBatch(batch)
	if err != nil {
		s.failures.Add(1)
		s.log.Error("export write failed", "err", err, "events", len(batch))
		// The file may now end in a partial line; never write after it.
		if s.f != nil {
			_ = s.f.Close()
			s.f = nil
		}
		err = ferry.WrapError(ferry.EINTERNAL, "The events could not be stored.", err)
	}
	if err == nil {
		// Counted before anyone is answered, so a writer that returned
		// sees its events in Stats.
		events := 0
		for _, r := range batch {
			events += r.n
		}
		s.events.Add(uint64(events))
		s.batches.Add(1)
		s.batchSize.Observe(float64(events))
	}
	for _, r := range batch {
		r.done <- err
		bufPool.Put(r.buf)
	}
}

func (s *FileSink) writeBatch(batch []*request) error {
	s.batch.Reset()
	for _, r := range batch {
		if s.f != nil && (s.size+int64(s.batch.Len()+r.buf.Len()) > s.cfg.MaxBytes && s.size+int64(s.batch.Len()) > 0 ||
			s.cfg.MaxAge > 0 && s.cfg.Now().Sub(s.opened) >= s.cfg.MaxAge) {
			if err := s.flush(); err != nil {
				return err
			}
			if err := s.closeFile(); err != nil {
				return err
			}
		}
		if s.f == nil {
			if err := s.openFile(); err != nil {
				return err
			}
		}
		s.batch.Write(r.buf.Bytes())
	}
	return s.flush()
}

// flush writes the pending bytes to the current file and fsyncs it.
func (s *FileSink) flush() error {
	if s.batch.Len() == 0 {
		return nil
	}
	n, err := s.f.Write(s.batch.Bytes())
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.name, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.name, err)
	}
	s.fsyncs.Add(1)
	s.bytes.Add(uint64(n))
	s.batch.Reset()
	return nil
}

// openFile creates the next file, named after the clock but always after
// the last name used, and makes its directory entry durable.
func (s *FileSink) openFile() error {
	now := s.cfg.Now().UTC()
	name := fileName(now)
	if name <= s.lastName {
		if t, ok := parseFileName(s.lastName); ok {
			now = t.Add(time.Nanosecond)
			name = fileName(now)
		}
	}
	path := filepath.Join(s.cfg.Dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("create export file: %w", err)
	}
	if err := syncDir(s.cfg.Dir); err != nil {
		f.Close()
		return err
	}
	s.fsyncs.Add(1)
	s.f, s.name, s.size, s.opened, s.lastName = f, name, 0, s.cfg.Now(), name
	s.log.Debug("export file opened", "file", name)
	return nil
}

func (s *FileSink) closeFile() error {
	f := s.f
	s.f = nil
	s.rotations.Add(1)
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync export directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync export directory: %w", err)
	}
	return nil
}

const fileTimeFormat = "20060102T150405.000000000Z"

func fileName(t time.Time) string { return "export-" + t.UTC().Format(fileTimeFormat) + ".ndjson" }

func parseFileName(name string) (time.Time, bool) {
	const prefix, suffix = "export-", ".ndjson"
	if len(name) < len(prefix)+len(suffix) || name[:len(prefix)] != prefix || name[len(name)-len(suffix):] != suffix {
		return time.Time{}, false
	}
	t, err := time.Parse(fileTimeFormat, name[len(prefix):len(name)-len(suffix)])
	return t, err == nil
}

// Stats are a sink's counters since Open.
type Stats struct {
	Events    uint64 // events written and fsynced
	Bytes     uint64 // bytes written and fsynced
	Fsyncs    uint64 // file and directory fsyncs
	Batches   uint64 // group commits
	Rotations uint64 // files closed
	Failures  uint64 // group commits that failed
}

// Stats returns the current counters.
func (s *FileSink) Stats() Stats {
	return Stats{
		Events:    s.events.Load(),
		Bytes:     s.bytes.Load(),
		Fsyncs:    s.fsyncs.Load(),
		Batches:   s.batches.Load(),
		Rotations: s.rotations.Load(),
		Failures:  s.failures.Load(),
	}
}

// Describe implements prometheus.Collector.
func (s *FileSink) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
	s.batchSize.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *FileSink) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	for i, v := range []uint64{st.Events, st.Bytes, st.Fsyncs, st.Rotations, st.Failures} {
		ch <- prometheus.MustNewConstMetric(s.descs[i], prometheus.CounterValue, float64(v))
	}
	s.batchSize.Collect(ch)
}
