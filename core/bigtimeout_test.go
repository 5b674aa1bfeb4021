package core_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestHugeTimeout: a Timeout near math.MaxInt64, meant as "no end", must not overflow
// into a deadline in the past, where every call would time out at once and the circuit
// would open on healthy traffic. It is capped, as IsolationDuration is.
func TestHugeTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{
		math.MaxInt64,
		math.MaxInt64 - 1,
		time.Duration(9223372036.854775 * float64(time.Second)), // timeout_seconds: 9223372036.854775
		200 * 365 * 24 * time.Hour,
	} {
		t.Run(timeout.String(), func(t *testing.T) {
			b := newBulkhead(t, func(c *core.Config) {
				c.Timeout = timeout
				c.CircuitBreakerEnabled, c.FailureThreshold = true, 1
			})
			assert.Equal(t, timeout, b.Config().Timeout, "Config keeps the value given")
			for range 5 {
				res, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
					require.NoError(t, ctx.Err(), "the function's context is live")
					d, ok := ctx.Deadline()
					assert.True(t, ok)
					assert.True(t, d.After(time.Now().Add(100*365*24*time.Hour)), "deadline %v is far ahead", d)
					return 1, nil
				})
				require.NoError(t, err)
				assert.True(t, res.Success)
			}
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			d, ok := p.Deadline()
			assert.True(t, ok)
			assert.True(t, d.After(time.Now().Add(100*365*24*time.Hour)), "permit deadline %v", d)
			require.NoError(t, p.Release(core.Success))

			s := b.Stats()
			assert.Zero(t, s.TimedOutExecutions)
			assert.Zero(t, s.FailedExecutions)
			assert.Equal(t, core.Healthy, b.State())
		})
	}
}
