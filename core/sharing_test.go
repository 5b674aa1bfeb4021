package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/testlog"
)

// The tests of shared circuit state run two "replicas" (two bulkheads of the same name)
// over one MemoryStore, each through its own testStore, which counts calls and injects
// faults. They run in testing/synctest bubbles: time is fake and synctest.Wait lets the
// sharer goroutines settle, so the tests need neither sleeps nor retries.

// testStore wraps a CircuitStore: it counts calls, checks that each has a deadline, and
// fails, hangs, gates or stays silent on demand.
type testStore struct {
	inner core.CircuitStore

	down atomic.Bool // Load and Save fail at once
	hang atomic.Bool // Load and Save block until their ctx ends
	mute atomic.Bool // Subscribe delivers nothing
	// gate, when not nil, holds every Save until the test sends on it.
	gate chan struct{}

	subsMu sync.Mutex
	subs   []func(core.CircuitRecord) // what Subscribe was given, for replay

	saves, loads atomic.Int64
	mu           sync.Mutex
	saved        []core.CircuitRecord // records passed to Save, in order
	noDeadline   int                  // calls whose ctx had no deadline
	longest      time.Duration        // the longest deadline a call was given
}

var errDown = errors.New("store down")

func (s *testStore) enter(ctx context.Context) error {
	dl, ok := ctx.Deadline()
	s.mu.Lock()
	if !ok {
		s.noDeadline++
	} else if d := time.Until(dl); d > s.longest {
		s.longest = d
	}
	s.mu.Unlock()
	switch {
	case s.hang.Load():
		<-ctx.Done()
		return ctx.Err()
	case s.down.Load():
		return errDown
	}
	return nil
}

func (s *testStore) Load(ctx context.Context, name string) (core.CircuitRecord, bool, error) {
	s.loads.Add(1)
	if err := s.enter(ctx); err != nil {
		return core.CircuitRecord{}, false, err
	}
	return s.inner.Load(ctx, name)
}

func (s *testStore) Save(ctx context.Context, rec core.CircuitRecord) (core.CircuitRecord, error) {
	s.saves.Add(1)
	s.mu.Lock()
	s.saved = append(s.saved, rec)
	s.mu.Unlock()
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return core.CircuitRecord{}, ctx.Err()
		}
	}
	if err := s.enter(ctx); err != nil {
		return core.CircuitRecord{}, err
	}
	return s.inner.Save(ctx, rec)
}

func (s *testStore) Subscribe(fn func(core.CircuitRecord)) func() {
	s.subsMu.Lock()
	s.subs = append(s.subs, fn)
	s.subsMu.Unlock()
	return s.inner.Subscribe(func(rec core.CircuitRecord) {
		if !s.mute.Load() {
			fn(rec)
		}
	})
}

// replay delivers rec to the subscribers again, as a store re-delivers what it holds
// after reconnecting to its notifications.
func (s *testStore) replay(rec core.CircuitRecord) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for _, fn := range s.subs {
		fn(rec)
	}
}

func (s *testStore) statuses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.saved))
	for i, r := range s.saved {
		out[i] = r.Status
	}
	return out
}

// replica returns a circuit-breaking bulkhead called "api" over store: 3 consecutive
// failures open it for 10s, one half-open success closes it. It is shut down at the end
// of the test.
func replica(t *testing.T, store core.CircuitStore, poll time.Duration, opts ...core.Option) *core.Bulkhead {
	t.Helper()
	cfg := core.DefaultConfig("api")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 4, 0
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold, cfg.SuccessThreshold = 3, 1
	cfg.IsolationDuration = isolation
	cfg.HealthCheckInterval = poll
	b, err := core.New(cfg, append([]core.Option{core.WithCircuitStore(store)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Shutdown(context.Background())) })
	return b
}

// errBoom, fail, succeed, trip and isolation (10s) come from the package's other tests.

// retryAfter makes one call that b must refuse with ErrCircuitOpen, and returns its hint.
func retryAfter(t *testing.T, b *core.Bulkhead) time.Duration {
	t.Helper()
	ran := false
	_, err := core.Execute(context.Background(), b, func(context.Context) (int, error) { ran = true; return 0, nil })
	require.ErrorIs(t, err, core.ErrCircuitOpen)
	require.False(t, ran, "an open circuit must not run the function")
	var e *core.Error
	require.ErrorAs(t, err, &e)
	return e.RetryAfter
}

