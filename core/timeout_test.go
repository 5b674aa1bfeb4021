package core_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// In a synctest bubble time stands still until every goroutine is durably blocked, so
// the durations below are exact, not approximate.

func TestTimeoutWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, time.Second
		})
		holder, err := b.Acquire(context.Background()) // Acquire never abandons: it keeps the permit
		require.NoError(t, err)

		start := time.Now()
		ran := false
		res, err := core.Execute(context.Background(), b, func(context.Context) (int, error) { ran = true; return 1, nil })
		assert.Equal(t, time.Second, time.Since(start), "the deadline fires at admission + Timeout")
		assertRefusal(t, err, core.ErrTimeout, "test")
		assert.False(t, ran)
		assert.True(t, res.ExecutionID.IsZero(), "a call that never started has no ExecutionID")

		s := b.Stats()
		assert.Equal(t, int64(1), s.RejectedExecutions, "a timeout while queued is a rejection")
		assert.Equal(t, int64(1), s.TotalExecutions, "only the holder started")
		assert.Zero(t, s.TimedOutExecutions, "timed_out counts started calls only")
		assert.Zero(t, s.FailedExecutions)
		assert.Zero(t, s.QueuedTasks)
		assertInvariants(t, s)

		require.NoError(t, holder.Release(core.Success))
		assertIdle(t, b.Stats())
	})
}

func TestTimeoutWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 0, time.Second
		})
		g := newGate()
		started := make(chan context.Context, 1)
		lateErr := make(chan error, 1)
		fn := func(ctx context.Context) (int, error) {
			started <- ctx
			<-g // ignores ctx
			lateErr <- ctx.Err()
			return 42, nil // the late outcome: must be ignored
		}

		start := time.Now()
		c := goExecute(context.Background(), b, fn)
		fnCtx := <-started
		res, err := c.wait()
		assert.Equal(t, time.Second, time.Since(start), "Execute returns at the deadline although fn ignores ctx")
		assertRefusal(t, err, core.ErrTimeout, "test")
		assert.False(t, res.Success)
		assert.Zero(t, res.Value)
		assert.False(t, res.ExecutionID.IsZero(), "the call was admitted")
		assert.Equal(t, time.Second, res.ExecutionTime)
		assert.ErrorIs(t, fnCtx.Err(), context.DeadlineExceeded)
		select {
		case <-fnCtx.Done():
		default:
			t.Error("fn's ctx is not done at the timeout")
		}

		s := b.Stats()
		assert.Equal(t, int64(1), s.TotalExecutions)
		assert.Equal(t, int64(1), s.FailedExecutions, "counted failed at the timeout")
		assert.Equal(t, int64(1), s.TimedOutExecutions)
		assert.Zero(t, s.RejectedExecutions)
		assert.Zero(t, s.ActiveTasks, "active drops at the timeout")
		assert.Equal(t, 1, s.AbandonedTasks, "fn still runs, holding its permit")
		assertInvariants(t, s)

		_, err = core.Execute(context.Background(), b, succeed(1))
		assertRefusal(t, err, core.ErrFull, "test")

		close(g)
		synctest.Wait()
		assert.ErrorIs(t, <-lateErr, context.DeadlineExceeded)
		s = b.Stats()
		assert.Zero(t, s.SuccessfulExecutions, "the late success is ignored")
		assert.Equal(t, int64(1), s.FailedExecutions)
		assertIdle(t, s)

		res, err = core.Execute(context.Background(), b, succeed(7))
		require.NoError(t, err, "the permit came back when fn returned")
		assert.Equal(t, 7, res.Value)
	})
}

func TestTimeoutDeadlineSeenByFn(t *testing.T) {
	tests := []struct {
		name   string
		parent time.Duration // the caller's own deadline; 0 for none
		want   time.Duration // the deadline fn sees, from the call
	}{
		{"no caller deadline", 0, time.Second},
		{"later caller deadline", time.Hour, time.Second},
		{"earlier caller deadline", 300 * time.Millisecond, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
				ctx := context.Background()
				if tt.parent > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.parent)
					defer cancel()
				}
				start := time.Now()
				res, err := core.Execute(ctx, b, func(ctx context.Context) (int, error) {
					d, ok := ctx.Deadline()
					assert.True(t, ok)
					assert.Equal(t, start.Add(tt.want), d)
					return 1, nil
				})
				require.NoError(t, err)
				assert.True(t, res.Success)
			})
		})
	}
}

