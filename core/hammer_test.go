package core_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// tally is what the callers of one bulkhead saw; at the end it must match its Stats
// exactly.
type tally struct {
	succeeded, failed, rejected, timedOut atomic.Int64
	// Kinds of outcome, to show that the mix really happened.
	panics, full, open, queueTimeouts, callerGaveUp atomic.Int64

	running, mostRunning atomic.Int32
}

// enter and leave bracket a function's run, tracking the most that ran at once.
func (t *tally) enter() {
	n := t.running.Add(1)
	for m := t.mostRunning.Load(); n > m && !t.mostRunning.CompareAndSwap(m, n); m = t.mostRunning.Load() {
	}
}

func (t *tally) leave() { t.running.Add(-1) }

// refused records a call the bulkhead refused or gave up on.
func (t *tally) refused(err error, admitted bool) {
	switch {
	case errors.Is(err, core.ErrTimeout) && admitted:
		t.failed.Add(1)
		t.timedOut.Add(1)
	case errors.Is(err, core.ErrTimeout):
		t.rejected.Add(1)
		t.queueTimeouts.Add(1)
	case errors.Is(err, core.ErrFull):
		t.rejected.Add(1)
		t.full.Add(1)
	case errors.Is(err, core.ErrCircuitOpen):
		t.rejected.Add(1)
		t.open.Add(1)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		t.callerGaveUp.Add(1)
		if admitted {
			t.failed.Add(1)
		}
	default:
		panic(fmt.Sprintf("unexpected error %v", err))
	}
}

// TestHammer runs at least 200,000 mixed calls (successes, failures, panics, timeouts,
// caller cancellations, rejections, two-step permits) from 64 goroutines against two
// bulkheads, one with a Timeout and one without, while readers check on every snapshot that
// total = successful + failed + active, active + abandoned <= MaxConcurrentCalls and
// 0 <= in_flight <= capacity. At the end the callers' tally must match Stats exactly, and
// each bulkhead must be idle: nothing active, in flight or abandoned.
// It runs in real time, with tiny timeouts.
func TestHammer(t *testing.T) {
	calls := 200_000
	if testing.Short() {
		calls = 20_000
	}
	const workers = 64
	newHammered := func(name string, timeout time.Duration) *core.Bulkhead {
		return newBulkhead(t, func(c *core.Config) {
			c.Name = name
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 8, 24, timeout
			c.CircuitBreakerEnabled, c.FailureThreshold, c.SuccessThreshold = true, 8, 2
			c.IsolationDuration = 100 * time.Microsecond
		})
	}
	bulkheads := []*core.Bulkhead{newHammered("timed", 2*time.Millisecond), newHammered("plain", 0)}
	tallies := []*tally{new(tally), new(tally)}

	// Readers: every snapshot must keep the rules (invariantsHold).
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var snapshots atomic.Int64
	for r := range 2 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := bulkheads[(i+r)%2].Stats()
				snapshots.Add(1)
				if !invariantsHold(s) {
					assertInvariants(t, s)
					return
				}
				runtime.Gosched()
			}
		})
	}

	hammerBoth(bulkheads, tallies, workers, calls, 42)
	close(stop)
	readers.Wait()

	for k, b := range bulkheads {
		tl := tallies[k]
		s := shutdownAndMatch(t, b, tl)
		assert.LessOrEqual(t, tl.mostRunning.Load(), int32(s.MaxConcurrentCalls), "%s: never more than MaxConcurrentCalls at once", b.Name())
		t.Logf("%s: %d ok, %d failed (%d panics, %d timed out), %d rejected (%d full, %d open, %d queue timeouts), %d callers gave up; most at once %d",
			b.Name(), s.SuccessfulExecutions, s.FailedExecutions, tl.panics.Load(), s.TimedOutExecutions,
			s.RejectedExecutions, tl.full.Load(), tl.open.Load(), tl.queueTimeouts.Load(), tl.callerGaveUp.Load(), tl.mostRunning.Load())
		assert.Positive(t, s.SuccessfulExecutions, "%s: the mix has successes", b.Name())
		assert.Positive(t, tl.panics.Load(), "%s: the mix has panics", b.Name())
		assert.Positive(t, tl.full.Load(), "%s: the mix has ErrFull", b.Name())
		assert.Positive(t, tl.callerGaveUp.Load(), "%s: the mix has callers giving up", b.Name())
	}
	assert.Positive(t, tallies[0].timedOut.Load(), "the timed bulkhead has timeouts")
	t.Logf("%d snapshots checked", snapshots.Load())
}

// invariantsHold reports whether s keeps the rules assertInvariants checks, cheaply, for
// the readers' hot loop.
func invariantsHold(s core.Stats) bool {
	return s.TotalExecutions == s.SuccessfulExecutions+s.FailedExecutions+int64(s.ActiveTasks) &&
		s.ActiveTasks >= 0 && s.AbandonedTasks >= 0 && s.ActiveTasks+s.AbandonedTasks <= s.MaxConcurrentCalls &&
		s.InFlightCount >= 0 && s.InFlightCount <= s.MaxConcurrentCalls+s.MaxQueueSize
}

