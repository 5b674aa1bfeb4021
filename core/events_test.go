package core_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// recorder collects events; its hook is safe for concurrent use.
type recorder struct {
	mu     sync.Mutex
	events []core.Event
}

func (r *recorder) hook(e core.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// take returns the events so far and forgets them.
func (r *recorder) take() []core.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

func TestEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		b := newBulkhead(t, func(c *core.Config) {
			c.Name = "api"
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, 2*time.Second
			c.CircuitBreakerEnabled, c.FailureThreshold, c.SuccessThreshold = true, 1, 1
			c.IsolationDuration = time.Second
		}, core.WithEventHook(rec.hook))
		finished := func(o core.Outcome, queued, ran time.Duration) core.Event {
			return core.Event{Kind: core.EventFinished, Bulkhead: "api", Outcome: o, QueuedTime: queued, ExecutionTime: ran}
		}
		rejected := func(err error) core.Event {
			return core.Event{Kind: core.EventRejected, Bulkhead: "api", Err: err}
		}
		changed := func(from, to core.State) core.Event {
			return core.Event{Kind: core.EventStateChanged, Bulkhead: "api", From: from, To: to}
		}
		sleepy := func(d time.Duration, err error) func(context.Context) (int, error) {
			return func(context.Context) (int, error) { time.Sleep(d); return 1, err }
		}

		_, err := core.Execute(context.Background(), b, sleepy(100*time.Millisecond, nil))
		require.NoError(t, err)
		assert.Equal(t, []core.Event{finished(core.Success, 0, 100*time.Millisecond)}, rec.take(), "a success")

		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		go func() {
			time.Sleep(300 * time.Millisecond)
			assert.NoError(t, p.Release(core.Success))
		}()
		_, err = core.Execute(context.Background(), b, sleepy(100*time.Millisecond, nil))
		require.NoError(t, err)
		assert.Equal(t, []core.Event{
			finished(core.Success, 0, 300*time.Millisecond),
			finished(core.Success, 300*time.Millisecond, 100*time.Millisecond),
		}, rec.take(), "a permit released, then a queued call")

		p, err = b.Acquire(context.Background())
		require.NoError(t, err)
		queued := goExecute(context.Background(), b, succeed(1))
		synctest.Wait()
		_, err = core.Execute(context.Background(), b, succeed(1))
		require.ErrorIs(t, err, core.ErrFull)
		_, err = queued.wait()
		require.ErrorIs(t, err, core.ErrTimeout)
		require.NoError(t, p.Release(core.Neutral))
		assert.Equal(t, []core.Event{
			rejected(core.ErrFull),
			rejected(core.ErrTimeout),
			finished(core.Neutral, 0, 2*time.Second),
		}, rec.take(), "full, timed out in the queue, a neutral release")

		_, err = core.Execute(context.Background(), b, sleepy(0, errBoom))
		require.NoError(t, err)
		_, err = core.Execute(context.Background(), b, succeed(1))
		require.ErrorIs(t, err, core.ErrCircuitOpen)
		assert.Equal(t, []core.Event{
			changed(core.Healthy, core.Isolated),
			finished(core.Failure, 0, 0),
			rejected(core.ErrCircuitOpen),
		}, rec.take(), "a failure opens the circuit; then a rejection")

		time.Sleep(time.Second)
		_, err = core.Execute(context.Background(), b, succeed(1))
		require.NoError(t, err)
		assert.Equal(t, []core.Event{
			changed(core.Isolated, core.Degraded),
			changed(core.Degraded, core.Healthy),
			finished(core.Success, 0, 0),
		}, rec.take(), "a probe closes the circuit")

		g := newGate()
		_, err = core.Execute(context.Background(), b, hold(g, 1, nil))
		require.ErrorIs(t, err, core.ErrTimeout)
		assert.Equal(t, []core.Event{
			changed(core.Healthy, core.Isolated),
			{Kind: core.EventTimedOut, Bulkhead: "api"},
			finished(core.Failure, 0, 2*time.Second),
		}, rec.take(), "a timeout while running is a failure")

		assert.ErrorIs(t, b.Shutdown(canceled()), context.Canceled)
		_, err = core.Execute(context.Background(), b, succeed(1))
		require.ErrorIs(t, err, core.ErrShutdown)
		close(g)
		require.NoError(t, b.Shutdown(context.Background()))
		assert.Equal(t, []core.Event{rejected(core.ErrShutdown)}, rec.take(),
			"a shutdown refusal; the abandoned function's late return is no event")
	})
}

// canceled returns a context that is already done.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestEventHooksInOrder(t *testing.T) {
	var mu sync.Mutex
	var order []int
	hook := func(i int) func(core.Event) {
		return func(core.Event) { mu.Lock(); order = append(order, i); mu.Unlock() }
	}
	b := newBulkhead(t, nil, core.WithEventHook(hook(1)), core.WithEventHook(nil), core.WithEventHook(hook(2)))
	_, err := core.Execute(context.Background(), b, succeed(1))
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{1, 2}, order)
}

func TestEventKindString(t *testing.T) {
	for kind, want := range map[core.EventKind]string{
		core.EventStateChanged: "state_changed",
		core.EventRejected:     "rejected",
		core.EventTimedOut:     "timed_out",
		core.EventFinished:     "finished",
		0:                      "unknown",
		200:                    "unknown",
	} {
		assert.Equal(t, want, kind.String())
	}
}
