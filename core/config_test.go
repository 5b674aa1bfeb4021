package core_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

func TestDefaultConfig(t *testing.T) {
	want := core.Config{
		Name:                  "api",
		MaxConcurrentCalls:    10,
		MaxQueueSize:          100,
		Timeout:               0,
		FailureThreshold:      5,
		SuccessThreshold:      3,
		IsolationDuration:     30 * time.Second,
		CircuitBreakerEnabled: false,
		HealthCheckInterval:   5 * time.Second,
	}
	cfg := core.DefaultConfig("api")
	assert.Equal(t, want, cfg)
	assert.NoError(t, cfg.Validate())
}

// configFields returns the Field of every *ConfigError joined in err.
func configFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "Validate returns an errors.Join: %T", err)
	var fields []string
	for _, e := range joined.Unwrap() {
		var ce *core.ConfigError
		if assert.ErrorAs(t, e, &ce) {
			fields = append(fields, ce.Field)
			assert.Contains(t, e.Error(), ce.Field, "the message names the field")
		}
	}
	return fields
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*core.Config)
		fields []string // the bad fields Validate must name, in order
	}{
		{"default", func(*core.Config) {}, nil},
		{"empty name", func(c *core.Config) { c.Name = "" }, []string{"Name"}},
		{"name with spaces around", func(c *core.Config) { c.Name = " api" }, []string{"Name"}},
		{"name with a control character", func(c *core.Config) { c.Name = "a\nb" }, []string{"Name"}},
		{"name too long", func(c *core.Config) { c.Name = strings.Repeat("x", 201) }, []string{"Name"}},
		{"zero concurrency", func(c *core.Config) { c.MaxConcurrentCalls = 0 }, []string{"MaxConcurrentCalls"}},
		{"huge concurrency", func(c *core.Config) { c.MaxConcurrentCalls = 1 << 30 }, []string{"MaxConcurrentCalls"}},
		{"negative queue", func(c *core.Config) { c.MaxQueueSize = -1 }, []string{"MaxQueueSize"}},
		{"zero queue is fail fast", func(c *core.Config) { c.MaxQueueSize = 0 }, nil},
		{"negative timeout", func(c *core.Config) { c.Timeout = -time.Second }, []string{"Timeout"}},
		{"negative isolation", func(c *core.Config) { c.IsolationDuration = -1 }, []string{"IsolationDuration"}},
		{"zero isolation", func(c *core.Config) { c.IsolationDuration = 0 }, nil},
		{"negative health check", func(c *core.Config) { c.HealthCheckInterval = -1 }, []string{"HealthCheckInterval"}},
		{"zero health check is off", func(c *core.Config) { c.HealthCheckInterval = 0 }, nil},
		{
			"thresholds unchecked while the breaker is off",
			func(c *core.Config) { c.FailureThreshold, c.SuccessThreshold = 0, -3 },
			nil,
		},
		{
			"thresholds checked when the breaker is on",
			func(c *core.Config) {
				c.CircuitBreakerEnabled = true
				c.FailureThreshold, c.SuccessThreshold = 0, -3
			},
			[]string{"FailureThreshold", "SuccessThreshold"},
		},
		{"adaptive", func(c *core.Config) { c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1} }, nil},
		{"adaptive floor at the ceiling", func(c *core.Config) { c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 10} }, nil},
		{
			"adaptive tuning in range",
			func(c *core.Config) {
				c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 2, InitialConcurrentCalls: 10, QueuePerLimit: 100, Tolerance: 1}
			},
			nil,
		},
		{"adaptive floor 0", func(c *core.Config) { c.Adaptive = &core.AdaptiveConfig{} }, []string{"Adaptive.MinConcurrentCalls"}},
		{"adaptive floor above the ceiling", func(c *core.Config) { c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 11} }, []string{"Adaptive.MinConcurrentCalls"}},
		{
			"adaptive tuning out of range",
			func(c *core.Config) {
				c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 2, InitialConcurrentCalls: 1, QueuePerLimit: -1, Tolerance: 1.5}
			},
			[]string{"Adaptive.InitialConcurrentCalls", "Adaptive.QueuePerLimit", "Adaptive.Tolerance"},
		},
		{
			"adaptive tuning not a number",
			func(c *core.Config) {
				c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 11, QueuePerLimit: math.NaN(), Tolerance: math.Inf(1)}
			},
			[]string{"Adaptive.InitialConcurrentCalls", "Adaptive.QueuePerLimit", "Adaptive.Tolerance"},
		},
		{
			"every bad field at once",
			func(c *core.Config) {
				*c = core.Config{
					MaxConcurrentCalls:    -1,
					MaxQueueSize:          -1,
					Timeout:               -1,
					IsolationDuration:     -1,
					HealthCheckInterval:   -1,
					CircuitBreakerEnabled: true,
				}
			},
			[]string{"Name", "MaxConcurrentCalls", "MaxQueueSize", "Timeout", "IsolationDuration", "HealthCheckInterval", "FailureThreshold", "SuccessThreshold"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := core.DefaultConfig("api")
			tt.mutate(&cfg)
			err := cfg.Validate()
			assert.Equal(t, tt.fields, configFields(t, err))

			b, newErr := core.New(cfg)
			if tt.fields == nil {
				assert.NoError(t, newErr)
				assert.NotNil(t, b)
				return
			}
			assert.Nil(t, b, "New returns no bulkhead for a bad config")
			assert.Equal(t, err.Error(), newErr.Error(), "New returns Validate's error")
			var ce *core.ConfigError
			assert.ErrorAs(t, newErr, &ce)
		})
	}
}

func TestConfigErrorNamesBulkhead(t *testing.T) {
	cfg := core.DefaultConfig("payments")
	cfg.MaxConcurrentCalls = 0
	var ce *core.ConfigError
	require.ErrorAs(t, cfg.Validate(), &ce)
	assert.Equal(t, "payments", ce.Bulkhead)
	assert.Equal(t, "MaxConcurrentCalls", ce.Field)
	assert.Equal(t, 0, ce.Value)
	assert.Contains(t, ce.Error(), `"payments"`)
	assert.False(t, errors.Is(ce, core.ErrInvalidArgument), "a bad config is not a nil argument")
}

func TestBulkheadKeepsItsConfig(t *testing.T) {
	cfg := core.DefaultConfig("api")
	cfg.MaxQueueSize = 7
	b, err := core.New(cfg)
	require.NoError(t, err)
	cfg.MaxQueueSize = 99 // the caller's copy, not the bulkhead's
	assert.Equal(t, "api", b.Name())
	assert.Equal(t, 7, b.Config().MaxQueueSize)
	assert.Equal(t, 7, b.Stats().MaxQueueSize)
}

func TestBulkheadKeepsItsAdaptiveConfig(t *testing.T) {
	cfg := core.DefaultConfig("api")
	cfg.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 2}
	b, err := core.New(cfg)
	require.NoError(t, err)
	cfg.Adaptive.MinConcurrentCalls = 7 // the caller's copy, not the bulkhead's
	got := b.Config()
	require.NotNil(t, got.Adaptive)
	assert.Equal(t, 2, got.Adaptive.MinConcurrentCalls)
	got.Adaptive.MinConcurrentCalls = 9 // nor is Config's result
	assert.Equal(t, 2, b.Config().Adaptive.MinConcurrentCalls)
	st := b.Stats()
	assert.Equal(t, 10, st.MaxConcurrentCalls, "the ceiling")
	assert.Equal(t, 2, st.ConcurrencyLimit, "an adaptive bulkhead starts at its floor")
}
