package metricvocab_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/metricvocab"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		core.ErrFull:        "full",
		core.ErrCircuitOpen: "circuit_open",
		core.ErrTimeout:     "timeout",
		core.ErrShutdown:    "shutdown",
	} {
		assert.Equal(t, want, metricvocab.Reasons[metricvocab.Reason(err)])
	}
	assert.Equal(t, -1, metricvocab.Reason(errors.New("other")))
	assert.Equal(t, -1, metricvocab.Reason(nil))
}

// TestIndexes: the arrays are indexed by the values they name.
func TestIndexes(t *testing.T) {
	for o, want := range map[core.Outcome]string{
		core.Success:  "success",
		core.Failure:  "failure",
		core.Neutral:  "neutral",
		core.TimedOut: "failure",
	} {
		assert.Equal(t, want, metricvocab.Outcomes[metricvocab.OutcomeIndex(o)])
	}
	assert.Equal(t, -1, metricvocab.OutcomeIndex(core.Outcome(200)))
	for i, s := range metricvocab.States {
		assert.Equal(t, core.State(i), s)
		assert.Equal(t, i, metricvocab.StateIndex(s))
	}
	assert.Equal(t, -1, metricvocab.StateIndex(core.State(-1)))
	assert.Equal(t, -1, metricvocab.StateIndex(core.State(len(metricvocab.States))))
}

func TestDefaultBuckets(t *testing.T) {
	b := metricvocab.DefaultBuckets()
	assert.True(t, slices.IsSorted(b))
	assert.Equal(t, 0.0001, b[0])
	assert.Equal(t, 30.0, b[len(b)-1])
	b[0] = 42
	assert.Equal(t, 0.0001, metricvocab.DefaultBuckets()[0], "a new slice each time")
}

// TestPriorityIndex: the label value of each priority is its String, and values out of
// range count as the nearest end.
func TestPriorityIndex(t *testing.T) {
	for _, p := range []core.Priority{core.PriorityLow, core.PriorityNormal, core.PriorityHigh, core.PriorityCritical} {
		assert.Equal(t, p.String(), metricvocab.Priorities[metricvocab.PriorityIndex(p)])
	}
	assert.Equal(t, "low", metricvocab.Priorities[metricvocab.PriorityIndex(-100)])
	assert.Equal(t, "critical", metricvocab.Priorities[metricvocab.PriorityIndex(100)])
}