func TestTimeoutCancelsDerivedContexts(t *testing.T) {
	derive := []struct {
		name string
		make func(context.Context) (context.Context, context.CancelFunc)
	}{
		{"WithCancel", context.WithCancel},
		{"WithTimeout", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Hour)
		}},
		{"WithCancel under WithValue", func(ctx context.Context) (context.Context, context.CancelFunc) {
			type key struct{}
			return context.WithCancel(context.WithValue(ctx, key{}, 1))
		}},
	}
	for _, d := range derive {
		t.Run(d.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
				type seen struct {
					at  time.Duration
					err error
				}
				got := make(chan seen, 1)
				start := time.Now()
				_, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
					child, cancel := d.make(ctx)
					defer cancel()
					<-child.Done()
					got <- seen{time.Since(start), child.Err()}
					return 0, child.Err()
				})
				assertRefusal(t, err, core.ErrTimeout, "test")
				s := <-got
				assert.Equal(t, time.Second, s.at, "the derived context ends at the timeout")
				assert.ErrorIs(t, s.err, context.DeadlineExceeded)
				synctest.Wait()
				assertIdle(t, b.Stats())
			})
		})
	}
}

func TestTimeoutAfterFuncOnFnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		fired := make(chan time.Time, 1)
		start := time.Now()
		_, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
			context.AfterFunc(ctx, func() { fired <- time.Now() })
			<-ctx.Done()
			return 0, ctx.Err()
		})
		assertRefusal(t, err, core.ErrTimeout, "test")
		assert.Equal(t, time.Second, (<-fired).Sub(start))
		synctest.Wait()
	})
}

func TestTimeoutCallerGivesUpWhileRunning(t *testing.T) {
	tests := []struct {
		name     string
		deadline bool // the caller's ctx ends by its own deadline, else by cancel
		wantErr  error
	}{
		{"cancel", false, context.Canceled},
		{"own deadline before the Timeout", true, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) {
					c.Timeout = time.Second
					c.CircuitBreakerEnabled, c.FailureThreshold = true, 1
				})
				var ctx context.Context
				var cancel context.CancelFunc
				if tt.deadline {
					ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
				} else {
					ctx, cancel = context.WithCancel(context.Background())
					go func() { time.Sleep(300 * time.Millisecond); cancel() }()
				}
				defer cancel()
				g := newGate()
				started := make(chan context.Context, 1)
				start := time.Now()
				c := goExecute(ctx, b, func(ctx context.Context) (int, error) {
					started <- ctx
					<-g // ignores ctx
					return 1, nil
				})
				fnCtx := <-started
				res, err := c.wait()
				assert.Equal(t, 300*time.Millisecond, time.Since(start), "the caller gets its answer when its ctx ends")
				assert.ErrorIs(t, err, tt.wantErr, "the caller gets its own ctx's error")
				var be *core.Error
				assert.False(t, errors.As(err, &be), "the caller's own ctx error is not a bulkhead refusal: %v", err)
				assert.False(t, res.ExecutionID.IsZero())
				assert.ErrorIs(t, fnCtx.Err(), tt.wantErr, "fn's ctx ends with the caller's")

				s := b.Stats()
				assert.Equal(t, int64(1), s.FailedExecutions, "it did not succeed")
				assert.Zero(t, s.TimedOutExecutions, "the caller gave up: not a timeout")
				assert.Equal(t, 1, s.AbandonedTasks)
				assert.Equal(t, core.Healthy, b.State(), "the caller's cancellation never counts against the circuit")
				assertInvariants(t, s)

				close(g)
				synctest.Wait()
				assertIdle(t, b.Stats())
				assert.Zero(t, b.Stats().SuccessfulExecutions, "the late success is ignored")
			})
		})
	}
}

func TestTimeoutCoversQueueAndRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, time.Second
		})
		holder, err := b.Acquire(context.Background())
		require.NoError(t, err)
		go func() {
			time.Sleep(600 * time.Millisecond)
			assert.NoError(t, holder.Release(core.Success))
		}()
		g := newGate()
		start := time.Now()
		res, err := core.Execute(context.Background(), b, hold(g, 1, nil))
		assert.Equal(t, time.Second, time.Since(start), "one deadline covers queue wait and run")
		assertRefusal(t, err, core.ErrTimeout, "test")
		assert.Equal(t, 600*time.Millisecond, res.QueuedTime)
		assert.Equal(t, 400*time.Millisecond, res.ExecutionTime)
		assert.Equal(t, int64(1), b.Stats().TimedOutExecutions)
		close(g)
		synctest.Wait()
		assertIdle(t, b.Stats())
	})
}

