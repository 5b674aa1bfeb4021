package config_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

// TestHugeTimeoutInAFile: a timeout_seconds at the end of time.Duration's range loads,
// and its bulkhead serves calls without timing them out (core caps the deadline).
func TestHugeTimeoutInAFile(t *testing.T) {
	f, err := config.Parse("huge.yaml", []byte("bulkheads:\n  - name: a\n    timeout_seconds: 9223372036.854775\n    circuit_breaker_enabled: true\n    failure_threshold: 1\n"))
	require.NoError(t, err)
	cfgs := f.Bulkheads()
	require.Len(t, cfgs, 1)
	assert.Greater(t, cfgs[0].Timeout, 290*365*24*time.Hour)
	b, err := core.New(cfgs[0])
	require.NoError(t, err)
	for range 3 {
		res, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) { return 1, ctx.Err() })
		require.NoError(t, err)
		assert.True(t, res.Success)
	}
	assert.Zero(t, b.Stats().TimedOutExecutions)
	assert.Equal(t, core.Healthy, b.State())
}
