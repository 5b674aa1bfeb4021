package core_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

const isolation = 10 * time.Second

// newCircuit returns a bulkhead with the breaker on, the given thresholds and
// IsolationDuration = isolation, changed further by mutate.
func newCircuit(t *testing.T, failures, successes int, mutate func(*core.Config), opts ...core.Option) *core.Bulkhead {
	t.Helper()
	return newBulkhead(t, func(c *core.Config) {
		c.CircuitBreakerEnabled = true
		c.FailureThreshold, c.SuccessThreshold = failures, successes
		c.IsolationDuration = isolation
		if mutate != nil {
			mutate(c)
		}
	}, opts...)
}

// trip opens b's circuit with FailureThreshold failures.
func trip(t *testing.T, b *core.Bulkhead) {
	t.Helper()
	for range b.Config().FailureThreshold {
		_, err := core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
	}
	require.Equal(t, core.Isolated, b.State())
}

// tripAndWait opens b's circuit and waits out its isolation.
func tripAndWait(t *testing.T, b *core.Bulkhead) {
	t.Helper()
	trip(t, b)
	time.Sleep(b.Config().IsolationDuration)
}

// runs executes fn through b and reports whether fn ran.
func runs(b *core.Bulkhead, fn func(context.Context) (int, error)) (bool, error) {
	ran := false
	_, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
		ran = true
		return fn(ctx)
	})
	return ran, err
}

var stateLetters = map[core.State]byte{core.Healthy: 'H', core.Degraded: 'D', core.Isolated: 'I'}

func TestCircuitOpensAfterConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name      string
		threshold int
		calls     string // F: fn fails, S: fn succeeds
		states    string // the State after each call
	}{
		{"threshold one", 1, "F", "I"},
		{"three in a row", 3, "FFF", "HHI"},
		{"a success resets the streak", 3, "FFSFFSFFF", "HHHHHHHHI"},
		{"successes never open", 2, "SSSSSS", "HHHHHH"},
		{"alternating never opens, then two in a row do", 2, "FSFSFF", "HHHHHI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, tt.threshold, 1, nil)
				var states []byte
				for _, c := range tt.calls {
					fn := succeed(1)
					if c == 'F' {
						fn = fail
					}
					ran, err := runs(b, fn)
					require.NoError(t, err)
					require.True(t, ran)
					states = append(states, stateLetters[b.State()])
				}
				assert.Equal(t, tt.states, string(states))
			})
		})
	}
}

func TestCircuitOpenRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 2, 1, nil)
		trip(t, b)
		before := b.Stats()
		assert.Equal(t, "OPEN", before.CircuitStatus)
		assert.False(t, b.IsHealthy())

		time.Sleep(isolation / 4)
		ran, err := runs(b, succeed(1))
		assert.False(t, ran, "the function is not run while the circuit is open")
		e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
		assert.Equal(t, isolation*3/4, e.RetryAfter, "RetryAfter is the isolation left")
		_, err = b.Acquire(context.Background())
		assertRefusal(t, err, core.ErrCircuitOpen, "test")

		after := b.Stats()
		assert.Equal(t, before.RejectedExecutions+2, after.RejectedExecutions)
		assert.Equal(t, before.TotalExecutions, after.TotalExecutions)
		assertIdle(t, after)
	})
}

func TestCircuitProbeAfterIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 1, 1, nil)
		trip(t, b)

		time.Sleep(isolation - time.Millisecond)
		ran, err := runs(b, succeed(1))
		assert.False(t, ran)
		assertRefusal(t, err, core.ErrCircuitOpen, "test")

		time.Sleep(time.Millisecond)
		assert.Equal(t, core.Degraded, b.State(), "half-open once the isolation is over, before any call")
		assert.Equal(t, "HALF_OPEN", b.Stats().CircuitStatus)
		assert.Zero(t, b.Stats().OpenUntil)

		g := newGate()
		probe := goExecute(context.Background(), b, hold(g, 1, nil))
		synctest.Wait()
		assert.Equal(t, core.Degraded, b.State(), "the call after the isolation is a probe")
		assert.Equal(t, "HALF_OPEN", b.Stats().CircuitStatus)
		assert.True(t, b.IsHealthy(), "Degraded is healthy")
		close(g)
		res, err := probe.wait()
		require.NoError(t, err)
		assert.True(t, res.Success)
		assert.Equal(t, core.Healthy, b.State())
		assert.Equal(t, "CLOSED", b.Stats().CircuitStatus)
	})
}

func TestCircuitZeroIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 1, 2, func(c *core.Config) { c.IsolationDuration = 0 })
		_, err := core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		assert.Equal(t, core.Degraded, b.State(), "an isolation of 0 is over at once: the next call is a probe")
		for i, want := range []core.State{core.Degraded, core.Healthy} {
			ran, err := runs(b, succeed(1))
			require.NoError(t, err, "call %d", i)
			assert.True(t, ran, "with no isolation the next call is already a probe")
			assert.Equal(t, want, b.State(), "after success %d", i+1)
		}
	})
}

func TestCircuitHalfOpenProbeLimit(t *testing.T) {
	for _, successes := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("SuccessThreshold=%d", successes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, successes, nil)
				tripAndWait(t, b)
				g := newGate()
				var probes []*call
				for range successes {
					probes = append(probes, goExecute(context.Background(), b, hold(g, 1, nil)))
				}
				synctest.Wait()
				require.Equal(t, successes, b.Stats().ActiveTasks, "SuccessThreshold probes run at once")

				ran, err := runs(b, succeed(1))
				assert.False(t, ran, "no probe beyond SuccessThreshold")
				assertRefusal(t, err, core.ErrCircuitOpen, "test")
				_, err = b.Acquire(context.Background())
				assertRefusal(t, err, core.ErrCircuitOpen, "test")
				assert.Equal(t, core.Degraded, b.State())

				close(g)
				for _, p := range probes {
					_, err := p.wait()
					assert.NoError(t, err)
				}
				assert.Equal(t, core.Healthy, b.State())
			})
		})
	}
}

func TestCircuitClosesAfterConsecutiveSuccesses(t *testing.T) {
	tests := []struct {
		name   string
		probes string // S: success, F: failure; run one after another once half-open
		states string
	}{
		{"three successes close", "SSS", "DDH"},
		{"a failure re-opens", "SSF", "DDI"},
		{"the first failure re-opens", "F", "I"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 3, nil)
				tripAndWait(t, b)
				var states []byte
				for _, c := range tt.probes {
					fn := succeed(1)
					if c == 'F' {
						fn = fail
					}
					ran, err := runs(b, fn)
					require.NoError(t, err)
					require.True(t, ran)
					states = append(states, stateLetters[b.State()])
				}
				assert.Equal(t, tt.states, string(states))
				if b.State() == core.Isolated {
					_, err := core.Execute(context.Background(), b, succeed(1))
					e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
					assert.Equal(t, isolation, e.RetryAfter, "a fresh isolation")
				}
			})
		})
	}
}

// Whatever makes a probe fail (its error, a panic, a timeout while it runs) opens the
// circuit again.
func TestCircuitProbeFailureReopens(t *testing.T) {
	tests := []struct {
		name string
		fn   func(context.Context) (int, error)
	}{
		{"error", fail},
		{"panic", func(context.Context) (int, error) { panic("probe panics") }},
		{"timeout", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }},
		{"timeout, fn ignores ctx", func(context.Context) (int, error) { time.Sleep(time.Hour); return 1, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 2, func(c *core.Config) { c.Timeout = time.Second })
				tripAndWait(t, b)
				func() {
					defer func() { _ = recover() }()
					_, _ = core.Execute(context.Background(), b, tt.fn)
				}()
				assert.Equal(t, core.Isolated, b.State())
				ran, err := runs(b, succeed(1))
				assert.False(t, ran)
				assertRefusal(t, err, core.ErrCircuitOpen, "test")

				// The circuit still probes and can close afterwards.
				time.Sleep(isolation)
				for range 2 {
					ran, err := runs(b, succeed(1))
					require.NoError(t, err)
					assert.True(t, ran)
				}
				assert.Equal(t, core.Healthy, b.State())
				time.Sleep(time.Hour) // let an abandoned function end
				synctest.Wait()
				assertIdle(t, b.Stats())
			})
		})
	}
}

