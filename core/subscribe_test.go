package core_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// kinds returns the bulkhead and kind of each event, e.g. "db rejected".
func kinds(events []core.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Bulkhead + " " + e.Kind.String()
	}
	return out
}

func TestManagerSubscribe(t *testing.T) {
	ctx := context.Background()
	full := func(name string) core.Config {
		cfg := core.DefaultConfig(name)
		cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
		return cfg
	}
	// refuse makes b refuse one call: it holds b's only permit while it calls Execute.
	refuse := func(t *testing.T, b *core.Bulkhead) {
		t.Helper()
		p, err := b.Acquire(ctx)
		require.NoError(t, err)
		_, err = core.Execute(ctx, b, succeed(1))
		require.ErrorIs(t, err, core.ErrFull)
		require.NoError(t, p.Release(core.Neutral))
	}

	var order []string
	var mu sync.Mutex
	note := func(who string) func(core.Event) {
		return func(e core.Event) {
			if e.Kind == core.EventRejected {
				mu.Lock()
				order = append(order, who+":"+e.Bulkhead)
				mu.Unlock()
			}
		}
	}
	m := core.NewManager(core.WithEventHook(note("hook")))
	before, err := m.Create(full("before"))
	require.NoError(t, err)

	var first, second recorder
	unsubscribe := m.Subscribe(first.hook)
	m.Subscribe(second.hook)
	m.Subscribe(note("sub"))
	after, err := m.Create(full("after"))
	require.NoError(t, err)

	refuse(t, before)
	refuse(t, after)
	want := []string{"before rejected", "before finished", "after rejected", "after finished"}
	assert.Equal(t, want, kinds(first.take()), "a subscriber sees the bulkheads the Manager has and the ones it creates later")
	assert.Equal(t, want, kinds(second.take()))
	assert.Equal(t, []string{"hook:before", "sub:before", "hook:after", "sub:after"}, order,
		"WithEventHook's hooks run first, then the subscribers in order")

	unsubscribe()
	unsubscribe() // idempotent
	refuse(t, after)
	assert.Empty(t, first.take(), "an unsubscribed function hears nothing more")
	assert.Equal(t, want[2:], kinds(second.take()), "the others still hear")

	removed, ok := m.Remove("before")
	require.True(t, ok)
	refuse(t, removed)
	assert.Empty(t, second.take(), "a bulkhead Remove took out of the Manager no longer reaches its subscribers")

	assert.NotPanics(t, func() { m.Subscribe(nil)() }, "a nil function subscribes nothing")
}

// TestManagerSubscribeAllocs: once the last subscriber leaves, a bulkhead without hooks
// costs what it did before anyone subscribed (no Event is built: it allocates nothing).
func TestManagerSubscribeAllocs(t *testing.T) {
	ctx := context.Background()
	m := core.NewManager()
	b, err := m.Create(core.DefaultConfig("db"))
	require.NoError(t, err)
	run := func() {
		if _, err := core.Execute(ctx, b, succeed(1)); err != nil {
			panic(err)
		}
	}
	base := testing.AllocsPerRun(200, run)
	var n atomic.Int64
	unsubscribe := m.Subscribe(func(core.Event) { n.Add(1) })
	assert.Equal(t, base, testing.AllocsPerRun(200, run), "a subscriber adds no allocation to a call")
	assert.Positive(t, n.Load())
	unsubscribe()
	assert.Equal(t, base, testing.AllocsPerRun(200, run))
}

// TestManagerSubscribeHammer subscribes, unsubscribes, creates and removes bulkheads
// while calls run (under -race: the hooks list is read without a lock). Every subscriber
// that stays from start to end sees every call.
func TestManagerSubscribeHammer(t *testing.T) {
	ctx := context.Background()
	m := core.NewManager()
	var steady atomic.Int64
	defer m.Subscribe(func(e core.Event) {
		if e.Kind == core.EventFinished {
			steady.Add(1)
		}
	})()
	const workers, calls = 4, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			b, err := m.Create(core.DefaultConfig(fmt.Sprint("w", w)))
			if !assert.NoError(t, err) {
				return
			}
			for range calls {
				_, err := core.Execute(ctx, b, succeed(1))
				assert.NoError(t, err)
			}
		})
	}
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			unsubscribe := m.Subscribe(func(core.Event) {})
			b, err := m.Create(core.DefaultConfig(fmt.Sprint("tmp", i)))
			if assert.NoError(t, err) {
				_, _ = core.Execute(ctx, b, succeed(1))
				m.Remove(b.Name())
			}
			unsubscribe()
		}
	})
	wg.Wait()
	close(stop)
	churn.Wait()
	var total int64
	for _, b := range m.Stats() {
		total += b.TotalExecutions
	}
	assert.Equal(t, int64(workers*calls), total)
	assert.GreaterOrEqual(t, steady.Load(), int64(workers*calls), "the steady subscriber saw every call of the workers (and some of the churn's)")
}
