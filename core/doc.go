// Package core is the bulkhead domain: a named Bulkhead limits how many calls run at once
// against one dependency, queues a bounded number of callers in FIFO order, optionally
// bounds each call with a Timeout, and optionally isolates the dependency with a circuit
// breaker. It is the Go port of the Python library bulkman, whose names appear in the doc
// comments as "Python: ...". It imports nothing from gRPC or net/http; packages grpcmw and
// httpmw adapt it to them.
//
//	cfg := core.DefaultConfig("payments") // 10 at once, a queue of 100, no timeout, breaker off
//	cfg.Timeout = 2 * time.Second
//	cfg.CircuitBreakerEnabled = true
//	b, err := core.New(cfg) // err names every invalid field
//	...
//	res, err := core.Execute(ctx, b, func(ctx context.Context) (*Receipt, error) {
//		return client.Charge(ctx, order)
//	})
//	switch {
//	case err != nil: // refused or given up: a *core.Error (ErrFull, ErrCircuitOpen, ...) or ctx's error
//	case !res.Success: // admitted, and Charge failed: res.Err is its error, unchanged
//	default: // res.Value is the receipt
//	}
//
// # Calls
//
// Execute runs a function through a bulkhead and returns a Result (Python: execute and
// ExecutionResult); Wrap turns a function into a guarded one that returns a single error
// (Python: with_bulkhead); ExecuteIn runs in a Manager's bulkhead by name. Middleware whose
// call outlives one function (a stream, a response body) uses Bulkhead.Acquire and
// Permit.Release, reporting an Outcome: Success, Failure, Neutral (the caller went away)
// or TimedOut (it ran past Permit.Deadline). FailsafePolicy makes a bulkhead a
// failsafe-go policy, to compose with failsafe-go's retry, fallback, hedge and timeout
// policies in failsafe.With.
//
// # Admission
//
// A call passes these checks in order: the caller's context already done (its error,
// nothing counted), the bulkhead shut down (ErrShutdown, not counted), the circuit open
// (ErrCircuitOpen), the capacity MaxConcurrentCalls + MaxQueueSize reached (ErrFull).
// Then it waits in the FIFO queue for one of MaxConcurrentCalls permits. Never more than
// MaxConcurrentCalls functions run at once, counting those whose caller gave up at the
// Timeout.
//
// # Timeouts
//
// Config.Timeout covers queue wait plus run, from admission. When it passes while the
// function runs, Execute returns ErrTimeout at once, the function's context is cancelled,
// and the function keeps its permit until it really returns (Stats.AbandonedTasks). Without
// a Timeout the function runs on the caller's goroutine and Execute allocates nothing.
// Permit.Context gives work done under a permit the same deadline.
//
// # Testing with testing/synctest
//
// A bulkhead follows a synctest bubble's fake clock: timeouts fire, isolations end and
// Result's durations read exactly as the bubble's time says. Create the bulkhead inside
// the bubble, one per test. A bulkhead must not be shared between a bubble and code
// outside it (or another bubble): the timer and channels of its timed calls belong to the
// bubble in which they were first needed, and Go stops the program with a fatal error when
// they are used from outside it.
//
// # The circuit breaker
//
// With CircuitBreakerEnabled, FailureThreshold consecutive failures open the circuit
// (State Isolated): calls get ErrCircuitOpen with Error.RetryAfter, the isolation left,
// for IsolationDuration. Then at most SuccessThreshold probes are let through at once
// (Degraded); SuccessThreshold successes in a row close it (Healthy), one failure
// re-opens it. A function's error, a panic and a timeout while running are failures; the
// bulkhead's own refusals and the caller's own cancellation never count.
//
// # Sharing circuit state
//
// WithCircuitStore shares each circuit between processes through a CircuitStore
// (package pgstore keeps it in PostgreSQL; MemoryStore keeps it in memory). The store is
// never called on a call's path: state is loaded when a bulkhead is created, transitions
// are written from a goroutine of the bulkhead's own, peers' transitions arrive through
// CircuitStore.Subscribe and, as a safety net, a poll every HealthCheckInterval. A live
// OPEN is never overwritten, so the first opener's end time wins; a store that is down
// never fails a call.
//
// # Statistics, events and logs
//
// Bulkhead.Stats is one consistent snapshot with Python bulkman's JSON keys, in which
// TotalExecutions == SuccessfulExecutions + FailedExecutions + ActiveTasks always holds.
// WithEventHook delivers every refusal (with its reason), state change and outcome as an
// Event; Manager.Subscribe delivers them for every bulkhead of a Manager, which is how
// packages prommetrics, otelmetrics, grpchealth and statuspage attach; WithLogger logs
// circuit transitions and store trouble through log/slog.
//
// # Errors
//
// Every error a bulkhead produces is a *Error that wraps a sentinel: ErrFull,
// ErrCircuitOpen, ErrTimeout, ErrShutdown, ErrNotFound and ErrExists (a Manager's),
// ErrReleased (a Permit released twice). Tell them apart with errors.Is; errors.As gives
// the bulkhead's name and RetryAfter. An invalid Config gives an errors.Join of
// *ConfigError, one per bad field; a nil argument an error wrapping ErrInvalidArgument.
// The function's own error is never wrapped.
//
// # Live changes and shutdown
//
// Bulkhead.Reconfigure changes limits, timeout and thresholds while calls run, keeping the
// statistics and the circuit's state. Bulkhead.Shutdown and Manager.Shutdown refuse new
// calls, fail queued callers with ErrShutdown, and wait for running functions to return.
//
// Bulkhead, Manager, Permit and MemoryStore are safe for concurrent use; Config, Result,
// Stats and Event are plain values.
package core
