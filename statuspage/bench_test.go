package statuspage_test

import (
	"context"
	"testing"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/cputime"
	"github.com/bulkman-go/bulkman/statuspage"
)

var sink int

//go:noinline
func noop(context.Context) (int, error) { sink++; return sink, nil }

// BenchmarkHookOverhead prices the JSON handler's history on the path of a call: Execute
// on a bulkhead of a Manager with no subscriber, and of one that JSON attached to,
// interleaved in batches of 256 calls (rotating which goes first) and timed in CPU time
// of the benchmark's locked OS thread, which does not count the time other processes
// hold the CPU. It reports the baseline's time per call and the ratio; run it with -count
// and read the medians.
func BenchmarkHookOverhead(b *testing.B) {
	const batch = 256
	bulkhead := func(m *core.Manager) *core.Bulkhead {
		cfg := core.DefaultConfig("bench")
		cfg.MaxConcurrentCalls = 1024
		cfg.CircuitBreakerEnabled = true
		bh, err := m.Create(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return bh
	}
	attached := core.NewManager()
	statuspage.JSON(attached)
	b.ReportAllocs()
	spent := cputime.Alternate(b, batch, execute(b, bulkhead(core.NewManager())), execute(b, bulkhead(attached)))
	calls := float64(b.N) * batch
	b.ReportMetric(float64(spent[0].Nanoseconds())/calls, "base-cpu-ns/call")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "statuspage-ratio")
}

// execute returns a call of noop through bh.
func execute(b *testing.B, bh *core.Bulkhead) func() {
	return func() {
		if _, err := core.Execute(context.Background(), bh, noop); err != nil {
			b.Fatal(err)
		}
	}
}
