package core

import "time"

// Stats is one consistent snapshot of a bulkhead (Python: get_stats()). Its JSON keys are
// Python bulkman's keys. At every snapshot:
//
//	TotalExecutions == SuccessfulExecutions + FailedExecutions + ActiveTasks
//	0 <= ActiveTasks and ActiveTasks + AbandonedTasks <= MaxConcurrentCalls
//	0 <= InFlightCount <= MaxConcurrentCalls + MaxQueueSize
//
// and an idle bulkhead has ActiveTasks == InFlightCount == AbandonedTasks == 0.
type Stats struct {
	Name                  string `json:"name"`                     // the bulkhead's Config.Name
	State                 State  `json:"state"`                    // healthy, degraded or isolated; always healthy without a breaker
	TotalExecutions       int64  `json:"total_executions"`         // calls that started (got a permit)
	SuccessfulExecutions  int64  `json:"successful_executions"`    // started calls that succeeded
	FailedExecutions      int64  `json:"failed_executions"`        // started calls that failed, panicked, timed out or were cancelled
	RejectedExecutions    int64  `json:"rejected_executions"`      // circuit open + full + timed out before starting
	TimedOutExecutions    int64  `json:"timed_out_executions"`     // started calls whose timeout fired (also counted failed)
	ActiveTasks           int    `json:"active_tasks"`             // running calls whose outcome is not yet recorded
	AbandonedTasks        int    `json:"abandoned_tasks"`          // timed-out functions still running, still holding a permit
	QueuedTasks           int    `json:"queued_tasks"`             // callers waiting for a permit
	InFlightCount         int    `json:"in_flight_count"`          // queued + active
	MaxConcurrentCalls    int    `json:"max_concurrent_calls"`     // the configured limit (Reconfigure may change it); the ceiling when adaptive
	MaxQueueSize          int    `json:"max_queue_size"`           // the limit in force
	CircuitBreakerEnabled bool   `json:"circuit_breaker_enabled"`  // Config.CircuitBreakerEnabled
	CircuitStatus         string `json:"circuit_status,omitempty"` // "CLOSED", "OPEN", "HALF_OPEN"; empty when disabled

	// ConcurrencyLimit is the limit in force now: MaxConcurrentCalls for a static bulkhead,
	// the limit the bulkhead found for an adaptive one.
	ConcurrencyLimit int `json:"concurrency_limit"`
	// OpenUntil is the end of the isolation while the circuit is OPEN; zero otherwise,
	// and so omitted from the JSON. Once that time has passed the circuit reads HALF_OPEN
	// (State Degraded) and OpenUntil is zero, whether or not a call has arrived since.
	OpenUntil time.Time `json:"open_until,omitzero"`
}
