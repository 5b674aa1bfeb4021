package core_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

func TestPermitReleaseExactlyOnce(t *testing.T) {
	tests := []struct {
		outcome             core.Outcome
		successful, failed  int64
		stateAfterThreshold core.State // FailureThreshold is 1
	}{
		{core.Success, 1, 0, core.Healthy},
		{core.Failure, 0, 1, core.Isolated},
		{core.Neutral, 0, 1, core.Healthy}, // not a success, but no verdict on the dependency
	}
	for _, tt := range tests {
		t.Run(map[core.Outcome]string{core.Success: "Success", core.Failure: "Failure", core.Neutral: "Neutral"}[tt.outcome], func(t *testing.T) {
			b := newBulkhead(t, func(c *core.Config) { c.CircuitBreakerEnabled, c.FailureThreshold = true, 1 })
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			assert.Same(t, b, p.Bulkhead())
			s := b.Stats()
			assert.Equal(t, 1, s.ActiveTasks)
			assert.Equal(t, int64(1), s.TotalExecutions)

			require.NoError(t, p.Release(tt.outcome))
			after := b.Stats()
			assert.Equal(t, tt.successful, after.SuccessfulExecutions)
			assert.Equal(t, tt.failed, after.FailedExecutions)
			assert.Equal(t, tt.stateAfterThreshold, b.State())
			assertIdle(t, after)

			for _, o := range []core.Outcome{core.Success, core.Failure, core.Neutral} {
				err := p.Release(o)
				assertRefusal(t, err, core.ErrReleased, "test")
			}
			assert.Equal(t, after, b.Stats(), "a second Release changes nothing")
		})
	}
}

func TestPermitConcurrentRelease(t *testing.T) {
	b := newBulkhead(t, nil)
	for range 100 {
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = p.Release(core.Success) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				assert.ErrorIs(t, err, core.ErrReleased)
			}
		}
		assert.Equal(t, 1, won, "exactly one of racing Releases wins")
	}
	s := b.Stats()
	assert.Equal(t, int64(100), s.SuccessfulExecutions)
	assertIdle(t, s)
}

// A stale copy of a released Permit cannot release the call that now uses its permit.
func TestPermitStaleCopy(t *testing.T) {
	for _, next := range []string{"Acquire", "Execute"} {
		t.Run(next, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls = 1 })
				old, err := b.Acquire(context.Background())
				require.NoError(t, err)
				require.NoError(t, old.Release(core.Success))

				g := newGate()
				var c *call
				var current core.Permit
				if next == "Acquire" {
					current, err = b.Acquire(context.Background())
					require.NoError(t, err)
				} else {
					c = goExecute(context.Background(), b, hold(g, 1, nil))
					synctest.Wait()
				}
				before := b.Stats()
				require.Equal(t, 1, before.ActiveTasks)
				assertRefusal(t, old.Release(core.Failure), core.ErrReleased, "test")
				assert.Equal(t, before, b.Stats(), "the stale Release changed nothing")
				if next == "Acquire" {
					assert.NoError(t, current.Release(core.Success))
				} else {
					close(g)
					_, err := c.wait()
					assert.NoError(t, err)
				}
				s := b.Stats()
				assert.Equal(t, int64(2), s.SuccessfulExecutions)
				assertIdle(t, s)
			})
		})
	}
}

func TestPermitZero(t *testing.T) {
	var p core.Permit
	err := p.Release(core.Success)
	assert.ErrorIs(t, err, core.ErrReleased)
	var e *core.Error
	assert.ErrorAs(t, err, &e)
	_, ok := p.Deadline()
	assert.False(t, ok)
	assert.False(t, p.Expired())
	assert.Nil(t, p.Bulkhead())
}

func TestPermitNeutralNeverMovesCircuit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 1, 1, nil)
		for range 10 {
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			require.NoError(t, p.Release(core.Neutral))
		}
		assert.Equal(t, core.Healthy, b.State(), "Neutral never opens")

		tripAndWait(t, b)
		for range 10 { // Neutral probes: no verdict, and no leaked probe permit
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			require.NoError(t, p.Release(core.Neutral))
			assert.Equal(t, core.Degraded, b.State(), "Neutral neither closes nor re-opens")
		}
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		require.NoError(t, p.Release(core.Success))
		assert.Equal(t, core.Healthy, b.State())
	})
}

func TestPermitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, time.Second
		})
		start := time.Now()
		first, err := b.Acquire(context.Background())
		require.NoError(t, err)
		d, ok := first.Deadline()
		assert.True(t, ok)
		assert.Equal(t, start.Add(time.Second), d)
		assert.False(t, first.Expired())

		go func() {
			time.Sleep(300 * time.Millisecond)
			assert.NoError(t, first.Release(core.Success))
		}()
		second, err := b.Acquire(context.Background()) // queued 300ms
		require.NoError(t, err)
		d, ok = second.Deadline()
		assert.True(t, ok)
		assert.Equal(t, start.Add(time.Second), d, "the deadline counts from admission, queue wait included")
		time.Sleep(700*time.Millisecond - time.Nanosecond)
		assert.False(t, second.Expired(), "a nanosecond before the deadline")
		time.Sleep(time.Nanosecond)
		assert.True(t, second.Expired(), "at the deadline")

		// Acquire never abandons: the permit outlives the Timeout until Release.
		time.Sleep(5 * time.Second)
		s := b.Stats()
		assert.Equal(t, 1, s.ActiveTasks)
		assert.Zero(t, s.TimedOutExecutions)
		assert.Zero(t, s.AbandonedTasks)
		require.NoError(t, second.Release(core.Success))
		assert.Equal(t, int64(2), b.Stats().SuccessfulExecutions)

		nb := newBulkhead(t, nil)
		p, err := nb.Acquire(context.Background())
		require.NoError(t, err)
		_, ok = p.Deadline()
		assert.False(t, ok, "no Timeout, no deadline")
		time.Sleep(time.Hour)
		assert.False(t, p.Expired(), "no Timeout, never expired")
		require.NoError(t, p.Release(core.Success))
	})
}

func TestPermitAllocations(t *testing.T) {
	b := newBulkhead(t, func(c *core.Config) { c.CircuitBreakerEnabled = true })
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		p, err := b.Acquire(ctx)
		if err != nil {
			panic(err)
		}
		if err := p.Release(core.Success); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "Acquire + Release allocate nothing")
}

// TestReleaseTimedOut checks the outcome middleware reports when a handler ran past the
// permit's deadline: failed, timed out, and a failure for the circuit.
func TestReleaseTimedOut(t *testing.T) {
	cfg := core.DefaultConfig("late")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 1
	b, err := core.New(cfg)
	require.NoError(t, err)
	p, err := b.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Release(core.TimedOut))
	st := b.Stats()
	assert.Equal(t, int64(1), st.FailedExecutions)
	assert.Equal(t, int64(1), st.TimedOutExecutions)
	assert.Equal(t, core.Isolated, st.State)
}
