package core_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

func TestManagerCreateGet(t *testing.T) {
	m := core.NewManager()
	_, ok := m.Get("db")
	assert.False(t, ok)
	assert.Empty(t, m.Names())

	db, err := m.Create(core.DefaultConfig("db"))
	require.NoError(t, err)
	got, ok := m.Get("db")
	assert.True(t, ok)
	assert.Same(t, db, got)

	cfg := core.DefaultConfig("db")
	cfg.MaxConcurrentCalls = 1
	dup, err := m.Create(cfg)
	assertRefusal(t, err, core.ErrExists, "db")
	assert.Nil(t, dup)
	got, _ = m.Get("db")
	assert.Same(t, db, got, "the first one stays")
	assert.Equal(t, 10, got.Config().MaxConcurrentCalls)

	bad := core.DefaultConfig("bad")
	bad.MaxConcurrentCalls = 0
	b, err := m.Create(bad)
	var ce *core.ConfigError
	assert.ErrorAs(t, err, &ce)
	assert.Nil(t, b)
	_, ok = m.Get("bad")
	assert.False(t, ok, "an invalid config registers nothing")
	_, err = m.GetOrCreate(bad)
	assert.ErrorAs(t, err, &ce)
}

func TestManagerGetOrCreate(t *testing.T) {
	m := core.NewManager()
	first, err := m.GetOrCreate(core.DefaultConfig("db"))
	require.NoError(t, err)

	other := core.DefaultConfig("db")
	other.MaxConcurrentCalls, other.CircuitBreakerEnabled = 1, true
	again, err := m.GetOrCreate(other)
	require.NoError(t, err)
	assert.Same(t, first, again, "the existing bulkhead wins")
	assert.Equal(t, core.DefaultConfig("db"), again.Config(), "the new config is ignored")

	// Racing GetOrCreate calls all get the one bulkhead.
	const racers = 16
	got := make([]*core.Bulkhead, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range got {
		wg.Go(func() {
			<-start
			b, err := m.GetOrCreate(core.DefaultConfig("cache"))
			assert.NoError(t, err)
			got[i] = b
		})
	}
	close(start)
	wg.Wait()
	for _, b := range got {
		assert.Same(t, got[0], b)
	}
	assert.Equal(t, []string{"cache", "db"}, m.Names())
}

func TestManagerNamesStatsHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := core.NewManager()
		for _, name := range []string{"payments", "auth", "search", "billing"} {
			cfg := core.DefaultConfig(name)
			cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 1
			_, err := m.Create(cfg)
			require.NoError(t, err)
		}
		assert.Equal(t, []string{"auth", "billing", "payments", "search"}, m.Names(), "sorted")

		_, err := core.ExecuteIn(context.Background(), m, "search", fail)
		require.NoError(t, err)
		_, err = core.ExecuteIn(context.Background(), m, "auth", succeed(1))
		require.NoError(t, err)

		stats := m.Stats()
		assert.Len(t, stats, 4)
		for name, s := range stats {
			assert.Equal(t, name, s.Name)
		}
		assert.Equal(t, int64(1), stats["auth"].SuccessfulExecutions)
		assert.Equal(t, int64(1), stats["search"].FailedExecutions)
		assert.Equal(t, core.Isolated, stats["search"].State)

		assert.Equal(t, map[string]bool{"auth": true, "billing": true, "payments": true, "search": false}, m.Health())
	})
}

// Options given to NewManager apply to every bulkhead it creates.
func TestManagerOptions(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	m := core.NewManager(core.WithEventHook(func(e core.Event) {
		mu.Lock()
		seen[e.Bulkhead]++
		mu.Unlock()
	}))
	for _, name := range []string{"a", "b"} {
		_, err := m.Create(core.DefaultConfig(name))
		require.NoError(t, err)
		_, err = core.ExecuteIn(context.Background(), m, name, succeed(1))
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"a": 1, "b": 1}, seen)
}