func stored(t *testing.T, s core.CircuitStore) core.CircuitRecord {
	t.Helper()
	rec, ok, err := s.Load(context.Background(), "api")
	require.NoError(t, err)
	require.True(t, ok, "nothing stored")
	return rec
}

func TestSharedLoadAtStart(t *testing.T) {
	tests := []struct {
		name   string
		rec    func(now time.Time) core.CircuitRecord
		state  core.State
		refuse time.Duration // RetryAfter expected when Isolated
	}{
		{"live OPEN rejects at once", func(now time.Time) core.CircuitRecord {
			return core.CircuitRecord{Status: core.StatusOpen, OpenUntil: now.Add(7 * time.Second)}
		}, core.Isolated, 7 * time.Second},
		{"expired OPEN is not adopted", func(now time.Time) core.CircuitRecord {
			return core.CircuitRecord{Status: core.StatusOpen, OpenUntil: now.Add(-time.Second)}
		}, core.Healthy, 0},
		{"HALF_OPEN is not adopted", func(time.Time) core.CircuitRecord {
			return core.CircuitRecord{Status: core.StatusHalfOpen}
		}, core.Healthy, 0},
		{"CLOSED", func(time.Time) core.CircuitRecord {
			return core.CircuitRecord{Status: core.StatusClosed}
		}, core.Healthy, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := core.NewMemoryStore()
				rec := tt.rec(time.Now())
				rec.Name, rec.UpdatedAt = "api", time.Now()
				_, err := mem.Save(context.Background(), rec)
				require.NoError(t, err)

				b := replica(t, mem, 0)
				// No synctest.Wait: New loads before it returns.
				require.Equal(t, tt.state, b.State())
				if tt.state == core.Isolated {
					assert.Equal(t, tt.refuse, retryAfter(t, b))
					return
				}
				r, err := core.Execute(context.Background(), b, succeed(1))
				require.NoError(t, err)
				assert.True(t, r.Success)
			})
		})
	}
}

func TestSharedMemoryStoreGuardsLiveOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mem := core.NewMemoryStore()
		var seen []core.CircuitRecord
		cancel := mem.Subscribe(func(r core.CircuitRecord) { seen = append(seen, r) })
		defer cancel()

		open := core.CircuitRecord{Name: "api", Status: core.StatusOpen, OpenUntil: time.Now().Add(isolation), UpdatedAt: time.Now()}
		got, err := mem.Save(ctx, open)
		require.NoError(t, err)
		require.Equal(t, open, got)

		for _, w := range []core.CircuitRecord{
			{Name: "api", Status: core.StatusClosed},
			{Name: "api", Status: core.StatusHalfOpen},
			{Name: "api", Status: core.StatusOpen, OpenUntil: time.Now().Add(time.Hour)},
			{Name: "api", Status: core.StatusOpen, OpenUntil: time.Now().Add(time.Second)},
		} {
			got, err := mem.Save(ctx, w)
			require.NoError(t, err)
			assert.Equal(t, open, got, "a live OPEN is returned, not overwritten, by %s", w.Status)
			assert.Equal(t, open, stored(t, mem))
		}
		assert.Len(t, seen, 1, "refused writes notify nobody")

		time.Sleep(isolation) // OpenUntil == now: no longer live
		for _, status := range []string{core.StatusHalfOpen, core.StatusClosed} {
			w := core.CircuitRecord{Name: "api", Status: status, UpdatedAt: time.Now()}
			got, err := mem.Save(ctx, w)
			require.NoError(t, err)
			assert.Equal(t, w, got, "after expiry %s is accepted", status)
			assert.Equal(t, w, stored(t, mem))
		}
		assert.Len(t, seen, 3)

		_, ok, err := mem.Load(ctx, "other")
		require.NoError(t, err)
		assert.False(t, ok)
	})
}

