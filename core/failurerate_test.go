package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// newRateCircuit returns a bulkhead whose circuit opens by failure rate: percent of at
// least minCalls calls within window. FailureThreshold is 1, so any leak of the
// consecutive rule would show at the first failure.
func newRateCircuit(t *testing.T, percent, minCalls int, window time.Duration, mutate func(*core.Config)) *core.Bulkhead {
	t.Helper()
	return newCircuit(t, 1, 1, func(c *core.Config) {
		c.FailureRateThreshold, c.MinimumCalls, c.FailureRateWindow = percent, minCalls, window
		if mutate != nil {
			mutate(c)
		}
	})
}

// play runs the calls of script through b one after another (F fails, S succeeds, T
// times out, C is cancelled by its caller while running, - waits a second) and returns
// the State after each (a space after a wait). A call refused by the open circuit
// shows as r.
func play(t *testing.T, b *core.Bulkhead, script string) string {
	t.Helper()
	var states strings.Builder
	for _, c := range script {
		ctx, cancel := context.WithCancel(context.Background())
		var fn func(context.Context) (int, error)
		switch c {
		case 'S':
			fn = succeed(1)
		case 'F':
			fn = fail
		case 'T':
			fn = func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
		case 'C':
			fn = func(ctx context.Context) (int, error) { cancel(); return 0, ctx.Err() }
		case '-':
			time.Sleep(time.Second)
			states.WriteByte(' ')
			cancel()
			continue
		default:
			t.Fatalf("unknown call %q", c)
		}
		_, err := core.Execute(ctx, b, fn)
		cancel()
		switch {
		case errors.Is(err, core.ErrCircuitOpen):
			states.WriteByte('r')
		case err == nil, c == 'T' && errors.Is(err, core.ErrTimeout), c == 'C' && errors.Is(err, context.Canceled):
			states.WriteByte(stateLetters[b.State()])
		default:
			t.Errorf("call %q: unexpected error %v", c, err)
		}
	}
	return states.String()
}

func TestCircuitFailureRateOpens(t *testing.T) {
	tests := []struct {
		name              string
		percent, minCalls int
		calls             string
		states            string
	}{
		{"half of four", 50, 4, "FSFS", "HHHI"},
		{"half of four, failures last", 50, 4, "SSFF", "HHHI"},
		{"below the minimum never opens", 50, 4, "FFF", "HHH"},
		{"one in four is under a half", 50, 4, "SSSF", "HHHH"},
		{"successes keep the rate under the threshold", 50, 4, "SSSFSFFF", "HHHHHHHI"},
		{"a success reaching the minimum opens it", 50, 4, "FFFS", "HHHI"},
		{"a third of six is not 34%", 34, 6, "FFSSSS", "HHHHHH"},
		{"a third of six is 33%", 33, 6, "FFSSSS", "HHHHHI"},
		{"100% needs every call failed", 100, 3, "FFSFFF", "HHHHHH"},
		{"100% of three", 100, 3, "FFF", "HHI"},
		{"49.5% is not 50%", 50, 200, strings.Repeat("S", 101) + strings.Repeat("F", 101), strings.Repeat("H", 201) + "I"},
		{"1% opens on one failure once there are enough calls", 1, 5, "FSSSS", "HHHHI"},
		{"minimum one, one failure", 50, 1, "F", "I"},
		{"timeouts are failures", 50, 2, "ST", "HI"},
		{"cancelled calls do not count", 50, 4, "FCCCSCS", "HHHHHHH"},
		{"cancelled calls do not count towards the minimum", 50, 2, "CCCF", "HHHH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newRateCircuit(t, tt.percent, tt.minCalls, time.Minute, func(c *core.Config) { c.Timeout = time.Second })
				assert.Equal(t, tt.states, play(t, b, tt.calls))
				if strings.HasSuffix(tt.states, "I") {
					_, err := core.Execute(context.Background(), b, succeed(1))
					e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
					assert.Equal(t, isolation, e.RetryAfter, "a full isolation from the call that opened it")
				}
				synctest.Wait() // timed-out and cancelled functions return
				assertIdle(t, b.Stats())
			})
		})
	}
}

// The rule the consecutive threshold cannot express: a dependency failing every other
// call never trips FailureThreshold consecutive failures, and trips a 50% rate.
func TestCircuitFailureRateWhereConsecutiveNever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := strings.Repeat("FS", 500)
		consecutive := newCircuit(t, 2, 1, nil)
		assert.NotContains(t, play(t, consecutive, calls), "I", "two failures in a row never happen")
		assert.Equal(t, int64(500), consecutive.Stats().FailedExecutions)

		rate := newRateCircuit(t, 50, 20, time.Minute, nil)
		states := play(t, rate, calls)
		assert.Equal(t, strings.Repeat("H", 19)+"I", states[:20], "opens at the 20th call: 10 of 20 failed")
		assert.Equal(t, strings.Repeat("r", 980), states[20:], "and refuses from then on")
	})
}

// The window slides: calls older than FailureRateWindow stop counting, in tenths of the
// window (the synctest clock starts on a whole second, so with a 10s window a call made
// at the start of a second counts for exactly 10s).
func TestCircuitFailureRateWindowSlides(t *testing.T) {
	tests := []struct {
		name   string
		script string // - waits 1s: a tenth of the window
		states string
	}{
		{"failures long gone do not count", "FFF----------S", "HHH          H"},
		{"without the wait they would", "FFFS", "HHHI"},
		{"nine tenths later they still count", "FFF---------S", "HHH         I"},
		{"failures leave, successes stay", "F-----SSS-----FFF", "H     HHH     HHI"},
		{"successes leave, failures stay", "SSSSSS-----FF-----FF", "HHHHHH     HH     HI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newRateCircuit(t, 50, 4, 10*time.Second, func(c *core.Config) { c.IsolationDuration = time.Hour })
				assert.Equal(t, tt.states, play(t, b, tt.script))
			})
		})
	}
}

