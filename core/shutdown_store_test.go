package core_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
)

// sharers counts the goroutines that keep bulkheads in step with a store.
func sharers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("created by github.com/bulkman-go/bulkman/core.(*sharer).start"))
}

// TestSharedShutdownKeepsToItsContext: with the store hanging and a transition pending,
// Shutdown returns when its ctx ends, not when the store's deadline (or two) has passed,
// and leaves no store goroutine behind.
func TestSharedShutdownKeepsToItsContext(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s *testStore, b *core.Bulkhead)
	}{
		{"the goroutine is writing the transition", func(t *testing.T, s *testStore, b *core.Bulkhead) {
			trip(t, b)
			synctest.Wait()
			require.Equal(t, int64(1), s.saves.Load(), "the write is in progress")
		}},
		{"the goroutine is polling, a transition waits", func(t *testing.T, s *testStore, b *core.Bulkhead) {
			time.Sleep(time.Second) // the poll starts, and hangs
			synctest.Wait()
			trip(t, b)
			synctest.Wait()
			require.Zero(t, s.saves.Load(), "the write waits for the poll")
		}},
		{"the goroutine is waiting to retry a failed write", func(t *testing.T, s *testStore, b *core.Bulkhead) {
			s.hang.Store(false)
			s.down.Store(true)
			trip(t, b)
			synctest.Wait()
			s.down.Store(false)
			s.hang.Store(true)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &testStore{inner: core.NewMemoryStore()}
				b := replica(t, s, time.Second, core.WithStoreTimeout(2*time.Second))
				s.hang.Store(true)
				tc.setup(t, s, b)
				require.Equal(t, 1, sharers())

				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := b.Shutdown(ctx)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Equal(t, 500*time.Millisecond, time.Since(start), "Shutdown keeps to its ctx")
				synctest.Wait() // the goroutine has returned; let it be gone
				assert.Zero(t, sharers(), "the store goroutine is gone")
				assert.NoError(t, b.Shutdown(context.Background()), "a later Shutdown: nothing runs, nothing to stop")
			})
		})
	}
}

// TestSharedShutdownWhileCallsRun: a Shutdown whose ctx ends while calls still run stops
// the store goroutine anyway; a later Shutdown waits for the calls.
func TestSharedShutdownWhileCallsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		b := replica(t, &testStore{inner: mem}, time.Second)
		g := newGate()
		running := goExecute(context.Background(), b, hold(g, 1, nil))
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
		synctest.Wait()
		assert.Zero(t, sharers(), "no store goroutine waits for a second Shutdown")

		later := make(chan error, 1)
		go func() { later <- b.Shutdown(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-later:
			t.Fatalf("Shutdown returned %v while a call runs", err)
		default:
		}
		close(g)
		_, err := running.wait()
		require.NoError(t, err)
		assert.NoError(t, <-later)
	})
}

// TestSharedShutdownPathsLeakNothing runs every way a bulkhead with a store is shut down
// on real time, and checks with goleak after each that nothing of it is left.
func TestSharedShutdownPathsLeakNothing(t *testing.T) {
	const deadline = 100 * time.Millisecond
	paths := []struct {
		name string
		run  func(t *testing.T, s *testStore)
	}{
		{"idle", func(t *testing.T, s *testStore) {
			b := replica(t, s, time.Millisecond)
			require.NoError(t, b.Shutdown(context.Background()))
		}},
		{"transition written at Shutdown", func(t *testing.T, s *testStore) {
			b := replica(t, s, 0)
			trip(t, b)
			require.NoError(t, b.Shutdown(context.Background()))
			assert.Equal(t, core.StatusOpen, stored(t, s.inner).Status)
		}},
		{"ctx ends while a call runs", func(t *testing.T, s *testStore) {
			b := replica(t, s, time.Millisecond)
			g := newGate()
			c := goExecute(context.Background(), b, hold(g, 1, nil))
			pollUntil(t, func() bool { return b.Stats().ActiveTasks == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			assert.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
			close(g)
			_, err := c.wait()
			require.NoError(t, err)
		}},
		{"ctx ends while the store hangs", func(t *testing.T, s *testStore) {
			b := replica(t, s, time.Millisecond, core.WithStoreTimeout(time.Minute))
			s.hang.Store(true)
			trip(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			assert.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
			assert.Less(t, time.Since(start), deadline+time.Second)
		}},
		{"Manager.Remove, then a Shutdown whose ctx has ended", func(t *testing.T, s *testStore) {
			m := core.NewManager(core.WithCircuitStore(s), core.WithStoreTimeout(time.Minute))
			cfg := core.DefaultConfig("api")
			cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.HealthCheckInterval = true, 1, time.Millisecond
			b, err := m.Create(cfg)
			require.NoError(t, err)
			s.hang.Store(true)
			_, err = core.Execute(context.Background(), b, fail)
			require.NoError(t, err)
			removed, ok := m.Remove("api")
			require.True(t, ok)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			assert.ErrorIs(t, removed.Shutdown(ctx), context.Canceled)
		}},
		{"Manager.Shutdown with a deadline while the store hangs", func(t *testing.T, s *testStore) {
			m := core.NewManager(core.WithCircuitStore(s))
			var bs []*core.Bulkhead
			for _, name := range []string{"a", "b", "c"} {
				cfg := core.DefaultConfig(name)
				cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 1
				b, err := m.Create(cfg)
				require.NoError(t, err)
				bs = append(bs, b)
			}
			s.hang.Store(true)
			for _, b := range bs {
				_, err := core.Execute(context.Background(), b, fail)
				require.NoError(t, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*deadline)
			defer cancel()
			start := time.Now()
			assert.ErrorIs(t, m.Shutdown(ctx), context.DeadlineExceeded)
			took := time.Since(start)
			assert.GreaterOrEqual(t, took, 5*deadline)
			assert.Less(t, took, 5*deadline+time.Second, "not the store's 2s deadline, nor two of them")
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			s := &testStore{inner: core.NewMemoryStore()}
			p.run(t, s)
			pollUntil(t, func() bool { return sharers() == 0 })
		})
	}
}

// pollUntil polls cond on real time, for the tests that run outside a bubble.
func pollUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "condition not met within 5s")
		time.Sleep(time.Millisecond)
	}
}
