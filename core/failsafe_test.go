package core_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/common"
	"github.com/failsafe-go/failsafe-go/fallback"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
	"github.com/failsafe-go/failsafe-go/policy"
	"github.com/failsafe-go/failsafe-go/priority"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// run executes fn through policies on ctx and returns what failsafe-go returns.
func run(ctx context.Context, fn func(failsafe.Execution[int]) (int, error), policies ...failsafe.Policy[int]) (int, error) {
	return failsafe.With(policies...).WithContext(ctx).GetWithExecution(fn)
}

// fsSucceed, fsFail and fsWaitCtx are functions for an execution: at once v, at once
// errBoom, and ctx's error once the execution's context ends.
func fsSucceed(v int) func(failsafe.Execution[int]) (int, error) {
	return func(failsafe.Execution[int]) (int, error) { return v, nil }
}

func fsFail(failsafe.Execution[int]) (int, error) { return 0, errBoom }

func fsWaitCtx(exec failsafe.Execution[int]) (int, error) {
	<-exec.Context().Done()
	return 0, exec.Context().Err()
}

// breakerConfig is a bulkhead whose circuit opens at the first failure, to tell a failure
// from a neutral outcome.
func breakerConfig(c *core.Config) {
	c.CircuitBreakerEnabled, c.FailureThreshold, c.IsolationDuration = true, 1, time.Hour
}

// counted is the part of Stats a test checks exactly.
type counted struct{ total, succeeded, failed, rejected, timedOut int64 }

func countsOf(s core.Stats) counted {
	return counted{s.TotalExecutions, s.SuccessfulExecutions, s.FailedExecutions, s.RejectedExecutions, s.TimedOutExecutions}
}

// TestFailsafePolicyOutcomes checks that an execution through the policy is recorded as
// Execute records a call: success, failure, panic, and the caller's cancellation, which
// counts as failed but never moves the circuit.
func TestFailsafePolicyOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		fn        func(cancel context.CancelFunc) func(failsafe.Execution[int]) (int, error)
		wantValue int
		wantErr   error
		wantPanic bool
		want      counted
		wantState core.State
	}{
		{
			name:      "success",
			fn:        func(context.CancelFunc) func(failsafe.Execution[int]) (int, error) { return fsSucceed(7) },
			wantValue: 7,
			want:      counted{total: 1, succeeded: 1},
			wantState: core.Healthy,
		},
		{
			name:      "failure: the error comes back unchanged, and opens the circuit",
			fn:        func(context.CancelFunc) func(failsafe.Execution[int]) (int, error) { return fsFail },
			wantErr:   errBoom,
			want:      counted{total: 1, failed: 1},
			wantState: core.Isolated,
		},
		{
			name: "panic: a failure, re-raised after the permit is back",
			fn: func(context.CancelFunc) func(failsafe.Execution[int]) (int, error) {
				return func(failsafe.Execution[int]) (int, error) { panic("kaboom") }
			},
			wantPanic: true,
			want:      counted{total: 1, failed: 1},
			wantState: core.Isolated,
		},
		{
			name: "caller cancels while it runs: neutral",
			fn: func(cancel context.CancelFunc) func(failsafe.Execution[int]) (int, error) {
				return func(exec failsafe.Execution[int]) (int, error) {
					cancel()
					return fsWaitCtx(exec)
				}
			},
			wantErr:   context.Canceled,
			want:      counted{total: 1, failed: 1},
			wantState: core.Healthy,
		},
	}
	for _, tt := range tests {
		for _, timed := range []bool{false, true} {
			name := tt.name
			if timed {
				name += ", with a Timeout"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := newBulkhead(t, func(c *core.Config) {
						breakerConfig(c)
						if timed {
							c.Timeout = time.Minute
						}
					})
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					var v int
					var err error
					call := func() { v, err = run(ctx, tt.fn(cancel), core.FailsafePolicy[int](b)) }
					if tt.wantPanic {
						assert.PanicsWithValue(t, "kaboom", call)
					} else {
						call()
						assert.Equal(t, tt.wantValue, v)
						if tt.wantErr == nil {
							assert.NoError(t, err)
						} else {
							assert.Same(t, tt.wantErr, err, "the function's own error, not wrapped")
						}
					}
					s := b.Stats()
					assert.Equal(t, tt.want, countsOf(s))
					assert.Equal(t, tt.wantState, s.State)
					assertIdle(t, s)
				})
			})
		}
	}
}

