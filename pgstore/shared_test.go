package pgstore_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/pgtest"
	"github.com/bulkman-go/bulkman/internal/testlog"
	"github.com/bulkman-go/bulkman/pgstore"
)

// Replicas are bulkheads of the same name over Stores on separate pools: what two
// processes sharing a database look like.

var errBoom = errors.New("boom")

func succeed(context.Context) (int, error) { return 1, nil }
func failing(context.Context) (int, error) { return 0, errBoom }

// counting wraps a CircuitStore to count Saves and, when mute is set, to drop what
// Subscribe delivers (a replica that misses notifications).
type counting struct {
	core.CircuitStore
	saves atomic.Int64
	mute  atomic.Bool
}

func (c *counting) Save(ctx context.Context, rec core.CircuitRecord) (core.CircuitRecord, error) {
	c.saves.Add(1)
	return c.CircuitStore.Save(ctx, rec)
}

func (c *counting) Subscribe(fn func(core.CircuitRecord)) func() {
	return c.CircuitStore.Subscribe(func(r core.CircuitRecord) {
		if !c.mute.Load() {
			fn(r)
		}
	})
}

// replica returns a bulkhead called name over store: 3 consecutive failures open it for
// isolation, one half-open success closes it. It is shut down at the end of the test.
func replica(t testing.TB, store core.CircuitStore, name string, isolation, poll time.Duration, opts ...core.Option) *core.Bulkhead {
	t.Helper()
	cfg := core.DefaultConfig(name)
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 8, 0
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold, cfg.SuccessThreshold = 3, 1
	cfg.IsolationDuration = isolation
	cfg.HealthCheckInterval = poll
	b, err := core.New(cfg, append([]core.Option{core.WithCircuitStore(store)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Shutdown(context.Background())) })
	return b
}

// trip opens b's circuit with three failures, each keeping its own outcome.
func trip(t testing.TB, b *core.Bulkhead) {
	t.Helper()
	for range 3 {
		r, err := core.Execute(context.Background(), b, failing)
		require.NoError(t, err)
		require.ErrorIs(t, r.Err, errBoom)
	}
	require.Equal(t, core.Isolated, b.State())
}

func retryAfter(t testing.TB, b *core.Bulkhead) time.Duration {
	t.Helper()
	_, err := core.Execute(context.Background(), b, succeed)
	require.ErrorIs(t, err, core.ErrCircuitOpen)
	var e *core.Error
	require.ErrorAs(t, err, &e)
	return e.RetryAfter
}

// storedOpen waits until the store holds a live OPEN for name and returns it.
func storedOpen(t *testing.T, s core.CircuitStore, name string, within time.Duration) core.CircuitRecord {
	t.Helper()
	var rec core.CircuitRecord
	eventually(t, within, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, ok, err := s.Load(ctx, name)
		rec = r
		return err == nil && ok && r.Status == core.StatusOpen && r.OpenUntil.After(time.Now())
	}, "a live OPEN stored for "+name)
	return rec
}

func TestRestartAdoptsLiveOpen(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	a := replica(t, newStore(t, newPool(t, url)), "api", time.Minute, 0)
	trip(t, a)

	// A process starting now, with its own pool and store, loads the OPEN in New.
	s2 := newStore(t, newPool(t, url))
	rec := storedOpen(t, s2, "api", 5*time.Second)
	b := replica(t, s2, "api", time.Minute, 0)
	require.Equal(t, core.Isolated, b.State(), "rejects at once")
	assert.InDelta(t, time.Until(rec.OpenUntil), retryAfter(t, b), float64(100*time.Millisecond))
}

func TestPropagationBetweenStores(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	sa := &counting{CircuitStore: newStore(t, newPool(t, url))}
	sb := &counting{CircuitStore: newStore(t, newPool(t, url))}
	a := replica(t, sa, "api", time.Minute, 0) // no poll: only LISTEN/NOTIFY can tell B
	b := replica(t, sb, "api", time.Minute, 0)

	trip(t, a)
	opened := time.Now()
	eventually(t, 2*time.Second, func() bool { return b.State() == core.Isolated }, "B adopts A's OPEN")
	t.Logf("propagated in %v", time.Since(opened))
	rec := storedOpen(t, sb, "api", time.Second)
	assert.InDelta(t, time.Until(rec.OpenUntil), retryAfter(t, b), float64(100*time.Millisecond), "B keeps A's OpenUntil")
	assert.InDelta(t, retryAfter(t, a), retryAfter(t, b), float64(100*time.Millisecond))

	time.Sleep(100 * time.Millisecond) // echoes, if any, would have come back by now
	assert.Equal(t, int64(1), sa.saves.Load(), "A wrote its OPEN once")
	assert.Zero(t, sb.saves.Load(), "B wrote nothing back")
}

