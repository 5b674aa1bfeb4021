package core

import (
	"context"
	"testing"
	"time"
)

// BenchmarkExecuteRule compares the two rules of the circuit on a successful call, which
// is what a healthy dependency costs: the consecutive rule records a success only after a
// failure, the failure-rate rule records every call in failsafe-go's window.
//
//	go test -run '^$' -bench 'ExecuteRule' -benchmem -count 10 ./core/
func BenchmarkExecuteRule(b *testing.B) {
	for _, rule := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"consecutive", nil},
		{"failure-rate", func(c *Config) {
			c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 50, 10*time.Second, 20
		}},
	} {
		b.Run(rule.name, func(b *testing.B) {
			bh := benchBulkhead(b, rule.mutate)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Execute(ctx, bh, noop); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(rule.name+"/parallel", func(b *testing.B) {
			bh := benchBulkhead(b, rule.mutate)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := Execute(ctx, bh, noop); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