// TestFailsafePolicyRefusals checks that each refusal is the very *core.Error Execute
// returns in the same state, counted as Execute counts it.
func TestFailsafePolicyRefusals(t *testing.T) {
	tests := []struct {
		name     string
		config   func(*core.Config)
		prepare  func(t *testing.T, b *core.Bulkhead, g gate)
		want     error
		rejected int64 // per refusal
	}{
		{
			name:   "full",
			config: func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 },
			prepare: func(t *testing.T, b *core.Bulkhead, g gate) {
				goExecute(context.Background(), b, hold(g, 0, nil))
				synctest.Wait()
			},
			want:     core.ErrFull,
			rejected: 1,
		},
		{
			name:   "circuit open",
			config: breakerConfig,
			prepare: func(t *testing.T, b *core.Bulkhead, g gate) {
				_, err := core.Execute(context.Background(), b, fail)
				require.NoError(t, err)
				require.Equal(t, core.Isolated, b.State())
			},
			want:     core.ErrCircuitOpen,
			rejected: 1,
		},
		{
			name:   "shut down",
			config: func(*core.Config) {},
			prepare: func(t *testing.T, b *core.Bulkhead, g gate) {
				require.NoError(t, b.Shutdown(context.Background()))
			},
			want: core.ErrShutdown,
		},
		{
			name: "timed out in the queue",
			config: func(c *core.Config) {
				c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, 50*time.Millisecond
			},
			prepare: func(t *testing.T, b *core.Bulkhead, g gate) {
				// Held past its own Timeout: abandoned, still holding the only permit.
				goExecute(context.Background(), b, hold(g, 0, nil))
				synctest.Wait()
			},
			want:     core.ErrTimeout,
			rejected: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, tt.config)
				g := newGate()
				defer synctest.Wait()
				defer close(g)
				tt.prepare(t, b, g)
				before := countsOf(b.Stats())

				ran := false
				_, err := run(context.Background(), func(failsafe.Execution[int]) (int, error) {
					ran = true
					return 0, nil
				}, core.FailsafePolicy[int](b))
				assert.False(t, ran, "a refused execution does not run")
				e := assertRefusal(t, err, tt.want, "test")
				after := countsOf(b.Stats())
				assert.Equal(t, before.rejected+tt.rejected, after.rejected)
				assert.Equal(t, before.total, after.total)

				_, execErr := core.Execute(context.Background(), b, succeed(1))
				assert.Equal(t, execErr, error(e), "the same *core.Error as Execute's")
			})
		})
	}
}

// TestFailsafePolicyNilBulkhead checks that a policy without a bulkhead fails every
// execution with an error wrapping ErrInvalidArgument, as Execute does, and never panics.
func TestFailsafePolicyNilBulkhead(t *testing.T) {
	ran := false
	v, err := run(context.Background(), func(failsafe.Execution[int]) (int, error) {
		ran = true
		return 1, nil
	}, core.FailsafePolicy[int](nil))
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "FailsafePolicy")
	assert.Zero(t, v)
	assert.False(t, ran)

	_, execErr := core.Execute(context.Background(), nil, succeed(1))
	assert.ErrorIs(t, execErr, core.ErrInvalidArgument, "Execute's error is of the same kind")
}

