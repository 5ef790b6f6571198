// Package eventbus is the in-process implementation of ferry.EventBus: it
// carries device events from the device plane to the monitor, the export
// sinks and the migration verifier on a single node.
//
// Publish never waits for a subscriber. Each subscription has its own bounded
// buffer and goroutine; a subscriber that falls behind loses the events that
// do not fit, and the bus counts them, so one slow consumer never slows the
// device read path or the other consumers. Consumers that must not lose
// events write through a durable ferry.EventSink instead.
package eventbus

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ferry-iot/ferry"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBuffer is the per-subscriber buffer used when Options.Buffer is 0.
const DefaultBuffer = 4096

// Options configures a Bus.
type Options struct {
	// Buffer is how many events each subscription may hold before the bus
	// drops events for it. 0 means DefaultBuffer.
	Buffer int
	// Logger receives drop warnings; nil discards them.
	Logger *slog.Logger
}

// Bus is an in-process ferry.EventBus. Its zero value is not usable; call New.
type Bus struct {
	buffer int
	log    *slog.Logger

	mu     sync.Mutex // guards changes to subs and closed
	subs   atomic.Pointer[[]*subscription]
	closed bool
	wg     sync.WaitGroup

	published atomic.Uint64
	delivered atomic.Uint64
	dropped   atomic.Uint64

	descs [4]*prometheus.Desc
}

var (
	_ ferry.EventBus       = (*Bus)(nil)
	_ prometheus.Collector = (*Bus)(nil)
)

type subscription struct {
	name      string
	fn        func(ferry.Event)
	ch        chan ferry.Event
	stop      chan struct{}
	once      sync.Once
	delivered atomic.Uint64
	dropped   atomic.Uint64
	warned    atomic.Bool
}

// New returns a running bus.
func New(o Options) *Bus {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{buffer: o.Buffer, log: o.Logger.With("subsystem", "eventbus")}
	b.subs.Store(&[]*subscription{})
	b.descs = [4]*prometheus.Desc{
		prometheus.NewDesc("ferry_eventbus_published_events_total", "Events published to the in-process bus.", nil, nil),
		prometheus.NewDesc("ferry_eventbus_delivered_events_total", "Events handed to subscribers, by subscriber.", []string{"subscriber"}, nil),
		prometheus.NewDesc("ferry_eventbus_dropped_events_total", "Events dropped because a subscriber's buffer was full, by subscriber.", []string{"subscriber"}, nil),
		prometheus.NewDesc("ferry_eventbus_subscribers", "Current subscriptions.", nil, nil),
	}
	return b
}

// Publish hands events to every current subscription without waiting. An
// event that does not fit in a subscription's buffer is dropped for that
// subscription and counted. Returns EPRECONDITION once the bus is closed.
func (b *Bus) Publish(ctx context.Context, events ...ferry.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	subs := *b.subs.Load()
	if subs == nil {
		return ferry.Errorf(ferry.EPRECONDITION, "The event bus is closed.")
	}
	b.published.Add(uint64(len(events)))
	for _, s := range subs {
		for i := range events {
			select {
			case s.ch <- events[i]:
			default:
				s.dropped.Add(1)
				b.dropped.Add(1)
				if !s.warned.Swap(true) {
					b.log.Warn("subscriber too slow, dropping events", "subscriber", s.name, "buffer", cap(s.ch))
				}
			}
		}
	}
	return nil
}

// Subscribe calls fn for every event published after it returns, in order,
// from one goroutine, until cancel is called or the bus is closed. cancel
// returns without waiting for a call of fn in progress, so fn may call it.
func (b *Bus) Subscribe(name string, fn func(ferry.Event)) (cancel func()) {
	s := &subscription{name: name, fn: fn, ch: make(chan ferry.Event, b.buffer), stop: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return func() {}
	}
	old := *b.subs.Load()
	next := make([]*subscription, 0, len(old)+1)
	next = append(append(next, old...), s)
	b.subs.Store(&next)
	b.wg.Add(1)
	go b.run(s)
	return func() { b.remove(s) }
}

func (b *Bus) run(s *subscription) {
	defer b.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case e := <-s.ch:
			// Check again so that no event is delivered after cancel was seen.
			select {
			case <-s.stop:
				return
			default:
			}
			s.fn(e)
			s.delivered.Add(1)
			b.delivered.Add(1)
		}
	}
}

func (b *Bus) remove(s *subscription) {
	s.once.Do(func() {
		b.mu.Lock()
		if cur := *b.subs.Load(); cur != nil {
			next := make([]*subscription, 0, len(cur))
			for _, x := range cur {
				if x != s {
					next = append(next, x)
				}
			}
			b.subs.Store(&next)
		}
		b.mu.Unlock()
		close(s.stop)
	})
}

// Close cancels every subscription and waits until no subscriber function
// runs. Publish returns an error afterwards. Close must not be called from a
// subscriber function.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := *b.subs.Load()
	var none []*subscription
	b.subs.Store(&none)
	b.mu.Unlock()
	for _, s := range subs {
		s.once.Do(func() { close(s.stop) })
	}
	b.wg.Wait()
	return nil
}

// Stats are the bus's counters since New.
type Stats struct {
	Published   uint64 // events passed to Publish
	Delivered   uint64 // subscriber function calls
	Dropped     uint64 // events lost by slow subscribers
	Subscribers int    // current subscriptions
}

// Stats returns the current counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Published:   b.published.Load(),
		Delivered:   b.delivered.Load(),
		Dropped:     b.dropped.Load(),
		Subscribers: len(*b.subs.Load()),
	}
}

// Describe implements prometheus.Collector.
func (b *Bus) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range b.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Subscriptions with the same name
// are summed.
func (b *Bus) Collect(ch chan<- prometheus.Metric) {
	subs := *b.subs.Load()
	ch <- prometheus.MustNewConstMetric(b.descs[0], prometheus.CounterValue, float64(b.published.Load()))
	delivered := map[string]uint64{}
	dropped := map[string]uint64{}
	for _, s := range subs {
		delivered[s.name] += s.delivered.Load()
		dropped[s.name] += s.dropped.Load()
	}
	for name, n := range delivered {
		ch <- prometheus.MustNewConstMetric(b.descs[1], prometheus.CounterValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(b.descs[2], prometheus.CounterValue, float64(dropped[name]), name)
	}
	ch <- prometheus.MustNewConstMetric(b.descs[3], prometheus.GaugeValue, float64(len(subs)))
}
