package core_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

func TestShutdown(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("Timeout=%v", timeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) {
					c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 2, timeout
				})
				g := newGate()
				running := goExecute(context.Background(), b, hold(g, 5, nil))
				synctest.Wait()
				queued := []*call{goExecute(context.Background(), b, succeed(1)), goExecute(context.Background(), b, succeed(1))}
				synctest.Wait()
				require.Equal(t, 2, b.Stats().QueuedTasks)

				start := time.Now()
				shutdown := make(chan error, 1)
				go func() { shutdown <- b.Shutdown(context.Background()) }()
				synctest.Wait()

				for _, q := range queued {
					require.True(t, q.returned(), "queued callers are refused at once")
					res, err := q.wait()
					assertRefusal(t, err, core.ErrShutdown, "test")
					assert.True(t, res.ExecutionID.IsZero())
				}
				_, err := core.Execute(context.Background(), b, succeed(1))
				assertRefusal(t, err, core.ErrShutdown, "test")
				_, err = b.Acquire(context.Background())
				assertRefusal(t, err, core.ErrShutdown, "test")
				assert.Len(t, shutdown, 0, "Shutdown waits for the running call")
				assert.False(t, running.returned())

				close(g)
				res, err := running.wait()
				require.NoError(t, err, "the running call finishes normally")
				assert.Equal(t, 5, res.Value)
				assert.NoError(t, <-shutdown)
				assert.Zero(t, time.Since(start), "no time passed: Shutdown returned as the call did")

				s := b.Stats()
				assert.Equal(t, int64(1), s.SuccessfulExecutions, "the running call is recorded")
				assert.Zero(t, s.RejectedExecutions, "shutdown refusals are not counted")
				assertIdle(t, s)

				assert.NoError(t, b.Shutdown(context.Background()), "idempotent")
				_, err = core.Execute(context.Background(), b, succeed(1))
				assertRefusal(t, err, core.ErrShutdown, "test")
			})
		})
	}
}

func TestShutdownContextEndsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, nil)
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		assert.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
		_, err = core.Execute(context.Background(), b, succeed(1))
		assertRefusal(t, err, core.ErrShutdown, "test")

		// Shutdown again, and release the permit: it returns then.
		done := make(chan error, 1)
		go func() { done <- b.Shutdown(context.Background()) }()
		time.Sleep(time.Minute)
		assert.Len(t, done, 0)
		require.NoError(t, p.Release(core.Success))
		assert.NoError(t, <-done)
		assert.Equal(t, int64(1), b.Stats().SuccessfulExecutions)
	})
}

// Shutdown waits for abandoned functions too: they still hold their permits.
func TestShutdownWaitsForAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		g := newGate()
		_, err := core.Execute(context.Background(), b, hold(g, 1, nil))
		assertRefusal(t, err, core.ErrTimeout, "test")
		require.Equal(t, 1, b.Stats().AbandonedTasks)

		done := make(chan error, 1)
		go func() { done <- b.Shutdown(context.Background()) }()
		time.Sleep(time.Hour)
		assert.Len(t, done, 0, "the abandoned function still runs")
		close(g)
		assert.NoError(t, <-done)
		assertIdle(t, b.Stats())
	})
}

func TestShutdownConcurrentCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, nil)
		g := newGate()
		running := goExecute(context.Background(), b, hold(g, 1, nil))
		synctest.Wait()
		done := make(chan error, 5)
		for range 5 {
			go func() { done <- b.Shutdown(context.Background()) }()
		}
		synctest.Wait()
		assert.Len(t, done, 0)
		close(g)
		for range 5 {
			assert.NoError(t, <-done)
		}
		_, err := running.wait()
		assert.NoError(t, err)
	})
}

// Shutdown racing many calls, in real time: no panic, no deadlock, and every caller gets
// either a Result or a *Error.
func TestShutdownRace(t *testing.T) {
	const callers = 50
	rounds := 40
	if testing.Short() {
		rounds = 5
	}
	for _, timeout := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprintf("Timeout=%v", timeout), func(t *testing.T) {
			for range rounds {
				b := newBulkhead(t, func(c *core.Config) {
					c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 4, 8, timeout
					c.CircuitBreakerEnabled = true
				})
				start := make(chan struct{})
				type outcome struct {
					res      core.Result[int]
					err      error
					panicked any
				}
				outcomes := make([]outcome, callers)
				var wg sync.WaitGroup
				for i := range outcomes {
					wg.Go(func() {
						defer func() { outcomes[i].panicked = recover() }()
						<-start
						outcomes[i].res, outcomes[i].err = core.Execute(context.Background(), b, func(context.Context) (int, error) {
							runtime.Gosched()
							return i, nil
						})
					})
				}
				shutdownErr := make(chan error, 1)
				go func() {
					<-start
					runtime.Gosched()
					shutdownErr <- b.Shutdown(context.Background())
				}()
				close(start)
				wg.Wait()
				require.NoError(t, <-shutdownErr)

				succeeded := 0
				for i, o := range outcomes {
					assert.Nil(t, o.panicked)
					if o.err == nil {
						assert.True(t, o.res.Success)
						assert.Equal(t, i, o.res.Value)
						succeeded++
						continue
					}
					var e *core.Error
					if assert.True(t, errors.As(o.err, &e), "caller %d: %v", i, o.err) {
						assert.True(t, errors.Is(e, core.ErrShutdown) || errors.Is(e, core.ErrFull), "caller %d: %v", i, e)
					}
				}
				s := b.Stats()
				assert.Equal(t, int64(succeeded), s.SuccessfulExecutions, "every admitted call was recorded")
				assertIdle(t, s)
				_, err := core.Execute(context.Background(), b, succeed(1))
				assertRefusal(t, err, core.ErrShutdown, "test")
			}
		})
	}
}

// TestShutdownAtTheQueuedCallsDeadline: Shutdown refuses timed callers waiting in the
// queue at the very instant their Timeout passes, so the bulkhead's timer may find a
// waiter Shutdown has refused and whose caller is not back yet. It must leave it alone
// (refusing it twice closed its channel twice: a panic on the timer's goroutine, and the
// queue's count off by one).
func TestShutdownAtTheQueuedCallsDeadline(t *testing.T) {
	for range 300 {
		synctest.Test(t, func(t *testing.T) {
			b := newBulkhead(t, func(c *core.Config) {
				c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 4, time.Second
			})
			p, err := b.Acquire(context.Background()) // holds the one permit
			require.NoError(t, err)
			queued := make([]*call, 3)
			for i := range queued {
				queued[i] = goExecute(context.Background(), b, succeed(i))
			}
			synctest.Wait()
			time.Sleep(time.Second) // the queued calls' deadline: the timer fires now too
			done := make(chan error, 1)
			go func() { done <- b.Shutdown(context.Background()) }()
			for _, c := range queued {
				_, err := c.wait()
				if !errors.Is(err, core.ErrShutdown) {
					assertRefusal(t, err, core.ErrTimeout, b.Name())
				}
			}
			s := b.Stats()
			assert.Zero(t, s.QueuedTasks)
			assert.Equal(t, 1, s.ActiveTasks)
			require.NoError(t, p.Release(core.Success))
			require.NoError(t, <-done)
		})
	}
}