// TestFailsafePolicyRetry checks that every attempt of a retry takes its own permit and
// is counted, and that a retry outside the bulkhead sees the bulkhead's refusals.
func TestFailsafePolicyRetry(t *testing.T) {
	t.Run("each attempt is one call", func(t *testing.T) {
		b := newBulkhead(t, nil)
		attempts := 0
		v, err := run(context.Background(), func(exec failsafe.Execution[int]) (int, error) {
			attempts++
			if s := b.Stats(); !assert.Equal(t, 1, s.ActiveTasks, "the attempt holds a permit") {
				return 0, nil
			}
			if attempts < 3 {
				return 0, errBoom
			}
			return 42, nil
		}, retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build(), core.FailsafePolicy[int](b))
		require.NoError(t, err)
		assert.Equal(t, 42, v)
		s := b.Stats()
		assert.Equal(t, counted{total: 3, succeeded: 1, failed: 2}, countsOf(s))
		assertIdle(t, s)
	})
	t.Run("each refused attempt is one rejection", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 })
			g := newGate()
			held := goExecute(context.Background(), b, hold(g, 0, nil))
			synctest.Wait()
			retry := retrypolicy.NewBuilder[int]().WithMaxAttempts(3).WithDelay(10 * time.Millisecond).ReturnLastFailure().Build()
			_, err := run(context.Background(), fsSucceed(1), retry, core.FailsafePolicy[int](b))
			assertRefusal(t, err, core.ErrFull, "test")
			assert.Equal(t, counted{total: 1, rejected: 3}, countsOf(b.Stats()))
			close(g)
			_, _ = held.wait()
			assertIdle(t, b.Stats())
		})
	})
	t.Run("a retry that stops at an open circuit", func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			breakerConfig(c)
			c.FailureThreshold = 2
		})
		retry := retrypolicy.NewBuilder[int]().WithMaxAttempts(5).AbortOnErrors(core.ErrCircuitOpen).Build()
		_, err := run(context.Background(), fsFail, retry, core.FailsafePolicy[int](b))
		e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
		assert.Positive(t, e.RetryAfter)
		assert.Equal(t, counted{total: 2, failed: 2, rejected: 1}, countsOf(b.Stats()))
	})
}

// TestFailsafePolicyFallback checks that a fallback outside the bulkhead sees the refusal
// and replaces it.
func TestFailsafePolicyFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 })
		g := newGate()
		held := goExecute(context.Background(), b, hold(g, 0, nil))
		synctest.Wait()

		var seen error
		fb := fallback.NewWithFunc(func(exec failsafe.Execution[int]) (int, error) {
			seen = exec.LastError()
			return -1, nil
		})
		v, err := run(context.Background(), fsSucceed(1), fb, core.FailsafePolicy[int](b))
		require.NoError(t, err)
		assert.Equal(t, -1, v)
		assertRefusal(t, seen, core.ErrFull, "test")
		assert.Equal(t, counted{total: 1, rejected: 1}, countsOf(b.Stats()))
		close(g)
		_, _ = held.wait()
	})
}

// notRefused is a hedge policy's CancelIf: any result but a bulkhead's refusal is final.
func notRefused(_ int, err error) bool {
	var e *core.Error
	return !errors.As(err, &e)
}

// TestFailsafePolicyHedge checks that each hedged attempt takes its own permit, that a
// losing attempt's cancellation is neutral, and that a refused hedge is a result the
// hedge policy must be told to ignore.
func TestFailsafePolicyHedge(t *testing.T) {
	// slowFirst: the first attempt takes 100ms (or until cancelled), a hedge returns 2 at once.
	slowFirst := func(exec failsafe.Execution[int]) (int, error) {
		if exec.IsHedge() {
			return 2, nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
			return 1, nil
		case <-exec.Context().Done():
			return 0, exec.Context().Err()
		}
	}
	tests := []struct {
		name      string
		limit     int
		hedge     failsafe.Policy[int]
		wantValue int
		wantErr   error
		wantAt    time.Duration
		want      counted
	}{
		{
			name:      "room for the hedge: it wins, the first attempt is cancelled (neutral)",
			limit:     2,
			hedge:     hedgepolicy.NewWithDelay[int](10 * time.Millisecond),
			wantValue: 2,
			wantAt:    10 * time.Millisecond,
			want:      counted{total: 2, succeeded: 1, failed: 1},
		},
		{
			name:    "no room: by default the refusal is the first result, and wins",
			limit:   1,
			hedge:   hedgepolicy.NewWithDelay[int](10 * time.Millisecond),
			wantErr: core.ErrFull,
			wantAt:  10 * time.Millisecond,
			want:    counted{total: 1, failed: 1, rejected: 1},
		},
		{
			name:      "no room, refusals ignored: the first attempt's result wins",
			limit:     1,
			hedge:     hedgepolicy.NewBuilderWithDelay[int](10 * time.Millisecond).CancelIf(notRefused).Build(),
			wantValue: 1,
			wantAt:    100 * time.Millisecond,
			want:      counted{total: 1, succeeded: 1, rejected: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) {
					breakerConfig(c)
					c.MaxConcurrentCalls, c.MaxQueueSize = tt.limit, 0
				})
				start := time.Now()
				v, err := run(context.Background(), slowFirst, tt.hedge, core.FailsafePolicy[int](b))
				assert.Equal(t, tt.wantAt, time.Since(start))
				if tt.wantErr != nil {
					assertRefusal(t, err, tt.wantErr, "test")
				} else {
					require.NoError(t, err)
					assert.Equal(t, tt.wantValue, v)
				}
				synctest.Wait() // the losing attempt returns
				s := b.Stats()
				assert.Equal(t, tt.want, countsOf(s))
				assert.Equal(t, core.Healthy, s.State, "cancelled and refused attempts never open the circuit")
				assertIdle(t, s)
			})
		})
	}
}

