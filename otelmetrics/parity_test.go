package otelmetrics_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/otelmetrics"
	"github.com/bulkman-go/bulkman/prommetrics"
)

// TestPrometheusParity: exported through OpenTelemetry's Prometheus exporter (default
// translation), the instruments become the metric families of prommetrics, with the same
// types, label names and series: the same counter and gauge values, and the same count,
// sum and buckets in each histogram. The calls take different times so that their
// buckets differ; "idle" never runs, so it has no histogram in either.
func TestPrometheusParity(t *testing.T) {
	promReg, otelReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	m := core.NewManager()
	collector := prommetrics.New(m)
	require.NoError(t, promReg.Register(collector))
	exporter, err := otelprom.New(otelprom.WithRegisterer(otelReg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { assert.NoError(t, mp.Shutdown(context.Background())) }()
	_, err = otelmetrics.New(m, mp)
	require.NoError(t, err)

	cfg := core.DefaultConfig("payments")
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.IsolationDuration = true, 1, time.Hour
	b, err := m.Create(cfg)
	require.NoError(t, err)
	_, err = m.Create(core.DefaultConfig("idle"))
	require.NoError(t, err)
	ctx := context.Background()
	_, _ = core.Execute(ctx, b, sleepThen(3*time.Millisecond, nil))
	_, _ = core.Execute(ctx, b, sleepThen(30*time.Millisecond, errBoom))                // opens
	_, _ = core.Execute(ctx, b, sleepThen(0, nil))                                      // refused
	_, _ = core.Execute(core.WithPriority(ctx, core.PriorityLow), b, sleepThen(0, nil)) // refused, low priority

	type family struct {
		kind   string
		labels []string
		values map[string]float64 // by label values, and for histograms count, sum and le
	}
	gather := func(g prometheus.Gatherer) map[string]family {
		t.Helper()
		mfs, err := g.Gather()
		require.NoError(t, err)
		out := map[string]family{}
		for _, mf := range mfs {
			f := family{kind: mf.GetType().String(), values: map[string]float64{}}
			for _, metric := range mf.GetMetric() {
				var key string
				for _, l := range metric.GetLabel() {
					if !slices.Contains(f.labels, l.GetName()) {
						f.labels = append(f.labels, l.GetName())
					}
					key += l.GetName() + "=" + l.GetValue() + ","
				}
				if c := metric.GetCounter(); c != nil {
					f.values[key] = c.GetValue()
				}
				if g := metric.GetGauge(); g != nil {
					f.values[key] = g.GetValue()
				}
				if h := metric.GetHistogram(); h != nil {
					f.values[key+"count"] = float64(h.GetSampleCount())
					f.values[key+"sum"] = h.GetSampleSum()
					for _, b := range h.GetBucket() {
						f.values[key+"le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)] = float64(b.GetCumulativeCount())
					}
				}
			}
			slices.Sort(f.labels)
			out[mf.GetName()] = f
		}
		return out
	}
	want, got := gather(promReg), gather(otelReg)
	require.Len(t, want, 14, "every metric: the circuit of payments is open")
	assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)))
	for name, w := range want {
		g, ok := got[name]
		if !assert.True(t, ok, "OpenTelemetry has no %s (it has %v)", name, slices.Sorted(maps.Keys(got))) {
			continue
		}
		assert.Equal(t, w.kind, g.kind, name)
		assert.Equal(t, w.labels, g.labels, name)
		assert.Equal(t, w.values, g.values, name)
	}
}
