package prommetrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/prommetrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

// setup returns a Collector attached to a new Manager.
func setup(t *testing.T, opts ...prommetrics.Option) (*prommetrics.Collector, *core.Manager) {
	t.Helper()
	m := core.NewManager()
	return prommetrics.New(m, opts...), m
}

func create(t *testing.T, m *core.Manager, name string, mutate func(*core.Config)) *core.Bulkhead {
	t.Helper()
	cfg := core.DefaultConfig(name)
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := m.Create(cfg)
	require.NoError(t, err)
	return b
}

func sleepThen(d time.Duration, err error) func(context.Context) (int, error) {
	return func(context.Context) (int, error) {
		time.Sleep(d)
		return 0, err
	}
}

// compare checks the exposition of the named metrics against want.
func compare(t *testing.T, c prometheus.Collector, want string, names ...string) {
	t.Helper()
	assert.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want), names...))
}

// TestScriptedTraffic drives one bulkhead through every outcome, every rejection reason
// and the circuit's three states, in a synctest bubble so that every duration is exact,
// and checks the whole exposition.
func TestScriptedTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := setup(t)
		ctx := context.Background()
		b := create(t, m, "payments", func(cfg *core.Config) {
			cfg.MaxConcurrentCalls, cfg.MaxQueueSize, cfg.Timeout = 1, 1, 100*time.Millisecond
			cfg.CircuitBreakerEnabled = true
			cfg.FailureThreshold, cfg.SuccessThreshold, cfg.IsolationDuration = 2, 1, time.Second
		})
		archive := create(t, m, "archive", nil)
		require.NoError(t, archive.Shutdown(ctx))

		// 1. A success that runs 20ms.
		_, err := core.Execute(ctx, b, sleepThen(20*time.Millisecond, nil))
		require.NoError(t, err)

		// 2. A caller queues for 5ms behind a held permit, then runs at once.
		p, err := b.Acquire(ctx)
		require.NoError(t, err)
		queued := make(chan error, 1)
		go func() { _, err := core.Execute(ctx, b, sleepThen(0, nil)); queued <- err }()
		synctest.Wait()
		time.Sleep(5 * time.Millisecond)
		require.NoError(t, p.Release(core.Success)) // held 5ms
		require.NoError(t, <-queued)

		// 3. Full, then a timeout in the queue; the holder ends without a verdict.
		p, err = b.Acquire(ctx)
		require.NoError(t, err)
		go func() { _, err := core.Execute(ctx, b, sleepThen(0, nil)); queued <- err }()
		synctest.Wait()
		_, err = core.Execute(ctx, b, sleepThen(0, nil))
		require.ErrorIs(t, err, core.ErrFull)
		require.ErrorIs(t, <-queued, core.ErrTimeout) // after 100ms in the queue
		require.NoError(t, p.Release(core.Neutral))   // held 100ms

		// 4. A timeout while running (a failure), 5. a failure: the circuit opens.
		_, err = core.Execute(ctx, b, func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
		require.ErrorIs(t, err, core.ErrTimeout)
		synctest.Wait() // the abandoned function has returned its permit
		res, err := core.Execute(ctx, b, sleepThen(0, errBoom))
		require.NoError(t, err)
		require.False(t, res.Success)
		require.Equal(t, core.Isolated, b.State())

		// 6. Refused while open; 7. refused after shutdown.
		_, err = core.Execute(ctx, b, sleepThen(0, nil))
		require.ErrorIs(t, err, core.ErrCircuitOpen)
		_, err = core.Execute(ctx, archive, sleepThen(0, nil))
		require.ErrorIs(t, err, core.ErrShutdown)

		compare(t, c, `
# HELP bulkman_state 1 for the bulkhead's current state, 0 for the others: healthy (circuit closed, or no breaker), degraded (half-open), isolated (open).
# TYPE bulkman_state gauge
bulkman_state{bulkhead="archive",state="degraded"} 0
bulkman_state{bulkhead="archive",state="healthy"} 1
bulkman_state{bulkhead="archive",state="isolated"} 0
bulkman_state{bulkhead="payments",state="degraded"} 0
bulkman_state{bulkhead="payments",state="healthy"} 0
bulkman_state{bulkhead="payments",state="isolated"} 1
`, "bulkman_state")

		// 8. After the isolation, a probe succeeds and closes the circuit.
		time.Sleep(time.Second)
		_, err = core.Execute(ctx, b, sleepThen(0, nil))
		require.NoError(t, err)
		require.Equal(t, core.Healthy, b.State())

		compare(t, c, `
# HELP bulkman_calls_total Admitted calls that ended, by outcome: success, failure (error, panic or timeout) or neutral (the caller went away).
# TYPE bulkman_calls_total counter
bulkman_calls_total{bulkhead="archive",outcome="failure"} 0
bulkman_calls_total{bulkhead="archive",outcome="neutral"} 0
bulkman_calls_total{bulkhead="archive",outcome="success"} 0
bulkman_calls_total{bulkhead="payments",outcome="failure"} 2
bulkman_calls_total{bulkhead="payments",outcome="neutral"} 1
bulkman_calls_total{bulkhead="payments",outcome="success"} 4
# HELP bulkman_rejections_total Calls the bulkhead refused, by reason (full, circuit_open, timeout while queued, or shutdown) and by the refused call's priority (low, normal, high, critical).
# TYPE bulkman_rejections_total counter
bulkman_rejections_total{bulkhead="archive",priority="critical",reason="circuit_open"} 0
bulkman_rejections_total{bulkhead="archive",priority="high",reason="circuit_open"} 0
bulkman_rejections_total{bulkhead="archive",priority="low",reason="circuit_open"} 0
bulkman_rejections_total{bulkhead="archive",priority="normal",reason="circuit_open"} 0
bulkman_rejections_total{bulkhead="archive",priority="critical",reason="full"} 0
bulkman_rejections_total{bulkhead="archive",priority="high",reason="full"} 0
bulkman_rejections_total{bulkhead="archive",priority="low",reason="full"} 0
bulkman_rejections_total{bulkhead="archive",priority="normal",reason="full"} 0
bulkman_rejections_total{bulkhead="archive",priority="critical",reason="shutdown"} 0
bulkman_rejections_total{bulkhead="archive",priority="high",reason="shutdown"} 0
bulkman_rejections_total{bulkhead="archive",priority="low",reason="shutdown"} 0
bulkman_rejections_total{bulkhead="archive",priority="normal",reason="shutdown"} 1
bulkman_rejections_total{bulkhead="archive",priority="critical",reason="timeout"} 0
bulkman_rejections_total{bulkhead="archive",priority="high",reason="timeout"} 0
bulkman_rejections_total{bulkhead="archive",priority="low",reason="timeout"} 0
bulkman_rejections_total{bulkhead="archive",priority="normal",reason="timeout"} 0
bulkman_rejections_total{bulkhead="payments",priority="critical",reason="circuit_open"} 0
bulkman_rejections_total{bulkhead="payments",priority="high",reason="circuit_open"} 0
bulkman_rejections_total{bulkhead="payments",priority="low",reason="circuit_open"} 0
bulkman_rejections_total{bulkhead="payments",priority="normal",reason="circuit_open"} 1
bulkman_rejections_total{bulkhead="payments",priority="critical",reason="full"} 0
bulkman_rejections_total{bulkhead="payments",priority="high",reason="full"} 0
bulkman_rejections_total{bulkhead="payments",priority="low",reason="full"} 0
bulkman_rejections_total{bulkhead="payments",priority="normal",reason="full"} 1
bulkman_rejections_total{bulkhead="payments",priority="critical",reason="shutdown"} 0
bulkman_rejections_total{bulkhead="payments",priority="high",reason="shutdown"} 0
bulkman_rejections_total{bulkhead="payments",priority="low",reason="shutdown"} 0
bulkman_rejections_total{bulkhead="payments",priority="normal",reason="shutdown"} 0
bulkman_rejections_total{bulkhead="payments",priority="critical",reason="timeout"} 0
bulkman_rejections_total{bulkhead="payments",priority="high",reason="timeout"} 0
bulkman_rejections_total{bulkhead="payments",priority="low",reason="timeout"} 0
bulkman_rejections_total{bulkhead="payments",priority="normal",reason="timeout"} 1
# HELP bulkman_timeouts_total Running calls whose timeout fired; bulkman_calls_total counts them with outcome failure.
# TYPE bulkman_timeouts_total counter
bulkman_timeouts_total{bulkhead="archive"} 0
bulkman_timeouts_total{bulkhead="payments"} 1
# HELP bulkman_state_changes_total Circuit transitions, by the state entered: healthy (closed), degraded (half-open) or isolated (open).
# TYPE bulkman_state_changes_total counter
bulkman_state_changes_total{bulkhead="archive",state="degraded"} 0
bulkman_state_changes_total{bulkhead="archive",state="healthy"} 0
bulkman_state_changes_total{bulkhead="archive",state="isolated"} 0
bulkman_state_changes_total{bulkhead="payments",state="degraded"} 1
bulkman_state_changes_total{bulkhead="payments",state="healthy"} 1
bulkman_state_changes_total{bulkhead="payments",state="isolated"} 1
# HELP bulkman_active_calls Calls running now whose outcome is not yet recorded.
# TYPE bulkman_active_calls gauge
bulkman_active_calls{bulkhead="archive"} 0
bulkman_active_calls{bulkhead="payments"} 0
# HELP bulkman_queued_calls Callers waiting for a permit.
# TYPE bulkman_queued_calls gauge
bulkman_queued_calls{bulkhead="archive"} 0
bulkman_queued_calls{bulkhead="payments"} 0
# HELP bulkman_abandoned_calls Timed-out functions still running and still holding a permit.
# TYPE bulkman_abandoned_calls gauge
bulkman_abandoned_calls{bulkhead="archive"} 0
bulkman_abandoned_calls{bulkhead="payments"} 0
# HELP bulkman_max_concurrent_calls The most calls that may run at once (Config.MaxConcurrentCalls).
# TYPE bulkman_max_concurrent_calls gauge
bulkman_max_concurrent_calls{bulkhead="archive"} 10
bulkman_max_concurrent_calls{bulkhead="payments"} 1
# HELP bulkman_max_queue_size The most callers that may wait for a permit (Config.MaxQueueSize).
# TYPE bulkman_max_queue_size gauge
bulkman_max_queue_size{bulkhead="archive"} 100
bulkman_max_queue_size{bulkhead="payments"} 1
# HELP bulkman_state 1 for the bulkhead's current state, 0 for the others: healthy (circuit closed, or no breaker), degraded (half-open), isolated (open).
# TYPE bulkman_state gauge
bulkman_state{bulkhead="archive",state="degraded"} 0
bulkman_state{bulkhead="archive",state="healthy"} 1
bulkman_state{bulkhead="archive",state="isolated"} 0
bulkman_state{bulkhead="payments",state="degraded"} 0
bulkman_state{bulkhead="payments",state="healthy"} 1
bulkman_state{bulkhead="payments",state="isolated"} 0
`, "bulkman_calls_total", "bulkman_rejections_total", "bulkman_timeouts_total", "bulkman_state_changes_total",
			"bulkman_active_calls", "bulkman_queued_calls", "bulkman_abandoned_calls",
			"bulkman_max_concurrent_calls", "bulkman_max_queue_size", "bulkman_state")

		// The calls that ended: success 20ms, 5ms (the holder), 0 (queued 5ms), 0 (the
		// probe); failure 100ms (timed out), 0; neutral 100ms (the holder of step 3).
		// Only the caller of step 2 waited. No call of archive ended, so it has no
		// histogram (as in OpenTelemetry, where a series appears once recorded).
		ms := time.Millisecond
		compare(t, c, `
# HELP bulkman_execution_duration_seconds Time from the start of the function to its end (or to its timeout), by outcome.
# TYPE bulkman_execution_duration_seconds histogram
`+histogram("bulkman_execution_duration_seconds", `bulkhead="payments",outcome="success"`, 20*ms, 5*ms, 0, 0)+
			histogram("bulkman_execution_duration_seconds", `bulkhead="payments",outcome="failure"`, 100*ms, 0)+
			histogram("bulkman_execution_duration_seconds", `bulkhead="payments",outcome="neutral"`, 100*ms)+`
# HELP bulkman_queue_wait_duration_seconds Time from admission to the start of the function, for admitted calls that ended.
# TYPE bulkman_queue_wait_duration_seconds histogram
`+histogram("bulkman_queue_wait_duration_seconds", `bulkhead="payments"`, 0, 0, 0, 0, 0, 0, 5*ms),
			"bulkman_execution_duration_seconds", "bulkman_queue_wait_duration_seconds")
	})
}

