package core_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestAdmissionOrder builds a bulkhead where several refusals apply at once and checks
// that the first in the documented order wins: ctx done, shut down, circuit open, full.
func TestAdmissionOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 0, time.Second
			c.CircuitBreakerEnabled, c.FailureThreshold, c.IsolationDuration = true, 1, time.Hour
		})
		// A hung call: at its timeout it counts as a failure (the circuit opens) and it
		// keeps its permit (the bulkhead is full).
		g := newGate()
		_, err := core.Execute(context.Background(), b, hold(g, 0, nil))
		assertRefusal(t, err, core.ErrTimeout, "test")
		require.Equal(t, core.Isolated, b.State())
		require.Equal(t, 1, b.Stats().AbandonedTasks)

		done, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		fn := func(context.Context) (int, error) { ran = true; return 1, nil }
		rejected := func() int64 { return b.Stats().RejectedExecutions }

		// Open and full: the circuit is checked first.
		_, err = core.Execute(context.Background(), b, fn)
		assertRefusal(t, err, core.ErrCircuitOpen, "test")
		assert.Equal(t, int64(1), rejected(), "circuit open counts as rejected")

		// ctx done beats everything, and counts nothing.
		_, err = core.Execute(done, b, fn)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, int64(1), rejected(), "a done ctx is not counted")
		_, err = b.Acquire(done)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, int64(1), rejected())

		// Shut down beats open and full, and is not counted.
		assert.ErrorIs(t, b.Shutdown(done), context.Canceled, "Shutdown with a done ctx still shuts down")
		_, err = core.Execute(context.Background(), b, fn)
		assertRefusal(t, err, core.ErrShutdown, "test")
		_, err = b.Acquire(context.Background())
		assertRefusal(t, err, core.ErrShutdown, "test")
		assert.Equal(t, int64(1), rejected(), "shutdown refusals are never counted")

		_, err = core.Execute(done, b, fn)
		assert.ErrorIs(t, err, context.Canceled, "ctx done is checked before shut down")
		assert.False(t, ran, "no refused call ran")

		close(g)
		require.NoError(t, b.Shutdown(context.Background()))
		s := b.Stats()
		assert.Equal(t, int64(1), s.TotalExecutions)
		assertIdle(t, s)
	})
}

func TestAdmissionFull(t *testing.T) {
	b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 })
	p, err := b.Acquire(context.Background())
	require.NoError(t, err)
	ran := false
	_, err = core.Execute(context.Background(), b, func(context.Context) (int, error) { ran = true; return 1, nil })
	assertRefusal(t, err, core.ErrFull, "test")
	_, err = b.Acquire(context.Background())
	assertRefusal(t, err, core.ErrFull, "test")
	assert.False(t, ran)
	s := b.Stats()
	assert.Equal(t, int64(2), s.RejectedExecutions)
	assert.Equal(t, int64(1), s.TotalExecutions, "rejections are not executions")
	require.NoError(t, p.Release(core.Success))
	assertIdle(t, b.Stats())
}

