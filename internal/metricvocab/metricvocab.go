// Package metricvocab holds what packages prommetrics and otelmetrics must spell the
// same way: label values, the mapping from events to them, and the default histogram
// buckets. It is the reason both exports agree, series for series.
package metricvocab

import "github.com/bulkman-go/bulkman/core"

// Outcomes are the values of the outcome label, indexed by what OutcomeIndex returns.
var Outcomes = [...]string{"success", "failure", "neutral"}

// OutcomeIndex returns the index in Outcomes under which a call that ended with o is
// counted, or -1 for an outcome it does not know. TimedOut counts as a failure, as it
// does for the circuit (core reports such calls as Failure in EventFinished anyway).
func OutcomeIndex(o core.Outcome) int {
	switch o {
	case core.Success:
		return 0
	case core.Failure, core.TimedOut:
		return 1
	case core.Neutral:
		return 2
	}
	return -1
}

// Reasons are the values of the reason label of rejections, indexed by what Reason
// returns.
var Reasons = [...]string{reasonFull: "full", reasonCircuitOpen: "circuit_open", reasonTimeout: "timeout", reasonShutdown: "shutdown"}

// States are the bulkhead states, indexed by what StateIndex returns; their String is
// the value of the state label.
var States = [...]core.State{core.Healthy, core.Degraded, core.Isolated}

// StateIndex returns the index in States of s, or -1 for a state it does not know.
func StateIndex(s core.State) int {
	switch s {
	case core.Healthy:
		return 0
	case core.Degraded:
		return 1
	case core.Isolated:
		return 2
	}
	return -1
}

const (
	reasonFull = iota
	reasonCircuitOpen
	reasonTimeout
	reasonShutdown
)

// Reason returns the index in Reasons of a rejection's sentinel (Event.Err), or -1 for
// an error that is not one.
func Reason(err error) int {
	switch err {
	case core.ErrFull:
		return reasonFull
	case core.ErrCircuitOpen:
		return reasonCircuitOpen
	case core.ErrTimeout:
		return reasonTimeout
	case core.ErrShutdown:
		return reasonShutdown
	}
	return -1
}

// DefaultBuckets returns the default histogram bucket bounds in seconds: 100µs to 30s,
// about three per decade, from a queue wait that is nothing but a handoff to a call that
// hits a long timeout. It returns a new slice each time.
func DefaultBuckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
}

// Priorities are the values of the priority label of rejections, indexed by what
// PriorityIndex returns: core.Priority's String for each priority, lowest first.
var Priorities = [...]string{"low", "normal", "high", "critical"}

// PriorityIndex returns the index in Priorities of p. A value outside
// core.PriorityLow..core.PriorityCritical (core clamps such values, so events never carry
// one) counts as the nearest of the two.
func PriorityIndex(p core.Priority) int {
	return int(min(max(p, core.PriorityLow), core.PriorityCritical) - core.PriorityLow)
}
