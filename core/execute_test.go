package core_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

func TestExecuteResult(t *testing.T) {
	type myErr struct{ error }
	custom := &myErr{errors.New("custom")}
	tests := []struct {
		name    string
		timeout time.Duration
		fn      func(context.Context) (string, error)
		want    core.Result[string]
	}{
		{"success", 0, func(context.Context) (string, error) { return "v", nil }, core.Result[string]{Value: "v", Success: true}},
		{"fn error", 0, func(context.Context) (string, error) { return "ignored", errBoom }, core.Result[string]{Err: errBoom}},
		{"fn error of its own type", 0, func(context.Context) (string, error) { return "", custom }, core.Result[string]{Err: custom}},
		{"success with Timeout", time.Hour, func(context.Context) (string, error) { return "v", nil }, core.Result[string]{Value: "v", Success: true}},
		{"fn error with Timeout", time.Hour, func(context.Context) (string, error) { return "ignored", errBoom }, core.Result[string]{Err: errBoom}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.Name, c.Timeout = "api", tt.timeout })
				res, err := core.Execute(context.Background(), b, func(ctx context.Context) (string, error) {
					time.Sleep(42 * time.Millisecond)
					return tt.fn(ctx)
				})
				require.NoError(t, err, "fn's own failure is reported in the Result")
				assert.Equal(t, tt.want.Value, res.Value, "Value is zero unless Success")
				assert.Equal(t, tt.want.Success, res.Success)
				assert.True(t, res.Err == tt.want.Err, "fn's error comes back unchanged: %v", res.Err)
				assert.Equal(t, "api", res.BulkheadName)
				assert.False(t, res.ExecutionID.IsZero())
				assert.Equal(t, 42*time.Millisecond, res.ExecutionTime)
				assert.Zero(t, res.QueuedTime)
			})
		})
	}
}

func TestExecuteQueuedTime(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("Timeout=%v", timeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.Timeout = 1, timeout })
				p, err := b.Acquire(context.Background())
				require.NoError(t, err)
				go func() {
					time.Sleep(300 * time.Millisecond)
					assert.NoError(t, p.Release(core.Success))
				}()
				res, err := core.Execute(context.Background(), b, func(context.Context) (int, error) {
					time.Sleep(50 * time.Millisecond)
					return 1, nil
				})
				require.NoError(t, err)
				assert.Equal(t, 300*time.Millisecond, res.QueuedTime)
				assert.Equal(t, 50*time.Millisecond, res.ExecutionTime)
			})
		})
	}
}

// Without a Timeout, fn runs on the caller's goroutine: no goroutine is started.
func TestExecuteRunsOnCallerGoroutine(t *testing.T) {
	for _, breaker := range []bool{false, true} {
		t.Run(fmt.Sprintf("breaker=%v", breaker), func(t *testing.T) {
			b := newBulkhead(t, func(c *core.Config) { c.CircuitBreakerEnabled = breaker })
			caller := goroutineID()
			var inFn uint64
			_, err := core.Execute(context.Background(), b, func(context.Context) (int, error) {
				inFn = goroutineID()
				return 1, nil
			})
			require.NoError(t, err)
			assert.Equal(t, caller, inFn)

			// And the caller's ctx is passed through as is.
			type key struct{}
			ctx := context.WithValue(context.Background(), key{}, "v")
			_, err = core.Execute(ctx, b, func(got context.Context) (int, error) {
				assert.True(t, got == ctx, "fn gets the caller's ctx itself")
				return 1, nil
			})
			require.NoError(t, err)
		})
	}
}

func TestExecuteTimedFnSeesCallerValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		type key struct{}
		ctx := context.WithValue(context.Background(), key{}, "v")
		_, err := core.Execute(ctx, b, func(ctx context.Context) (int, error) {
			assert.Equal(t, "v", ctx.Value(key{}))
			return 1, nil
		})
		require.NoError(t, err)
	})
}

//go:noinline
func noop(context.Context) (int, error) { return 1, nil }

func TestExecuteAllocations(t *testing.T) {
	for _, breaker := range []bool{false, true} {
		t.Run(fmt.Sprintf("breaker=%v", breaker), func(t *testing.T) {
			b := newBulkhead(t, func(c *core.Config) { c.CircuitBreakerEnabled = breaker })
			ctx := context.Background()
			var id core.ExecutionID
			allocs := testing.AllocsPerRun(1000, func() {
				res, err := core.Execute(ctx, b, noop)
				if err != nil {
					panic(err)
				}
				id = res.ExecutionID // making an ExecutionID allocates nothing either
			})
			assert.Zero(t, allocs, "Execute without a Timeout allocates nothing")
			assert.False(t, id.IsZero())
		})
	}
}

func TestWrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 })
		get := core.Wrap(b, func(_ context.Context) (string, error) { return "v", nil })
		v, err := get(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "v", v)

		broken := core.Wrap(b, func(context.Context) (string, error) { return "partial", errBoom })
		_, err = broken(context.Background())
		assert.True(t, err == errBoom, "fn's own error, unchanged: %v", err)

		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		v, err = get(context.Background())
		assertRefusal(t, err, core.ErrFull, "test")
		assert.Empty(t, v)
		require.NoError(t, p.Release(core.Success))

		done, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = get(done)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestExecuteIn(t *testing.T) {
	m := core.NewManager()
	_, err := m.Create(core.DefaultConfig("db"))
	require.NoError(t, err)

	res, err := core.ExecuteIn(context.Background(), m, "db", succeed(3))
	require.NoError(t, err)
	assert.Equal(t, 3, res.Value)
	assert.Equal(t, "db", res.BulkheadName)
	b, _ := m.Get("db")
	assert.Equal(t, int64(1), b.Stats().SuccessfulExecutions)

	res, err = core.ExecuteIn(context.Background(), m, "cache", succeed(3))
	assertRefusal(t, err, core.ErrNotFound, "cache")
	assert.Equal(t, "cache", res.BulkheadName)
	assert.False(t, res.Success)
}
