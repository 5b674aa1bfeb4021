package otelmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/otelmetrics"
)

func ExampleRecorder() {
	reader := sdkmetric.NewManualReader() // in production, a periodic reader and an exporter
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	m := core.NewManager()
	r, err := otelmetrics.New(m, mp) // one step: events and Stats of every bulkhead of m
	if err != nil {
		panic(err)
	}
	defer r.Close()

	b, _ := m.Create(core.DefaultConfig("payments"))
	ctx := context.Background()
	_, _ = core.Execute(ctx, b, func(context.Context) (string, error) { return "ok", nil })
	_, _ = core.Execute(ctx, b, func(context.Context) (string, error) { return "", errors.New("declined") })

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, metric := range sm.Metrics {
			if sum, ok := metric.Data.(metricdata.Sum[int64]); ok && metric.Name == "bulkman.calls" {
				for _, p := range sum.DataPoints {
					outcome, _ := p.Attributes.Value("outcome")
					lines = append(lines, fmt.Sprintf("%s outcome=%s %d", metric.Name, outcome.AsString(), p.Value))
				}
			}
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// bulkman.calls outcome=failure 1
	// bulkman.calls outcome=neutral 0
	// bulkman.calls outcome=success 1
}