func TestRecoveryPropagates(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	sa := &counting{CircuitStore: newStore(t, newPool(t, url))}
	sb := &counting{CircuitStore: newStore(t, newPool(t, url))}
	const isolation = 300 * time.Millisecond
	a := replica(t, sa, "api", isolation, 0)
	b := replica(t, sb, "api", isolation, 0)

	trip(t, a)
	eventually(t, 2*time.Second, func() bool { return b.State() == core.Isolated }, "B adopts the OPEN")
	time.Sleep(isolation)
	r, err := core.Execute(context.Background(), a, succeed) // A's probe closes it
	require.NoError(t, err)
	require.True(t, r.Success)
	eventually(t, 2*time.Second, func() bool { return b.State() == core.Healthy }, "B adopts the CLOSED")
	rec, ok, err := sa.Load(context.Background(), "api")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, core.StatusClosed, rec.Status)
	time.Sleep(100 * time.Millisecond)
	assert.LessOrEqual(t, sa.saves.Load(), int64(3), "OPEN, HALF_OPEN (unless superseded), CLOSED")
	assert.Zero(t, sb.saves.Load())
}

// TestStaleClosedNeverOverwrites: a replica that missed a peer's OPEN and closes after its
// own probe does not erase the OPEN; it adopts it.
func TestStaleClosedNeverOverwrites(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	sb := &counting{CircuitStore: newStore(t, newPool(t, url))}
	peer := newStore(t, newPool(t, url))
	b := replica(t, sb, "api", 100*time.Millisecond, 0)
	trip(t, b)
	// B's OPEN reaches the store; under load it may already be over when we look, which
	// is what this test needs next anyway.
	var opened core.CircuitRecord
	eventually(t, 5*time.Second, func() bool {
		r, ok, err := peer.Load(context.Background(), "api")
		opened = r
		return err == nil && ok && r.Status == core.StatusOpen
	}, "B's OPEN stored")
	time.Sleep(time.Until(opened.OpenUntil) + 50*time.Millisecond) // B's OPEN is over

	sb.mute.Store(true)
	want, err := peer.Save(context.Background(), core.CircuitRecord{Name: "api", Status: core.StatusOpen, OpenUntil: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	require.Equal(t, core.StatusOpen, want.Status)

	r, err := core.Execute(context.Background(), b, succeed) // B's probe: CLOSED locally
	require.NoError(t, err)
	require.True(t, r.Success)
	eventually(t, 2*time.Second, func() bool { return b.State() == core.Isolated }, "B adopts the OPEN its write ran into")
	got, ok, err := peer.Load(context.Background(), "api")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, want, got, "the live OPEN stands")
}

// TestDatabaseKilledAndRestarted: calls keep their own outcomes while the database is
// gone, the state is written once it is back, and the listening connection recovers.
func TestDatabaseKilledAndRestarted(t *testing.T) {
	t.Parallel()
	srv := pgtest.ForTest(t)
	if srv.External() {
		t.Skip("cannot kill the external server named by DATABASE_URL")
	}
	url := database(t, srv)
	logs := &testlog.Sink{MinLevel: slog.LevelDebug}
	logger := slog.New(logs)
	sa := newStore(t, newPool(t, url), pgstore.WithLogger(logger))
	sb := newStore(t, newPool(t, url), pgstore.WithLogger(logger))
	opts := []core.Option{core.WithStoreTimeout(300 * time.Millisecond), core.WithLogger(logger)}
	a := replica(t, sa, "api", time.Minute, 200*time.Millisecond, opts...)
	b := replica(t, sb, "api", time.Minute, 200*time.Millisecond, opts...)

	require.NoError(t, srv.Kill())
	var worst time.Duration
	for range 20 {
		start := time.Now()
		r, err := core.Execute(context.Background(), a, succeed)
		worst = max(worst, time.Since(start))
		require.NoError(t, err, "nothing fails because of the store")
		require.True(t, r.Success)
	}
	trip(t, a) // the circuit works locally
	assert.InDelta(t, time.Minute, retryAfter(t, a), float64(time.Second))
	opened := time.Now()
	r, err := core.Execute(context.Background(), b, succeed)
	require.NoError(t, err)
	assert.True(t, r.Success, "B cannot know yet")
	t.Logf("slowest call while the database was down: %v", worst)
	eventually(t, 5*time.Second, func() bool { return logs.Count("circuit store write failed") > 0 }, "the failed write is logged")

	require.NoError(t, srv.Restart(context.Background()))
	rec := storedOpen(t, sb, "api", 10*time.Second)
	assert.WithinDuration(t, opened.Add(time.Minute), rec.OpenUntil, time.Second, "A's OPEN, re-persisted")
	eventually(t, 10*time.Second, func() bool { return b.State() == core.Isolated }, "B learns of it")
	assert.InDelta(t, retryAfter(t, a), retryAfter(t, b), float64(100*time.Millisecond))
	assert.Positive(t, logs.Count("lost the listening connection"))

	// Both listening connections are back (each hears the other's writes), and a new
	// transition propagates through LISTEN/NOTIFY alone (no poll).
	for _, pair := range [][2]*pgstore.Store{{sa, sb}, {sb, sa}} {
		heard := make(chan struct{}, 100)
		cancel := pair[1].Subscribe(func(r core.CircuitRecord) {
			if r.Name == "ping" {
				heard <- struct{}{}
			}
		})
		eventually(t, 15*time.Second, func() bool {
			_, _ = pair[0].Save(context.Background(), core.CircuitRecord{Name: "ping", Status: core.StatusClosed})
			select {
			case <-heard:
				return true
			case <-time.After(100 * time.Millisecond):
				return false
			}
		}, "listening again")
		cancel()
	}
	a2 := replica(t, sa, "api2", time.Minute, 0)
	b2 := replica(t, sb, "api2", time.Minute, 0)
	trip(t, a2)
	eventually(t, 2*time.Second, func() bool { return b2.State() == core.Isolated }, "a transition after the restart propagates")
}

// TestHangingDatabase: with the table locked by another transaction, store calls hang
// until their deadline, and no call waits for them.
func TestHangingDatabase(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	logs := &testlog.Sink{MinLevel: slog.LevelDebug}
	s := newStore(t, newPool(t, url))
	const deadline = 300 * time.Millisecond
	opts := []core.Option{core.WithStoreTimeout(deadline), core.WithLogger(slog.New(logs))}
	a := replica(t, s, "api", time.Minute, 100*time.Millisecond, opts...)

	ctx := context.Background()
	locker, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE bulkman_circuits IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	var worst time.Duration
	call := func(fn func(context.Context) (int, error)) error {
		start := time.Now()
		_, err := core.Execute(ctx, a, fn)
		worst = max(worst, time.Since(start))
		return err
	}
	for range 100 {
		require.NoError(t, call(succeed))
	}
	for range 3 {
		require.NoError(t, call(failing)) // opens: the write hangs
	}
	for range 100 {
		require.ErrorIs(t, call(succeed), core.ErrCircuitOpen)
	}
	time.Sleep(2 * deadline)
	for range 100 {
		require.ErrorIs(t, call(succeed), core.ErrCircuitOpen)
	}
	t.Logf("slowest of 303 calls while the store hung: %v (store deadline %v)", worst, deadline)
	assert.Less(t, worst, deadline, "no call waited for the store")
	eventually(t, 5*time.Second, func() bool { return logs.Count("circuit store write failed") > 0 }, "the write timed out")

	// A replica starting now: its Store's New reads only the catalog, which the lock
	// does not hold; its bulkhead's load at start waits at most the store deadline.
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s2, err := pgstore.New(nctx, newPool(t, url))
	require.NoError(t, err, "New does not wait for the table lock")
	defer s2.Close()
	start := time.Now()
	b := replica(t, s2, "api", time.Minute, 0, opts...)
	assert.Less(t, time.Since(start), deadline+200*time.Millisecond, "New waits for its load at most the deadline")
	assert.Equal(t, core.Healthy, b.State(), "and starts CLOSED")

	require.NoError(t, tx.Rollback(ctx))
	storedOpen(t, s, "api", 10*time.Second)
	eventually(t, 5*time.Second, func() bool { return b.State() == core.Isolated }, "B hears of it once the table is free")
}
