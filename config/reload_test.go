package config_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

// assertLedger checks total = successful + failed + active on a snapshot, and that nothing
// is negative.
func assertLedger(t *testing.T, s core.Stats) {
	t.Helper()
	assert.Equal(t, s.TotalExecutions, s.SuccessfulExecutions+s.FailedExecutions+int64(s.ActiveTasks), "total = successful + failed + active: %+v", s)
	assert.GreaterOrEqual(t, s.ActiveTasks, 0, "%+v", s)
	assert.GreaterOrEqual(t, s.InFlightCount, s.ActiveTasks, "%+v", s)
}

func assertIdle(t *testing.T, s core.Stats) {
	t.Helper()
	assertLedger(t, s)
	assert.Zero(t, s.ActiveTasks, "idle: %+v", s)
	assert.Zero(t, s.InFlightCount, "idle: %+v", s)
}

// held is a call that runs until released.
type held struct {
	release chan struct{}
	done    chan error
}

// TestResizeDownAndUp: lowering the limit lets running calls finish and starts new ones
// only under the new limit; raising it starts them at once.
func TestResizeDownAndUp(t *testing.T) {
	file := func(limit int) string {
		return fmt.Sprintf("bulkheads:\n  - name: a\n    max_concurrent_calls: %d\n    max_queue_size: 0\nhttp:\n  \"/\": a\n", limit)
	}
	l, m, path := open(t, file(4))
	b := get(t, m, "a")
	ctx := context.Background()
	req := httptest.NewRequest("GET", "/x", nil)
	start := func() *held {
		h := &held{release: make(chan struct{}), done: make(chan error, 1)}
		started := make(chan struct{})
		go func() {
			_, err := core.Execute(ctx, l.HTTP()(req), func(context.Context) (int, error) {
				close(started)
				<-h.release
				return 0, nil
			})
			h.done <- err
		}()
		<-started
		return h
	}
	finish := func(h *held) {
		close(h.release)
		require.NoError(t, <-h.done)
	}
	tryNow := func() error {
		_, err := core.Execute(ctx, l.HTTP()(req), func(context.Context) (int, error) { return 0, nil })
		return err
	}

	calls := []*held{start(), start(), start(), start()}
	writeFile(t, path, file(2))
	require.NoError(t, l.Reload())
	s := b.Stats()
	assert.Equal(t, 2, s.MaxConcurrentCalls)
	assert.Equal(t, 4, s.ActiveTasks, "running calls go on")
	assertLedger(t, s)
	assert.ErrorIs(t, tryNow(), core.ErrFull)

	finish(calls[0])
	finish(calls[1])
	assert.ErrorIs(t, tryNow(), core.ErrFull, "two still run: the new limit")
	finish(calls[2])
	calls = append(calls[3:], start()) // one runs: room for one
	assert.ErrorIs(t, tryNow(), core.ErrFull)

	writeFile(t, path, file(5))
	require.NoError(t, l.Reload())
	calls = append(calls, start(), start(), start())
	assert.Equal(t, 5, b.Stats().ActiveTasks)
	assert.ErrorIs(t, tryNow(), core.ErrFull)
	for _, h := range calls {
		finish(h)
	}
	require.NoError(t, tryNow())

	s = b.Stats()
	assertIdle(t, s)
	assert.Equal(t, int64(4+1+3+1), s.SuccessfulExecutions)
	assert.Equal(t, int64(4), s.RejectedExecutions)
}

// tally is what the callers of one bulkhead saw.
type tally struct{ succeeded, failed, rejected int64 }

