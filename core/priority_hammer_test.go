package core_test

import (
	"context"
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

// TestHammerPriorities runs calls of random priorities and tenants from 48 goroutines
// against a small bulkhead (so that waiters are displaced and shed all the time), some
// with a Timeout, some whose callers give up while queued, some through Acquire, while
// readers check every snapshot: total = successful + failed + active, active + abandoned
// within the limit, in flight within the capacity. At the end what the callers saw must
// match Stats exactly: every displaced waiter is counted rejected, once.
func TestHammerPriorities(t *testing.T) {
	calls := 60_000
	if testing.Short() {
		calls = 10_000
	}
	const workers = 48
	for _, timeout := range []time.Duration{0, 2 * time.Millisecond} {
		t.Run("timeout="+timeout.String(), func(t *testing.T) {
			b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 4, 8, timeout })
			var rejectedEvents atomic.Int64
			var byPriority [4]atomic.Int64
			b2 := newBulkhead(t, func(c *core.Config) {
				c.Name = "hooked"
				c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 4, 8, timeout
			}, core.WithEventHook(func(e core.Event) {
				if e.Kind == core.EventRejected {
					rejectedEvents.Add(1)
					byPriority[e.Priority-core.PriorityLow].Add(1)
				}
			}))
			stop := make(chan struct{})
			var readers sync.WaitGroup
			var bad atomic.Pointer[core.Stats]
			for _, rb := range []*core.Bulkhead{b, b2} {
				readers.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if s := rb.Stats(); !invariantsHold(s) {
							bad.Store(&s)
							return
						}
						runtime.Gosched()
					}
				})
			}
			tallies := []*tally{new(tally), new(tally)}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					for i := range calls / workers {
						k := i % 2
						hammerClassed([]*core.Bulkhead{b, b2}[k], tallies[k], rng)
					}
				})
			}
			wg.Wait()
			close(stop)
			readers.Wait()
			if s := bad.Load(); s != nil {
				assertInvariants(t, *s)
			}
			for k, hb := range []*core.Bulkhead{b, b2} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				require.NoError(t, hb.Shutdown(ctx))
				cancel()
				s, tl := hb.Stats(), tallies[k]
				assertIdle(t, s)
				assert.Equal(t, tl.succeeded.Load(), s.SuccessfulExecutions, "successful")
				assert.Equal(t, tl.failed.Load(), s.FailedExecutions, "failed")
				assert.Equal(t, tl.rejected.Load(), s.RejectedExecutions, "rejected, displaced waiters included")
				assert.Equal(t, tl.timedOut.Load(), s.TimedOutExecutions, "timed out")
				assert.Equal(t, s.SuccessfulExecutions+s.FailedExecutions, s.TotalExecutions)
				assert.LessOrEqual(t, tl.mostRunning.Load(), int32(s.MaxConcurrentCalls))
				assert.Positive(t, tl.full.Load(), "the mix has ErrFull")
				t.Logf("%s: %d ok, %d failed, %d rejected (%d full), %d callers gave up; most at once %d",
					hb.Name(), s.SuccessfulExecutions, s.FailedExecutions, s.RejectedExecutions, tl.full.Load(), tl.callerGaveUp.Load(), tl.mostRunning.Load())
			}
			assert.Equal(t, tallies[1].rejected.Load(), rejectedEvents.Load(), "one EventRejected per rejection")
			for i := range byPriority {
				assert.Positive(t, byPriority[i].Load(), "rejections of priority %v", core.Priority(i)+core.PriorityLow)
			}
		})
	}
}

// hammerClassed makes one call of a random priority and tenant, of a random kind.
func hammerClassed(b *core.Bulkhead, tl *tally, rng *rand.Rand) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if p := core.Priority(rng.IntN(5)) - 1; p <= core.PriorityCritical {
		ctx = core.WithPriority(ctx, p)
	}
	if n := rng.IntN(4); n > 0 {
		ctx = core.WithTenant(ctx, []string{"", "a", "b", "c"}[n])
	}
	switch op := rng.IntN(10); {
	case op < 2: // two-step admission
		hammerPermit(ctx, b, tl, rng)
		return
	case op < 3: // the caller gives up soon, maybe while queued
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, 100*time.Microsecond)
		defer c2()
	}
	res, err := core.Execute(ctx, b, func(ctx context.Context) (int, error) {
		tl.enter()
		defer tl.leave()
		if rand.IntN(4) == 0 { // now and then a slower call
			time.Sleep(50 * time.Microsecond)
		}
		runtime.Gosched()
		return 1, nil
	})
	switch {
	case err != nil:
		tl.refused(err, !res.ExecutionID.IsZero())
	case res.Success:
		tl.succeeded.Add(1)
	default:
		tl.failed.Add(1)
	}
}
