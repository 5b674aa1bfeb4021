package statuspage_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/statuspage"
)

// entry is one bulkhead of the JSON, with the page's keys.
type entry struct {
	State  string `json:"state"`
	Status string `json:"status"`
	Recent struct {
		StepSeconds       float64               `json:"step_seconds"`
		End               int64                 `json:"end_unix_ms"`
		CallsPerSecond    []*float64            `json:"calls_per_second"`
		RefusalsPerSecond map[string][]*float64 `json:"refusals_per_second"`
		QueueWaitP99      []*float64            `json:"queue_wait_p99_seconds"`
		ConcurrencyLimit  []*float64            `json:"concurrency_limit"`
		Calls             int64                 `json:"window_calls"`
		Refusals          int64                 `json:"window_refusals"`
		Share             float64               `json:"window_refusal_share"`
		RefusedByPriority map[string]int64      `json:"refused_by_priority"`
	} `json:"recent"`
}

func fetch(t *testing.T, h http.Handler) map[string]entry {
	t.Helper()
	rec := serve(h, http.MethodGet)
	require.Equal(t, http.StatusOK, rec.Code)
	var out map[string]entry
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	return out
}

func ok(context.Context) (int, error) { return 1, nil }

// refuse makes b refuse n calls of priority p as full: it holds every permit of b (b has
// no queue) meanwhile, and releases them with a success each.
func refuse(t *testing.T, b *core.Bulkhead, n int, p core.Priority) {
	t.Helper()
	ctx := context.Background()
	var permits []core.Permit
	for range b.Config().MaxConcurrentCalls {
		permit, err := b.Acquire(ctx)
		require.NoError(t, err)
		permits = append(permits, permit)
	}
	for range n {
		_, err := core.Execute(core.WithPriority(ctx, p), b, ok)
		require.ErrorIs(t, err, core.ErrFull)
	}
	for _, permit := range permits {
		require.NoError(t, permit.Release(core.Success))
	}
}

func succeed(t *testing.T, b *core.Bulkhead, n int) {
	t.Helper()
	for range n {
		_, err := core.Execute(context.Background(), b, ok)
		require.NoError(t, err)
	}
}

// TestSheddingRule: a healthy bulkhead is shedding when, within the last 10 seconds, it
// refused at least 5 calls and at least 5% of the calls that reached it; the circuit's
// state wins over it.
func TestSheddingRule(t *testing.T) {
	for _, tc := range []struct {
		name               string
		refused, succeeded int // the holder's call counts as one more success
		want               string
	}{
		{"nothing", 0, 0, "healthy"},
		{"4 refusals are too few, even 4 of 5", 4, 0, "shedding-not"},
		{"5 of 6", 5, 0, "shedding"},
		{"5 of 100 is 5%", 5, 94, "shedding"},
		{"5 of 101 is under 5%", 5, 95, "healthy"},
		{"98.5%", 985, 14, "shedding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := core.NewManager()
				cfg := core.DefaultConfig("api")
				cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
				b, err := m.Create(cfg)
				require.NoError(t, err)
				h := statuspage.JSON(m)
				if tc.refused > 0 {
					refuse(t, b, tc.refused, core.PriorityNormal)
				}
				succeed(t, b, tc.succeeded)
				want := tc.want
				if want == "shedding-not" {
					want = "healthy"
				}
				got := fetch(t, h)["api"]
				assert.Equal(t, want, got.Status)
				assert.Equal(t, "healthy", got.State, "the circuit's state is not changed by shedding")
				assert.Equal(t, int64(tc.refused), got.Recent.Refusals)

				time.Sleep(statuspage.SheddingWindow)
				assert.Equal(t, "healthy", fetch(t, h)["api"].Status, "the window has passed")
			})
		})
	}
}

func TestStatusPrecedence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := core.NewManager()
		cfg := core.DefaultConfig("db")
		cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
		cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.SuccessThreshold, cfg.IsolationDuration = true, 1, 2, 30*time.Second
		b, err := m.Create(cfg)
		require.NoError(t, err)
		h := statuspage.JSON(m)
		refuse(t, b, 20, core.PriorityNormal)
		assert.Equal(t, "shedding", fetch(t, h)["db"].Status)
		_, err = core.Execute(context.Background(), b, func(context.Context) (int, error) { return 0, errBoom })
		require.NoError(t, err)
		assert.Equal(t, "isolated", fetch(t, h)["db"].Status, "isolated wins over shedding")
		time.Sleep(30 * time.Second)
		succeed(t, b, 1) // the first probe: half-open until the second
		assert.Equal(t, "degraded", fetch(t, h)["db"].Status)
	})
}

