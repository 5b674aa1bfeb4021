package otelmetrics_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/otelmetrics"
)

// The cost of the Recorder's hook on the path of a call, with the OpenTelemetry SDK
// behind it, against no hook, in one run:
//
//	go test -run '^$' -bench . -benchmem -count 10 ./otelmetrics/ | tee otel.txt
//	benchstat -col /hook otel.txt

var sink int

//go:noinline
func noop(context.Context) (int, error) { sink++; return sink, nil }

func BenchmarkExecute(b *testing.B) {
	for _, hooked := range []bool{false, true} {
		name := "hook=none"
		if hooked {
			name = "hook=otel"
		}
		b.Run(name, func(b *testing.B) {
			m := core.NewManager()
			if hooked {
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				defer func() { _ = mp.Shutdown(context.Background()) }()
				if _, err := otelmetrics.New(m, mp); err != nil {
					b.Fatal(err)
				}
			}
			cfg := core.DefaultConfig("bench")
			cfg.MaxConcurrentCalls = 1024
			cfg.CircuitBreakerEnabled = true
			bh, err := m.Create(cfg)
			if err != nil {
				b.Fatal(err)
			}
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
