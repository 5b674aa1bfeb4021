package prommetrics

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/cputime"
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

// benchHooks are the hooks compared, each attached to a Manager; "none" is the baseline.
var benchHooks = []struct {
	name   string
	attach func(*core.Manager)
}{
	{"none", func(*core.Manager) {}},
	{"collector", func(m *core.Manager) { prometheus.NewRegistry().MustRegister(New(m)) }},
	{"client_golang", func(m *core.Manager) { m.Subscribe(newClientGolangHook().observe) }},
}

// benchBulkhead returns a bulkhead configured like core's own benchmarks (room for every
// call, breaker on), of a Manager that attach wires.
func benchBulkhead(tb testing.TB, attach func(*core.Manager), opts ...core.Option) *core.Bulkhead {
	m := core.NewManager(opts...)
	attach(m)
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
			bh := benchBulkhead(b, h.attach)
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
			bh := benchBulkhead(b, h.attach)
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

// BenchmarkHookOverhead compares, under the same conditions, Execute without a hook, with
// a hook that does nothing given with core.WithEventHook and subscribed with
// Manager.Subscribe (the cost of events in core, by either way), and with the Collector.
// It interleaves them in batches of 256 calls, rotating which goes first, and times each
// batch in CPU time of the benchmark's thread: on a shared machine, wall time also counts
// the moments other processes hold the CPU, which swamps a difference of tens of
// nanoseconds. It reports the baseline's time per call and each hook's ratio to it; run
// it with -count and read the medians.
func BenchmarkHookOverhead(b *testing.B) {
	const batch = 256
	empty := func(core.Event) {}
	var variants []func()
	for _, bh := range []*core.Bulkhead{
		benchBulkhead(b, benchHooks[0].attach),
		benchBulkhead(b, benchHooks[0].attach, core.WithEventHook(empty)),
		benchBulkhead(b, func(m *core.Manager) { m.Subscribe(empty) }),
		benchBulkhead(b, benchHooks[1].attach),
	} {
		variants = append(variants, func() {
			if _, err := core.Execute(context.Background(), bh, noop); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.ReportAllocs()
	spent := cputime.Alternate(b, batch, variants...)
	calls := float64(b.N) * batch
	b.ReportMetric(float64(spent[0].Nanoseconds())/calls, "base-cpu-ns/call")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "empty-hook-ratio")
	b.ReportMetric(float64(spent[2])/float64(spent[0]), "empty-subscriber-ratio")
	b.ReportMetric(float64(spent[3])/float64(spent[0]), "collector-ratio")
}

// BenchmarkObserve is the hook alone, on an event of a call that did not wait.
func BenchmarkObserve(b *testing.B) {
	c := New(nil)
	e := core.Event{Kind: core.EventFinished, Bulkhead: "bench", ExecutionTime: 50 * time.Microsecond}
	b.ReportAllocs()
	for b.Loop() {
		c.observe(e)
	}
}