// TestReloadUnderLoad hammers the selectors while reloads resize the bulkheads up and
// down and move routes between them: the ledger holds on every snapshot, no call is
// lost or counted twice (the callers' own tally equals Stats at the end), and no more
// calls run at once than the largest limit.
func TestReloadUnderLoad(t *testing.T) {
	limits := []int{1, 8, 2, 6, 1, 4, 8, 3}
	file := func(i int) string {
		a, b := limits[i%len(limits)], limits[(i+3)%len(limits)]
		first, second := "a", "b"
		if i%2 == 1 {
			first, second = second, first
		}
		return fmt.Sprintf(`bulkheads:
  - {name: a, max_concurrent_calls: %d, max_queue_size: %d}
  - {name: b, max_concurrent_calls: %d, max_queue_size: %d}
  - {name: c, max_concurrent_calls: 2, circuit_breaker_enabled: true, failure_threshold: 1000}
grpc:
  "/s.A/*": %s
  "/s.B/*": %s
  "*": c
http:
  "GET /a/": %s
  "GET /b/": %s
  "/": c
`, a, i%3, b, (i+1)%3, first, second, second, first)
	}
	l, m, path := open(t, file(0))
	grpcSel, httpSel := l.GRPC(), l.HTTP()
	reqs := []any{"/s.A/M", "/s.B/M", "/s.C/M",
		httptest.NewRequest("GET", "/a/1", nil), httptest.NewRequest("GET", "/b/1", nil), httptest.NewRequest("GET", "/c", nil)}

	// Twice the largest limit, whatever the CPU count: with fewer callers than the limit,
	// the peak could never pass it and the check below could not fail.
	workers := 2 * slices.Max(limits)
	var stop atomic.Bool
	var running [3]atomic.Int64 // per bulkhead, by name a, b, c
	var peak [3]atomic.Int64
	tallies := make([]map[string]*tally, workers)
	unexpected := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		tallies[w] = map[string]*tally{"a": {}, "b": {}, "c": {}}
		wg.Go(func() {
			ctx := context.Background()
			for i := w; !stop.Load(); i++ {
				var b *core.Bulkhead
				switch r := reqs[i%len(reqs)].(type) {
				case string:
					b = grpcSel(ctx, r)
				default:
					b = httpSel(r.(*http.Request))
				}
				idx := int(b.Name()[0] - 'a')
				res, err := core.Execute(ctx, b, func(context.Context) (int, error) {
					n := running[idx].Add(1)
					for p := peak[idx].Load(); n > p && !peak[idx].CompareAndSwap(p, n); p = peak[idx].Load() {
					}
					runtime.Gosched()
					running[idx].Add(-1)
					if i%7 == 0 {
						return 0, errors.New("dependency failed")
					}
					return i, nil
				})
				tl := tallies[w][b.Name()]
				switch {
				case err == nil && res.Success:
					tl.succeeded++
				case err == nil:
					tl.failed++
				case errors.Is(err, core.ErrFull):
					tl.rejected++
				default:
					unexpected[w] = err
					return
				}
			}
		})
	}

	names := []string{"a", "b", "c"}
	for i := 1; i <= 100; i++ {
		writeFile(t, path, file(i))
		require.NoError(t, l.Reload())
		for _, n := range names {
			assertLedger(t, get(t, m, n).Stats())
		}
	}
	stop.Store(true)
	wg.Wait()

	for w := range workers {
		assert.NoError(t, unexpected[w])
	}
	for idx, n := range names {
		var want tally
		for w := range workers {
			want.succeeded += tallies[w][n].succeeded
			want.failed += tallies[w][n].failed
			want.rejected += tallies[w][n].rejected
		}
		s := get(t, m, n).Stats()
		t.Logf("bulkhead %s: %+v, peak %d", n, want, peak[idx].Load())
		assertIdle(t, s)
		assert.Equal(t, want, tally{s.SuccessfulExecutions, s.FailedExecutions, s.RejectedExecutions}, "bulkhead %s: the callers' tally is the ledger", n)
		assert.Equal(t, s.TotalExecutions, want.succeeded+want.failed)
		assert.Positive(t, s.TotalExecutions, "bulkhead %s was used", n)
		assert.LessOrEqual(t, peak[idx].Load(), int64(slices.Max(limits)), "bulkhead %s never ran more than the largest limit", n)
	}
	assert.LessOrEqual(t, peak[2].Load(), int64(2))
}

// TestConcurrentChanges: Reload, Apply and lookups from many goroutines at once are
// serialized (the race detector watches), and the last change wins whole.
func TestConcurrentChanges(t *testing.T) {
	l, m, _ := open(t, shop)
	other, err := config.Parse("other.yaml", []byte("bulkheads:\n  - name: orders\n    max_concurrent_calls: 3\ngrpc:\n  \"*\": orders\n"))
	require.NoError(t, err)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 20 {
				var err error
				if g%2 == 0 {
					err = l.Reload()
				} else {
					err = l.Apply(other)
				}
				if err != nil {
					errs[g] = err
					return
				}
				_ = l.GRPC()(context.Background(), "/shop.v1.Orders/Get")
				_ = l.File()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	require.NoError(t, l.Reload())
	assert.Equal(t, 4, get(t, m, "orders").Config().MaxConcurrentCalls)
	assert.Equal(t, "", grpcRoute(l, "/other.Service/M"), "the file's tables, not other.yaml's")
}