// TestFailsafePolicyTimeouts checks how the bulkhead's Timeout composes with failsafe-go's
// timeout policy: the first deadline to pass ends the attempt, and what the caller and the
// statistics see depends on whose it was and where the timeout policy sits.
func TestFailsafePolicyTimeouts(t *testing.T) {
	tests := []struct {
		name        string
		bulkheadTO  time.Duration
		outer       time.Duration // failsafe-go timeout outside the bulkhead; 0 = none
		inner       time.Duration // failsafe-go timeout inside it; 0 = none
		fn          func(failsafe.Execution[int]) (int, error)
		wantErr     error
		wantAt      time.Duration
		want        counted
		wantState   core.State
		wantFnErr   error // what the function's context says once it ended
		anyFnErr    bool  // the function's context may or may not have ended
		activeUntil time.Duration
	}{
		{
			name:       "the bulkhead's Timeout first: ErrTimeout, timed out, a failure",
			bulkheadTO: 50 * time.Millisecond,
			outer:      100 * time.Millisecond,
			fn:         fsWaitCtx,
			wantErr:    core.ErrTimeout,
			wantAt:     50 * time.Millisecond,
			want:       counted{total: 1, failed: 1, timedOut: 1},
			wantState:  core.Isolated,
			wantFnErr:  context.Canceled,
		},
		{
			name:       "an outer timeout first: its error, the caller left (neutral)",
			bulkheadTO: 100 * time.Millisecond,
			outer:      50 * time.Millisecond,
			fn:         fsWaitCtx,
			wantErr:    timeout.ErrExceeded,
			wantAt:     50 * time.Millisecond,
			want:       counted{total: 1, failed: 1},
			wantState:  core.Healthy,
			wantFnErr:  context.Canceled,
		},
		{
			name:       "an inner timeout first: its error, a failure",
			bulkheadTO: 100 * time.Millisecond,
			inner:      50 * time.Millisecond,
			fn:         fsWaitCtx,
			wantErr:    timeout.ErrExceeded,
			wantAt:     50 * time.Millisecond,
			want:       counted{total: 1, failed: 1},
			wantState:  core.Isolated,
			wantFnErr:  context.Canceled,
		},
		{
			name:       "the bulkhead's Timeout before an inner one: ErrTimeout",
			bulkheadTO: 50 * time.Millisecond,
			inner:      100 * time.Millisecond,
			fn:         fsWaitCtx,
			wantErr:    core.ErrTimeout,
			wantAt:     50 * time.Millisecond,
			want:       counted{total: 1, failed: 1, timedOut: 1},
			wantState:  core.Isolated,
			wantFnErr:  context.Canceled,
		},
		{
			name:       "a function that ignores its context keeps the permit until it returns",
			bulkheadTO: 50 * time.Millisecond,
			fn: func(failsafe.Execution[int]) (int, error) {
				time.Sleep(200 * time.Millisecond)
				return 1, nil
			},
			wantErr:     core.ErrTimeout,
			wantAt:      200 * time.Millisecond,
			wantFnErr:   context.Canceled,
			want:        counted{total: 1, failed: 1, timedOut: 1},
			wantState:   core.Isolated,
			activeUntil: 200 * time.Millisecond,
		},
		{
			name:       "returns just as the Timeout passes: timed out, whichever came first",
			bulkheadTO: 50 * time.Millisecond,
			fn: func(failsafe.Execution[int]) (int, error) {
				time.Sleep(50 * time.Millisecond)
				return 1, nil
			},
			wantErr:   core.ErrTimeout,
			wantAt:    50 * time.Millisecond,
			want:      counted{total: 1, failed: 1, timedOut: 1},
			wantState: core.Isolated,
			anyFnErr:  true,
		},
		{
			name:       "done in time",
			bulkheadTO: 50 * time.Millisecond,
			fn: func(failsafe.Execution[int]) (int, error) {
				time.Sleep(10 * time.Millisecond)
				return 1, nil
			},
			wantAt:    10 * time.Millisecond,
			want:      counted{total: 1, succeeded: 1},
			wantState: core.Healthy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) {
					breakerConfig(c)
					c.Timeout = tt.bulkheadTO
				})
				var policies []failsafe.Policy[int]
				if tt.outer > 0 {
					policies = append(policies, timeout.New[int](tt.outer))
				}
				policies = append(policies, core.FailsafePolicy[int](b))
				if tt.inner > 0 {
					policies = append(policies, timeout.New[int](tt.inner))
				}
				var fnErr error
				fn := func(exec failsafe.Execution[int]) (int, error) {
					v, err := tt.fn(exec)
					fnErr = exec.Context().Err()
					return v, err
				}
				if tt.activeUntil > 0 {
					go func() {
						time.Sleep(tt.activeUntil - time.Millisecond)
						assert.Equal(t, 1, b.Stats().ActiveTasks, "the permit is held while the function runs")
					}()
				}
				start := time.Now()
				v, err := run(context.Background(), fn, policies...)
				assert.Equal(t, tt.wantAt, time.Since(start))
				switch tt.wantErr {
				case nil:
					assert.NoError(t, err)
					assert.Equal(t, 1, v)
				case core.ErrTimeout:
					assertRefusal(t, err, core.ErrTimeout, "test")
				default:
					assert.ErrorIs(t, err, tt.wantErr)
				}
				if !tt.anyFnErr {
					assert.Equal(t, tt.wantFnErr, fnErr)
				}
				synctest.Wait()
				s := b.Stats()
				assert.Equal(t, tt.want, countsOf(s))
				assert.Equal(t, tt.wantState, s.State)
				assertIdle(t, s)
			})
		})
	}
}