func TestSharedMemoryStoreSubscribeCancel(t *testing.T) {
	ctx := context.Background()
	mem := core.NewMemoryStore()
	var mu sync.Mutex
	var got []string
	cancel := mem.Subscribe(func(r core.CircuitRecord) {
		mu.Lock()
		got = append(got, r.Name)
		mu.Unlock()
	})
	for _, n := range []string{"a", "b", "c"} {
		_, err := mem.Save(ctx, core.CircuitRecord{Name: n, Status: core.StatusClosed})
		require.NoError(t, err)
	}
	cancel()
	_, err := mem.Save(ctx, core.CircuitRecord{Name: "d", Status: core.StatusClosed})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"a", "b", "c"}, got, "in order, and nothing after cancel")

	done, cctx := context.WithCancel(ctx)
	cctx()
	_, err = mem.Save(done, core.CircuitRecord{Name: "e"})
	assert.ErrorIs(t, err, context.Canceled)
	_, _, err = mem.Load(done, "a")
	assert.ErrorIs(t, err, context.Canceled)
}

// TestSharedFirstOpenerWins: two replicas open 100ms apart, and the second one's write
// reaches the store before it learns of the first one's: both end with the first
// opener's OpenUntil, in the store and in their refusals.
func TestSharedFirstOpenerWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		sa := &testStore{inner: mem, gate: make(chan struct{})}
		sb := &testStore{inner: mem, gate: make(chan struct{})}
		a, b := replica(t, sa, 0), replica(t, sb, 0)

		t0 := time.Now()
		trip(t, a) // A's write waits at its gate
		time.Sleep(100 * time.Millisecond)
		trip(t, b) // B's too
		synctest.Wait()
		require.Equal(t, int64(1), sa.saves.Load())
		require.Equal(t, int64(1), sb.saves.Load())

		sa.gate <- struct{}{} // A wins the store
		synctest.Wait()
		sb.gate <- struct{}{} // B's write is refused
		synctest.Wait()

		rec := stored(t, mem)
		assert.Equal(t, core.StatusOpen, rec.Status)
		assert.True(t, rec.OpenUntil.Equal(t0.Add(isolation)), "stored %v, first opener's %v", rec.OpenUntil, t0.Add(isolation))
		left := isolation - 100*time.Millisecond
		assert.Equal(t, left, retryAfter(t, a))
		assert.Equal(t, left, retryAfter(t, b), "B adopted A's OpenUntil")

		// The end time never moves: at A's OpenUntil both probe again.
		time.Sleep(left)
		for _, r := range []*core.Bulkhead{a, b} {
			res, err := core.Execute(context.Background(), r, succeed(1))
			require.NoError(t, err)
			assert.True(t, res.Success)
		}
	})
}

// TestSharedFirstOpenerWinsRace opens both replicas at the same instant, without gates.
func TestSharedFirstOpenerWinsRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		a, b := replica(t, mem, 0), replica(t, mem, 0)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, r := range []*core.Bulkhead{a, b} {
			wg.Go(func() {
				<-start
				for range 3 {
					_, _ = core.Execute(context.Background(), r, fail)
				}
			})
		}
		time.Sleep(time.Millisecond) // both goroutines wait at start
		close(start)
		wg.Wait()
		synctest.Wait()
		rec := stored(t, mem)
		require.Equal(t, core.StatusOpen, rec.Status)
		left := time.Until(rec.OpenUntil)
		assert.Equal(t, left, retryAfter(t, a))
		assert.Equal(t, left, retryAfter(t, b))
	})
}

func TestSharedAdoptsPeerOpenThroughSubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		sa, sb := &testStore{inner: mem}, &testStore{inner: mem}
		var events []core.Event
		var mu sync.Mutex
		hook := core.WithEventHook(func(e core.Event) {
			if e.Kind == core.EventStateChanged {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}
		})
		a := replica(t, sa, 0) // no poll: only Subscribe can tell B
		b := replica(t, sb, 0, hook)

		trip(t, a)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		require.Equal(t, core.Isolated, b.State())
		assert.Equal(t, isolation-3*time.Second, retryAfter(t, b), "B keeps A's OpenUntil")
		assert.Equal(t, retryAfter(t, a), retryAfter(t, b))

		mu.Lock()
		assert.Equal(t, []core.Event{{Kind: core.EventStateChanged, Bulkhead: "api", From: core.Healthy, To: core.Isolated, Remote: true}}, events)
		mu.Unlock()
		assert.Zero(t, sb.saves.Load(), "an adopted state is not written back")
		assert.Equal(t, int64(1), sa.saves.Load())
	})
}

func TestSharedPollIsTheFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		sb := &testStore{inner: mem}
		sb.mute.Store(true) // B never hears from Subscribe
		a := replica(t, mem, time.Second)
		b := replica(t, sb, time.Second)

		time.Sleep(300 * time.Millisecond) // off the poll's beat
		trip(t, a)
		synctest.Wait()
		require.Equal(t, core.Healthy, b.State(), "no notification reached B")

		time.Sleep(700 * time.Millisecond) // B's next poll
		synctest.Wait()
		require.Equal(t, core.Isolated, b.State(), "converged within HealthCheckInterval")
		assert.Equal(t, retryAfter(t, a), retryAfter(t, b))
		assert.Zero(t, sb.saves.Load())
	})
}

// TestSharedRecovery: after the isolation, the replica whose probe succeeds closes the
// circuit for both, and every transition is written exactly once (no ping-pong).
func TestSharedRecoveryWithoutEcho(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		sa, sb := &testStore{inner: mem}, &testStore{inner: mem}
		a := replica(t, sa, time.Second)
		var mu sync.Mutex
		var bMoves []string
		b := replica(t, sb, time.Second, core.WithEventHook(func(e core.Event) {
			if e.Kind == core.EventStateChanged {
				mu.Lock()
				bMoves = append(bMoves, fmt.Sprintf("%v>%v remote=%v", e.From, e.To, e.Remote))
				mu.Unlock()
			}
		}))
		moves := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(bMoves)
		}

		trip(t, a)
		synctest.Wait()
		require.Equal(t, core.Isolated, b.State())

		time.Sleep(isolation)
		p, err := a.Acquire(context.Background()) // A's probe: HALF_OPEN
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Release(core.Neutral) }) // a failed test must not hang Shutdown
		synctest.Wait()
		assert.Equal(t, core.StatusHalfOpen, stored(t, mem).Status, "recovery is never blocked by an expired OPEN")
		assert.Equal(t, core.Degraded, b.State(), "B's isolation is over too")
		assert.Equal(t, []string{"healthy>isolated remote=true"}, moves(), "B ignores a peer's HALF_OPEN")

		require.NoError(t, p.Release(core.Success))
		synctest.Wait()
		assert.Equal(t, core.StatusClosed, stored(t, mem).Status)
		assert.Equal(t, core.Healthy, b.State(), "B adopted the CLOSED")
		assert.Equal(t, []string{"healthy>isolated remote=true", "isolated>healthy remote=true"}, moves())

		// A minute of polls and idle replicas: nothing more is written.
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, []string{core.StatusOpen, core.StatusHalfOpen, core.StatusClosed}, sa.statuses())
		assert.Zero(t, sb.saves.Load())
		assert.GreaterOrEqual(t, sb.loads.Load(), int64(60))
	})
}

// TestSharedClosedNeverOverwritesOpen: a replica that did not hear of a peer's OPEN
// (muted) and closes after its own probe does not erase it; it adopts it instead.
func TestSharedClosedNeverOverwritesOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		sb := &testStore{inner: mem}
		b := replica(t, sb, 0)

		trip(t, b)
		time.Sleep(isolation) // B's own OPEN is over
		sb.mute.Store(true)
		peer := core.CircuitRecord{Name: "api", Status: core.StatusOpen, OpenUntil: time.Now().Add(time.Minute), UpdatedAt: time.Now()}
		_, err := mem.Save(context.Background(), peer)
		require.NoError(t, err)

		r, err := core.Execute(context.Background(), b, succeed(1)) // B's probe closes it locally
		require.NoError(t, err)
		assert.True(t, r.Success, "the call keeps its own outcome")
		synctest.Wait()

		assert.Equal(t, peer, stored(t, mem), "the peer's live OPEN stands")
		require.Equal(t, core.Isolated, b.State(), "B adopted the OPEN its write ran into")
		assert.Equal(t, time.Minute, retryAfter(t, b))
	})
}

