package core_test

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestStatsLedger walks one bulkhead through queueing, running, abandoning and
// finishing, checking the exact counters and the snapshot rules (assertInvariants) at every
// step, and that it is idle at the end.
func TestStatsLedger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 2, 2, time.Second
		})
		type counts struct{ total, ok, failed, rejected, timedOut, active, abandoned, queued int }
		step := func(name string, want counts) {
			t.Helper()
			s := b.Stats()
			got := counts{
				int(s.TotalExecutions), int(s.SuccessfulExecutions), int(s.FailedExecutions),
				int(s.RejectedExecutions), int(s.TimedOutExecutions), s.ActiveTasks, s.AbandonedTasks, s.QueuedTasks,
			}
			assert.Equal(t, want, got, name)
			assert.Equal(t, s.QueuedTasks+s.ActiveTasks, s.InFlightCount, "%s: in_flight = queued + active", name)
			assertInvariants(t, s)
		}
		assertIdle(t, b.Stats())

		hung, quick := newGate(), newGate()
		h := goExecute(context.Background(), b, hold(hung, 0, nil)) // will time out
		q := goExecute(context.Background(), b, hold(quick, 1, nil))
		synctest.Wait()
		step("two running", counts{total: 2, active: 2})

		w := goExecute(context.Background(), b, succeed(3))
		synctest.Wait()
		step("one queued", counts{total: 2, active: 2, queued: 1})

		close(quick)
		_, err := q.wait()
		require.NoError(t, err)
		_, err = w.wait()
		require.NoError(t, err)
		step("two succeeded", counts{total: 3, ok: 2, active: 1})

		_, err = h.wait()
		assertRefusal(t, err, core.ErrTimeout, "test")
		step("timed out, abandoned", counts{total: 3, ok: 2, failed: 1, timedOut: 1, abandoned: 1})

		p, err := b.Acquire(context.Background()) // never abandoned: held until Release
		require.NoError(t, err)
		step("one running beside the abandoned", counts{total: 4, ok: 2, failed: 1, timedOut: 1, active: 1, abandoned: 1})
		_, err = core.Execute(context.Background(), b, fail)
		assertRefusal(t, err, core.ErrTimeout, "test") // queued behind both permits: times out waiting
		step("a queue timeout is a rejection", counts{total: 4, ok: 2, failed: 1, rejected: 1, timedOut: 1, active: 1, abandoned: 1})

		close(hung)
		synctest.Wait()
		step("the abandoned returned", counts{total: 4, ok: 2, failed: 1, rejected: 1, timedOut: 1, active: 1})
		require.NoError(t, p.Release(core.Success))
		step("released after its deadline: timed out", counts{total: 4, ok: 2, failed: 2, rejected: 1, timedOut: 2})
		assertIdle(t, b.Stats())
	})
}

// ResetStats zeroes the counters but keeps calls that run counted as started, so total =
// successful + failed + active holds while they run and after they finish (the Python
// library breaks this).
func TestStatsResetWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 3, 1, time.Second
		})
		for range 3 {
			_, err := core.Execute(context.Background(), b, fail)
			require.NoError(t, err)
		}
		hung, g := newGate(), newGate()
		abandoned := goExecute(context.Background(), b, hold(hung, 0, nil))
		time.Sleep(500 * time.Millisecond)
		running := []*call{goExecute(context.Background(), b, hold(g, 1, nil)), goExecute(context.Background(), b, hold(g, 0, errBoom))}
		_, err := abandoned.wait() // at 1s
		assertRefusal(t, err, core.ErrTimeout, "test")
		queued := goExecute(context.Background(), b, succeed(1))
		synctest.Wait()
		before := b.Stats()
		require.Equal(t, 2, before.ActiveTasks)
		require.Equal(t, 1, before.AbandonedTasks)

		b.ResetStats()
		s := b.Stats()
		assert.Equal(t, int64(2), s.TotalExecutions, "running calls stay counted as started")
		assert.Zero(t, s.SuccessfulExecutions)
		assert.Zero(t, s.FailedExecutions)
		assert.Zero(t, s.RejectedExecutions)
		assert.Zero(t, s.TimedOutExecutions)
		assert.Equal(t, 2, s.ActiveTasks, "ResetStats does not touch what is in flight")
		assert.Equal(t, 1, s.AbandonedTasks)
		assert.Equal(t, 1, s.QueuedTasks)
		assertInvariants(t, s)

		close(g)
		close(hung)
		for _, c := range append(running, queued) {
			_, err := c.wait()
			require.NoError(t, err)
		}
		synctest.Wait()
		s = b.Stats()
		assert.Equal(t, int64(3), s.TotalExecutions)
		assert.Equal(t, int64(2), s.SuccessfulExecutions)
		assert.Equal(t, int64(1), s.FailedExecutions)
		assertIdle(t, s)
	})
}

func TestStatsShutdownRefusalsNotCounted(t *testing.T) {
	b := newBulkhead(t, nil)
	_, err := core.Execute(context.Background(), b, succeed(1))
	require.NoError(t, err)
	require.NoError(t, b.Shutdown(context.Background()))
	before := b.Stats()
	for range 5 {
		_, err := core.Execute(context.Background(), b, succeed(1))
		assertRefusal(t, err, core.ErrShutdown, "test")
		_, err = b.Acquire(context.Background())
		assertRefusal(t, err, core.ErrShutdown, "test")
	}
	assert.Equal(t, before, b.Stats())
}

// The JSON form uses Python bulkman's keys, and the state its Python value.
func TestStatsJSON(t *testing.T) {
	b := newBulkhead(t, func(c *core.Config) { c.Name, c.CircuitBreakerEnabled = "api", true })
	raw, err := json.Marshal(b.Stats())
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	for _, key := range []string{
		"name", "state", "total_executions", "successful_executions", "failed_executions",
		"rejected_executions", "timed_out_executions", "active_tasks", "abandoned_tasks",
		"in_flight_count", "max_concurrent_calls", "max_queue_size", "circuit_breaker_enabled",
		"circuit_status",
	} {
		assert.Contains(t, got, key)
	}
	assert.Equal(t, "healthy", got["state"])
	assert.Equal(t, "CLOSED", got["circuit_status"])
	assert.Equal(t, "api", got["name"])

	var back core.Stats
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, b.Stats(), back)

	raw, err = json.Marshal(newBulkhead(t, nil).Stats())
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "circuit_status", "omitted when the breaker is disabled")
}

func TestStateText(t *testing.T) {
	for _, tt := range []struct {
		state core.State
		text  string
	}{
		{core.Healthy, "healthy"},
		{core.Degraded, "degraded"},
		{core.Isolated, "isolated"},
	} {
		assert.Equal(t, tt.text, tt.state.String())
		got, err := tt.state.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, tt.text, string(got))
		var back core.State
		require.NoError(t, back.UnmarshalText([]byte(tt.text)))
		assert.Equal(t, tt.state, back)
	}
	var zero core.State
	assert.Equal(t, core.Healthy, zero, "the zero State is Healthy")
	assert.Equal(t, "State(7)", core.State(7).String())
	_, err := core.State(7).MarshalText()
	assert.Error(t, err)
	var s core.State
	assert.Error(t, s.UnmarshalText([]byte("HEALTHY")))
}