// TestFailsafePolicyCircuitBreaker composes the bulkhead with failsafe-go's own circuit
// breaker: by default it counts the bulkhead's refusals as failures; told to ignore them,
// it judges only the dependency.
func TestFailsafePolicyCircuitBreaker(t *testing.T) {
	tests := []struct {
		name        string
		breaker     circuitbreaker.CircuitBreaker[int]
		wantOpen    bool
		wantRefused int64
	}{
		{
			name:        "default: refusals open failsafe-go's breaker",
			breaker:     circuitbreaker.NewBuilder[int]().WithFailureThreshold(2).WithDelay(time.Hour).Build(),
			wantOpen:    true,
			wantRefused: 2,
		},
		{
			name: "refusals ignored: it stays closed",
			breaker: circuitbreaker.NewBuilder[int]().WithFailureThreshold(2).WithDelay(time.Hour).
				HandleIf(func(_ int, err error) bool {
					var e *core.Error
					return err != nil && !errors.As(err, &e)
				}).Build(),
			wantRefused: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 })
				g := newGate()
				held := goExecute(context.Background(), b, hold(g, 0, nil))
				synctest.Wait()
				var errs []error
				for range 3 {
					_, err := run(context.Background(), fsSucceed(1), tt.breaker, core.FailsafePolicy[int](b))
					errs = append(errs, err)
				}
				assertRefusal(t, errs[0], core.ErrFull, "test")
				if tt.wantOpen {
					assert.ErrorIs(t, errs[2], circuitbreaker.ErrOpen)
				} else {
					assertRefusal(t, errs[2], core.ErrFull, "test")
				}
				assert.Equal(t, tt.wantOpen, tt.breaker.IsOpen())
				assert.Equal(t, tt.wantRefused, b.Stats().RejectedExecutions)
				close(g)
				_, _ = held.wait()

				// With room again, successes go through and are counted.
				if !tt.wantOpen {
					v, err := run(context.Background(), fsSucceed(5), tt.breaker, core.FailsafePolicy[int](b))
					require.NoError(t, err)
					assert.Equal(t, 5, v)
				}
				assertIdle(t, b.Stats())
			})
		})
	}
}