// TestSharedHealthyWritesNothing: a CLOSED circuit that stays CLOSED never writes.
func TestSharedHealthyWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &testStore{inner: core.NewMemoryStore()}
		b := replica(t, s, time.Second)
		for i := range 100 {
			fn := succeed(1)
			if i%3 == 0 {
				fn = fail // never 3 in a row
			}
			_, err := core.Execute(context.Background(), b, fn)
			require.NoError(t, err)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.Zero(t, s.saves.Load())
		assert.Equal(t, int64(6), s.loads.Load(), "the load at start and one per poll")
	})
}

// TestSharedFailOpen: while the store fails, calls keep their own outcomes and the
// circuit works locally; failures are logged; the latest state is written once the store
// is back.
func TestSharedFailOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		s := &testStore{inner: mem}
		s.down.Store(true)
		logs := &testlog.Sink{MinLevel: slog.LevelWarn}
		b := replica(t, s, time.Second, core.WithLogger(slog.New(logs)))
		assert.Equal(t, 1, logs.Count("read failed"), "the load at start failed")

		for range 10 {
			r, err := core.Execute(context.Background(), b, succeed(1))
			require.NoError(t, err, "nothing fails because of the store")
			assert.True(t, r.Success)
		}
		for range 3 {
			r, err := core.Execute(context.Background(), b, fail)
			require.NoError(t, err)
			assert.ErrorIs(t, r.Err, errBoom, "the call keeps its own outcome")
		}
		assert.Equal(t, isolation, retryAfter(t, b), "the circuit opens locally")
		synctest.Wait()
		assert.GreaterOrEqual(t, logs.Count("write failed"), 1)

		time.Sleep(isolation)
		r, err := core.Execute(context.Background(), b, succeed(1)) // probe: HALF_OPEN, then CLOSED
		require.NoError(t, err)
		assert.True(t, r.Success)
		require.Equal(t, core.Healthy, b.State())
		trip(t, b) // and OPEN again
		openUntil := time.Now().Add(isolation)

		_, ok, _ := mem.Load(context.Background(), "api")
		require.False(t, ok, "nothing reached the store")
		s.down.Store(false)
		time.Sleep(5 * time.Second) // the longest backoff
		synctest.Wait()
		rec := stored(t, mem)
		assert.Equal(t, core.StatusOpen, rec.Status, "the latest state was re-persisted")
		assert.True(t, rec.OpenUntil.Equal(openUntil))
		saves := s.saves.Load()
		time.Sleep(time.Minute)
		assert.Equal(t, saves, s.saves.Load(), "and written once")
	})
}

// TestSharedHangingStore: a store that never answers delays no call, and every store
// call carries the WithStoreTimeout deadline.
func TestSharedHangingStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		s := &testStore{inner: mem}
		s.hang.Store(true)
		const timeout = 100 * time.Millisecond

		start := time.Now()
		b := replica(t, s, time.Second, core.WithStoreTimeout(timeout))
		assert.Equal(t, timeout, time.Since(start), "New waits for the load at start, up to the deadline")

		// In a bubble, time moves only when every goroutine blocks: if a call waited for
		// the store, the clock would move.
		start = time.Now()
		for range 20 {
			_, err := core.Execute(context.Background(), b, succeed(1))
			require.NoError(t, err)
		}
		trip(t, b)
		retryAfter(t, b)
		assert.Zero(t, time.Since(start), "no call waited for the store")

		time.Sleep(10 * time.Second)
		synctest.Wait()
		assert.Positive(t, s.saves.Load())
		assert.Positive(t, s.loads.Load())
		s.mu.Lock()
		assert.Zero(t, s.noDeadline, "every store call has a deadline")
		assert.LessOrEqual(t, s.longest, timeout)
		s.mu.Unlock()

		// Once it answers again, the OPEN is written.
		s.hang.Store(false)
		time.Sleep(6 * time.Second)
		synctest.Wait()
		assert.Equal(t, core.StatusOpen, stored(t, mem).Status)
	})
}