// histogram returns the text exposition of a histogram with the default buckets after
// the observations obs.
func histogram(name, labels string, obs ...time.Duration) string {
	return histogramWith(prommetrics.DefaultBuckets(), name, labels, obs...)
}

func histogramWith(bounds []float64, name, labels string, obs ...time.Duration) string {
	var b strings.Builder
	var sum time.Duration
	for _, d := range obs {
		sum += d
	}
	for _, ub := range bounds {
		n := 0
		for _, d := range obs {
			if d.Seconds() <= ub {
				n++
			}
		}
		fmt.Fprintf(&b, "%s_bucket{%s,le=\"%s\"} %d\n", name, labels, strconv.FormatFloat(ub, 'g', -1, 64), n)
	}
	fmt.Fprintf(&b, "%s_bucket{%s,le=\"+Inf\"} %d\n", name, labels, len(obs))
	fmt.Fprintf(&b, "%s_sum{%s} %s\n", name, labels, strconv.FormatFloat(sum.Seconds(), 'g', -1, 64))
	fmt.Fprintf(&b, "%s_count{%s} %d\n", name, labels, len(obs))
	return b.String()
}

func TestLint(t *testing.T) {
	c, m := setup(t)
	b := create(t, m, "lint", nil)
	_, err := core.Execute(context.Background(), b, sleepThen(0, nil))
	require.NoError(t, err)

	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	_, err = reg.Gather()
	assert.NoError(t, err, "the descriptors match what Collect sends")
	assert.Error(t, reg.Register(prommetrics.New(m)), "a second Collector's names are taken")
}

