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

// view is what every reader of a bulkhead's state sees at one instant.
type view struct {
	State         core.State
	Healthy       bool
	ManagerHealth bool
	CircuitStatus string
	OpenUntil     time.Time
	JSONState     string
	JSONOpenUntil *time.Time
}

func look(t *testing.T, m *core.Manager, name string) view {
	t.Helper()
	b, ok := m.Get(name)
	require.True(t, ok)
	s := b.Stats()
	data, err := json.Marshal(s)
	require.NoError(t, err)
	var j struct {
		State     string     `json:"state"`
		OpenUntil *time.Time `json:"open_until"`
	}
	require.NoError(t, json.Unmarshal(data, &j))
	return view{
		State: b.State(), Healthy: b.IsHealthy(), ManagerHealth: m.Health()[name],
		CircuitStatus: s.CircuitStatus, OpenUntil: s.OpenUntil,
		JSONState: j.State, JSONOpenUntil: j.OpenUntil,
	}
}

// The circuit's state is reported as it is: HALF_OPEN from the instant the isolation
// ends, with no call and no timer; open_until only while OPEN.
func TestCircuitStateIsHonest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []core.Event
		m := core.NewManager(core.WithEventHook(func(e core.Event) {
			if e.Kind == core.EventStateChanged {
				events = append(events, e)
			}
		}))
		cfg := core.DefaultConfig("api")
		cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.SuccessThreshold = true, 1, 1
		cfg.IsolationDuration = isolation
		b, err := m.Create(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Shutdown(context.Background()) })

		closed := view{State: core.Healthy, Healthy: true, ManagerHealth: true, CircuitStatus: "CLOSED", JSONState: "healthy"}
		assert.Equal(t, closed, look(t, m, "api"))

		_, err = core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		end := time.Now().Add(isolation)
		open := view{State: core.Isolated, CircuitStatus: "OPEN", OpenUntil: end, JSONState: "isolated", JSONOpenUntil: &end}
		got := look(t, m, "api")
		assert.True(t, end.Equal(got.OpenUntil), "OpenUntil %v, want %v", got.OpenUntil, end)
		assert.True(t, end.Equal(*got.JSONOpenUntil), "open_until %v, want %v", *got.JSONOpenUntil, end)
		got.OpenUntil, got.JSONOpenUntil = end, &end // compared above, monotonic reading aside
		assert.Equal(t, open, got)

		time.Sleep(isolation - time.Nanosecond)
		assert.Equal(t, core.Isolated, b.State(), "open until the last instant")
		time.Sleep(time.Nanosecond)
		halfOpen := view{State: core.Degraded, Healthy: true, ManagerHealth: true, CircuitStatus: "HALF_OPEN", JSONState: "degraded"}
		assert.Equal(t, halfOpen, look(t, m, "api"), "half-open the instant the isolation ends, without a call")
		time.Sleep(time.Hour)
		assert.Equal(t, halfOpen, look(t, m, "api"), "and stays so until a probe decides")
		require.Len(t, events, 1, "reading is not a transition: no event until the probe")

		ran, err := runs(b, succeed(1))
		require.NoError(t, err)
		assert.True(t, ran, "the next call is the probe")
		assert.Equal(t, closed, look(t, m, "api"))
		require.Len(t, events, 3)
		assert.Equal(t, []core.State{core.Isolated, core.Degraded}, []core.State{events[1].From, events[1].To})
		assert.Equal(t, []core.State{core.Degraded, core.Healthy}, []core.State{events[2].From, events[2].To})
	})
}

// An OPEN adopted from a peer ends when the peer's isolation ends, and reads HALF_OPEN
// from then on, on every replica, without a call.
func TestCircuitStateIsHonestWhenShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		a := replica(t, mem, 0)
		time.Sleep(time.Second)
		b := replica(t, mem, 0) // its clock starts a second later: times are shared as instants
		trip(t, a)
		synctest.Wait()
		require.Equal(t, core.Isolated, b.State())
		end := a.Stats().OpenUntil
		assert.True(t, end.Equal(b.Stats().OpenUntil), "one end for both: %v and %v", end, b.Stats().OpenUntil)

		time.Sleep(time.Until(end) - time.Millisecond)
		assert.Equal(t, []core.State{core.Isolated, core.Isolated}, []core.State{a.State(), b.State()})
		time.Sleep(time.Millisecond)
		for _, r := range []*core.Bulkhead{a, b} {
			s := r.Stats()
			assert.Equal(t, core.Degraded, s.State)
			assert.Equal(t, "HALF_OPEN", s.CircuitStatus)
			assert.Zero(t, s.OpenUntil)
			assert.True(t, r.IsHealthy())
		}
		assert.Equal(t, core.StatusOpen, stored(t, mem).Status, "reading wrote nothing")
	})
}

// A circuit that re-opens after a failed probe reports the new isolation's end.
func TestCircuitStateIsHonestAfterFailedProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newCircuit(t, 1, 1, nil)
		trip(t, b)
		time.Sleep(isolation)
		require.Equal(t, core.Degraded, b.State())
		_, err := core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		s := b.Stats()
		assert.Equal(t, core.Isolated, s.State)
		assert.True(t, time.Now().Add(isolation).Equal(s.OpenUntil), "a fresh isolation: %v", s.OpenUntil)
	})
}
