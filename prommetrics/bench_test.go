package prommetrics

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkman-go/bulkman/core"
)

// The baseline (no hook), the Collector's hook, and for reference the same hook built on
// client_golang's Histogram and Counter run in the same benchmark, so one run gives the
// ratios:
//
//	go test -run '^$' -bench . -benchmem -count 10 ./prommetrics/ | tee prom.txt
//	benchstat -col /hook prom.txt

var sink int

//go:noinline
func noop(context.Context) (int, error) { sink++; return sink, nil }

// benchHooks are the hooks compared; nil is the baseline.
var benchHooks = []struct {
	name string
	new  func() (func(core.Event), func(*core.Manager))
}{
	{"none", func() (func(core.Event), func(*core.Manager)) { return nil, nil }},
	{"collector", func() (func(core.Event), func(*core.Manager)) {
		c := New()
		prometheus.NewRegistry().MustRegister(c)
		return c.Observe, c.Watch
	}},
	{"client_golang", func() (func(core.Event), func(*core.Manager)) {
		return newClientGolangHook().observe, nil
	}},
}

// benchBulkhead returns a bulkhead configured like core's own benchmarks (room for every
// call, breaker on), with hook h.
func benchBulkhead(tb testing.TB, h func() (func(core.Event), func(*core.Manager))) *core.Bulkhead {
	hook, watch := h()
	m := core.NewManager(core.WithEventHook(hook)) // a nil hook is ignored
	if watch != nil {
		watch(m)
	}
	cfg := core.DefaultConfig("bench")
	cfg.MaxConcurrentCalls = 1024
	cfg.CircuitBreakerEnabled = true
	b, err := m.Create(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func BenchmarkExecute(b *testing.B) {
	for _, h := range benchHooks {
		b.Run("hook="+h.name, func(b *testing.B) {
			bh := benchBulkhead(b, h.new)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := core.Execute(ctx, bh, noop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkExecuteParallel(b *testing.B) {
	for _, h := range benchHooks {
		b.Run("hook="+h.name, func(b *testing.B) {
			bh := benchBulkhead(b, h.new)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := core.Execute(ctx, bh, noop); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// clientGolangHook is the obvious design, kept as a reference point: client_golang
// histograms and a counter, children resolved once. Each Histogram.Observe takes four
// atomic operations and a compare-and-swap loop.
type clientGolangHook struct {
	queueWait, execution prometheus.Observer
	calls                [3]prometheus.Counter
}

func newClientGolangHook() *clientGolangHook {
	q := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "q", Buckets: DefaultBuckets()}, []string{"bulkhead"})
	e := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "e", Buckets: DefaultBuckets()}, []string{"bulkhead"})
	n := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "n"}, []string{"bulkhead", "outcome"})
	h := &clientGolangHook{queueWait: q.WithLabelValues("bench"), execution: e.WithLabelValues("bench")}
	for i, o := range outcomeNames {
		h.calls[i] = n.WithLabelValues("bench", o)
	}
	return h
}

func (h *clientGolangHook) observe(e core.Event) {
	if e.Kind == core.EventFinished {
		h.queueWait.Observe(e.QueuedTime.Seconds())
		h.execution.Observe(e.ExecutionTime.Seconds())
		h.calls[e.Outcome].Inc()
	}
}

// BenchmarkHookOverhead interleaves the baseline and the Collector's hook in batches of
// 256 calls, alternating which goes first, and reports each one's time per call and their
// ratio. On a shared machine, where the load of other tenants drifts over seconds, this
// compares the two under the same conditions; run it with -count and read the medians.
func BenchmarkHookOverhead(b *testing.B) {
	const batch = 256
	base := benchBulkhead(b, benchHooks[0].new)
	hooked := benchBulkhead(b, benchHooks[1].new)
	ctx := context.Background()
	run := func(bh *core.Bulkhead) time.Duration {
		start := time.Now()
		for range batch {
			if _, err := core.Execute(ctx, bh, noop); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	var tBase, tHooked time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tBase += run(base)
			tHooked += run(hooked)
		} else {
			tHooked += run(hooked)
			tBase += run(base)
		}
	}
	calls := float64(b.N) * batch
	b.ReportMetric(float64(tBase.Nanoseconds())/calls, "base-ns/call")
	b.ReportMetric(float64(tHooked.Nanoseconds())/calls, "hooked-ns/call")
	b.ReportMetric(float64(tHooked)/float64(tBase), "ratio")
}

// BenchmarkObserve is the hook alone, on an event of a call that did not wait.
func BenchmarkObserve(b *testing.B) {
	c := New()
	e := core.Event{Kind: core.EventFinished, Bulkhead: "bench", ExecutionTime: 50 * time.Microsecond}
	b.ReportAllocs()
	for b.Loop() {
		c.Observe(e)
	}
}
