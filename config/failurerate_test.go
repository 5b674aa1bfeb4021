package config_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

func TestParseFailureRate(t *testing.T) {
	good := []struct {
		name string
		data string
		want []core.Config
	}{
		{
			"every rate key, from defaults and per bulkhead",
			`defaults:
  circuit_breaker_enabled: true
  failure_rate_threshold: 50
  failure_rate_window: 30s
  minimum_calls: 20
bulkheads:
  - name: a
  - name: b
    failure_rate_threshold: 25
    failure_rate_window: 2.5
    minimum_calls: 100
  - name: c
    failure_rate_threshold: 0
`,
			[]core.Config{
				cfg("a", func(c *core.Config) {
					c.CircuitBreakerEnabled, c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = true, 50, 30*time.Second, 20
				}),
				cfg("b", func(c *core.Config) {
					c.CircuitBreakerEnabled, c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = true, 25, 2500*time.Millisecond, 100
				}),
				cfg("c", func(c *core.Config) {
					c.CircuitBreakerEnabled, c.FailureRateWindow, c.MinimumCalls = true, 30*time.Second, 20
				}),
			},
		},
		{
			"unchecked while the breaker is off",
			"bulkheads: [{name: a, failure_rate_threshold: 300}]\n",
			[]core.Config{cfg("a", func(c *core.Config) { c.FailureRateThreshold = 300 })},
		},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("rate.yaml", []byte(tc.data))
			require.NoError(t, err)
			assert.Equal(t, tc.want, f.Bulkheads())
		})
	}

	bad := []struct {
		name string
		data string
		want []string // the errors, one per line
	}{
		{
			"window and minimum missing",
			"bulkheads:\n  - name: a\n    circuit_breaker_enabled: true\n    failure_rate_threshold: 50\n",
			[]string{
				"rate.yaml:2:5: bulkheads[0].failure_rate_window: must be positive when FailureRateThreshold is set, got 0s (the built-in default)",
				"rate.yaml:2:5: bulkheads[0].minimum_calls: must be between 1 and 16777216 when FailureRateThreshold is set, got 0 (the built-in default)",
			},
		},
		{
			"threshold out of range",
			"bulkheads:\n  - name: a\n    circuit_breaker_enabled: true\n    failure_rate_threshold: 101\n",
			[]string{"rate.yaml:4:29: bulkheads[0].failure_rate_threshold: must be between 0 (off) and 100 percent, got 101"},
		},
		{
			"wrong types",
			"bulkheads:\n  - name: a\n    failure_rate_threshold: 50%\n    failure_rate_window: ten\n    minimum_calls: 2.5\n",
			[]string{
				`rate.yaml:3:29: bulkheads[0].failure_rate_threshold: must be an integer, got "50%"`,
				`rate.yaml:4:26: bulkheads[0].failure_rate_window: must be seconds (a number) or a Go duration ("1.5s", "250ms"), got "ten"`,
				`rate.yaml:5:20: bulkheads[0].minimum_calls: must be an integer, got 2.5`,
			},
		},
		{
			"bad values from defaults",
			"defaults:\n  circuit_breaker_enabled: true\n  failure_rate_threshold: 10\n  failure_rate_window: -1s\n  minimum_calls: 0\nbulkheads: [{name: a}]\n",
			[]string{
				"rate.yaml:4:24: defaults.failure_rate_window: must be positive when FailureRateThreshold is set, got -1s",
				"rate.yaml:5:18: defaults.minimum_calls: must be between 1 and 16777216 when FailureRateThreshold is set, got 0",
			},
		},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("rate.yaml", []byte(tc.data))
			require.Error(t, err)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				got = append(got, e.Error())
			}
			assert.Equal(t, tc.want, got)
			var ce *core.ConfigError
			if tc.name != "wrong types" {
				assert.True(t, errors.As(err, &ce), "core's error is reachable")
			}
		})
	}
}

// A reload moves a running bulkhead from the consecutive rule to the failure-rate rule
// and back, keeping its statistics.
func TestReloadFailureRate(t *testing.T) {
	consecutive := "bulkheads:\n  - {name: api, circuit_breaker_enabled: true, failure_threshold: 3, isolation_duration: 1h}\n"
	rate := "bulkheads:\n  - {name: api, circuit_breaker_enabled: true, failure_threshold: 3, isolation_duration: 1h,\n     failure_rate_threshold: 50, failure_rate_window: 1m, minimum_calls: 4}\n"
	l, m, path := open(t, consecutive)
	b := get(t, m, "api")
	ctx := context.Background()
	alternate := func(n int) {
		for i := range n {
			_, err := core.Execute(ctx, b, func(context.Context) (int, error) {
				if i%2 == 0 {
					return 0, errors.New("boom")
				}
				return 1, nil
			})
			require.NoError(t, err)
		}
	}
	alternate(4)
	assert.Equal(t, core.Healthy, b.State(), "never 3 failures in a row")

	writeFile(t, path, rate)
	require.NoError(t, l.Reload())
	assert.Same(t, b, get(t, m, "api"), "reconfigured in place")
	assert.Equal(t, 50, b.Config().FailureRateThreshold)
	alternate(4)
	assert.Equal(t, core.Isolated, b.State(), "2 failures of 4 calls: 50%")
	assert.Equal(t, int64(8), b.Stats().TotalExecutions, "statistics kept")

	writeFile(t, path, consecutive)
	require.NoError(t, l.Reload())
	assert.Equal(t, 0, b.Config().FailureRateThreshold)
	assert.Equal(t, core.Isolated, b.State(), "an open circuit stays open")

	writeFile(t, path, "bulkheads:\n  - {name: api, circuit_breaker_enabled: true, failure_rate_threshold: 50}\n")
	err := l.Reload()
	assert.ErrorContains(t, err, "failure_rate_window")
	assert.Equal(t, 0, b.Config().FailureRateThreshold, "an invalid file changes nothing")
}