func TestSharedShutdownStopsTheSharer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	mem := core.NewMemoryStore()
	m := core.NewManager(core.WithCircuitStore(mem))
	cfg := core.DefaultConfig("api")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 1
	cfg.HealthCheckInterval = time.Millisecond
	b, err := m.Create(cfg)
	require.NoError(t, err)
	other, err := core.New(cfg, core.WithCircuitStore(mem))
	require.NoError(t, err)

	_, err = core.Execute(context.Background(), b, fail)
	require.NoError(t, err)
	require.NoError(t, m.Shutdown(context.Background()))
	require.NoError(t, other.Shutdown(context.Background()))
	require.NoError(t, other.Shutdown(context.Background()), "idempotent")
	assert.Equal(t, core.StatusOpen, stored(t, mem).Status, "the transition was written before Shutdown returned")
}

// TestSharedMemoryStoreCancelWaitsForDelivery: once cancel returns, fn is not called
// again, even by a Save that was already delivering when cancel was called.
func TestSharedMemoryStoreCancelWaitsForDelivery(t *testing.T) {
	mem := core.NewMemoryStore()
	inFirst, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cancelFirst := mem.Subscribe(func(core.CircuitRecord) {
		once.Do(func() { close(inFirst) })
		<-release
	})
	defer cancelFirst()
	var cancelled, lateCall atomic.Bool
	cancel := mem.Subscribe(func(core.CircuitRecord) {
		if cancelled.Load() {
			lateCall.Store(true)
		}
	})
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		_, _ = mem.Save(context.Background(), core.CircuitRecord{Name: "api", Status: core.StatusClosed})
	}()
	<-inFirst // the Save is delivering, to the first subscriber
	cancelDone := make(chan struct{})
	go func() {
		cancel()
		cancelled.Store(true)
		close(cancelDone)
	}()
	select {
	case <-cancelDone:
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-saved
	<-cancelDone
	assert.False(t, lateCall.Load(), "fn was called after cancel returned")
}

// TestSharedPendingWriteBeatsStalePoll: a local transition not yet written (the store was
// down) is newer than what the store holds, so a poll must not undo it.
func TestSharedPendingWriteBeatsStalePoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		_, err := mem.Save(context.Background(), core.CircuitRecord{Name: "api", Status: core.StatusClosed, UpdatedAt: time.Now()})
		require.NoError(t, err)
		s := &testStore{inner: mem}
		b := replica(t, s, time.Second)

		s.down.Store(true)
		trip(t, b)
		time.Sleep(isolation)
		p, err := b.Acquire(context.Background()) // a probe: HALF_OPEN, not yet written
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Release(core.Neutral) }) // a failed test must not hang Shutdown
		s.down.Store(false)
		time.Sleep(2 * time.Second) // a poll comes before the retry
		synctest.Wait()
		assert.Equal(t, core.Degraded, b.State(), "the stale stored CLOSED did not end the probing")
		require.NoError(t, p.Release(core.Success))
		time.Sleep(6 * time.Second)
		synctest.Wait()
		assert.Equal(t, core.Healthy, b.State())
		assert.Equal(t, core.StatusClosed, stored(t, mem).Status)
	})
}

// TestSharedAdoptedStateSupersedesPendingWrite: a transition adopted from a peer replaces
// a local one not yet written, so the store does not end with a state nobody is in.
func TestSharedAdoptedStateSupersedesPendingWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		s := &testStore{inner: mem}
		b := replica(t, s, 0)
		trip(t, b)
		synctest.Wait()
		time.Sleep(isolation)

		s.down.Store(true)
		p, err := b.Acquire(context.Background()) // HALF_OPEN, its write fails
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Release(core.Neutral) }) // a failed test must not hang Shutdown
		synctest.Wait()
		// A peer's probe succeeded meanwhile: its CLOSED reaches B through Subscribe.
		time.Sleep(time.Millisecond)
		_, err = mem.Save(context.Background(), core.CircuitRecord{Name: "api", Status: core.StatusClosed, UpdatedAt: time.Now()})
		require.NoError(t, err)
		synctest.Wait()
		require.Equal(t, core.Healthy, b.State())
		s.down.Store(false)
		time.Sleep(6 * time.Second)
		synctest.Wait()
		assert.Equal(t, core.StatusClosed, stored(t, mem).Status)
		require.NoError(t, p.Release(core.Success))
	})
}