// A full or open bulkhead never delays another.
func TestManagerBulkheadsIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := core.NewManager()
		full, err := m.Create(core.Config{Name: "full", MaxConcurrentCalls: 1, MaxQueueSize: 1})
		require.NoError(t, err)
		cfg := core.DefaultConfig("open")
		cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 1
		open, err := m.Create(cfg)
		require.NoError(t, err)
		free, err := m.Create(core.DefaultConfig("free"))
		require.NoError(t, err)

		g := newGate()
		held := []*call{goExecute(context.Background(), full, hold(g, 1, nil)), goExecute(context.Background(), full, hold(g, 1, nil))}
		_, err = core.Execute(context.Background(), open, fail)
		require.NoError(t, err)
		synctest.Wait()
		_, err = core.Execute(context.Background(), full, succeed(1))
		require.ErrorIs(t, err, core.ErrFull)
		require.Equal(t, core.Isolated, open.State())

		start := time.Now()
		for range 10 {
			res, err := core.ExecuteIn(context.Background(), m, "free", succeed(2))
			require.NoError(t, err)
			assert.Equal(t, 2, res.Value)
		}
		assert.Zero(t, time.Since(start), "no wait behind the others")
		assert.Equal(t, int64(10), free.Stats().SuccessfulExecutions)
		assert.Equal(t, map[string]bool{"free": true, "full": true, "open": false}, m.Health())

		close(g)
		for _, c := range held {
			_, err := c.wait()
			assert.NoError(t, err)
		}
	})
}

func TestManagerShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := core.NewManager()
		var bs []*core.Bulkhead
		for _, name := range []string{"a", "b", "c"} {
			b, err := m.Create(core.DefaultConfig(name))
			require.NoError(t, err)
			bs = append(bs, b)
		}
		g := newGate()
		running := goExecute(context.Background(), bs[1], hold(g, 1, nil))
		synctest.Wait()

		// ctx ends before the running call: ctx's error, but everything is shut down.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, m.Shutdown(ctx), context.DeadlineExceeded)
		for _, b := range bs {
			_, err := core.Execute(context.Background(), b, succeed(1))
			assertRefusal(t, err, core.ErrShutdown, b.Name())
		}

		done := make(chan error, 1)
		go func() { done <- m.Shutdown(context.Background()) }()
		synctest.Wait()
		assert.Len(t, done, 0, "waits for the running call")
		close(g)
		_, err := running.wait()
		assert.NoError(t, err)
		assert.NoError(t, <-done)
		assert.NoError(t, m.Shutdown(context.Background()), "idempotent")
		_, err = core.ExecuteIn(context.Background(), m, "a", succeed(1))
		assertRefusal(t, err, core.ErrShutdown, "a")
	})
}

func TestManagerRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := core.NewManager()
		a, err := m.Create(core.DefaultConfig("a"))
		require.NoError(t, err)
		_, err = m.Create(core.DefaultConfig("b"))
		require.NoError(t, err)

		got, ok := m.Remove("nope")
		assert.False(t, ok)
		assert.Nil(t, got)
		assert.Equal(t, []string{"a", "b"}, m.Names(), "removing an unknown name changes nothing")

		// A call running in a when it is removed goes on, and so do callers that hold a.
		g := newGate()
		running := goExecute(context.Background(), a, hold(g, 7, nil))
		synctest.Wait()
		got, ok = m.Remove("a")
		require.True(t, ok)
		assert.Same(t, a, got)
		assert.Equal(t, []string{"b"}, m.Names())
		assert.NotContains(t, m.Stats(), "a")
		assert.NotContains(t, m.Health(), "a")
		_, ok = m.Get("a")
		assert.False(t, ok)
		_, err = core.ExecuteIn(context.Background(), m, "a", succeed(1))
		assertRefusal(t, err, core.ErrNotFound, "a")
		_, ok = m.Remove("a")
		assert.False(t, ok, "removed once")

		r, err := core.Execute(context.Background(), a, succeed(2))
		require.NoError(t, err)
		assert.Equal(t, 2, r.Value, "the removed bulkhead still serves whoever holds it")
		assert.Equal(t, 1, a.Stats().ActiveTasks)

		// The name is free again: a new bulkhead with its own statistics.
		cfg := core.DefaultConfig("a")
		cfg.MaxConcurrentCalls = 3
		a2, err := m.Create(cfg)
		require.NoError(t, err)
		assert.NotSame(t, a, a2)
		assert.Equal(t, int64(0), a2.Stats().TotalExecutions)
		assert.Equal(t, int64(2), a.Stats().TotalExecutions)

		// The Manager's Shutdown no longer reaches the removed one; its own does, and
		// waits for the call it runs.
		require.NoError(t, m.Shutdown(context.Background()))
		_, err = core.Execute(context.Background(), a2, succeed(1))
		assertRefusal(t, err, core.ErrShutdown, "a")
		r, err = core.Execute(context.Background(), a, succeed(3))
		require.NoError(t, err)
		assert.Equal(t, 3, r.Value)

		done := make(chan error, 1)
		go func() { done <- a.Shutdown(context.Background()) }()
		synctest.Wait()
		assert.Len(t, done, 0, "waits for the running call")
		close(g)
		r, err = running.wait()
		require.NoError(t, err)
		assert.Equal(t, 7, r.Value)
		assert.NoError(t, <-done)
	})
}