func TestTimeoutNotReached(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(context.Context) (int, error)
		success bool
		value   int
		err     error
	}{
		{"success", func(context.Context) (int, error) { time.Sleep(250 * time.Millisecond); return 5, nil }, true, 5, nil},
		{"fn error unchanged", func(context.Context) (int, error) { time.Sleep(250 * time.Millisecond); return 5, errBoom }, false, 0, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
				res, err := core.Execute(context.Background(), b, tt.fn)
				require.NoError(t, err, "fn's own failure is in the Result, not the error")
				assert.Equal(t, tt.success, res.Success)
				assert.Equal(t, tt.value, res.Value)
				assert.True(t, res.Err == tt.err, "fn's error comes back unchanged, not wrapped: %v", res.Err)
				assert.Equal(t, 250*time.Millisecond, res.ExecutionTime)
				assert.Zero(t, res.QueuedTime)
				assert.Equal(t, "test", res.BulkheadName)
				s := b.Stats()
				assert.Zero(t, s.TimedOutExecutions)
				assertIdle(t, s)
			})
		})
	}
}

// A bulkhead with a Timeout used in real time and one used in a synctest bubble must not
// share timers: a bubble's timer cannot be touched from outside it, nor a real one
// deliver into a bubble.
func TestTimeoutInsideAndOutsideSynctest(t *testing.T) {
	realTime := func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Name, c.Timeout = "real", time.Minute })
		for range 10 {
			_, err := core.Execute(context.Background(), b, succeed(1))
			require.NoError(t, err)
		}
	}
	realTime(t)
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Name, c.Timeout = "bubble", time.Second })
		for range 10 {
			_, err := core.Execute(context.Background(), b, succeed(1))
			require.NoError(t, err)
		}
		start := time.Now()
		_, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		assertRefusal(t, err, core.ErrTimeout, "bubble")
		assert.Equal(t, time.Second, time.Since(start))
	})
	realTime(t)
}

// context.AfterFunc on fn's ctx: registered after the ctx ended, f runs at once; stopped
// before, f never runs.
func TestTimeoutAfterFuncLateAndStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		g := newGate()
		late := make(chan struct{})
		var stopped bool
		var ran atomic.Bool
		_, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
			stop := context.AfterFunc(ctx, func() { ran.Store(true) })
			stopped = stop()
			<-g // ignores ctx until after the timeout
			context.AfterFunc(ctx, func() { close(late) })
			return 1, nil
		})
		assertRefusal(t, err, core.ErrTimeout, "test")
		close(g)
		<-late
		synctest.Wait()
		assert.True(t, stopped, "stop before the end reports true")
		assert.False(t, ran.Load(), "a stopped AfterFunc never runs")
	})
}

// The bulkhead keeps one timer for all its timed calls. A timer set for a call that has
// since finished fires for nothing and is set again for the next deadline, which must
// still be met to the nanosecond.
func TestTimeoutTimerMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		_, err := core.Execute(context.Background(), b, func(context.Context) (int, error) {
			time.Sleep(500 * time.Millisecond) // due at 1s, done at 0.5s
			return 1, nil
		})
		require.NoError(t, err)
		time.Sleep(400 * time.Millisecond)

		start := time.Now() // 0.9s: due at 1.9s, after the timer's first (empty) firing at 1s
		g := newGate()
		res, err := core.Execute(context.Background(), b, hold(g, 2, nil))
		assertRefusal(t, err, core.ErrTimeout, "test")
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, time.Second, res.ExecutionTime)
		close(g)
		synctest.Wait()
		assertIdle(t, b.Stats())
	})
}