// TestOneStep: New alone attaches the Collector: bulkheads the Manager had before and
// creates after are counted and have gauges; Close detaches it.
func TestOneStep(t *testing.T) {
	ctx := context.Background()
	m := core.NewManager()
	before := create(t, m, "before", nil)
	c := prommetrics.New(m)
	after := create(t, m, "after", nil)
	for _, b := range []*core.Bulkhead{before, after} {
		_, err := core.Execute(ctx, b, sleepThen(0, nil))
		require.NoError(t, err)
	}
	g := registry(t, c)
	assert.Equal(t, 1.0, counterValue(t, g, "bulkman_calls_total", "before", "success"))
	assert.Equal(t, 1.0, counterValue(t, g, "bulkman_calls_total", "after", "success"))
	n, err := testutil.GatherAndCount(g, "bulkman_active_calls", "bulkman_state")
	require.NoError(t, err)
	assert.Equal(t, 8, n, "two bulkheads: one active_calls and three state series each")

	c.Close()
	c.Close() // idempotent
	_, err = core.Execute(ctx, after, sleepThen(0, nil))
	require.NoError(t, err)
	assert.Equal(t, 1.0, counterValue(t, g, "bulkman_calls_total", "after", "success"), "no longer counting")
	n, err = testutil.GatherAndCount(g, "bulkman_active_calls")
	require.NoError(t, err)
	assert.Zero(t, n, "no gauges once closed")

	n, err = testutil.GatherAndCount(registry(t, prommetrics.New(nil)))
	require.NoError(t, err)
	assert.Zero(t, n, "a Collector of no Manager exports nothing")
}