// TestManagerRemoveConcurrent races Remove against Create, GetOrCreate, Get and the
// Manager-wide readers: a bulkhead removed is never handed out again, and what is left
// is consistent.
func TestManagerRemoveConcurrent(t *testing.T) {
	m := core.NewManager()
	names := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				name := names[(w+i)%len(names)]
				switch i % 4 {
				case 0:
					_, _ = m.Create(core.DefaultConfig(name))
				case 1:
					b, err := m.GetOrCreate(core.DefaultConfig(name))
					if assert.NoError(t, err) {
						assert.Equal(t, name, b.Name())
					}
				case 2:
					if b, ok := m.Remove(name); ok {
						assert.Equal(t, name, b.Name())
						again, err := m.GetOrCreate(core.DefaultConfig(name))
						if assert.NoError(t, err) {
							assert.NotSame(t, b, again, "a removed bulkhead is handed out again")
						}
					}
				case 3:
					for n, s := range m.Stats() {
						assert.Equal(t, n, s.Name)
					}
					_ = m.Health()
				}
			}
		})
	}
	wg.Wait()
	for _, n := range m.Names() {
		b, ok := m.Get(n)
		require.True(t, ok)
		removed, ok := m.Remove(n)
		require.True(t, ok)
		assert.Same(t, b, removed)
	}
	assert.Empty(t, m.Names())
}

// subscriptions is a CircuitStore that counts the subscriptions it holds: a bulkhead
// attached to a store subscribes when it is made and cancels when it is shut down.
type subscriptions struct {
	*core.MemoryStore
	live atomic.Int64
}

func (s *subscriptions) Subscribe(fn func(core.CircuitRecord)) (cancel func()) {
	s.live.Add(1)
	stop := s.MemoryStore.Subscribe(fn)
	var once sync.Once
	return func() { once.Do(func() { s.live.Add(-1); stop() }) }
}

// TestManagerLosingCreateStopsItsBulkhead: Create and GetOrCreate make the bulkhead before
// they take the Manager's lock (New may load the circuit from a store); the one that finds
// the name taken then must stop what New started (the store subscription and the
// goroutine that follows the store), or every duplicate Create would leak them.
func TestManagerLosingCreateStopsItsBulkhead(t *testing.T) {
	store := &subscriptions{MemoryStore: core.NewMemoryStore()}
	m := core.NewManager(core.WithCircuitStore(store))
	cfg := core.DefaultConfig("db")
	cfg.CircuitBreakerEnabled = true
	first, err := m.Create(cfg)
	require.NoError(t, err)
	require.Equal(t, int64(1), store.live.Load())

	_, err = m.Create(cfg)
	assertRefusal(t, err, core.ErrExists, "db")
	assert.Equal(t, int64(1), store.live.Load(), "a Create refused before it made anything")

	// Racing creators of names that are removed under them: some make a bulkhead and
	// then find the name taken (this is what fails if the loser is not shut down).
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				c := cfg
				c.Name = []string{"x", "y"}[(w+i)%2]
				if i%3 == 2 {
					if b, ok := m.Remove(c.Name); ok {
						assert.NoError(t, b.Shutdown(context.Background()))
					}
					continue
				}
				b, err := m.GetOrCreate(c)
				if assert.NoError(t, err) {
					assert.Equal(t, c.Name, b.Name())
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(len(m.Names())), store.live.Load(), "one subscription per bulkhead in the Manager")
	require.NoError(t, m.Shutdown(context.Background()))
	assert.Equal(t, int64(0), store.live.Load())
	_, err = core.Execute(context.Background(), first, succeed(1))
	assertRefusal(t, err, core.ErrShutdown, "db")
}
