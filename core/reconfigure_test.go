package core_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// gated starts n calls that block until release is closed, and waits until they run.
func gated(t *testing.T, b *core.Bulkhead, n int, release <-chan struct{}) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	started := make(chan struct{}, n)
	for range n {
		wg.Go(func() {
			_, _ = core.Execute(context.Background(), b, func(context.Context) (int, error) {
				started <- struct{}{}
				<-release
				return 1, nil
			})
		})
	}
	for range n {
		<-started
	}
	return &wg
}

func TestReconfigureResizesWithoutLosingCalls(t *testing.T) {
	cfg := core.DefaultConfig("resize")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 4, 4
	b, err := core.New(cfg)
	require.NoError(t, err)

	release := make(chan struct{})
	wg := gated(t, b, 4, release)

	// Down to 2 while 4 run: nothing is dropped; new calls queue until fewer than 2 run.
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 2, 1
	require.NoError(t, b.Reconfigure(cfg))
	st := b.Stats()
	assert.Equal(t, 4, st.ActiveTasks)
	assert.Equal(t, 2, st.MaxConcurrentCalls)
	assert.Equal(t, 1, st.MaxQueueSize)
	_, err = core.Execute(context.Background(), b, func(context.Context) (int, error) { return 0, nil })
	assert.ErrorIs(t, err, core.ErrFull, "4 held + 0 queued >= capacity 3")
	close(release)
	wg.Wait()
	st = b.Stats()
	assert.Equal(t, int64(4), st.SuccessfulExecutions)
	assert.Equal(t, 0, st.ActiveTasks)
	assert.Equal(t, int64(1), st.RejectedExecutions)

	// Up again: queued callers start at once.
	release = make(chan struct{})
	wg = gated(t, b, 2, release)
	queued := make(chan error, 1)
	go func() {
		_, err := core.Execute(context.Background(), b, func(context.Context) (int, error) { return 0, nil })
		queued <- err
	}()
	require.Eventually(t, func() bool { return b.Stats().QueuedTasks == 1 }, 5*time.Second, time.Millisecond)
	cfg.MaxConcurrentCalls = 3
	require.NoError(t, b.Reconfigure(cfg))
	assert.NoError(t, <-queued)
	close(release)
	wg.Wait()
	st = b.Stats()
	assert.Equal(t, st.TotalExecutions, st.SuccessfulExecutions+st.FailedExecutions)
	assert.Equal(t, 0, st.InFlightCount)
	assert.Equal(t, cfg, b.Config())
}

func TestReconfigureKeepsCircuitState(t *testing.T) {
	cfg := core.DefaultConfig("keep")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 1
	cfg.IsolationDuration = time.Hour
	b, err := core.New(cfg)
	require.NoError(t, err)
	_, _ = core.Execute(context.Background(), b, func(context.Context) (int, error) { return 0, errors.New("boom") })
	require.Equal(t, core.Isolated, b.State())

	cfg.FailureThreshold = 7
	cfg.MaxConcurrentCalls = 3
	require.NoError(t, b.Reconfigure(cfg))
	assert.Equal(t, core.Isolated, b.State())
	_, err = core.Execute(context.Background(), b, func(context.Context) (int, error) { return 0, nil })
	assert.ErrorIs(t, err, core.ErrCircuitOpen)
	assert.Equal(t, int64(1), b.Stats().FailedExecutions)
}

func TestReconfigureRefusesWhatCannotChange(t *testing.T) {
	cfg := core.DefaultConfig("fixed")
	b, err := core.New(cfg)
	require.NoError(t, err)
	bad := cfg
	bad.Name = "other"
	bad.CircuitBreakerEnabled = true
	bad.MaxConcurrentCalls = 99
	err = b.Reconfigure(bad)
	var ce *core.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.ErrorContains(t, err, "Name")
	assert.ErrorContains(t, err, "CircuitBreakerEnabled")
	assert.Equal(t, cfg, b.Config(), "nothing changed")

	bad = cfg
	bad.MaxConcurrentCalls = 0
	assert.Error(t, b.Reconfigure(bad))
	assert.Equal(t, 10, b.Stats().MaxConcurrentCalls)
}
