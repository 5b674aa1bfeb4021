package core

import (
	"context"
	"testing"
)

// BenchmarkAdaptive compares Execute and Acquire/Release on an adaptive bulkhead with the
// same on a static one in one run: the adaptive rows must cost at most 1.1x the static
// ones. (failsafe-go's adaptive limiter is measured against them in bench/.)
//
//	go test -run '^$' -bench Adaptive -benchmem -count 6 ./core/
func BenchmarkAdaptive(b *testing.B) {
	static := func(c *Config) { c.CircuitBreakerEnabled = false }
	adaptive := func(c *Config) {
		c.CircuitBreakerEnabled = false
		c.Adaptive = &AdaptiveConfig{MinConcurrentCalls: 1}
	}
	ctx := context.Background()
	for _, m := range []struct {
		name   string
		mutate func(*Config)
	}{{"static", static}, {"adaptive", adaptive}} {
		b.Run("Execute/"+m.name, func(b *testing.B) {
			bh := benchBulkhead(b, m.mutate)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Execute(ctx, bh, noop); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("ExecuteParallel/"+m.name, func(b *testing.B) {
			bh := benchBulkhead(b, m.mutate)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := Execute(ctx, bh, noop); err != nil {
						b.Fatal(err) // the limit never falls below what runs: no ErrFull
					}
				}
			})
		})
		b.Run("AcquireRelease/"+m.name, func(b *testing.B) {
			bh := benchBulkhead(b, m.mutate)
			b.ReportAllocs()
			for b.Loop() {
				p, err := bh.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = noop(ctx)
				if err := p.Release(Success); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