// Twenty goroutines race for C = MaxConcurrentCalls + MaxQueueSize = 3 places, whatever
// the split between permits and queue.
func TestAdmissionRaceForCapacity(t *testing.T) {
	const callers = 20
	for _, split := range [][2]int{{1, 2}, {2, 1}, {3, 0}} {
		t.Run(fmt.Sprintf("permits=%d,queue=%d", split[0], split[1]), func(t *testing.T) {
			for round := range 20 {
				synctest.Test(t, func(t *testing.T) {
					b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = split[0], split[1] })
					start, g := newGate(), newGate()
					var ran atomic.Int32
					fn := func(context.Context) (int, error) {
						ran.Add(1)
						<-g
						return 1, nil
					}
					calls := make([]*call, callers)
					for i := range calls {
						c := &call{done: make(chan struct{})}
						calls[i] = c
						go func() {
							defer close(c.done)
							<-start
							c.res, c.err = core.Execute(context.Background(), b, fn)
						}()
					}
					synctest.Wait() // every caller is at the start line
					close(start)
					synctest.Wait() // every refused caller has returned; the admitted wait or run

					full := 0
					for _, c := range calls {
						if c.returned() {
							_, err := c.wait()
							assertRefusal(t, err, core.ErrFull, "test")
							full++
						}
					}
					assert.Equal(t, callers-3, full, "round %d", round)
					s := b.Stats()
					assert.Equal(t, int64(callers-3), s.RejectedExecutions)
					assert.Equal(t, 3, s.InFlightCount)
					assert.Equal(t, split[0], s.ActiveTasks)
					assert.Equal(t, split[1], s.QueuedTasks)
					assert.Equal(t, int32(split[0]), ran.Load())
					assertInvariants(t, s)

					close(g)
					succeeded := 0
					for _, c := range calls {
						if res, err := c.wait(); err == nil && res.Success {
							succeeded++
						}
					}
					assert.Equal(t, 3, succeeded, "nothing lost or doubled")
					assert.Equal(t, int32(3), ran.Load())
					s = b.Stats()
					assert.Equal(t, int64(3), s.TotalExecutions)
					assert.Equal(t, int64(3), s.SuccessfulExecutions)
					assertIdle(t, s)
				})
			}
		})
	}
}

func TestAdmissionFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queued = 5
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, queued+1 })
		g := newGate()
		holder := goExecute(context.Background(), b, hold(g, 0, nil))
		synctest.Wait()

		var mu sync.Mutex
		var order []int
		record := func(i int) func(context.Context) (int, error) {
			return func(context.Context) (int, error) {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return i, nil
			}
		}
		calls := make([]*call, 0, queued+1)
		for i := range queued {
			calls = append(calls, goExecute(context.Background(), b, record(i)))
			synctest.Wait() // caller i is queued before caller i+1 arrives
		}
		require.Equal(t, queued, b.Stats().QueuedTasks)

		close(g)
		// A late arrival joins the back of the queue; it never barges ahead of it.
		calls = append(calls, goExecute(context.Background(), b, record(queued)))
		_, err := holder.wait()
		require.NoError(t, err)
		for i, c := range calls {
			res, err := c.wait()
			require.NoError(t, err)
			assert.Equal(t, i, res.Value)
		}
		assert.Equal(t, []int{0, 1, 2, 3, 4, 5}, order, "admitted in arrival order")
		assertIdle(t, b.Stats())
	})
}

