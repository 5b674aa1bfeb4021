package bench

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// bulkman's bulkhead as a failsafe-go policy (core.FailsafePolicy) against failsafe-go's
// own bulkhead policy, each behind a retry policy, inside failsafe-go's executor: the cost
// a team already composing failsafe-go policies pays for choosing bulkman's bulkhead. Every
// row builds its executor once and runs each call with WithContext(ctx), ctx a request's
// cancellable context, as a server does per request. The retry never retries: the
// workload always succeeds.

// policyBase is the row the ratios of BenchmarkFailsafePolicyPaired are against.
const policyBase = "failsafe-retry+bh"

// policyCase is one row: build returns the executor.
type policyCase struct {
	name  string
	build func(tb testing.TB) failsafe.Executor[uint64]
}

func newRetry() retrypolicy.RetryPolicy[uint64] {
	return retrypolicy.NewBuilder[uint64]().WithMaxAttempts(3).Build()
}

// policyCases: failsafe-go's bulkhead (capacity permits, no wait) and bulkman's (capacity,
// MaxQueueSize 0), alone behind the retry, then with the breaker, then with a 1s timeout:
// failsafe-go's timeout policy inside its bulkhead (the permit is held while the timed
// attempt runs, as bulkman's Timeout holds it) against bulkman's own Timeout.
func policyCases() []policyCase {
	fs := func(policies ...func() failsafe.Policy[uint64]) func(testing.TB) failsafe.Executor[uint64] {
		return func(testing.TB) failsafe.Executor[uint64] {
			ps := []failsafe.Policy[uint64]{newRetry()}
			for _, p := range policies {
				ps = append(ps, p())
			}
			return failsafe.With(ps...)
		}
	}
	fsBulkhead := func() failsafe.Policy[uint64] { return bulkhead.New[uint64](capacity) }
	fsBreaker := func() failsafe.Policy[uint64] { return newFailsafeBreaker[uint64]() }
	fsTimeout := func() failsafe.Policy[uint64] { return timeout.New[uint64](callTimeout) }
	bm := func(g guard) func(testing.TB) failsafe.Executor[uint64] {
		return func(tb testing.TB) failsafe.Executor[uint64] {
			return failsafe.With(newRetry(), core.FailsafePolicy[uint64](newBulkman(tb, g)))
		}
	}
	return []policyCase{
		{policyBase, fs(fsBulkhead)},
		{"bulkman-retry+policy", bm(plain)},
		{"failsafe-retry+cb+bh", fs(fsBreaker, fsBulkhead)},
		{"bulkman-retry+policy-cb", bm(withBreaker)},
		{"failsafe-retry+cb+bh+timeout", fs(fsBreaker, fsBulkhead, fsTimeout)},
		{"bulkman-retry+policy-timeout+cb", bm(timeoutBreaker)},
	}
}

// policyCall is one call of the row: the executor on the request's context.
func policyCall(tb testing.TB, pc policyCase, fn call) call {
	exec := pc.build(tb)
	ctx := requestContext(tb)
	return func() (uint64, error) { return exec.WithContext(ctx).Get(fn) }
}

// BenchmarkFailsafePolicy runs every row alone (b.Loop) and under b.RunParallel, on the
// noop workload. Names read FailsafePolicy/<row>/<serial|parallel>.
func BenchmarkFailsafePolicy(b *testing.B) {
	for _, pc := range policyCases() {
		b.Run(pc.name, func(b *testing.B) {
			b.Run("serial", func(b *testing.B) { runSerial(b, policyCall(b, pc, noop)) })
			b.Run("parallel", func(b *testing.B) { runParallel(b, policyCall(b, pc, noop)) })
		})
	}
}

// policyPairedRows: the rows of policyCases as blocks of pairedBlock calls.
func policyPairedRows(tb testing.TB) []pairedRow {
	var rows []pairedRow
	for _, pc := range policyCases() {
		c := policyCall(tb, pc, noop)
		rows = append(rows, pairedRow{pc.name, func(tb testing.TB) {
			for range pairedBlock {
				if v, err := c(); err != nil || v != 42 {
					tb.Fatalf("call returned (%v, %v)", v, err)
				}
			}
		}})
	}
	return rows
}

// BenchmarkFailsafePolicyPaired runs policyPairedRows interleaved: every op runs a block
// of each row, rotating which goes first, so that every row sees the same load at the
// same moment. Each block is timed twice: in wall time (ns/call-<row>) and in CPU time of
// the benchmark's OS thread (cpu-ns/call-<row>), which a burst of other processes' work on
// this shared machine does not reach (the thread is locked; what the rows run on other
// threads, such as the garbage collector's background work, is not in it).
// x-failsafe-<row> and cpu-x-failsafe-<row> are failsafe-retry+bh's time over the row's:
// above 1, the row is cheaper than failsafe-go's own bulkhead policy.
func BenchmarkFailsafePolicyPaired(b *testing.B) {
	rows := policyPairedRows(b)
	base := slices.IndexFunc(rows, func(r pairedRow) bool { return r.name == policyBase })
	allocs := make([]float64, len(rows))
	for i, r := range rows {
		allocs[i] = testing.AllocsPerRun(pairedAllocRuns, func() { r.run(b) }) / pairedBlock
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	wall := make([]time.Duration, len(rows))
	cpu := make([]time.Duration, len(rows))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for k := range rows {
			r := (i + k) % len(rows)
			start, startCPU := time.Now(), threadCPUTime(b)
			rows[r].run(b)
			cpu[r] += threadCPUTime(b) - startCPU
			wall[r] += time.Since(start)
		}
	}
	calls := float64(b.N * pairedBlock)
	for i, r := range rows {
		b.ReportMetric(float64(wall[i].Nanoseconds())/calls, "ns/call-"+r.name)
		b.ReportMetric(float64(cpu[i].Nanoseconds())/calls, "cpu-ns/call-"+r.name)
		b.ReportMetric(allocs[i], "allocs/call-"+r.name)
		if i != base {
			b.ReportMetric(float64(wall[base])/float64(wall[i]), "x-failsafe-"+r.name)
			b.ReportMetric(float64(cpu[base])/float64(cpu[i]), "cpu-x-failsafe-"+r.name)
		}
	}
}

// TestFailsafePolicyRowsServe runs every row's block once, and checks that a bulkman row
// counts its calls as the bulkhead's successes.
func TestFailsafePolicyRowsServe(t *testing.T) {
	for _, r := range policyPairedRows(t) {
		t.Run(r.name, func(t *testing.T) { r.run(t) })
	}
	b := newBulkman(t, withBreaker)
	exec := failsafe.With(newRetry(), core.FailsafePolicy[uint64](b))
	for range pairedBlock {
		v, err := exec.WithContext(requestContext(t)).Get(noop)
		require.NoError(t, err)
		require.Equal(t, uint64(42), v)
	}
	s := b.Stats()
	require.Equal(t, int64(pairedBlock), s.SuccessfulExecutions)
	require.Equal(t, s.TotalExecutions, s.SuccessfulExecutions)
}