// TestFailsafePolicyCheckOnly checks the look failsafegrpc's tap handle asks for: no
// permit, no outcome, a counted refusal when the bulkhead would refuse.
func TestFailsafePolicyCheckOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			breakerConfig(c)
			c.MaxConcurrentCalls, c.MaxQueueSize = 1, 1
		})
		check := context.WithValue(context.Background(), policy.CheckOnlyKey, true)
		look := func() error {
			return failsafe.With(core.FailsafePolicy[any](b)).WithContext(check).Run(func() error { return nil })
		}

		require.NoError(t, look(), "room: let through")
		assert.Equal(t, counted{}, countsOf(b.Stats()), "a look is not a call")

		g := newGate()
		running := goExecute(context.Background(), b, hold(g, 0, nil))
		synctest.Wait()
		require.NoError(t, look(), "a place in the queue: let through")
		queued := goExecute(context.Background(), b, hold(g, 0, nil))
		synctest.Wait()
		assertRefusal(t, look(), core.ErrFull, "test")
		assert.Equal(t, int64(1), b.Stats().RejectedExecutions)
		close(g)
		_, _ = running.wait()
		_, _ = queued.wait()

		_, err := core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		e := assertRefusal(t, look(), core.ErrCircuitOpen, "test")
		assert.Equal(t, time.Hour, e.RetryAfter)
		s := b.Stats()
		assert.Equal(t, counted{total: 3, succeeded: 2, failed: 1, rejected: 2}, countsOf(s))
		assertIdle(t, s)
	})
}

// TestFailsafePolicyResultAgnostic checks that FailsafePolicy[any] composes with
// executors of any result type.
func TestFailsafePolicyResultAgnostic(t *testing.T) {
	b := newBulkhead(t, nil)
	p, ok := core.FailsafePolicy[any](b).(failsafe.ResultAgnosticPolicy[any])
	require.True(t, ok)
	s, err := failsafe.WithAny[string](p).Get(func() (string, error) { return "ok", nil })
	require.NoError(t, err)
	assert.Equal(t, "ok", s)
	s, err = failsafe.With(retrypolicy.NewWithDefaults[string]()).ComposeAny(p).Get(func() (string, error) { return "", errBoom })
	assert.ErrorIs(t, err, errBoom)
	assert.Empty(t, s)
	assert.Equal(t, counted{total: 4, succeeded: 1, failed: 3}, countsOf(b.Stats()))
}

// refusalCounter is a failsafe-go policy that counts the bulkhead refusals coming out of
// the policies inside it.
type refusalCounter struct{ full, open atomic.Int64 }

func (c *refusalCounter) ToExecutor(int) any { return c }

func (c *refusalCounter) Apply(inner func(failsafe.Execution[int]) *common.PolicyResult[int]) func(failsafe.Execution[int]) *common.PolicyResult[int] {
	return func(exec failsafe.Execution[int]) *common.PolicyResult[int] {
		res := inner(exec)
		switch {
		case errors.Is(res.Error, core.ErrFull):
			c.full.Add(1)
		case errors.Is(res.Error, core.ErrCircuitOpen):
			c.open.Add(1)
		}
		return res
	}
}

