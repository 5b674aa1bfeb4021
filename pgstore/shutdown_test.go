package pgstore_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/pgtest"
)

// sharers counts the goroutines that keep bulkheads in step with a store. Only a test
// that does not call t.Parallel may count: the parallel tests wait while it runs.
func sharers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("created by github.com/bulkman-go/bulkman/core.(*sharer).start"))
}

// TestShutdownWhileTheDatabaseIsStopped: with PostgreSQL stopped (SIGSTOP) and
// transitions waiting to be written, Manager.Shutdown returns when its ctx ends, and
// neither it nor a Shutdown after Manager.Remove leaves a goroutine behind. (Not
// parallel: it counts goroutines.)
func TestShutdownWhileTheDatabaseIsStopped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pausing PostgreSQL needs Linux")
	}
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) }) // the last cleanup
	srv := pgtest.ForTest(t)
	if srv.External() {
		t.Skip("cannot stop the external server named by DATABASE_URL")
	}
	url := database(t, srv)
	store := newStore(t, newPool(t, url))
	m := core.NewManager(core.WithCircuitStore(store))
	for _, name := range []string{"payments", "ledger", "removed"} {
		cfg := core.DefaultConfig(name)
		cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 3
		cfg.HealthCheckInterval = 100 * time.Millisecond
		_, err := m.Create(cfg)
		require.NoError(t, err)
	}
	require.Equal(t, 3, sharers())

	require.NoError(t, srv.Pause())
	t.Cleanup(func() { _ = srv.Resume() })
	for _, name := range m.Names() {
		b, _ := m.Get(name)
		trip(t, b) // each write hangs: the database does not answer
	}
	time.Sleep(200 * time.Millisecond) // the polls hang too

	removed, ok := m.Remove("removed")
	require.True(t, ok)
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, removed.Shutdown(expired), context.Canceled)
	// The goroutine has returned when Shutdown does; it may take a moment more to be gone.
	eventually(t, time.Second, func() bool { return sharers() == 2 }, "the removed bulkhead's goroutine is gone")

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := m.Shutdown(ctx)
	took := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, took, 500*time.Millisecond)
	assert.Less(t, took, 800*time.Millisecond, "Shutdown keeps to its ctx, not to the store's 2s deadline")
	t.Logf("Manager.Shutdown with a 500ms deadline, database stopped: returned after %v", took)
	eventually(t, time.Second, func() bool { return sharers() == 0 }, "no store goroutine left")

	require.NoError(t, srv.Resume())
	var rec core.CircuitRecord
	var found bool
	eventually(t, 10*time.Second, func() bool {
		var err error
		rec, found, err = store.Load(context.Background(), "payments")
		return err == nil
	}, "the database answers again")
	assert.False(t, found && rec.Status == core.StatusOpen, "the write Shutdown gave up was not made later")
}
