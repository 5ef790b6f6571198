package eventbus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/eventbus"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func events(n int) []ferry.Event {
	out := make([]ferry.Event, n)
	for i := range out {
		out[i] = ferry.Event{ID: fmt.Sprint(i), Source: ferry.SourceTelemetry, DeviceID: "d1"}
	}
	return out
}

// collect subscribes and returns a function that waits for n events.
func collect(t *testing.T, b *eventbus.Bus, name string) (wait func(n int) []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	b.Subscribe(name, func(e ferry.Event) {
		mu.Lock()
		got = append(got, e.ID)
		mu.Unlock()
	})
	return func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			l := len(got)
			mu.Unlock()
			if l >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: got %d events, want %d", name, l, n)
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// gather registers c in a private registry and returns the values of the
// named metric family keyed by name{labels}.
func gather(t *testing.T, c prometheus.Collector, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

func TestPublish(t *testing.T) {
	t.Run("EverySubscriberInOrder", func(t *testing.T) {
		b := eventbus.New(eventbus.Options{Buffer: 1000})
		defer b.Close()
		w1 := collect(t, b, "a")
		w2 := collect(t, b, "b")
		ctx := context.Background()
		for _, e := range events(500) {
			if err := b.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(ids(500), w1(500)); diff != "" {
			t.Errorf("a (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(ids(500), w2(500)); diff != "" {
			t.Errorf("b (-want +got):\n%s", diff)
		}
		st := b.Stats()
		if diff := cmp.Diff(eventbus.Stats{Published: 500, Delivered: 1000, Subscribers: 2}, st); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	})
	t.Run("SlowSubscriberDropsWithoutBlockingOthers", func(t *testing.T) {
		b := eventbus.New(eventbus.Options{Buffer: 10})
		defer b.Close()
		release := make(chan struct{})
		b.Subscribe("slow", func(ferry.Event) { <-release })
		fast := collect(t, b, "fast")
		ctx := context.Background()
		// Publish in small steps so the fast subscriber keeps up while
		// the slow one is stuck.
		for i := 0; i < 100; i++ {
			if err := b.Publish(ctx, events(1)[0]); err != nil {
				t.Fatal(err)
			}
			fast(i + 1)
		}
		st := b.Stats()
		// The slow one holds one event in fn and ten in its buffer.
		if st.Dropped < 100-11 {
			t.Errorf("dropped = %d, want at least %d", st.Dropped, 100-11)
		}
		close(release)
		want := map[string]float64{
			`ferry_eventbus_dropped_events_total{subscriber="fast"}`: 0,
			`ferry_eventbus_dropped_events_total{subscriber="slow"}`: float64(st.Dropped),
		}
		got := gather(t, b, "ferry_eventbus_dropped_events_total")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	})
	t.Run("CancelStopsDelivery", func(t *testing.T) {
		b := eventbus.New(eventbus.Options{})
		defer b.Close()
		var mu sync.Mutex
		n := 0
		var cancel func()
		cancel = b.Subscribe("once", func(ferry.Event) {
			mu.Lock()
			n++
			mu.Unlock()
			cancel() // from inside fn: must not deadlock
		})
		ctx := context.Background()
		if err := b.Publish(ctx, events(50)...); err != nil {
			t.Fatal(err)
		}
		all := collect(t, b, "all")
		if err := b.Publish(ctx, events(1)...); err != nil {
			t.Fatal(err)
		}
		all(1)
		mu.Lock()
		defer mu.Unlock()
		if n != 1 {
			t.Errorf("fn called %d times after cancel, want 1", n)
		}
		if got := b.Stats().Subscribers; got != 1 {
			t.Errorf("subscribers = %d, want 1", got)
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		b := eventbus.New(eventbus.Options{})
		b.Subscribe("x", func(ferry.Event) {})
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(context.Background(), events(1)...); !ferry.IsCode(err, ferry.EPRECONDITION) {
			t.Errorf("Publish after Close = %v, want EPRECONDITION", err)
		}
		b.Subscribe("late", func(ferry.Event) {})() // harmless
		if err := b.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
	t.Run("ErrContextCanceled", func(t *testing.T) {
		b := eventbus.New(eventbus.Options{})
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Publish(ctx, events(1)...); err == nil {
			t.Error("Publish with a canceled context succeeded")
		}
	})
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	b := eventbus.New(eventbus.Options{Buffer: 64})
	var wg sync.WaitGroup
	ctx := context.Background()
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				_ = b.Publish(ctx, events(1)...)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				b.Subscribe(fmt.Sprint("s", j), func(ferry.Event) {})()
			}
		}()
	}
	wg.Wait()
	b.Close()
	st := b.Stats()
	if st.Published != 8000 {
		t.Errorf("published = %d, want 8000", st.Published)
	}
}

// BenchmarkPublish measures events/s through the bus with parallel
// publishers and subscribers that keep up.
func BenchmarkPublish(b *testing.B) {
	for _, subs := range []int{1, 4} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			bus := eventbus.New(eventbus.Options{Buffer: 1 << 16})
			defer bus.Close()
			for i := 0; i < subs; i++ {
				bus.Subscribe(fmt.Sprint("s", i), func(ferry.Event) {})
			}
			e := ferry.Event{ID: "x", Source: ferry.SourceTelemetry, DeviceID: "d", Body: []byte(`{"t":1}`)}
			ctx := context.Background()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = bus.Publish(ctx, e)
				}
			})
			b.StopTimer()
			st := bus.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(st.Dropped)/float64(st.Published*uint64(subs)), "dropped/delivery")
		})
	}
}