// TestSharedPendingWriteBeatsStaleRedelivery: what a store re-delivers after reconnecting
// (pgstore re-reads the namespace) was written before a local transition not yet saved,
// so it must not undo it either.
func TestSharedPendingWriteBeatsStaleRedelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		old, err := mem.Save(context.Background(), core.CircuitRecord{Name: "api", Status: core.StatusClosed, UpdatedAt: time.Now()})
		require.NoError(t, err)
		s := &testStore{inner: mem}
		b := replica(t, s, 0)

		s.down.Store(true)
		trip(t, b)
		time.Sleep(isolation)
		p, err := b.Acquire(context.Background()) // a probe: HALF_OPEN, not yet written
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Release(core.Neutral) }) // a failed test must not hang Shutdown
		s.replay(old)
		synctest.Wait()
		assert.Equal(t, core.Degraded, b.State(), "the stale CLOSED did not end the probing")

		s.down.Store(false)
		time.Sleep(6 * time.Second)
		synctest.Wait()
		assert.Equal(t, core.StatusHalfOpen, stored(t, mem).Status)
		require.NoError(t, p.Release(core.Success))
		synctest.Wait()
		assert.Equal(t, core.Healthy, b.State())
		assert.Equal(t, core.StatusClosed, stored(t, mem).Status)
	})
}

// roundingStore keeps times to the microsecond, as PostgreSQL does: what it saves,
// returns, loads and delivers is rounded.
type roundingStore struct{ inner core.CircuitStore }

func roundTimes(rec core.CircuitRecord) core.CircuitRecord {
	rec.OpenUntil = rec.OpenUntil.Truncate(time.Microsecond)
	rec.UpdatedAt = rec.UpdatedAt.Truncate(time.Microsecond)
	return rec
}

func (s roundingStore) Load(ctx context.Context, name string) (core.CircuitRecord, bool, error) {
	rec, ok, err := s.inner.Load(ctx, name)
	return roundTimes(rec), ok, err
}

func (s roundingStore) Save(ctx context.Context, rec core.CircuitRecord) (core.CircuitRecord, error) {
	stored, err := s.inner.Save(ctx, roundTimes(rec))
	return roundTimes(stored), err
}

func (s roundingStore) Subscribe(fn func(core.CircuitRecord)) func() {
	return s.inner.Subscribe(func(rec core.CircuitRecord) { fn(roundTimes(rec)) })
}

// TestSharedRoundedTimesAreTheSame: a store that rounds the times it keeps does not make
// the OPEN this process wrote look like a peer's that won the write (nor does its echo
// through Subscribe or the poll): the circuit keeps the end time it chose, to the
// nanosecond, rather than adopting one moved back by the rounding.
func TestSharedRoundedTimesAreTheSame(t *testing.T) {
	for _, poll := range []time.Duration{0, time.Second} {
		t.Run("poll="+poll.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := core.NewMemoryStore()
				store := &testStore{inner: roundingStore{inner: mem}}
				b := replica(t, store, poll)
				time.Sleep(1234567 * time.Nanosecond) // off the microsecond grid
				until := time.Now().Add(isolation)
				trip(t, b)
				synctest.Wait()
				require.Equal(t, int64(1), store.saves.Load())
				rounded := stored(t, mem).OpenUntil
				require.True(t, rounded.Before(until), "the store rounded the end time")

				// Between the rounded end time and the chosen one, the circuit is still
				// open: it has adopted nothing.
				time.Sleep(time.Until(rounded) + time.Nanosecond)
				ran, err := runs(b, succeed(1))
				assert.False(t, ran)
				assert.ErrorIs(t, err, core.ErrCircuitOpen)
				time.Sleep(time.Until(until))
				ran, err = runs(b, succeed(1))
				assert.True(t, ran, "a probe at the end time chosen")
				assert.NoError(t, err)
			})
		})
	}
}