func registry(t *testing.T, c prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	return reg
}

func TestGaugesWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := setup(t)
		ctx := context.Background()
		b := create(t, m, "busy", func(cfg *core.Config) {
			cfg.MaxConcurrentCalls, cfg.MaxQueueSize, cfg.Timeout = 2, 3, time.Second
		})
		release := make(chan struct{})
		var done sync.WaitGroup
		for range 4 { // two run, two queue
			done.Go(func() {
				_, _ = core.Execute(ctx, b, func(context.Context) (int, error) { <-release; return 0, nil })
			})
		}
		synctest.Wait()
		// One more runs past its timeout: it is abandoned, and holds its permit.
		compare(t, c, `
# HELP bulkman_active_calls Calls running now whose outcome is not yet recorded.
# TYPE bulkman_active_calls gauge
bulkman_active_calls{bulkhead="busy"} 2
# HELP bulkman_queued_calls Callers waiting for a permit.
# TYPE bulkman_queued_calls gauge
bulkman_queued_calls{bulkhead="busy"} 2
# HELP bulkman_abandoned_calls Timed-out functions still running and still holding a permit.
# TYPE bulkman_abandoned_calls gauge
bulkman_abandoned_calls{bulkhead="busy"} 0
`, "bulkman_active_calls", "bulkman_queued_calls", "bulkman_abandoned_calls")

		time.Sleep(time.Second) // the two running time out; the two queued time out too
		synctest.Wait()
		compare(t, c, `
# HELP bulkman_active_calls Calls running now whose outcome is not yet recorded.
# TYPE bulkman_active_calls gauge
bulkman_active_calls{bulkhead="busy"} 0
# HELP bulkman_queued_calls Callers waiting for a permit.
# TYPE bulkman_queued_calls gauge
bulkman_queued_calls{bulkhead="busy"} 0
# HELP bulkman_abandoned_calls Timed-out functions still running and still holding a permit.
# TYPE bulkman_abandoned_calls gauge
bulkman_abandoned_calls{bulkhead="busy"} 2
# HELP bulkman_timeouts_total Running calls whose timeout fired; bulkman_calls_total counts them with outcome failure.
# TYPE bulkman_timeouts_total counter
bulkman_timeouts_total{bulkhead="busy"} 2
`, "bulkman_active_calls", "bulkman_queued_calls", "bulkman_abandoned_calls", "bulkman_timeouts_total")
		close(release)
		done.Wait()
		synctest.Wait()
		compare(t, c, `
# HELP bulkman_abandoned_calls Timed-out functions still running and still holding a permit.
# TYPE bulkman_abandoned_calls gauge
bulkman_abandoned_calls{bulkhead="busy"} 0
`, "bulkman_abandoned_calls")
	})
}