// hammerBoth has workers make calls between them, alternating between the two
// bulkheads, each worker with its own random sequence drawn from seed.
func hammerBoth(bulkheads []*core.Bulkhead, tallies []*tally, workers, calls int, seed uint64) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), seed))
			for i := range calls / workers {
				k := (w + i) % 2
				hammerOnce(bulkheads[k], tallies[k], rng)
			}
		})
	}
	wg.Wait()
}

// shutdownAndMatch shuts b down, waiting for every permit, and checks that its Stats are
// idle and match what the callers saw, call for call. It returns the final Stats.
func shutdownAndMatch(t *testing.T, b *core.Bulkhead, tl *tally) core.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.Shutdown(ctx), "every permit comes back, abandoned ones included")
	s := b.Stats()
	assertIdle(t, s)
	assert.Equal(t, tl.succeeded.Load(), s.SuccessfulExecutions, "%s: successful", b.Name())
	assert.Equal(t, tl.failed.Load(), s.FailedExecutions, "%s: failed", b.Name())
	assert.Equal(t, tl.rejected.Load(), s.RejectedExecutions, "%s: rejected", b.Name())
	assert.Equal(t, tl.timedOut.Load(), s.TimedOutExecutions, "%s: timed out", b.Name())
	assert.Equal(t, s.SuccessfulExecutions+s.FailedExecutions, s.TotalExecutions, "%s: total", b.Name())
	return s
}

// hammerOnce makes one call of a random kind and tallies what the caller saw.
func hammerOnce(b *core.Bulkhead, tl *tally, rng *rand.Rand) {
	timed := b.Config().Timeout > 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var fn func(context.Context) (int, error)
	panicking := false
	switch op := rng.IntN(16); {
	case op < 6: // success
		fn = func(context.Context) (int, error) { runtime.Gosched(); return 1, nil }
	case op < 8: // the dependency fails
		fn = func(context.Context) (int, error) { return 0, errBoom }
	case op < 9: // the dependency panics
		panicking = true
		fn = func(context.Context) (int, error) { panic(errBoom) }
	case op < 10: // slow: past the Timeout, or the caller's own short deadline
		if !timed {
			ctx, cancel = context.WithTimeout(context.Background(), 200*time.Microsecond)
			defer cancel()
		}
		fn = func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
	case op < 11: // hung, ignoring its ctx: abandoned at the Timeout
		fn = func(context.Context) (int, error) { time.Sleep(2500 * time.Microsecond); return 1, nil }
		if !timed {
			fn = func(context.Context) (int, error) { time.Sleep(100 * time.Microsecond); return 1, nil }
		}
	case op < 12: // the caller goes away while fn runs
		fn = func(fctx context.Context) (int, error) { cancel(); <-fctx.Done(); return 0, fctx.Err() }
	default: // two-step admission
		hammerPermit(ctx, b, tl, rng)
		return
	}

	var res core.Result[int]
	var err error
	recovered := func() (p any) {
		defer func() { p = recover() }()
		res, err = core.Execute(ctx, b, func(ctx context.Context) (int, error) {
			tl.enter()
			defer tl.leave()
			return fn(ctx)
		})
		return nil
	}()
	switch {
	case recovered != nil:
		if !panicking {
			panic(recovered)
		}
		tl.panics.Add(1)
		tl.failed.Add(1)
	case err != nil:
		tl.refused(err, !res.ExecutionID.IsZero())
	case res.Success:
		tl.succeeded.Add(1)
	default:
		tl.failed.Add(1)
	}
}

func hammerPermit(ctx context.Context, b *core.Bulkhead, tl *tally, rng *rand.Rand) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := b.Acquire(ctx)
	if err != nil {
		tl.refused(err, false)
		return
	}
	tl.enter()
	runtime.Gosched()
	tl.leave()
	o := []core.Outcome{core.Success, core.Success, core.Failure, core.Neutral}[rng.IntN(4)]
	timedOut := false
	if d, ok := p.Deadline(); ok {
		// Release judges by the bulkhead's clock: leave no doubt which side of the
		// deadline it is on. Either the caller leaves first (o stands), or the release
		// comes after the deadline (Success and Failure time out).
		if rng.IntN(2) == 0 {
			cancel()
		} else {
			time.Sleep(time.Until(d))
			timedOut = o != core.Neutral
		}
	}
	if err := p.Release(o); err != nil {
		panic(err)
	}
	switch {
	case timedOut:
		tl.failed.Add(1)
		tl.timedOut.Add(1)
	case o == core.Success:
		tl.succeeded.Add(1)
	default:
		tl.failed.Add(1)
	}
}