// A call's outcome counts only in the circuit state it was admitted in.
func TestCircuitLateOutcomeIgnored(t *testing.T) {
	t.Run("success while OPEN", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newCircuit(t, 1, 1, func(c *core.Config) { c.MaxConcurrentCalls = 2 })
			g := newGate()
			early := goExecute(context.Background(), b, hold(g, 1, nil))
			synctest.Wait()
			trip(t, b)
			close(g)
			res, err := early.wait()
			require.NoError(t, err)
			assert.True(t, res.Success, "the caller still gets its result")
			assert.Equal(t, core.Isolated, b.State(), "a success that lands while OPEN is ignored")
			assert.Equal(t, int64(1), b.Stats().SuccessfulExecutions, "and counted in Stats")
		})
	})
	for _, late := range []struct {
		name    string
		outcome error
		then    func(context.Context) (int, error) // the probe's outcome
		want    core.State
	}{
		{"success from CLOSED while HALF_OPEN", nil, fail, core.Isolated},
		{"failure from CLOSED while HALF_OPEN", errBoom, succeed(1), core.Healthy},
	} {
		t.Run(late.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 1, func(c *core.Config) { c.MaxConcurrentCalls = 2 })
				g := newGate()
				early := goExecute(context.Background(), b, hold(g, 1, late.outcome))
				synctest.Wait()
				tripAndWait(t, b)

				pg := newGate()
				probe := goExecute(context.Background(), b, func(ctx context.Context) (int, error) {
					<-pg
					return late.then(ctx)
				})
				synctest.Wait()
				require.Equal(t, core.Degraded, b.State())
				close(g)
				_, err := early.wait()
				require.NoError(t, err)
				assert.Equal(t, core.Degraded, b.State(), "the early call's outcome does not judge the probe round")

				close(pg)
				_, err = probe.wait()
				require.NoError(t, err)
				assert.Equal(t, late.want, b.State(), "the probe decides")
			})
		})
	}
}

// A hung dependency trips the circuit: a timeout while running counts as a failure.
func TestCircuitTimeoutsCount(t *testing.T) {
	for _, tt := range []struct {
		name string
		fn   func(context.Context) (int, error)
	}{
		{"fn ignores ctx", func(context.Context) (int, error) { time.Sleep(time.Minute); return 1, nil }},
		{"fn returns ctx's error", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 2, 1, func(c *core.Config) { c.Timeout = time.Second })
				for i, want := range []core.State{core.Healthy, core.Isolated} {
					_, err := core.Execute(context.Background(), b, tt.fn)
					assertRefusal(t, err, core.ErrTimeout, "test")
					assert.Equal(t, want, b.State(), "after timeout %d", i+1)
				}
				assert.Equal(t, int64(2), b.Stats().TimedOutExecutions)
				time.Sleep(time.Minute)
				synctest.Wait()
			})
		})
	}
}

// The bulkhead's own refusals and the caller's own cancellation never count against the
// circuit, and leave no trace in it.
func TestCircuitNeutral(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, b *core.Bulkhead)
	}{
		{"ErrFull", func(t *testing.T, b *core.Bulkhead) {
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			queued := goExecute(context.Background(), b, succeed(1))
			synctest.Wait()
			for range 5 {
				_, err := core.Execute(context.Background(), b, succeed(1))
				assertRefusal(t, err, core.ErrFull, "test")
			}
			require.NoError(t, p.Release(core.Success))
			_, err = queued.wait()
			require.NoError(t, err)
		}},
		{"timeout while queued", func(t *testing.T, b *core.Bulkhead) {
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			// Both the queue of Execute and of Acquire.
			_, err = core.Execute(context.Background(), b, succeed(1))
			assertRefusal(t, err, core.ErrTimeout, "test")
			_, err = b.Acquire(context.Background())
			assertRefusal(t, err, core.ErrTimeout, "test")
			// Held past its deadline: released as Success it would count as timed out.
			require.NoError(t, p.Release(core.Neutral))
		}},
		{"caller cancels while queued", func(t *testing.T, b *core.Bulkhead) {
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			c := goExecute(ctx, b, succeed(1))
			synctest.Wait()
			cancel()
			_, err = c.wait()
			assert.ErrorIs(t, err, context.Canceled)
			require.NoError(t, p.Release(core.Success))
		}},
		{"caller cancels while running, bulkhead with Timeout", func(t *testing.T, b *core.Bulkhead) {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := core.Execute(ctx, b, func(ctx context.Context) (int, error) {
				cancel()
				<-ctx.Done()
				return 0, ctx.Err()
			})
			assert.ErrorIs(t, err, context.Canceled)
		}},
		{"caller cancels while running, no Timeout", func(t *testing.T, b *core.Bulkhead) {
			nb := newCircuit(t, 1, 1, nil) // the same, without a Timeout
			ctx, cancel := context.WithCancel(context.Background())
			res, err := core.Execute(ctx, nb, func(ctx context.Context) (int, error) {
				cancel()
				return 0, ctx.Err()
			})
			require.NoError(t, err)
			assert.ErrorIs(t, res.Err, context.Canceled, "fn's own error, in the Result")
			assert.Equal(t, core.Healthy, nb.State())
			assert.Equal(t, int64(1), nb.Stats().FailedExecutions, "not a success")
		}},
		{"Permit released Neutral", func(t *testing.T, b *core.Bulkhead) {
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			require.NoError(t, p.Release(core.Neutral))
		}},
		{"shut down", func(t *testing.T, b *core.Bulkhead) {
			require.NoError(t, b.Shutdown(context.Background()))
			_, err := core.Execute(context.Background(), b, succeed(1))
			assertRefusal(t, err, core.ErrShutdown, "test")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 1, func(c *core.Config) {
					c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, time.Second
				})
				tt.run(t, b)
				synctest.Wait()
				assert.Equal(t, core.Healthy, b.State())
				s := b.Stats()
				assert.Equal(t, "CLOSED", s.CircuitStatus)
				assertIdle(t, s)
				// The breaker is live (unless shut down): one real failure opens it.
				if _, err := core.Execute(context.Background(), b, fail); err == nil {
					assert.Equal(t, core.Isolated, b.State())
				}
			})
		})
	}
}

