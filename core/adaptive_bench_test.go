package core

import (
	"context"
	"testing"
	"time"
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
				acquireRelease(b, bh)
			}
		})
	}
}

// BenchmarkAdaptivePaired measures Execute and Acquire/Release on a static and an adaptive
// bulkhead in the same loop, alternating batches of calls, so that what the machine does
// meanwhile falls on both alike. It reports each one's ns/call and the ratio
// x-adaptive (the adaptive one's time over the static one's; the target is at most 1.1).
//
//	go test -run '^$' -bench AdaptivePaired -benchmem -count 6 ./core/
func BenchmarkAdaptivePaired(b *testing.B) {
	const batch = 64
	ctx := context.Background()
	for _, op := range []struct {
		name string
		call func(bh *Bulkhead)
	}{
		{"Execute", func(bh *Bulkhead) {
			if _, err := Execute(ctx, bh, noop); err != nil {
				b.Fatal(err)
			}
		}},
		{"AcquireRelease", func(bh *Bulkhead) { acquireRelease(b, bh) }},
	} {
		b.Run(op.name, func(b *testing.B) {
			static := benchBulkhead(b, func(c *Config) { c.CircuitBreakerEnabled = false })
			adaptive := benchBulkhead(b, func(c *Config) {
				c.CircuitBreakerEnabled = false
				c.Adaptive = &AdaptiveConfig{MinConcurrentCalls: 1}
			})
			var spent [2]time.Duration
			b.ReportAllocs()
			for b.Loop() {
				for i, bh := range []*Bulkhead{static, adaptive} {
					start := time.Now()
					for range batch {
						op.call(bh)
					}
					spent[i] += time.Since(start)
				}
			}
			calls := float64(b.N * batch)
			b.ReportMetric(float64(spent[0])/calls, "ns/call-static")
			b.ReportMetric(float64(spent[1])/calls, "ns/call-adaptive")
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "x-adaptive")
			b.ReportMetric(0, "ns/op") // an op is 2 x 64 calls: see ns/call
		})
	}
}
