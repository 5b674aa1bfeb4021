package core_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

var sentinels = []error{
	core.ErrFull, core.ErrCircuitOpen, core.ErrTimeout, core.ErrShutdown,
	core.ErrNotFound, core.ErrExists, core.ErrReleased, core.ErrInvalidArgument,
}

// Every refusal is a *Error that names its bulkhead, and errors.Is finds its kind and no
// other.
func TestRefusalErrors(t *testing.T) {
	tests := []struct {
		kind    error
		message string
		refuse  func(t *testing.T) error // runs inside a synctest bubble; the bulkhead is named "api"
	}{
		{core.ErrFull, `bulkhead "api" is at capacity (1/1)`, func(t *testing.T) error {
			b := newBulkhead(t, func(c *core.Config) { c.Name, c.MaxConcurrentCalls, c.MaxQueueSize = "api", 1, 0 })
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			defer p.Release(core.Success)
			_, err = core.Execute(context.Background(), b, succeed(1))
			return err
		}},
		{core.ErrCircuitOpen, `bulkhead "api": circuit is open`, func(t *testing.T) error {
			b := newBulkhead(t, func(c *core.Config) {
				c.Name, c.CircuitBreakerEnabled, c.FailureThreshold = "api", true, 1
			})
			_, err := core.Execute(context.Background(), b, fail)
			require.NoError(t, err)
			_, err = core.Execute(context.Background(), b, succeed(1))
			return err
		}},
		{core.ErrTimeout, `bulkhead "api": timed out`, func(t *testing.T) error {
			b := newBulkhead(t, func(c *core.Config) { c.Name, c.Timeout = "api", time.Second })
			_, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
				<-ctx.Done()
				return 0, ctx.Err()
			})
			return err
		}},
		{core.ErrShutdown, `bulkhead "api" is shut down`, func(t *testing.T) error {
			b := newBulkhead(t, func(c *core.Config) { c.Name = "api" })
			require.NoError(t, b.Shutdown(context.Background()))
			_, err := core.Execute(context.Background(), b, succeed(1))
			return err
		}},
		{core.ErrNotFound, `no bulkhead named "api"`, func(t *testing.T) error {
			_, err := core.ExecuteIn(context.Background(), core.NewManager(), "api", succeed(1))
			return err
		}},
		{core.ErrExists, `a bulkhead named "api" already exists`, func(t *testing.T) error {
			m := core.NewManager()
			_, err := m.Create(core.DefaultConfig("api"))
			require.NoError(t, err)
			_, err = m.Create(core.DefaultConfig("api"))
			return err
		}},
		{core.ErrReleased, `bulkhead "api": permit already released`, func(t *testing.T) error {
			b := newBulkhead(t, func(c *core.Config) { c.Name = "api" })
			p, err := b.Acquire(context.Background())
			require.NoError(t, err)
			require.NoError(t, p.Release(core.Success))
			return p.Release(core.Success)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				err := tt.refuse(t)
				e := assertRefusal(t, err, tt.kind, "api")
				assert.Same(t, tt.kind, e.Err, "Err is the sentinel itself")
				assert.Equal(t, tt.message, err.Error())
				for _, other := range sentinels {
					if other != tt.kind {
						assert.NotErrorIs(t, err, other)
					}
				}
			})
		})
	}
}

// The message of a bulkhead with the default Config at capacity.
func TestErrFullMessageDefaultConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := core.New(core.DefaultConfig("api"))
		require.NoError(t, err)
		g := newGate()
		var calls []*call
		for range 110 {
			calls = append(calls, goExecute(context.Background(), b, hold(g, 0, nil)))
		}
		synctest.Wait()
		require.Equal(t, 110, b.Stats().InFlightCount)
		_, err = core.Execute(context.Background(), b, succeed(1))
		assert.EqualError(t, err, `bulkhead "api" is at capacity (110/110)`)
		close(g)
		for _, c := range calls {
			_, err := c.wait()
			assert.NoError(t, err)
		}
	})
}

func TestCircuitOpenRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.CircuitBreakerEnabled, c.FailureThreshold, c.IsolationDuration = true, 1, 30*time.Second
		})
		_, err := core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		opened := time.Now()

		for _, elapsed := range []time.Duration{0, 10 * time.Second, 29*time.Second + 995*time.Millisecond} {
			time.Sleep(time.Until(opened.Add(elapsed)))
			_, err := core.Execute(context.Background(), b, succeed(1))
			e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
			left := 30*time.Second - elapsed
			// A hint rounded up, never down: retrying too early is worse than a bit late.
			assert.GreaterOrEqual(t, e.RetryAfter, left, "at %v", elapsed)
			assert.Less(t, e.RetryAfter, left+10*time.Millisecond, "at %v", elapsed)
			// The time left is in RetryAfter only: the text is the same at every moment.
			assert.Equal(t, `bulkhead "test": circuit is open`, err.Error(), "at %v", elapsed)
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	var nilCtx context.Context // a variable, so that vet does not object to a literal nil
	b := newBulkhead(t, nil)
	m := core.NewManager()
	_, err := m.Create(core.DefaultConfig("m"))
	require.NoError(t, err)
	tests := []struct {
		name string
		call func() error
	}{
		{"Execute nil ctx", func() error { _, err := core.Execute(nilCtx, b, succeed(1)); return err }},
		{"Execute nil bulkhead", func() error { _, err := core.Execute(context.Background(), nil, succeed(1)); return err }},
		{"Execute nil fn", func() error {
			_, err := core.Execute[int](context.Background(), b, nil)
			return err
		}},
		{"Wrap nil bulkhead", func() error { _, err := core.Wrap(nil, succeed(1))(context.Background()); return err }},
		{"Wrap nil fn", func() error { _, err := core.Wrap[int](b, nil)(context.Background()); return err }},
		{"Wrap nil ctx", func() error { _, err := core.Wrap(b, succeed(1))(nilCtx); return err }},
		{"Acquire nil ctx", func() error { _, err := b.Acquire(nilCtx); return err }},
		{"Acquire nil bulkhead", func() error { _, err := (*core.Bulkhead)(nil).Acquire(context.Background()); return err }},
		{"Shutdown nil ctx", func() error { return b.Shutdown(nilCtx) }},
		{"ExecuteIn nil manager", func() error {
			_, err := core.ExecuteIn(context.Background(), nil, "m", succeed(1))
			return err
		}},
		{"ExecuteIn nil ctx", func() error { _, err := core.ExecuteIn(nilCtx, m, "m", succeed(1)); return err }},
		{"ExecuteIn nil fn", func() error { _, err := core.ExecuteIn[int](context.Background(), m, "m", nil); return err }},
		{"Manager.Shutdown nil ctx", func() error { return m.Shutdown(nilCtx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = tt.call() })
			assert.ErrorIs(t, err, core.ErrInvalidArgument)
		})
	}
	assertIdle(t, b.Stats())
	assert.Zero(t, b.Stats().RejectedExecutions, "invalid arguments are not counted")
}

func TestErrorUnwrap(t *testing.T) {
	e := &core.Error{Bulkhead: "x", Err: core.ErrFull}
	assert.Same(t, core.ErrFull, errors.Unwrap(e))
	wrapped := errors.Join(errors.New("context"), e)
	var got *core.Error
	require.ErrorAs(t, wrapped, &got)
	assert.Equal(t, "x", got.Bulkhead)
	assert.ErrorIs(t, wrapped, core.ErrFull)

	other := errors.New("something else")
	assert.EqualError(t, &core.Error{Bulkhead: "x", Err: other}, `bulkhead "x": something else`)
}