// TestFailsafePolicyHammer runs many goroutines through retries and hedges around the
// policy and checks that the statistics stay exact: the ledger invariants at every
// snapshot, and at the end every attempt accounted for once.
func TestFailsafePolicyHammer(t *testing.T) {
	tests := []struct {
		name     string
		policies func(b *core.Bulkhead, c *refusalCounter) []failsafe.Policy[int]
		queue    int
		hedged   bool
	}{
		{
			name: "retry",
			policies: func(b *core.Bulkhead, c *refusalCounter) []failsafe.Policy[int] {
				return []failsafe.Policy[int]{retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build(), c, core.FailsafePolicy[int](b)}
			},
			queue: 2,
		},
		{
			name: "retry and hedge",
			policies: func(b *core.Bulkhead, c *refusalCounter) []failsafe.Policy[int] {
				return []failsafe.Policy[int]{
					retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build(),
					hedgepolicy.NewBuilderWithDelay[int](20 * time.Microsecond).WithMaxHedges(2).CancelIf(notRefused).Build(),
					c, core.FailsafePolicy[int](b),
				}
			},
			hedged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const workers, perWorker = 8, 150
			var rejectedEvents atomic.Int64
			b := newBulkhead(t, func(c *core.Config) {
				c.MaxConcurrentCalls, c.MaxQueueSize = 3, tt.queue
			}, core.WithEventHook(func(e core.Event) {
				if e.Kind == core.EventRejected {
					rejectedEvents.Add(1)
				}
			}))
			var counter refusalCounter
			var calls, succeeded atomic.Int64
			fn := func(exec failsafe.Execution[int]) (int, error) {
				calls.Add(1)
				runtime.Gosched()
				if rand.IntN(3) == 0 {
					return 0, errBoom
				}
				switch {
				case tt.hedged && rand.IntN(2) == 0:
					select {
					case <-exec.Context().Done():
						return 0, exec.Context().Err()
					case <-time.After(50 * time.Microsecond):
					}
				case !tt.hedged:
					// Hold the permit for a while, so that the eight workers overlap and
					// fill the five places even when the scheduler runs them one by one.
					time.Sleep(50 * time.Microsecond)
				}
				succeeded.Add(1)
				return 1, nil
			}
			stop := make(chan struct{})
			snapshots := make(chan core.Stats, 1024)
			var snapper sync.WaitGroup
			snapper.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					select {
					case snapshots <- b.Stats():
					default:
					}
					runtime.Gosched()
				}
			})
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range perWorker {
						_, _ = run(context.Background(), fn, tt.policies(b, &counter)...)
					}
				})
			}
			wg.Wait()
			close(stop)
			snapper.Wait()
			close(snapshots)
			for s := range snapshots {
				if !assertInvariants(t, s) {
					break
				}
			}
			// Losing hedges may still run after the execution returned.
			require.Eventually(t, func() bool { return b.Stats().ActiveTasks == 0 }, 5*time.Second, time.Millisecond)
			s := b.Stats()
			assertIdle(t, s)
			assert.Equal(t, calls.Load(), s.TotalExecutions, "every admitted attempt ran once")
			assert.Equal(t, succeeded.Load(), s.SuccessfulExecutions)
			assert.Equal(t, rejectedEvents.Load(), s.RejectedExecutions, "every refusal counted once")
			if tt.hedged {
				// A losing hedge cancelled before its admission returns the result it was
				// cancelled with, which failsafe-go keeps in state its attempts share: a later
				// round's refusal may come out of it a second time.
				assert.GreaterOrEqual(t, counter.full.Load(), s.RejectedExecutions, "every refusal reached the caller")
			} else {
				assert.Equal(t, counter.full.Load(), s.RejectedExecutions, "every refusal reached the caller once")
			}
			assert.Positive(t, s.RejectedExecutions, "the hammer reached the limit")
		})
	}
}

