package otelmetrics_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/metricvocab"
	"github.com/bulkman-go/bulkman/otelmetrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

// setup returns a Recorder on a MeterProvider with a manual reader, attached to a new
// Manager.
func setup(t *testing.T) (*sdkmetric.ManualReader, *otelmetrics.Recorder, *core.Manager) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { assert.NoError(t, mp.Shutdown(context.Background())) })
	m := core.NewManager()
	r, err := otelmetrics.New(m, mp)
	require.NoError(t, err)
	return reader, r, m
}

// rejections returns the points of bulkman.rejections of bulkhead: want by reason at
// priority normal, 0 for the other reasons and priorities.
func rejections(bulkhead string, want map[string]int64) []metricdata.DataPoint[int64] {
	var points []metricdata.DataPoint[int64]
	for _, reason := range metricvocab.Reasons {
		for _, p := range metricvocab.Priorities {
			var v int64
			if p == "normal" {
				v = want[reason]
			}
			points = append(points, point(v, "bulkhead", bulkhead, "reason", reason, "priority", p))
		}
	}
	return points
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

// collect returns the metrics of the Recorder's scope by name.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelmetrics.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func attrs(kv ...string) attribute.Set {
	var list []attribute.KeyValue
	for i := 0; i < len(kv); i += 2 {
		list = append(list, attribute.String(kv[i], kv[i+1]))
	}
	return attribute.NewSet(list...)
}

func counter(points ...metricdata.DataPoint[int64]) metricdata.Sum[int64] {
	return metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: points}
}

func upDown(points ...metricdata.DataPoint[int64]) metricdata.Sum[int64] {
	return metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: false, DataPoints: points}
}

func point(v int64, kv ...string) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: attrs(kv...), Value: v}
}

// histogramPoint is the data point of a histogram with the default buckets after obs.
func histogramPoint(set attribute.Set, obs ...time.Duration) metricdata.HistogramDataPoint[float64] {
	bounds := metricvocab.DefaultBuckets()
	p := metricdata.HistogramDataPoint[float64]{Attributes: set, Bounds: bounds, BucketCounts: make([]uint64, len(bounds)+1)}
	for i, d := range obs {
		s := d.Seconds()
		p.Count++
		p.Sum += s
		if lo, _ := p.Min.Value(); i == 0 || s < lo {
			p.Min = metricdata.NewExtrema(s)
		}
		if hi, _ := p.Max.Value(); i == 0 || s > hi {
			p.Max = metricdata.NewExtrema(s)
		}
		b := 0
		for b < len(bounds) && s > bounds[b] {
			b++
		}
		p.BucketCounts[b]++
	}
	return p
}