func TestBuckets(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	c, m := setup(t,
		prommetrics.WithExecutionBuckets([]float64{0.5, nan, 0.1, 0.1, inf, -inf}),
		prommetrics.WithQueueWaitBuckets([]float64{nan}), // nothing left: the default
	)
	synctest.Test(t, func(t *testing.T) {
		b := create(t, m, "buckets", nil)
		for _, d := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, time.Second} {
			_, err := core.Execute(context.Background(), b, sleepThen(d, nil))
			require.NoError(t, err)
		}
	})
	compare(t, c, `
# HELP bulkman_execution_duration_seconds Time from the start of the function to its end (or to its timeout), by outcome.
# TYPE bulkman_execution_duration_seconds histogram
`+histogramWith([]float64{0.1, 0.5}, "bulkman_execution_duration_seconds", `bulkhead="buckets",outcome="success"`,
		50*time.Millisecond, 100*time.Millisecond, 300*time.Millisecond, time.Second)+`
# HELP bulkman_queue_wait_duration_seconds Time from admission to the start of the function, for admitted calls that ended.
# TYPE bulkman_queue_wait_duration_seconds histogram
`+histogram("bulkman_queue_wait_duration_seconds", `bulkhead="buckets"`, 0, 0, 0, 0),
		"bulkman_execution_duration_seconds", "bulkman_queue_wait_duration_seconds")
}

func TestHookDoesNotAllocate(t *testing.T) {
	c, m := setup(t)
	b := create(t, m, "allocs", func(cfg *core.Config) { cfg.CircuitBreakerEnabled = true })
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	_, _ = core.Execute(ctx, b, fn) // the first event creates the bulkhead's series
	allocs := testing.AllocsPerRun(1000, func() { _, _ = core.Execute(ctx, b, fn) })
	assert.Zero(t, allocs, "Execute with the collector's hook")

	e := core.Event{Kind: core.EventRejected, Bulkhead: "allocs", Err: core.ErrFull}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { prommetrics.Observe(c, e) }), "a rejection")
}

