package core_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestNilBulkhead: a nil *Bulkhead is no bulkhead, the value a Selector returns for an
// unguarded call. No method panics: the ones that report answer as for nothing (no name,
// healthy, zero statistics), and the ones that act return an error wrapping
// ErrInvalidArgument, as Execute does.
func TestNilBulkhead(t *testing.T) {
	var b *core.Bulkhead
	require.NotPanics(t, func() {
		assert.Empty(t, b.Name())
		assert.Equal(t, core.Config{}, b.Config())
		assert.Equal(t, core.Healthy, b.State())
		assert.True(t, b.IsHealthy())
		assert.Equal(t, core.Stats{}, b.Stats())
		b.ResetStats()
		assert.ErrorIs(t, b.Shutdown(context.Background()), core.ErrInvalidArgument)
		assert.ErrorIs(t, b.Reconfigure(core.DefaultConfig("x")), core.ErrInvalidArgument)
		_, err := b.Acquire(context.Background())
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		_, err = core.Execute(context.Background(), b, succeed(1))
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
	})
}

// TestNilManager: the same rule for a nil *Manager.
func TestNilManager(t *testing.T) {
	var m *core.Manager
	require.NotPanics(t, func() {
		_, err := m.Create(core.DefaultConfig("a"))
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		_, err = m.GetOrCreate(core.DefaultConfig("a"))
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
		b, ok := m.Get("a")
		assert.Nil(t, b)
		assert.False(t, ok)
		b, ok = m.Remove("a")
		assert.Nil(t, b)
		assert.False(t, ok)
		assert.Empty(t, m.Names())
		assert.Empty(t, m.Stats())
		assert.Empty(t, m.Health())
		m.Subscribe(func(core.Event) {})()
		assert.ErrorIs(t, m.Shutdown(context.Background()), core.ErrInvalidArgument)
		_, err = core.ExecuteIn(context.Background(), m, "a", succeed(1))
		assert.ErrorIs(t, err, core.ErrInvalidArgument)
	})
}

// TestZeroManager: the zero Manager is an empty Manager without options, ready to use.
func TestZeroManager(t *testing.T) {
	var m core.Manager
	assert.Empty(t, m.Names())
	b, err := m.Create(core.DefaultConfig("a"))
	require.NoError(t, err)
	got, ok := m.Get("a")
	assert.True(t, ok)
	assert.Same(t, b, got)
	again, err := m.GetOrCreate(core.DefaultConfig("a"))
	require.NoError(t, err)
	assert.Same(t, b, again)
	_, err = m.Create(core.DefaultConfig("a"))
	assert.ErrorIs(t, err, core.ErrExists)
	res, err := core.ExecuteIn(context.Background(), &m, "a", succeed(1))
	require.NoError(t, err)
	assert.True(t, res.Success)
	assert.Equal(t, []string{"a"}, m.Names())
	require.NoError(t, m.Shutdown(context.Background()))
}

// TestManagerRefusesAfterShutdown: once a Manager is shut down, Create and GetOrCreate
// return a *Error wrapping ErrShutdown and make no bulkhead, whatever the name; the
// bulkheads it had stay visible (shut down).
func TestManagerRefusesAfterShutdown(t *testing.T) {
	m := core.NewManager()
	old, err := m.Create(core.DefaultConfig("old"))
	require.NoError(t, err)
	require.NoError(t, m.Shutdown(context.Background()))

	for _, create := range []func(core.Config) (*core.Bulkhead, error){m.Create, m.GetOrCreate} {
		for _, name := range []string{"new", "old"} {
			b, err := create(core.DefaultConfig(name))
			assert.Nil(t, b)
			assertRefusal(t, err, core.ErrShutdown, name)
			assert.EqualError(t, err, `bulkhead "`+name+`" is shut down (the Manager is shut down)`)
		}
	}
	assert.Equal(t, []string{"old"}, m.Names())
	got, ok := m.Get("old")
	assert.True(t, ok)
	assert.Same(t, old, got)
	_, err = core.Execute(context.Background(), old, succeed(1))
	assert.ErrorIs(t, err, core.ErrShutdown)
}

// TestManagerCreateRacingShutdown: a Create racing Shutdown either returns a bulkhead
// that Shutdown then shuts down too, or ErrShutdown; never a live bulkhead after
// Shutdown has returned.
func TestManagerCreateRacingShutdown(t *testing.T) {
	for range 20 {
		m := core.NewManager()
		var wg sync.WaitGroup
		made := make([]*core.Bulkhead, 50)
		errs := make([]error, 50)
		for i := range made {
			wg.Go(func() { made[i], errs[i] = m.Create(core.DefaultConfig("b" + strconv.Itoa(i))) })
		}
		require.NoError(t, m.Shutdown(context.Background()))
		wg.Wait()
		for i, b := range made {
			if errs[i] != nil {
				assert.ErrorIs(t, errs[i], core.ErrShutdown)
				assert.Nil(t, b)
				continue
			}
			_, err := core.Execute(context.Background(), b, succeed(1))
			if !assert.ErrorIs(t, err, core.ErrShutdown, "a bulkhead created before Shutdown returned is shut down") {
				_ = b.Shutdown(context.Background())
			}
		}
	}
}
