package core

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/priority"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
)

// BenchmarkFailsafePolicy prices FailsafePolicy inside failsafe-go's executor against
// failsafe-go's own bulkhead policy in the same place, in one run (-count interleaves the
// rows): alone, behind a retry policy, and with a timeout (the bulkhead's own Timeout
// against failsafe-go's timeout policy inside its bulkhead). The bench module holds the
// same comparison as interleaved blocks (BenchmarkFailsafePolicyPaired).
func BenchmarkFailsafePolicy(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fn := func() (int, error) { return noop(ctx) }
	fsBulkhead := bulkhead.New[int](1024)
	retry := retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build()
	plain := FailsafePolicy[int](benchBulkhead(b, func(c *Config) { c.CircuitBreakerEnabled = false }))
	withBreaker := FailsafePolicy[int](benchBulkhead(b, nil))
	timed := FailsafePolicy[int](benchBulkhead(b, func(c *Config) { c.Timeout = time.Second }))
	rows := []struct {
		name string
		exec failsafe.Executor[int]
	}{
		{"failsafe-bh", failsafe.With[int](fsBulkhead)},
		{"bulkman", failsafe.With(plain)},
		{"failsafe-retry+bh", failsafe.With[int](retry, fsBulkhead)},
		{"bulkman-retry", failsafe.With(retry, plain)},
		{"bulkman-retry-cb", failsafe.With(retry, withBreaker)},
		{"failsafe-retry+bh+timeout", failsafe.With[int](retry, fsBulkhead, timeout.New[int](time.Second))},
		{"bulkman-retry-timeout", failsafe.With(retry, timed)},
	}
	for _, r := range rows {
		b.Run(r.name, func(b *testing.B) {
			exec := r.exec.WithContext(ctx)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := exec.Get(fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type benchKey int

// BenchmarkPriorityFrom prices PriorityFrom on a context like a server handler's (a
// cancellable context under a few values), against bulkmanKeyOnly, the one lookup it
// made before it looked for failsafe-go's priorities: the "none" rows are the price of
// that look for a call that carries no priority at all.
func BenchmarkPriorityFrom(b *testing.B) {
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 4 {
		base = context.WithValue(base, benchKey(i), i)
	}
	bulkmanKeyOnly := func(ctx context.Context) Priority {
		if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
			return p
		}
		return PriorityNormal
	}
	rows := []struct {
		name string
		ctx  context.Context
		fn   func(context.Context) Priority
		want Priority
	}{
		{"none/bulkman-key-only", base, bulkmanKeyOnly, PriorityNormal},
		{"none", base, PriorityFrom, PriorityNormal},
		{"bulkman", WithPriority(base, PriorityHigh), PriorityFrom, PriorityHigh},
		{"failsafe-level", priority.ContextWithLevel(base, 350), PriorityFrom, PriorityHigh},
		{"failsafe-priority", priority.High.AddTo(base), PriorityFrom, PriorityHigh},
	}
	for _, r := range rows {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r.fn(r.ctx) != r.want {
					b.Fatal("wrong priority")
				}
			}
		})
	}
}