// TestHammer scrapes while calls of several bulkheads run, then checks that the counters
// agree with the Manager's Stats.
func TestHammer(t *testing.T) {
	c, m := setup(t)
	reg := registry(t, c)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		create(t, m, n, func(cfg *core.Config) { cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 2, 2 })
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scrapes := make(chan error, 1)
	go func() {
		var first error
		for {
			select {
			case <-stop:
				scrapes <- first
				return
			default:
			}
			if _, err := reg.Gather(); err != nil && first == nil {
				first = err
			}
		}
	}()
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				fn := sleepThen(0, nil)
				if (g+i)%3 == 0 {
					fn = sleepThen(0, errBoom)
				}
				_, _ = core.ExecuteIn(ctx, m, names[(g+i)%len(names)], fn)
			}
		})
	}
	wg.Wait()
	close(stop)
	require.NoError(t, <-scrapes)

	for name, s := range m.Stats() {
		for outcome, want := range map[string]int64{"success": s.SuccessfulExecutions, "failure": s.FailedExecutions, "neutral": 0} {
			got := counterValue(t, reg, "bulkman_calls_total", name, outcome)
			assert.Equal(t, float64(want), got, "%s %s", name, outcome)
		}
		assert.Equal(t, float64(s.RejectedExecutions), counterValue(t, reg, "bulkman_rejections_total", name, "normal", "full"), name)
	}
}

// counterValue returns the value of the series of metric with the label values
// (bulkhead first, then the others in the order of their names).
func counterValue(t *testing.T, g prometheus.Gatherer, metric string, values ...string) float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			ls := s.GetLabel()
			if len(ls) != len(values) {
				continue
			}
			for i, l := range ls {
				if l.GetValue() != values[i] {
					continue series
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s%q", metric, values)
	return 0
}

// TestSameNameAnotherString: events whose name is another string with the same bytes
// (not the bulkhead's own) count in the same series.
func TestSameNameAnotherString(t *testing.T) {
	c, m := setup(t)
	b := create(t, m, "payments", nil)
	_, err := core.Execute(context.Background(), b, sleepThen(0, nil))
	require.NoError(t, err)
	for range 3 {
		prommetrics.Observe(c, core.Event{Kind: core.EventRejected, Bulkhead: string([]byte("payments")), Err: core.ErrFull})
	}
	prommetrics.Observe(c, core.Event{Kind: core.EventRejected, Bulkhead: "pay", Err: core.ErrFull}) // a prefix: another bulkhead
	assert.Equal(t, 3.0, counterValue(t, registry(t, c), "bulkman_rejections_total", "payments", "normal", "full"))
	assert.Equal(t, 1.0, counterValue(t, registry(t, c), "bulkman_rejections_total", "pay", "normal", "full"))
	assert.Equal(t, 1.0, counterValue(t, registry(t, c), "bulkman_calls_total", "payments", "success"))
}

// TestTimedOutOutcome: a TimedOut outcome (a Permit released past its deadline) counts as
// a failure, whether core reports it as Failure (as it does) or as TimedOut.
func TestTimedOutOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := setup(t)
		b := create(t, m, "mw", func(cfg *core.Config) { cfg.Timeout = time.Second })
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		require.NoError(t, p.Release(core.TimedOut))
		prommetrics.Observe(c, core.Event{Kind: core.EventFinished, Bulkhead: "mw", Outcome: core.TimedOut})
		reg := registry(t, c)
		assert.Equal(t, 2.0, counterValue(t, reg, "bulkman_calls_total", "mw", "failure"))
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == "bulkman_timeouts_total" {
				assert.Equal(t, 1.0, f.GetMetric()[0].GetCounter().GetValue(), "core's EventTimedOut")
			}
		}
	})
}

// TestRemovedBulkhead: a bulkhead taken out of the Manager loses its gauges at the next
// scrape and keeps its counters (a counter never goes back), but counts no more calls;
// a new bulkhead of the same name counts on in the same series.
func TestRemovedBulkhead(t *testing.T) {
	c, m := setup(t)
	b := create(t, m, "tenant-a", nil)
	create(t, m, "tenant-b", nil)
	_, err := core.Execute(context.Background(), b, sleepThen(0, nil))
	require.NoError(t, err)

	_, ok := m.Remove("tenant-a")
	require.True(t, ok)
	compare(t, c, `
# HELP bulkman_active_calls Calls running now whose outcome is not yet recorded.
# TYPE bulkman_active_calls gauge
bulkman_active_calls{bulkhead="tenant-b"} 0
`, "bulkman_active_calls")
	g := registry(t, c)
	assert.Equal(t, 1.0, counterValue(t, g, "bulkman_calls_total", "tenant-a", "success"))

	_, err = core.Execute(context.Background(), b, sleepThen(0, nil)) // its holder still uses it
	require.NoError(t, err)
	assert.Equal(t, 1.0, counterValue(t, g, "bulkman_calls_total", "tenant-a", "success"), "a removed bulkhead is no longer counted")
	again := create(t, m, "tenant-a", nil)
	_, err = core.Execute(context.Background(), again, sleepThen(0, nil))
	require.NoError(t, err)
	assert.Equal(t, 2.0, counterValue(t, g, "bulkman_calls_total", "tenant-a", "success"))
}

