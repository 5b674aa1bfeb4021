package bench

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// The event hooks (core.WithEventHook) are what the observability packages (prommetrics,
// otelmetrics, grpchealth) attach to. BenchmarkEventHook prices the hook mechanism itself on
// Execute's path: no hook, a hook that does nothing, and a hook that counts every event in
// an atomic counter per kind, the least a metrics exporter does. The bulkhead is the peers'
// (breaker on, no timeout), the function noop.

// eventCounter counts events by kind.
type eventCounter struct{ n [8]atomic.Int64 }

func (c *eventCounter) hook(e core.Event) { c.n[e.Kind&7].Add(1) }

// hookRows are the configurations of BenchmarkEventHook; counter is the hook=count row's.
func hookRows(counter *eventCounter) []struct {
	name string
	opts []core.Option
} {
	return []struct {
		name string
		opts []core.Option
	}{
		{"hook=none", nil},
		{"hook=noop", []core.Option{core.WithEventHook(func(core.Event) {})}},
		{"hook=count", []core.Option{core.WithEventHook(counter.hook)}},
	}
}

// BenchmarkEventHook runs core.Execute with each hook configuration, serial and parallel:
// BenchmarkPeers' bulkman-execute-cb row on noop, with the hook. Names read
// EventHook/hook=<none|noop|count>/<serial|parallel>.
func BenchmarkEventHook(b *testing.B) {
	var counter eventCounter
	for _, row := range hookRows(&counter) {
		b.Run(row.name, func(b *testing.B) {
			c := wrapExecute(withBreaker, row.opts...)
			b.Run("serial", func(b *testing.B) { runSerial(b, c(b, noop)) })
			b.Run("parallel", func(b *testing.B) { runParallel(b, c(b, noop)) })
		})
	}
}

// TestEventHookCounts checks that the counting hook sees one finished event per call.
func TestEventHookCounts(t *testing.T) {
	var counter eventCounter
	rows := hookRows(&counter)
	b := newBulkman(t, withBreaker, rows[2].opts...)
	for range 10 {
		r, err := core.Execute(context.Background(), b, func(context.Context) (uint64, error) { return noop() })
		require.NoError(t, err)
		require.True(t, r.Success)
	}
	assert.Equal(t, int64(10), counter.n[core.EventFinished&7].Load())
}