// TestScriptedTraffic drives a bulkhead through every outcome and the circuit's three
// states and a second one through the other rejection reasons, in a synctest bubble so
// that every duration is exact, and checks every instrument.
func TestScriptedTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader, _, m := setup(t)
		ctx := context.Background()
		pay := create(t, m, "payments", func(cfg *core.Config) {
			cfg.CircuitBreakerEnabled = true
			cfg.FailureThreshold, cfg.SuccessThreshold, cfg.IsolationDuration = 1, 1, time.Second
		})
		tiny := create(t, m, "tiny", func(cfg *core.Config) {
			cfg.MaxConcurrentCalls, cfg.MaxQueueSize, cfg.Timeout = 1, 1, 100*time.Millisecond
		})

		// payments: a success of 20ms, a failure of 10ms that opens the circuit, a refusal,
		// and after the isolation a probe of 5ms that closes it.
		_, err := core.Execute(ctx, pay, sleepThen(20*time.Millisecond, nil))
		require.NoError(t, err)
		_, err = core.Execute(ctx, pay, sleepThen(10*time.Millisecond, errBoom))
		require.NoError(t, err)
		_, err = core.Execute(ctx, pay, sleepThen(0, nil))
		require.ErrorIs(t, err, core.ErrCircuitOpen)
		got := collect(t, reader)
		metricdatatest.AssertEqual(t, metricdata.Metrics{
			Name:        "bulkman.state",
			Description: "1 for the bulkhead's current state, 0 for the others: healthy (circuit closed, or no breaker), degraded (half-open), isolated (open).",
			Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
				point(1, "bulkhead", "payments", "state", "isolated"),
				point(0, "bulkhead", "payments", "state", "degraded"),
				point(0, "bulkhead", "payments", "state", "healthy"),
				point(0, "bulkhead", "tiny", "state", "isolated"),
				point(0, "bulkhead", "tiny", "state", "degraded"),
				point(1, "bulkhead", "tiny", "state", "healthy"),
			}},
		}, got["bulkman.state"], metricdatatest.IgnoreTimestamp())
		time.Sleep(time.Second)
		_, err = core.Execute(ctx, pay, sleepThen(5*time.Millisecond, nil))
		require.NoError(t, err)

		// tiny: a holder (neutral, 100ms), a caller that times out in the queue after
		// 100ms, one refused as full, a run that times out; then shut down and refused.
		p, err := tiny.Acquire(ctx)
		require.NoError(t, err)
		queued := make(chan error, 1)
		go func() { _, err := core.Execute(ctx, tiny, sleepThen(0, nil)); queued <- err }()
		synctest.Wait()
		_, err = core.Execute(ctx, tiny, sleepThen(0, nil))
		require.ErrorIs(t, err, core.ErrFull)
		require.ErrorIs(t, <-queued, core.ErrTimeout)
		require.NoError(t, p.Release(core.Neutral))
		_, err = core.Execute(ctx, tiny, func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
		require.ErrorIs(t, err, core.ErrTimeout)
		synctest.Wait()
		require.NoError(t, tiny.Shutdown(ctx))
		_, err = core.Execute(ctx, tiny, sleepThen(0, nil))
		require.ErrorIs(t, err, core.ErrShutdown)

		got = collect(t, reader)
		ignore := metricdatatest.IgnoreTimestamp()
		check := func(name string, data metricdata.Aggregation) {
			t.Helper()
			m, ok := got[name]
			if assert.True(t, ok, "no %s", name) {
				metricdatatest.AssertAggregationsEqual(t, data, m.Data, ignore)
			}
		}
		check("bulkman.calls", counter(
			point(2, "bulkhead", "payments", "outcome", "success"),
			point(1, "bulkhead", "payments", "outcome", "failure"),
			point(0, "bulkhead", "payments", "outcome", "neutral"),
			point(0, "bulkhead", "tiny", "outcome", "success"),
			point(1, "bulkhead", "tiny", "outcome", "failure"),
			point(1, "bulkhead", "tiny", "outcome", "neutral"),
		))
		check("bulkman.rejections", counter(append(
			rejections("payments", map[string]int64{"circuit_open": 1}),
			rejections("tiny", map[string]int64{"full": 1, "timeout": 1, "shutdown": 1})...)...))
		check("bulkman.timeouts", counter(point(0, "bulkhead", "payments"), point(1, "bulkhead", "tiny")))
		check("bulkman.state_changes", counter(
			point(1, "bulkhead", "payments", "state", "isolated"),
			point(1, "bulkhead", "payments", "state", "degraded"),
			point(1, "bulkhead", "payments", "state", "healthy"),
			point(0, "bulkhead", "tiny", "state", "isolated"),
			point(0, "bulkhead", "tiny", "state", "degraded"),
			point(0, "bulkhead", "tiny", "state", "healthy"),
		))
		for name, v := range map[string][2]int64{
			"bulkman.active_calls":         {0, 0},
			"bulkman.queued_calls":         {0, 0},
			"bulkman.abandoned_calls":      {0, 0},
			"bulkman.max_concurrent_calls": {10, 1},
			"bulkman.max_queue_size":       {100, 1},
			"bulkman.concurrency_limit":    {10, 1},
		} {
			check(name, upDown(point(v[0], "bulkhead", "payments"), point(v[1], "bulkhead", "tiny")))
		}
		ms := time.Millisecond
		check("bulkman.execution.duration", metricdata.Histogram[float64]{
			Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.HistogramDataPoint[float64]{
				histogramPoint(attrs("bulkhead", "payments", "outcome", "success"), 20*ms, 5*ms),
				histogramPoint(attrs("bulkhead", "payments", "outcome", "failure"), 10*ms),
				histogramPoint(attrs("bulkhead", "tiny", "outcome", "neutral"), 100*ms),
				histogramPoint(attrs("bulkhead", "tiny", "outcome", "failure"), 100*ms),
			},
		})
		check("bulkman.queue_wait.duration", metricdata.Histogram[float64]{
			Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.HistogramDataPoint[float64]{
				histogramPoint(attrs("bulkhead", "payments"), 0, 0, 0),
				histogramPoint(attrs("bulkhead", "tiny"), 0, 0),
			},
		})
		assert.Len(t, got, 13, "every instrument but bulkman.open_until_timestamp (no circuit is open)")
		for _, name := range []string{"bulkman.calls", "bulkman.rejections", "bulkman.timeouts", "bulkman.active_calls"} {
			assert.Equal(t, "{call}", got[name].Unit, name)
		}
		assert.Equal(t, "s", got["bulkman.execution.duration"].Unit)
	})
}