// TestUnknownEvents: an outcome, a rejection error or a state the vocabulary does not know
// is not counted (and does not panic).
func TestUnknownEvents(t *testing.T) {
	c, m := setup(t)
	create(t, m, "odd", nil)
	for _, e := range []core.Event{
		{Kind: core.EventFinished, Outcome: core.Outcome(200)},
		{Kind: core.EventRejected, Err: errors.New("other")},
		{Kind: core.EventStateChanged, To: core.State(-1)},
		{Kind: core.EventStateChanged, To: core.State(3)},
	} {
		e.Bulkhead = "odd"
		prommetrics.Observe(c, e)
	}
	g := registry(t, c)
	for _, st := range []string{"healthy", "degraded", "isolated"} {
		assert.Zero(t, counterValue(t, g, "bulkman_state_changes_total", "odd", st), st)
	}
	for _, o := range []string{"success", "failure", "neutral"} {
		assert.Zero(t, counterValue(t, g, "bulkman_calls_total", "odd", o), o)
	}
	for _, r := range []string{"full", "circuit_open", "timeout", "shutdown"} {
		assert.Zero(t, counterValue(t, g, "bulkman_rejections_total", "odd", "normal", r), r)
	}
}

// TestLimitOpenUntilPriority: the concurrency limit in force, the end of an isolation
// (only while the circuit is open), and rejections by the refused call's priority.
func TestLimitOpenUntilPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := setup(t)
		ctx := context.Background()
		b := create(t, m, "payments", func(cfg *core.Config) {
			cfg.MaxConcurrentCalls = 4
			cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.IsolationDuration = true, 1, 30*time.Second
		})
		_, err := core.Execute(ctx, b, sleepThen(0, errBoom)) // opens
		require.NoError(t, err)
		until := b.Stats().OpenUntil
		require.False(t, until.IsZero())
		compare(t, c, fmt.Sprintf(`
# HELP bulkman_concurrency_limit The concurrency limit in force now: max_concurrent_calls for a static bulkhead, the limit an adaptive one found (Stats.ConcurrencyLimit).
# TYPE bulkman_concurrency_limit gauge
bulkman_concurrency_limit{bulkhead="payments"} 4
# HELP bulkman_open_until_timestamp_seconds While the circuit is open: when its isolation ends, in seconds since the Unix epoch (Stats.OpenUntil). Absent otherwise.
# TYPE bulkman_open_until_timestamp_seconds gauge
bulkman_open_until_timestamp_seconds{bulkhead="payments"} %s
`, strconv.FormatFloat(float64(until.UnixNano())/1e9, 'g', -1, 64)), "bulkman_concurrency_limit", "bulkman_open_until_timestamp_seconds")

		time.Sleep(30 * time.Second)
		_, err = core.Execute(ctx, b, sleepThen(0, nil)) // the probe closes it
		require.NoError(t, err)
		n, err := testutil.GatherAndCount(registry(t, c), "bulkman_open_until_timestamp_seconds")
		require.NoError(t, err)
		assert.Zero(t, n, "no end of isolation once the circuit has closed")

		for _, p := range []core.Priority{core.PriorityLow, core.PriorityLow, core.PriorityCritical, core.Priority(9)} {
			prommetrics.Observe(c, core.Event{Kind: core.EventRejected, Bulkhead: "payments", Err: core.ErrFull, Priority: p})
		}
		g := registry(t, c)
		assert.Equal(t, 2.0, counterValue(t, g, "bulkman_rejections_total", "payments", "low", "full"))
		assert.Equal(t, 2.0, counterValue(t, g, "bulkman_rejections_total", "payments", "critical", "full"), "out of range counts as the nearest end")
		assert.Zero(t, counterValue(t, g, "bulkman_rejections_total", "payments", "high", "full"))
	})
}
