package core

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkExecuteContended runs Execute from 16 goroutines per CPU through one permit, so
// that nearly every call waits in the queue: without priorities or tenants (the FIFO
// queue), and with a priority and a tenant per goroutine (4 priorities, 4 tenants). The
// rows should cost the same and allocate the same (the waiter and its channel): the queue
// allocates nothing of its own.
func BenchmarkExecuteContended(b *testing.B) {
	for _, classed := range []bool{false, true} {
		name := "fifo"
		if classed {
			name = "priorities+tenants"
		}
		b.Run(name, func(b *testing.B) {
			bh := benchBulkhead(b, func(c *Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 1<<12 })
			fn := func(context.Context) (int, error) { runtime.Gosched(); return 0, nil }
			var n atomic.Int32
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				if classed {
					i := int(n.Add(1))
					ctx = WithTenant(WithPriority(ctx, Priority(i%numPriorities)+PriorityLow), []string{"a", "b", "c", "d"}[i/numPriorities%4])
				}
				for pb.Next() {
					if _, err := Execute(ctx, bh, fn); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