func TestNew(t *testing.T) {
	_, err := otelmetrics.New(nil, nil)
	assert.ErrorContains(t, err, "nil MeterProvider")
	assert.ErrorContains(t, err, "nil Manager")
}

// TestOneStepAndClose: New alone attaches the Recorder to the bulkheads the Manager has
// and creates later; Close detaches it.
func TestOneStepAndClose(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { assert.NoError(t, mp.Shutdown(context.Background())) }()
	m := core.NewManager()
	before := create(t, m, "before", nil)
	r, err := otelmetrics.New(m, mp)
	require.NoError(t, err)
	after := create(t, m, "after", nil)
	ctx := context.Background()
	for _, b := range []*core.Bulkhead{before, after} {
		_, err := core.Execute(ctx, b, sleepThen(0, nil))
		require.NoError(t, err)
	}
	got := collect(t, reader)
	assert.Contains(t, got, "bulkman.active_calls")
	for _, name := range []string{"before", "after"} {
		assert.Equal(t, int64(1), sumValue(t, got["bulkman.calls"], attrs("bulkhead", name, "outcome", "success")), name)
	}

	require.NoError(t, r.Close())
	assert.NoError(t, r.Close(), "a second Close does nothing")
	_, err = core.Execute(ctx, after, sleepThen(0, nil))
	require.NoError(t, err)
	got = collect(t, reader)
	assert.NotContains(t, got, "bulkman.max_queue_size", "Close unregisters the callback")
	assert.Equal(t, int64(1), sumValue(t, got["bulkman.calls"], attrs("bulkhead", "after", "outcome", "success")),
		"Close unsubscribes from the events")
}

// TestOpenUntilAndPriority: the end of an isolation is observed only while the circuit
// is open; a rejection counts under the refused call's priority.
func TestOpenUntilAndPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader, r, m := setup(t)
		b := create(t, m, "payments", func(cfg *core.Config) {
			cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.IsolationDuration = true, 1, 30*time.Second
		})
		ctx := context.Background()
		_, err := core.Execute(ctx, b, sleepThen(0, errBoom))
		require.NoError(t, err)
		until := b.Stats().OpenUntil
		require.False(t, until.IsZero())
		got := collect(t, reader)
		if g, ok := got["bulkman.open_until_timestamp"].Data.(metricdata.Gauge[float64]); assert.True(t, ok) && assert.Len(t, g.DataPoints, 1) {
			assert.Equal(t, float64(until.UnixNano())/1e9, g.DataPoints[0].Value)
			assert.Equal(t, "s", got["bulkman.open_until_timestamp"].Unit)
		}
		time.Sleep(30 * time.Second)
		_, err = core.Execute(ctx, b, sleepThen(0, nil))
		require.NoError(t, err)
		got = collect(t, reader)
		if g, ok := got["bulkman.open_until_timestamp"].Data.(metricdata.Gauge[float64]); ok {
			assert.Empty(t, g.DataPoints, "closed: no end of isolation")
		}

		otelmetrics.Observe(r, core.Event{Kind: core.EventRejected, Bulkhead: "payments", Err: core.ErrFull, Priority: core.PriorityLow})
		got = collect(t, reader)
		assert.Equal(t, int64(1), sumValue(t, got["bulkman.rejections"], attrs("bulkhead", "payments", "reason", "full", "priority", "low")))
		assert.Equal(t, int64(0), sumValue(t, got["bulkman.rejections"], attrs("bulkhead", "payments", "reason", "full", "priority", "normal")))
	})
}

// TestConcurrentUse records from several goroutines while a reader collects.
func TestConcurrentUse(t *testing.T) {
	reader, _, m := setup(t)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		create(t, m, n, func(cfg *core.Config) { cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 2, 2 })
	}
	ctx := context.Background()
	stop := make(chan struct{})
	collected := make(chan error, 1)
	go func() {
		var first error
		for {
			select {
			case <-stop:
				collected <- first
				return
			default:
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(ctx, &rm); err != nil && first == nil {
				first = err
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				_, _ = core.ExecuteIn(ctx, m, names[(g+i)%len(names)], sleepThen(0, nil))
			}
		})
	}
	wg.Wait()
	close(stop)
	require.NoError(t, <-collected)

	var total int64
	if sum, ok := collect(t, reader)["bulkman.calls"].Data.(metricdata.Sum[int64]); assert.True(t, ok) {
		for _, p := range sum.DataPoints {
			total += p.Value
		}
	}
	var want int64
	for _, s := range m.Stats() {
		want += s.TotalExecutions
	}
	assert.Equal(t, want, total)
}