// A half-open probe that ends without a verdict (its caller went away) gives its probe
// permit back: probing goes on and the circuit can still close.
func TestCircuitCancelledProbeDoesNotLeak(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  func(t *testing.T, b *core.Bulkhead) // starts one probe and cancels it
	}{
		{"cancelled while running, no Timeout", 0, func(t *testing.T, b *core.Bulkhead) {
			ctx, cancel := context.WithCancel(context.Background())
			res, err := core.Execute(ctx, b, func(ctx context.Context) (int, error) {
				cancel()
				return 0, ctx.Err()
			})
			require.NoError(t, err)
			assert.ErrorIs(t, res.Err, context.Canceled)
		}},
		{"cancelled while running, Timeout", time.Hour, func(t *testing.T, b *core.Bulkhead) {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := core.Execute(ctx, b, func(ctx context.Context) (int, error) {
				cancel()
				<-ctx.Done()
				return 0, ctx.Err()
			})
			assert.ErrorIs(t, err, context.Canceled)
		}},
		{"Permit released Neutral", 0, func(t *testing.T, b *core.Bulkhead) {
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			require.NoError(t, p.Release(core.Neutral))
		}},
	}
	for _, tt := range tests {
		for _, successes := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/SuccessThreshold=%d", tt.name, successes), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := newCircuit(t, 1, successes, func(c *core.Config) { c.Timeout = tt.timeout })
					tripAndWait(t, b)
					for range 3 { // more cancelled probes than there are probe permits
						tt.cancel(t, b)
						assert.Equal(t, core.Degraded, b.State(), "no verdict: still probing")
					}
					for i := range successes {
						ran, err := runs(b, succeed(1))
						require.NoError(t, err, "probe %d", i)
						assert.True(t, ran)
					}
					assert.Equal(t, core.Healthy, b.State())
					synctest.Wait()
					assertIdle(t, b.Stats())
				})
			})
		}
	}
}

// A probe that waits in the queue and whose caller leaves gives its probe permit back.
func TestCircuitCancelledQueuedProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 1, 1, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, time.Second
			c.IsolationDuration = time.Second
		})
		// A hung call: its timeout opens the circuit and it keeps the only permit.
		g := newGate()
		_, err := core.Execute(context.Background(), b, hold(g, 1, nil))
		assertRefusal(t, err, core.ErrTimeout, "test")
		require.Equal(t, core.Isolated, b.State())
		time.Sleep(time.Second)

		ctx, cancel := context.WithCancel(context.Background())
		probe := goExecute(ctx, b, succeed(1))
		synctest.Wait()
		require.Equal(t, 1, b.Stats().QueuedTasks, "the probe waits for the permit")
		require.Equal(t, core.Degraded, b.State())
		cancel()
		_, err = probe.wait()
		assert.ErrorIs(t, err, context.Canceled)

		close(g)
		synctest.Wait()
		ran, err := runs(b, succeed(1))
		require.NoError(t, err, "the queued probe's permit came back")
		assert.True(t, ran)
		assert.Equal(t, core.Healthy, b.State())
	})
}

