package config_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

func TestParseAdaptive(t *testing.T) {
	good := []struct {
		name string
		data string
		want []core.Config
	}{
		{
			"true, a mapping, false, from defaults and per bulkhead",
			`defaults:
  max_concurrent_calls: 200
  adaptive:
    min_concurrent_calls: 2
    queue_per_limit: 0.25
bulkheads:
  - name: a
  - name: b
    adaptive:
      initial_concurrent_calls: 10
      tolerance: 0.5
  - name: c
    adaptive: true
  - name: d
    adaptive: false
  - name: e
    adaptive: ~
`,
			[]core.Config{
				cfg("a", func(c *core.Config) {
					c.MaxConcurrentCalls = 200
					c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 2, QueuePerLimit: 0.25}
				}),
				cfg("b", func(c *core.Config) {
					c.MaxConcurrentCalls = 200
					c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 2, InitialConcurrentCalls: 10, QueuePerLimit: 0.25, Tolerance: 0.5}
				}),
				cfg("c", func(c *core.Config) {
					c.MaxConcurrentCalls = 200
					c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1}
				}),
				cfg("d", func(c *core.Config) { c.MaxConcurrentCalls = 200 }),
				cfg("e", func(c *core.Config) { c.MaxConcurrentCalls = 200 }),
			},
		},
		{
			"an empty mapping: floor 1",
			"bulkheads: [{name: a, adaptive: {}}]\n",
			[]core.Config{cfg("a", func(c *core.Config) { c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1} })},
		},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("adaptive.yaml", []byte(tc.data))
			require.NoError(t, err)
			got := f.Bulkheads()
			assert.Equal(t, tc.want, got)
			if len(got) > 1 && got[0].Adaptive != nil && got[1].Adaptive != nil {
				assert.NotSame(t, got[0].Adaptive, got[1].Adaptive, "bulkheads share nothing")
			}
		})
	}

	bad := []struct {
		name string
		data string
		want []string // the errors, one per line
	}{
		{
			"floor above the ceiling",
			"bulkheads:\n  - name: a\n    max_concurrent_calls: 4\n    adaptive:\n      min_concurrent_calls: 5\n",
			[]string{"adaptive.yaml:5:29: bulkheads[0].adaptive.min_concurrent_calls: must be between 1 and MaxConcurrentCalls (4), got 5"},
		},
		{
			"tuning out of range",
			"bulkheads:\n  - name: a\n    adaptive: {initial_concurrent_calls: 11, queue_per_limit: 101, tolerance: -0.5}\n",
			[]string{
				"adaptive.yaml:3:42: bulkheads[0].adaptive.initial_concurrent_calls: must be 0 (the floor) or between MinConcurrentCalls (1) and MaxConcurrentCalls (10), got 11",
				"adaptive.yaml:3:63: bulkheads[0].adaptive.queue_per_limit: must be between 0 (the default, 0.5) and 100, got 101",
				"adaptive.yaml:3:79: bulkheads[0].adaptive.tolerance: must be between 0 (the default, 0.25) and 1, got -0.5",
			},
		},
		{
			"wrong types and unknown keys",
			"bulkheads:\n  - name: a\n    adaptive: {min_concurrent_calls: 1.5, tolerance: low, limit: 3}\n  - name: b\n    adaptive: yes please\n",
			[]string{
				"adaptive.yaml:3:38: bulkheads[0].adaptive.min_concurrent_calls: must be an integer, got 1.5",
				`adaptive.yaml:3:54: bulkheads[0].adaptive.tolerance: must be a number, got "low"`,
				"adaptive.yaml:3:59: bulkheads[0].adaptive.limit: unknown key (want min_concurrent_calls, initial_concurrent_calls, queue_per_limit, tolerance)",
				`adaptive.yaml:5:15: bulkheads[1].adaptive: want true, false or a mapping of min_concurrent_calls, initial_concurrent_calls, queue_per_limit, tolerance, got "yes please"`,
			},
		},
		{
			"bad value from defaults",
			"defaults:\n  adaptive:\n    min_concurrent_calls: 0\nbulkheads: [{name: a}]\n",
			[]string{"adaptive.yaml:3:27: defaults.adaptive.min_concurrent_calls: must be between 1 and MaxConcurrentCalls (10), got 0"},
		},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("adaptive.yaml", []byte(tc.data))
			require.Error(t, err)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				got = append(got, e.Error())
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// A reload switches a running bulkhead between a static and an adaptive limit, keeping its
// statistics and its circuit state.
func TestReloadAdaptive(t *testing.T) {
	static := "bulkheads:\n  - {name: api, max_concurrent_calls: 50, circuit_breaker_enabled: true, failure_threshold: 1, isolation_duration: 1h}\n"
	adaptive := "bulkheads:\n  - {name: api, max_concurrent_calls: 50, circuit_breaker_enabled: true, failure_threshold: 1, isolation_duration: 1h,\n     adaptive: {min_concurrent_calls: 3}}\n"
	l, m, path := open(t, static)
	b := get(t, m, "api")
	ctx := context.Background()
	for range 3 {
		_, err := core.Execute(ctx, b, func(context.Context) (int, error) { return 1, nil })
		require.NoError(t, err)
	}
	assert.Equal(t, 50, b.Stats().ConcurrencyLimit)

	writeFile(t, path, adaptive)
	require.NoError(t, l.Reload())
	assert.Same(t, b, get(t, m, "api"))
	s := b.Stats()
	assert.Equal(t, int64(3), s.SuccessfulExecutions, "stats survive the reload")
	assert.Equal(t, 3, s.ConcurrencyLimit, "adaptive: starts at its floor")
	assert.Equal(t, 50, s.MaxConcurrentCalls, "the ceiling")

	// Fail once: the circuit opens and must survive the next reloads.
	res, err := core.Execute(ctx, b, func(context.Context) (int, error) { return 0, errors.New("down") })
	require.NoError(t, err)
	require.False(t, res.Success)
	require.Equal(t, core.Isolated, b.State())

	require.NoError(t, l.Reload(), "the same file again changes nothing")
	assert.Equal(t, 3, b.Stats().ConcurrencyLimit)

	writeFile(t, path, static)
	require.NoError(t, l.Reload())
	s = b.Stats()
	assert.Equal(t, 50, s.ConcurrencyLimit, "static again")
	assert.Nil(t, b.Config().Adaptive)
	assert.Equal(t, int64(4), s.TotalExecutions)
	assert.Equal(t, core.Isolated, b.State(), "the circuit stays open")
}