// TestHistory: the series hold each complete step's rates, oldest first, null before the
// bulkhead was first seen; queue-wait p99 per step; the limit each request saw; refusals
// by priority.
func TestHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := core.NewManager()
		cfg := core.DefaultConfig("api")
		cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
		api, err := m.Create(cfg)
		require.NoError(t, err)
		qcfg := core.DefaultConfig("queued")
		qcfg.MaxConcurrentCalls, qcfg.MaxQueueSize = 1, 4
		queued, err := m.Create(qcfg)
		require.NoError(t, err)
		h := statuspage.JSON(m)
		start := time.Now()

		// Step 0: 4 calls; and a call of "queued" that waits 300ms behind a held permit.
		succeed(t, api, 4)
		p, err := queued.Acquire(context.Background())
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = core.Execute(context.Background(), queued, ok) })
		synctest.Wait()
		time.Sleep(300 * time.Millisecond)
		require.NoError(t, p.Release(core.Success))
		wg.Wait()
		fetch(t, h) // the limit in step 0
		time.Sleep(statuspage.Step - time.Since(start))
		synctest.Wait() // the step's timer has run

		// Step 1: 3 refusals, 2 of them of low priority (and the holders' 2 calls).
		refuse(t, api, 2, core.PriorityLow)
		refuse(t, api, 1, core.PriorityCritical)
		time.Sleep(statuspage.Step)
		synctest.Wait()

		// Step 2 (current): nothing yet.
		got := fetch(t, h)
		n := statuspage.HistorySteps
		a := got["api"].Recent
		require.Len(t, a.CallsPerSecond, n)
		assert.Nil(t, a.CallsPerSecond[n-3], "before the bulkhead was first seen")
		assert.Equal(t, 2.0, value(a.CallsPerSecond[n-2]), "4 calls in a 2s step")
		assert.Equal(t, 1.0, value(a.CallsPerSecond[n-1]), "the holders' 2 calls")
		assert.Equal(t, 0.0, value(a.RefusalsPerSecond["full"][n-2]))
		assert.Equal(t, 1.5, value(a.RefusalsPerSecond["full"][n-1]), "3 refusals in a 2s step")
		assert.Equal(t, 0.0, value(a.RefusalsPerSecond["circuit_open"][n-1]))
		assert.Equal(t, 1.0, value(a.ConcurrencyLimit[n-2]), "seen by the request of step 0")
		assert.Nil(t, a.ConcurrencyLimit[n-1], "no request in step 1")
		assert.Equal(t, 0.0, value(a.QueueWaitP99[n-2]), "no call of api waited")
		assert.Equal(t, map[string]int64{"low": 2, "normal": 0, "high": 0, "critical": 1}, a.RefusedByPriority)
		assert.Equal(t, statuspage.Step.Seconds(), a.StepSeconds)
		assert.Equal(t, start.Add(2*statuspage.Step).UnixMilli(), a.End, "the series end where the current step begins")
		assert.Equal(t, int64(3), a.Refusals)
		assert.Equal(t, int64(6), a.Calls)

		q := got["queued"].Recent
		// Two calls ended in step 0: one did not wait, one waited 300ms. The 99th
		// percentile falls in the bucket (250ms, 500ms], interpolated as Prometheus does.
		assert.InDelta(t, 0.25+0.25*(1.98-1), value(q.QueueWaitP99[n-2]), 1e-3)
		assert.Nil(t, q.QueueWaitP99[n-1], "no call ended in step 1")

		time.Sleep(statuspage.Step * statuspage.HistorySteps)
		a = fetch(t, h)["api"].Recent
		assert.Equal(t, map[string]int64{"low": 0, "normal": 0, "high": 0, "critical": 0}, a.RefusedByPriority, "out of the history")
		assert.Equal(t, 0.0, value(a.CallsPerSecond[n-1]))
	})
}

func value(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// TestHookDoesNotAllocate: the JSON handler's subscriber adds no allocation to a call.
func TestHookDoesNotAllocate(t *testing.T) {
	m := core.NewManager()
	b, err := m.Create(core.DefaultConfig("allocs"))
	require.NoError(t, err)
	run := func() { _, _ = core.Execute(context.Background(), b, ok) }
	base := testing.AllocsPerRun(500, run)
	statuspage.JSON(m)
	run() // the first event makes the bulkhead's track
	assert.Equal(t, base, testing.AllocsPerRun(500, run))
}