// Reconfigure can shorten the Timeout while calls with the old one run: the new calls are
// due first although they came last, and each call still ends at its own deadline.
func TestTimeoutShortenedWhileCallsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.Timeout = 4, 10*time.Second })
		g := newGate()
		start := time.Now()
		long := goExecute(context.Background(), b, hold(g, 1, nil))
		synctest.Wait()
		cfg := b.Config()
		cfg.Timeout = time.Second
		require.NoError(t, b.Reconfigure(cfg))
		short1 := goExecute(context.Background(), b, hold(g, 2, nil))
		short2 := goExecute(context.Background(), b, hold(g, 3, nil))

		for _, c := range []*call{short1, short2} {
			_, err := c.wait()
			assertRefusal(t, err, core.ErrTimeout, "test")
			assert.Equal(t, time.Second, time.Since(start), "the new Timeout applies to the new calls")
		}
		assert.False(t, long.returned(), "the call admitted with 10s is not cut short")
		_, err := long.wait()
		assertRefusal(t, err, core.ErrTimeout, "test")
		assert.Equal(t, 10*time.Second, time.Since(start))

		close(g)
		synctest.Wait()
		s := b.Stats()
		assert.Equal(t, int64(3), s.TimedOutExecutions)
		assertIdle(t, s)
	})
}

// Many calls due at the same instant all end then, queued ones refused (rejected) and
// running ones abandoned (timed out), and every permit comes back once their functions
// return.
func TestTimeoutManyDueAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const running, queued = 12, 9
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = running, queued, time.Second
		})
		g := newGate()
		start := time.Now()
		calls := make([]*call, running+queued)
		for i := range calls {
			calls[i] = goExecute(context.Background(), b, hold(g, i, nil))
		}
		synctest.Wait()
		s := b.Stats()
		assert.Equal(t, running, s.ActiveTasks)
		assert.Equal(t, queued, s.QueuedTasks)

		for _, c := range calls {
			_, err := c.wait()
			assertRefusal(t, err, core.ErrTimeout, "test")
		}
		assert.Equal(t, time.Second, time.Since(start))
		s = b.Stats()
		assertInvariants(t, s)
		assert.Equal(t, int64(running), s.TimedOutExecutions)
		assert.Equal(t, int64(queued), s.RejectedExecutions)
		assert.Equal(t, running, s.AbandonedTasks, "the functions still hold their permits")

		close(g)
		synctest.Wait()
		assertIdle(t, b.Stats())
		_, err := core.Execute(context.Background(), b, succeed(1))
		require.NoError(t, err, "every permit came back")
	})
}

// A queued call can be granted a permit at the very instant its Timeout passes. Whichever
// of the two the bulkhead sees first, the call either runs or is refused with ErrTimeout,
// and the permit is neither lost nor given twice.
func TestTimeoutGrantedAtTheDeadline(t *testing.T) {
	for _, holdFor := range []time.Duration{time.Second - time.Nanosecond, time.Second, time.Second + time.Nanosecond} {
		t.Run(holdFor.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) {
					c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 2, time.Second
				})
				holder, err := b.Acquire(context.Background())
				require.NoError(t, err)
				go func() {
					time.Sleep(holdFor)
					assert.NoError(t, holder.Release(core.Success))
				}()
				res, err := core.Execute(context.Background(), b, succeed(7))
				if err != nil {
					assertRefusal(t, err, core.ErrTimeout, "test")
					assert.GreaterOrEqual(t, holdFor, time.Second, "refused although the permit came in time")
				} else {
					assert.Equal(t, 7, res.Value)
					assert.Less(t, holdFor, time.Second+time.Nanosecond, "ran although its Timeout had passed")
				}
				time.Sleep(time.Second) // the holder has released
				assertIdle(t, b.Stats())
				_, err = core.Execute(context.Background(), b, succeed(1))
				require.NoError(t, err, "the permit came back")
			})
		})
	}
}

// A timed call allocates its record and its goroutine's start; Done's channel only if fn
// asks for it.
func TestTimeoutAllocations(t *testing.T) {
	b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Minute })
	ctx := context.Background()
	asksDone := func(ctx context.Context) (int, error) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
			return 1, nil
		}
	}
	for _, tt := range []struct {
		name string
		fn   func(context.Context) (int, error)
		want float64
	}{
		{"fn ignores ctx", succeed(1), 2},
		{"fn asks Done", asksDone, 3},
	} {
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := core.Execute(ctx, b, tt.fn); err != nil {
				panic(err)
			}
		})
		assert.Equal(t, tt.want, allocs, tt.name)
	}

	// A refusal allocates nothing, Timeout or not: the call's record is made only once
	// the call is admitted or queued.
	full := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 0, time.Minute })
	p, err := full.Acquire(ctx)
	require.NoError(t, err)
	defer p.Release(core.Success)
	fn := succeed(1)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := core.Execute(ctx, full, fn); !errors.Is(err, core.ErrFull) {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "refused")
}