// Half-open and closing work as for the consecutive rule, and a closed circuit starts
// with an empty window.
func TestCircuitFailureRateHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newRateCircuit(t, 50, 4, time.Minute, func(c *core.Config) { c.SuccessThreshold = 2 })
		assert.Equal(t, "HHHI", play(t, b, "FFSF"))
		time.Sleep(isolation)
		assert.Equal(t, "I", play(t, b, "F"), "a failed probe re-opens it")
		time.Sleep(isolation)
		assert.Equal(t, "DH", play(t, b, "SS"), "SuccessThreshold successes close it")
		assert.Equal(t, "HHHI", play(t, b, "FFFF"), "a closed circuit starts with an empty window")
	})
}

func TestCircuitFailureRateReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 3, 1, nil)
		assert.Equal(t, "HHHHHH", play(t, b, "FSFSFS"))

		cfg := b.Config()
		cfg.FailureRateThreshold, cfg.FailureRateWindow, cfg.MinimumCalls = 50, time.Minute, 4
		require.NoError(t, b.Reconfigure(cfg))
		assert.Equal(t, cfg, b.Config())
		assert.Equal(t, "HHHI", play(t, b, "FSFS"), "the rate rule applies at once, to calls from now on")

		time.Sleep(isolation)
		assert.Equal(t, "H", play(t, b, "S"))
		cfg.FailureRateThreshold = 0
		require.NoError(t, b.Reconfigure(cfg))
		assert.Equal(t, "HHHHHHHHI", play(t, b, "FSFSFSFFF"), "back to 3 consecutive failures")

		bad := cfg
		bad.FailureRateThreshold, bad.FailureRateWindow, bad.MinimumCalls = 50, 0, 0
		err := b.Reconfigure(bad)
		assert.Equal(t, []string{"FailureRateWindow", "MinimumCalls"}, configFields(t, err))
		assert.Equal(t, cfg, b.Config(), "nothing changed")
	})
}

// Reconfigure keeps an OPEN circuit open, whatever the rule.
func TestCircuitFailureRateReconfigureWhileOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newRateCircuit(t, 50, 2, time.Minute, nil)
		assert.Equal(t, "HI", play(t, b, "SF"))
		time.Sleep(isolation / 2)
		cfg := b.Config()
		cfg.MinimumCalls = 10
		require.NoError(t, b.Reconfigure(cfg))
		_, err := core.Execute(context.Background(), b, succeed(1))
		e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
		assert.Equal(t, isolation/2, e.RetryAfter, "the isolation keeps its end")
	})
}

func TestConfigValidateFailureRate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*core.Config)
		fields []string
	}{
		{"off", func(c *core.Config) { c.FailureRateThreshold = 0 }, nil},
		{"set", func(c *core.Config) {
			c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 50, time.Second, 10
		}, nil},
		{"100 percent", func(c *core.Config) {
			c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 100, time.Second, 1
		}, nil},
		{"a nanosecond window", func(c *core.Config) { c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 1, 1, 1 }, nil},
		{"negative", func(c *core.Config) { c.FailureRateThreshold = -1 }, []string{"FailureRateThreshold"}},
		{"over 100", func(c *core.Config) { c.FailureRateThreshold = 101 }, []string{"FailureRateThreshold"}},
		{"window and minimum missing", func(c *core.Config) { c.FailureRateThreshold = 50 }, []string{"FailureRateWindow", "MinimumCalls"}},
		{"negative window", func(c *core.Config) {
			c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 50, -time.Second, 1
		}, []string{"FailureRateWindow"}},
		{"huge minimum", func(c *core.Config) {
			c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 50, time.Second, 1<<30
		}, []string{"MinimumCalls"}},
		{
			"FailureThreshold is unused by the rate rule",
			func(c *core.Config) {
				c.FailureThreshold, c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 0, 50, time.Second, 1
			},
			nil,
		},
		{
			"window and minimum are unused by the consecutive rule",
			func(c *core.Config) { c.FailureRateWindow, c.MinimumCalls = -1, -1 },
			nil,
		},
		{
			"every rate field at once, with SuccessThreshold",
			func(c *core.Config) {
				c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls, c.SuccessThreshold = 20, 0, -5, 0
			},
			[]string{"FailureRateWindow", "MinimumCalls", "SuccessThreshold"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := core.DefaultConfig("api")
			cfg.CircuitBreakerEnabled = true
			tt.mutate(&cfg)
			err := cfg.Validate()
			assert.Equal(t, tt.fields, configFields(t, err))
			b, err := core.New(cfg)
			if tt.fields == nil {
				require.NoError(t, err)
				assert.Equal(t, "H", play(t, b, "S"), "a bulkhead that works")
				return
			}
			assert.Error(t, err)

			cfg.CircuitBreakerEnabled = false
			assert.NoError(t, cfg.Validate(), "unchecked while the breaker is off")
		})
	}
	t.Run("message", func(t *testing.T) {
		cfg := core.DefaultConfig("api")
		cfg.CircuitBreakerEnabled = true
		cfg.FailureRateThreshold = 50
		assert.EqualError(t, cfg.Validate(),
			"bulkhead \"api\": FailureRateWindow must be positive when FailureRateThreshold is set, got 0s\n"+
				"bulkhead \"api\": MinimumCalls must be between 1 and 16777216 when FailureRateThreshold is set, got 0")
	})
}