// A caller whose ctx ends while it waits gets ctx's error, nothing is counted, and its
// place is given back at once.
func TestAdmissionLeaveQueue(t *testing.T) {
	type waitFn func(ctx context.Context, b *core.Bulkhead) (executionID core.ExecutionID, err error)
	viaExecute := func(ctx context.Context, b *core.Bulkhead) (core.ExecutionID, error) {
		res, err := core.Execute(ctx, b, succeed(1))
		return res.ExecutionID, err
	}
	viaAcquire := func(ctx context.Context, b *core.Bulkhead) (core.ExecutionID, error) {
		p, err := b.Acquire(ctx)
		if err == nil {
			assert.NoError(t, p.Release(core.Success))
		}
		return core.ExecutionID{}, err
	}
	tests := []struct {
		name     string
		timeout  time.Duration
		deadline bool // the caller's ctx ends by its deadline, else by cancel
		wait     waitFn
		wantErr  error
	}{
		{"Execute cancelled", 0, false, viaExecute, context.Canceled},
		{"Execute deadline", 0, true, viaExecute, context.DeadlineExceeded},
		{"Execute with Timeout cancelled", time.Hour, false, viaExecute, context.Canceled},
		{"Execute with Timeout, earlier caller deadline", time.Hour, true, viaExecute, context.DeadlineExceeded},
		{"Acquire cancelled", 0, false, viaAcquire, context.Canceled},
		{"Acquire with Timeout, earlier caller deadline", time.Hour, true, viaAcquire, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) {
					c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, tt.timeout
					c.CircuitBreakerEnabled, c.FailureThreshold = true, 1
				})
				holder, err := b.Acquire(context.Background())
				require.NoError(t, err)

				var ctx context.Context
				var cancel context.CancelFunc
				if tt.deadline {
					ctx, cancel = context.WithTimeout(context.Background(), time.Second)
				} else {
					ctx, cancel = context.WithCancel(context.Background())
				}
				defer cancel()
				type outcome struct {
					id  core.ExecutionID
					err error
				}
				out := make(chan outcome, 1)
				go func() {
					id, err := tt.wait(ctx, b)
					out <- outcome{id, err}
				}()
				synctest.Wait()
				require.Equal(t, 1, b.Stats().QueuedTasks)
				_, err = core.Execute(context.Background(), b, succeed(1))
				assertRefusal(t, err, core.ErrFull, "test")

				start := time.Now()
				if !tt.deadline {
					cancel()
				}
				o := <-out
				if tt.deadline {
					assert.Equal(t, time.Second, time.Since(start))
				} else {
					assert.Zero(t, time.Since(start), "leaves the queue at once")
				}
				assert.ErrorIs(t, o.err, tt.wantErr)
				assert.NotErrorIs(t, o.err, core.ErrTimeout, "the caller's deadline is not the bulkhead's timeout")
				assert.True(t, o.id.IsZero())

				s := b.Stats()
				assert.Zero(t, s.QueuedTasks, "the place is given back at once")
				assert.Equal(t, int64(1), s.RejectedExecutions, "only the ErrFull above")
				assert.Zero(t, s.FailedExecutions)
				assert.Equal(t, core.Healthy, b.State(), "the caller's cancellation never counts against the circuit")

				// Another caller can take the place now.
				next := goExecute(context.Background(), b, succeed(2))
				synctest.Wait()
				assert.Equal(t, 1, b.Stats().QueuedTasks)
				require.NoError(t, holder.Release(core.Success))
				res, err := next.wait()
				require.NoError(t, err)
				assert.Equal(t, 2, res.Value)
				assertIdle(t, b.Stats())
			})
		})
	}
}

// Never more than MaxConcurrentCalls functions run at once, counting those whose caller
// gave up at the Timeout and that still run.
func TestAdmissionAbandonedKeepPermits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const permits = 2
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = permits, 4, time.Second
		})
		var running, most atomic.Int32
		g := newGate()
		fn := func(context.Context) (int, error) {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-g // ignores its ctx
			running.Add(-1)
			return 1, nil
		}
		var hung []*call
		for range permits {
			hung = append(hung, goExecute(context.Background(), b, fn))
		}
		time.Sleep(500 * time.Millisecond)
		var waiting []*call
		for range 4 {
			waiting = append(waiting, goExecute(context.Background(), b, fn))
		}
		for _, c := range hung {
			_, err := c.wait()
			assertRefusal(t, err, core.ErrTimeout, "test")
		}
		s := b.Stats()
		assert.Equal(t, permits, s.AbandonedTasks)
		assert.Equal(t, 4, s.QueuedTasks, "the abandoned functions still hold every permit")
		for _, c := range waiting {
			res, err := c.wait()
			assertRefusal(t, err, core.ErrTimeout, "test")
			assert.True(t, res.ExecutionID.IsZero(), "timed out in the queue, never started")
		}
		assert.Equal(t, int32(permits), running.Load())

		late := []*call{goExecute(context.Background(), b, fn), goExecute(context.Background(), b, fn)}
		synctest.Wait()
		assert.Equal(t, 2, b.Stats().QueuedTasks)
		close(g)
		for _, c := range late {
			_, err := c.wait()
			assert.NoError(t, err)
		}
		synctest.Wait() // the abandoned functions hand their permits back as they return
		assert.Equal(t, int32(permits), most.Load(), "never more than MaxConcurrentCalls at once")
		s = b.Stats()
		assert.Equal(t, int64(4), s.TotalExecutions)
		assert.Equal(t, int64(2), s.TimedOutExecutions)
		assert.Equal(t, int64(4), s.RejectedExecutions)
		assert.Equal(t, int64(2), s.SuccessfulExecutions)
		assertIdle(t, s)
	})
}
