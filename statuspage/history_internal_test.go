package statuspage

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestRefusedByPriority: refusals count under the refused call's priority, out-of-range
// values under the nearest end, over the whole history.
func TestRefusedByPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := core.NewManager()
		b, err := m.Create(core.DefaultConfig("api"))
		require.NoError(t, err)
		h := newHistory(m)
		for _, p := range []core.Priority{core.PriorityLow, core.PriorityLow, core.PriorityCritical, 9, core.PriorityNormal} {
			h.observe(core.Event{Kind: core.EventRejected, Bulkhead: "api", Err: core.ErrFull, Priority: p})
		}
		time.Sleep(Step)
		synctest.Wait() // the step's timer has run
		h.observe(core.Event{Kind: core.EventRejected, Bulkhead: "api", Err: core.ErrCircuitOpen, Priority: core.PriorityHigh})
		r := h.recent("api", b.Stats(), time.Now())
		assert.Equal(t, map[string]int64{"low": 2, "normal": 1, "high": 1, "critical": 2}, r.RefusedByPriority)
		assert.Equal(t, int64(6), r.Refusals)
	})
}

func TestQuantile(t *testing.T) {
	var counts [numWaitSlots]uint64
	assert.True(t, quantile(0.99, &counts) != quantile(0.99, &counts), "NaN without calls")
	counts[0] = 100
	assert.Equal(t, 0.0, quantile(0.99, &counts), "no call waited")
	counts[numWaitSlots-1] = 100
	assert.Equal(t, 30.0, quantile(0.99, &counts), "above the last bound: the last bound")
	for d, want := range map[time.Duration]int{0: 0, time.Nanosecond: 1, 100 * time.Microsecond: 1, 101 * time.Microsecond: 2, 30 * time.Second: 17, time.Minute: 18} {
		assert.Equal(t, want, waitSlot(d), d)
	}
}
