package core_test

import (
	"context"
	"fmt"
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

		go func() {
			time.Sleep(300 * time.Millisecond)
			assert.NoError(t, first.Release(core.Success))
		}()
		second, err := b.Acquire(context.Background()) // queued 300ms
		require.NoError(t, err)
		d, ok = second.Deadline()
		assert.True(t, ok)
		assert.Equal(t, start.Add(time.Second), d, "the deadline counts from admission, queue wait included")

		// Acquire never abandons: the permit outlives the Timeout until Release.
		time.Sleep(5 * time.Second)
		s := b.Stats()
		assert.Equal(t, 1, s.ActiveTasks)
		assert.Zero(t, s.TimedOutExecutions)
		assert.Zero(t, s.AbandonedTasks)
		require.NoError(t, second.Release(core.Success))
		s = b.Stats()
		assert.Equal(t, int64(1), s.SuccessfulExecutions, "released before the deadline")
		assert.Equal(t, int64(1), s.TimedOutExecutions, "released after the deadline")

		nb := newBulkhead(t, nil)
		p, err := nb.Acquire(context.Background())
		require.NoError(t, err)
		_, ok = p.Deadline()
		assert.False(t, ok, "no Timeout, no deadline")
		time.Sleep(time.Hour)
		require.NoError(t, p.Release(core.Success))
		assert.Equal(t, int64(1), nb.Stats().SuccessfulExecutions, "no Timeout, never timed out")
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

// TestReleaseAfterDeadline checks the rule Release applies: a call released once its
// permit's deadline has passed timed out, whatever its outcome, unless its caller left
// first; Neutral and TimedOut stand.
func TestReleaseAfterDeadline(t *testing.T) {
	tests := []struct {
		name    string
		held    time.Duration // from admission to Release
		outcome core.Outcome
		caller  string // "stays", "cancelled" or "deadline": what the Acquire ctx did
		want    string // S: successful, F: failed, T: failed and timed out
		circuit core.State
	}{
		{"success before the deadline", time.Second - time.Nanosecond, core.Success, "stays", "S", core.Healthy},
		{"failure before the deadline", time.Second - time.Nanosecond, core.Failure, "stays", "F", core.Isolated},
		{"success at the deadline", time.Second, core.Success, "stays", "T", core.Isolated},
		{"success after the deadline", time.Hour, core.Success, "stays", "T", core.Isolated},
		{"failure after the deadline", time.Hour, core.Failure, "stays", "T", core.Isolated},
		{"neutral after the deadline", time.Hour, core.Neutral, "stays", "F", core.Healthy},
		{"timed out before the deadline", time.Millisecond, core.TimedOut, "stays", "T", core.Isolated},
		{"caller cancelled, success after", time.Hour, core.Success, "cancelled", "S", core.Healthy},
		{"caller cancelled, failure after", time.Hour, core.Failure, "cancelled", "F", core.Isolated},
		{"caller's own deadline, success after", time.Hour, core.Success, "deadline", "S", core.Healthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 1, func(c *core.Config) { c.Timeout = time.Second })
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tt.caller == "deadline" {
					ctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
					defer cancel()
				}
				p, err := b.Acquire(ctx)
				require.NoError(t, err)
				if tt.caller == "cancelled" {
					cancel()
				}
				time.Sleep(tt.held)
				require.NoError(t, p.Release(tt.outcome))
				s := b.Stats()
				assertIdle(t, s)
				var got string
				switch {
				case s.TimedOutExecutions == 1 && s.FailedExecutions == 1:
					got = "T"
				case s.FailedExecutions == 1 && s.TimedOutExecutions == 0:
					got = "F"
				case s.SuccessfulExecutions == 1:
					got = "S"
				default:
					got = fmt.Sprintf("%+v", s)
				}
				assert.Equal(t, tt.want, got)
				assert.Equal(t, tt.circuit, s.State)
			})
		})
	}
}

// TestReleaseUnknownOutcome checks that an Outcome outside the four is an error naming
// the value, and that the permit is still released, as Neutral: a half-open probe comes
// back instead of leaving the circuit HALF_OPEN for good.
func TestReleaseUnknownOutcome(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		b := newCircuit(t, 1, 1, nil)
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		err = p.Release(core.Outcome(9))
		e := assertRefusal(t, err, core.ErrInvalidArgument, "test")
		require.NotNil(t, e)
		assert.Contains(t, err.Error(), "unknown Outcome 9")
		s := b.Stats()
		assertIdle(t, s)
		assert.Equal(t, int64(1), s.FailedExecutions, "released as Neutral: not a success")
		assert.Equal(t, core.Healthy, s.State, "Neutral never opens")
		assertRefusal(t, p.Release(core.Success), core.ErrReleased, "test")
	})
	t.Run("half-open probe", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newCircuit(t, 1, 1, nil)
			tripAndWait(t, b)
			for range 3 {
				p, err := b.Acquire(context.Background())
				require.NoError(t, err, "the probe came back")
				assert.ErrorIs(t, p.Release(core.Outcome(200)), core.ErrInvalidArgument)
				assert.Equal(t, core.Degraded, b.State())
			}
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			require.NoError(t, p.Release(core.Success))
			assert.Equal(t, core.Healthy, b.State())
			assertIdle(t, b.Stats())
		})
	})
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