// With two probe permits, a cancelled probe next to a successful one: the round starts
// afresh rather than closing on half a verdict, and later probes still close it.
func TestCircuitCancelledProbeBesideSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 1, 2, func(c *core.Config) { c.MaxConcurrentCalls = 3 })
		tripAndWait(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		cancelled := goExecute(ctx, b, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		g := newGate()
		good := goExecute(context.Background(), b, hold(g, 1, nil))
		synctest.Wait()
		ran, err := runs(b, succeed(1))
		assert.False(t, ran, "both probe permits are out")
		assertRefusal(t, err, core.ErrCircuitOpen, "test")

		cancel()
		_, err = cancelled.wait()
		require.NoError(t, err)
		close(g)
		_, err = good.wait()
		require.NoError(t, err)
		assert.Equal(t, core.Degraded, b.State(), "one success of two is no verdict")

		for range 2 {
			ran, err := runs(b, succeed(1))
			require.NoError(t, err)
			assert.True(t, ran)
		}
		assert.Equal(t, core.Healthy, b.State())
	})
}

func TestStateMapping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 1, 1, nil)
		check := func(state core.State, status string, healthy bool) {
			t.Helper()
			s := b.Stats()
			assert.Equal(t, state, b.State())
			assert.Equal(t, state, s.State)
			assert.Equal(t, status, s.CircuitStatus)
			assert.True(t, s.CircuitBreakerEnabled)
			assert.Equal(t, healthy, b.IsHealthy())
		}
		check(core.Healthy, "CLOSED", true)
		trip(t, b)
		check(core.Isolated, "OPEN", false)
		time.Sleep(isolation)
		g := newGate()
		probe := goExecute(context.Background(), b, hold(g, 1, nil))
		synctest.Wait()
		check(core.Degraded, "HALF_OPEN", true)
		close(g)
		_, err := probe.wait()
		require.NoError(t, err)
		check(core.Healthy, "CLOSED", true)
	})
}

func TestCircuitDisabled(t *testing.T) {
	b := newBulkhead(t, func(c *core.Config) { c.FailureThreshold = 1 })
	for range 20 {
		res, err := core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		assert.False(t, res.Success)
	}
	assert.Equal(t, core.Healthy, b.State())
	assert.True(t, b.IsHealthy())
	s := b.Stats()
	assert.False(t, s.CircuitBreakerEnabled)
	assert.Empty(t, s.CircuitStatus)
	assert.Equal(t, core.Healthy, s.State)
	assert.Equal(t, int64(20), s.FailedExecutions)
}

// Circuit transitions are logged: OPEN at Warn with its end time, the others at Info.
func TestCircuitLogging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		}), &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
		b := newCircuit(t, 1, 1, nil, core.WithLogger(logger))
		tripAndWait(t, b)
		_, err := core.Execute(context.Background(), b, succeed(1))
		require.NoError(t, err)

		mu.Lock()
		defer mu.Unlock()
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		require.Len(t, lines, 3)
		assert.Contains(t, lines[0], "level=WARN")
		assert.Contains(t, lines[0], "bulkhead=test from=CLOSED to=OPEN open_until=2000-01-01T00:00:10")
		assert.Contains(t, lines[1], "level=INFO")
		assert.Contains(t, lines[1], "from=OPEN to=HALF_OPEN")
		assert.Contains(t, lines[2], "level=INFO")
		assert.Contains(t, lines[2], "from=HALF_OPEN to=CLOSED")
	})
}

// An isolation of centuries (even math.MaxInt64, "until further notice") keeps the
// circuit open: the end time must not wrap around into the past.
func TestCircuitVeryLongIsolation(t *testing.T) {
	for _, iso := range []time.Duration{100 * 365 * 24 * time.Hour, 280 * 365 * 24 * time.Hour, math.MaxInt64} {
		t.Run(iso.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 1, func(c *core.Config) { c.IsolationDuration = iso })
				time.Sleep(time.Second) // the bulkhead has been up a while
				trip(t, b)
				for range 2 {
					ran, err := runs(b, succeed(1))
					assert.False(t, ran)
					e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
					assert.Greater(t, e.RetryAfter, 40*365*24*time.Hour)
					assert.Equal(t, core.Isolated, b.State())
					time.Sleep(50 * 365 * 24 * time.Hour)
				}
			})
		})
	}
}
