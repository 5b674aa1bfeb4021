package core

import "fmt"

// State is a bulkhead's health, derived from its circuit (Python: BulkheadState). The zero
// value is Healthy. A bulkhead whose circuit breaker is disabled is always Healthy.
type State int

const (
	// Healthy: the circuit is CLOSED, or the circuit breaker is disabled.
	Healthy State = iota
	// Degraded: the circuit is HALF_OPEN; a few probe calls test the dependency.
	Degraded
	// Isolated: the circuit is OPEN; calls are refused with ErrCircuitOpen.
	Isolated
)

var stateNames = [...]string{Healthy: "healthy", Degraded: "degraded", Isolated: "isolated"}

// String returns "healthy", "degraded" or "isolated" (Python bulkman's values).
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText encodes s as its String form, so JSON shows "healthy" and not 0.
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("bulkman: invalid State %d", int(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes "healthy", "degraded" or "isolated".
func (s *State) UnmarshalText(text []byte) error {
	for i, n := range stateNames {
		if string(text) == n {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("bulkman: unknown state %q (want healthy, degraded or isolated)", text)
}

// circuitStatus is the circuit's own state; State is derived from it.
type circuitStatus int32

const (
	statusClosed circuitStatus = iota
	statusHalfOpen
	statusOpen
)

var statusNames = [...]string{statusClosed: "CLOSED", statusHalfOpen: "HALF_OPEN", statusOpen: "OPEN"}

func (s circuitStatus) String() string { return statusNames[s] }

func (s circuitStatus) state() State {
	switch s {
	case statusHalfOpen:
		return Degraded
	case statusOpen:
		return Isolated
	}
	return Healthy
}