// TestPriorityFromFailsafe checks that failsafe-go's priorities and levels carry over
// when the context has no priority of bulkman's, mapped as PriorityFrom documents.
func TestPriorityFromFailsafe(t *testing.T) {
	bg := context.Background()
	tests := []struct {
		name string
		ctx  context.Context
		want core.Priority
	}{
		{"none", bg, core.PriorityNormal},
		{"VeryLow", priority.VeryLow.AddTo(bg), core.PriorityLow},
		{"Low", priority.Low.AddTo(bg), core.PriorityLow},
		{"Medium", priority.Medium.AddTo(bg), core.PriorityNormal},
		{"High", priority.High.AddTo(bg), core.PriorityHigh},
		{"VeryHigh", priority.VeryHigh.AddTo(bg), core.PriorityCritical},
		{"a priority above VeryHigh", priority.ContextWithPriority(bg, 9), core.PriorityCritical},
		{"failsafe-go's none (-1)", priority.ContextWithPriority(bg, -1), core.PriorityNormal},
		{"level 0", priority.ContextWithLevel(bg, 0), core.PriorityLow},
		{"level 199", priority.ContextWithLevel(bg, 199), core.PriorityLow},
		{"level 200", priority.ContextWithLevel(bg, 200), core.PriorityNormal},
		{"level 299", priority.ContextWithLevel(bg, 299), core.PriorityNormal},
		{"level 300", priority.ContextWithLevel(bg, 300), core.PriorityHigh},
		{"level 399", priority.ContextWithLevel(bg, 399), core.PriorityHigh},
		{"level 400", priority.ContextWithLevel(bg, 400), core.PriorityCritical},
		{"level 499", priority.ContextWithLevel(bg, 499), core.PriorityCritical},
		{"level 500", priority.ContextWithLevel(bg, 500), core.PriorityCritical},
		{"level -1", priority.ContextWithLevel(bg, -1), core.PriorityNormal},
		{"a level wins over a priority", priority.ContextWithLevel(priority.VeryHigh.AddTo(bg), 50), core.PriorityLow},
		{"a negative level leaves the priority", priority.ContextWithLevel(priority.High.AddTo(bg), -1), core.PriorityHigh},
		{"bulkman's own wins", core.WithPriority(priority.ContextWithLevel(bg, 450), core.PriorityLow), core.PriorityLow},
		{"bulkman's own wins, even normal", priority.VeryLow.AddTo(core.WithPriority(bg, core.PriorityNormal)), core.PriorityNormal},
		{"a value of another type is ignored", context.WithValue(bg, priority.LevelKey, "400"), core.PriorityNormal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, core.PriorityFrom(tt.ctx))
		})
	}
	// Every level maps as its failsafe-go priority does.
	for level := range 500 {
		p := priority.Priority(level / 100)
		require.Equal(t, core.PriorityFrom(p.AddTo(bg)), core.PriorityFrom(priority.ContextWithLevel(bg, level)), "level %d", level)
	}
}

// TestFailsafePolicyPriorityQueue checks that a failsafe-go priority in the execution's
// context ranks the attempt in the bulkhead's queue: served before a normal call that
// waited longer, and taking the place of one when the queue is full.
func TestFailsafePolicyPriorityQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 2 })
		var mu sync.Mutex
		var order []string
		record := func(name string) func(context.Context) (int, error) {
			return func(context.Context) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				order = append(order, name)
				return 0, nil
			}
		}
		g := newGate()
		holder := goExecute(context.Background(), b, hold(g, 0, nil))
		synctest.Wait()
		normal := goExecute(context.Background(), b, record("normal"))
		synctest.Wait()

		policyCall := func(ctx context.Context, name string) <-chan error {
			done := make(chan error, 1)
			go func() {
				_, err := run(ctx, func(exec failsafe.Execution[int]) (int, error) {
					return record(name)(exec.Context())
				}, core.FailsafePolicy[int](b))
				done <- err
			}()
			return done
		}
		high := policyCall(priority.High.AddTo(context.Background()), "high")
		synctest.Wait()
		// The queue (2) is full: a critical call takes the place of the normal one.
		critical := policyCall(priority.ContextWithLevel(context.Background(), 450), "critical")
		synctest.Wait()
		_, err := normal.wait()
		assertRefusal(t, err, core.ErrFull, "test")

		close(g)
		_, _ = holder.wait()
		require.NoError(t, <-high)
		require.NoError(t, <-critical)
		assert.Equal(t, []string{"critical", "high"}, order)
		s := b.Stats()
		assert.Equal(t, counted{total: 3, succeeded: 3, rejected: 1}, countsOf(s))
		assertIdle(t, s)
	})
}
