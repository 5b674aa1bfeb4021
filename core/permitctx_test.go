package core_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// isDone reports whether ctx is done, without waiting.
func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func TestPermitContextEndsAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		start := time.Now()
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
		ctx := p.Context(context.Background())

		d, ok := ctx.Deadline()
		assert.True(t, ok)
		assert.Equal(t, start.Add(time.Second), d, "the permit's deadline: admission + Timeout")
		assert.NoError(t, ctx.Err())
		<-ctx.Done()
		assert.Equal(t, time.Second, time.Since(start))
		assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
		assert.Equal(t, context.DeadlineExceeded, context.Cause(ctx))

		require.NoError(t, p.Release(core.TimedOut))
		assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "the first reason stays")
		s := b.Stats()
		assert.Equal(t, int64(1), s.TimedOutExecutions)
		assertIdle(t, s)
	})
}

func TestPermitContextEndsOnRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		ctx := p.Context(context.Background())
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		afterRan := make(chan struct{})
		context.AfterFunc(ctx, func() { close(afterRan) })

		require.NoError(t, p.Release(core.Success))
		assert.True(t, isDone(ctx), "released: done at once, like WithDeadline's cancel")
		assert.ErrorIs(t, ctx.Err(), context.Canceled)
		<-afterRan
		<-derived.Done()
		assert.ErrorIs(t, derived.Err(), context.Canceled)

		time.Sleep(2 * time.Second) // the bulkhead's timer fires for nothing
		assert.ErrorIs(t, ctx.Err(), context.Canceled)
		assertIdle(t, b.Stats())

		late := p.Context(context.Background())
		assert.True(t, isDone(late), "asked for after the release: born done")
		assert.ErrorIs(t, late.Err(), context.Canceled)
	})
}

func TestPermitContextFollowsItsParent(t *testing.T) {
	for _, ask := range []string{"Done", "Err", "AfterFunc", "WithCancel"} {
		t.Run(ask, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Hour })
				cause := errors.New("client went away")
				parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
				p, err := b.Acquire(parent)
				require.NoError(t, err)
				ctx := p.Context(parent)
				assert.Equal(t, "v", ctx.Value(ctxKey{}), "values come from the parent")

				var ended <-chan struct{}
				switch ask {
				case "Done":
					ended = ctx.Done()
				case "Err":
					assert.NoError(t, ctx.Err())
				case "AfterFunc":
					ch := make(chan struct{})
					context.AfterFunc(ctx, func() { close(ch) })
					ended = ch
				case "WithCancel":
					d, dc := context.WithCancel(ctx)
					defer dc()
					ended = d.Done()
				}
				cancel(cause)
				if ended != nil {
					<-ended
				}
				assert.ErrorIs(t, ctx.Err(), context.Canceled, "the parent's error, at once")
				assert.True(t, isDone(ctx))
				assert.Equal(t, cause, context.Cause(ctx), "and the parent's cause")
				require.NoError(t, p.Release(core.Neutral))
				assert.ErrorIs(t, ctx.Err(), context.Canceled)
			})
		})
	}
}

func TestPermitContextReturnsParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plain := newBulkhead(t, nil)
		p, err := plain.Acquire(context.Background())
		require.NoError(t, err)
		parent := context.WithValue(context.Background(), ctxKey{}, 1)
		assert.Equal(t, parent, p.Context(parent), "no Timeout: parent itself")
		require.NoError(t, p.Release(core.Success))

		timed := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		p, err = timed.Acquire(context.Background())
		require.NoError(t, err)
		earlier, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		assert.Equal(t, earlier, p.Context(earlier), "the parent's deadline comes first: parent itself")
		require.NoError(t, p.Release(core.Success))
	})
}

func TestPermitContextManyPerPermit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.Timeout = 2, time.Second })
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		other, err := b.Acquire(context.Background())
		require.NoError(t, err)
		a, c := p.Context(context.Background()), p.Context(context.Background())
		untouched := other.Context(context.Background())
		require.NoError(t, p.Release(core.Success))
		assert.True(t, isDone(a))
		assert.True(t, isDone(c))
		assert.False(t, isDone(untouched), "another permit's context lives on")
		<-untouched.Done()
		assert.ErrorIs(t, untouched.Err(), context.DeadlineExceeded)
		require.NoError(t, other.Release(core.TimedOut))
		assertIdle(t, b.Stats())
	})
}

func TestPermitContextAllocations(t *testing.T) {
	b := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Minute })
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tt := range []struct {
		name   string
		parent context.Context
		ask    func(context.Context)
		want   float64
	}{
		{"Err, parent that never ends", context.Background(), func(ctx context.Context) { _ = ctx.Err() }, 1},
		{"Err, cancellable parent", cancellable, func(ctx context.Context) { _ = ctx.Err() }, 1},
		// Asked for Done under a cancellable parent, it also makes its channel and follows
		// the parent through context.AfterFunc (its record, its stop function, and our
		// callback): five in all, as many as context.WithDeadline and its timer take in
		// BenchmarkPermitContext.
		{"Done, cancellable parent", cancellable, func(ctx context.Context) { _ = ctx.Done() }, 5},
	} {
		allocs := testing.AllocsPerRun(1000, func() {
			p, err := b.Acquire(tt.parent)
			if err != nil {
				panic(err)
			}
			tt.ask(p.Context(tt.parent))
			if err := p.Release(core.Success); err != nil {
				panic(err)
			}
		})
		assert.Equal(t, tt.want, allocs, tt.name)
	}
}

type ctxKey struct{}

// TestPermitContextHammer races the three ends of a permit's context (its deadline, its
// parent's cancellation, the release) from many goroutines, in real time: every context
// ends, with one of the three errors, and the bulkhead comes back idle.
func TestPermitContextHammer(t *testing.T) {
	b := newBulkhead(t, func(c *core.Config) {
		c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 8, 64, 2*time.Millisecond
	})
	const workers, each = 16, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				parent, cancel := context.WithCancel(context.Background())
				p, err := b.Acquire(parent)
				if err != nil {
					cancel()
					continue // ErrFull or ErrTimeout while queued: fine here
				}
				ctx := p.Context(parent)
				switch (w + i) % 4 {
				case 0: // released before anything else
				case 1: // the parent goes first
					cancel()
				case 2: // the deadline goes first
					<-ctx.Done()
				case 3: // the deadline and the parent race
					go cancel()
					time.Sleep(time.Duration(i%3) * time.Millisecond)
				}
				_ = ctx.Err() // asks while the ends race
				assert.NoError(t, p.Release(core.Success))
				<-ctx.Done()
				if err := ctx.Err(); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("context ended with %v", err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	assertIdle(t, b.Stats())
}