// TestRemovedBulkhead: a bulkhead taken out of the Manager is no longer observed (its
// gauges go, its calls are not counted) and keeps its counters, which a new bulkhead of
// the same name goes on.
func TestRemovedBulkhead(t *testing.T) {
	reader, _, m := setup(t)
	b := create(t, m, "tenant-a", nil)
	create(t, m, "tenant-b", nil)
	_, err := core.Execute(context.Background(), b, sleepThen(0, nil))
	require.NoError(t, err)
	_, ok := m.Remove("tenant-a")
	require.True(t, ok)
	_, err = core.Execute(context.Background(), b, sleepThen(0, nil)) // its holder still uses it
	require.NoError(t, err)

	got := collect(t, reader)
	metricdatatest.AssertAggregationsEqual(t, upDown(point(0, "bulkhead", "tenant-b")),
		got["bulkman.active_calls"].Data, metricdatatest.IgnoreTimestamp())
	success := attrs("bulkhead", "tenant-a", "outcome", "success")
	assert.Equal(t, int64(1), sumValue(t, got["bulkman.calls"], success), "counters stay")

	again := create(t, m, "tenant-a", nil)
	_, err = core.Execute(context.Background(), again, sleepThen(0, nil))
	require.NoError(t, err)
	assert.Equal(t, int64(2), sumValue(t, collect(t, reader)["bulkman.calls"], success))
}

// sumValue returns the value of the data point of counter m with attributes set.
func sumValue(t *testing.T, m metricdata.Metrics, set attribute.Set) int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is not an int64 sum", m.Name)
	for _, p := range sum.DataPoints {
		if p.Attributes.Equals(&set) {
			return p.Value
		}
	}
	t.Fatalf("%s has no point %v", m.Name, set.Encoded(attribute.DefaultEncoder()))
	return 0
}

// TestUnknownEvents: an outcome, a rejection error or a state the vocabulary does not know
// is not counted (and does not panic).
func TestUnknownEvents(t *testing.T) {
	reader, r, m := setup(t)
	create(t, m, "odd", nil)
	for _, e := range []core.Event{
		{Kind: core.EventFinished, Outcome: core.Outcome(200)},
		{Kind: core.EventRejected, Err: errors.New("other")},
		{Kind: core.EventStateChanged, To: core.State(-1)},
		{Kind: core.EventStateChanged, To: core.State(3)},
	} {
		e.Bulkhead = "odd"
		otelmetrics.Observe(r, e)
	}
	got := collect(t, reader)
	for metric, key := range map[string]string{"bulkman.state_changes": "state", "bulkman.calls": "outcome", "bulkman.rejections": "reason"} {
		sum, ok := got[metric].Data.(metricdata.Sum[int64])
		require.True(t, ok, metric)
		assert.NotEmpty(t, sum.DataPoints, metric)
		for _, p := range sum.DataPoints {
			v, _ := p.Attributes.Value(attribute.Key(key))
			assert.Zero(t, p.Value, "%s %s", metric, v.String())
		}
	}
	_, ok := got["bulkman.execution.duration"]
	assert.False(t, ok, "nothing recorded")
}

// TestHookDoesNotAllocate: once a bulkhead's attribute sets are built, the hook allocates
// nothing, and neither do the SDK's measurements with its default aggregation.
func TestHookDoesNotAllocate(t *testing.T) {
	_, r, m := setup(t)
	b := create(t, m, "allocs", func(cfg *core.Config) { cfg.CircuitBreakerEnabled = true })
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	_, _ = core.Execute(ctx, b, fn) // the first event builds the bulkhead's attribute sets
	allocs := testing.AllocsPerRun(1000, func() { _, _ = core.Execute(ctx, b, fn) })
	assert.Zero(t, allocs, "Execute with the recorder's hook")

	e := core.Event{Kind: core.EventRejected, Bulkhead: "allocs", Err: core.ErrFull}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { otelmetrics.Observe(r, e) }), "a rejection")
}
