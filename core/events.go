package core

import "time"

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventStateChanged: the circuit moved; From and To hold the states.
	EventStateChanged EventKind = iota + 1
	// EventRejected: a call was refused; Err is ErrCircuitOpen, ErrFull, ErrTimeout (it
	// timed out while queued) or ErrShutdown.
	EventRejected
	// EventTimedOut: a running call's Timeout passed; its caller got ErrTimeout.
	EventTimedOut
	// EventFinished: an admitted call ended; Outcome, QueuedTime and ExecutionTime are set.
	EventFinished
)

var eventKindNames = [...]string{EventStateChanged: "state_changed", EventRejected: "rejected", EventTimedOut: "timed_out", EventFinished: "finished"}

// String returns the kind in snake_case, e.g. "rejected".
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one thing a bulkhead did, delivered to the hooks given with WithEventHook. It is
// passed by value and holds no pointers into the bulkhead.
type Event struct {
	Kind     EventKind // what happened; it says which of the fields below are set
	Bulkhead string    // the bulkhead's name (the same string for every event of one bulkhead)

	// EventStateChanged: the circuit's old and new states.
	From, To State
	// EventStateChanged: true when the new state was adopted from a peer through a
	// CircuitStore, false for a transition of this process.
	Remote bool

	// EventRejected: the sentinel of the refusal (ErrCircuitOpen, ErrFull, ErrTimeout,
	// ErrShutdown).
	Err error
	// EventRejected: the refused call's priority (PriorityNormal for a call without one).
	Priority Priority

	// EventFinished: how the call ended. Success, Failure or Neutral: a call that timed
	// out while running is reported as Failure, after an EventTimedOut.
	Outcome       Outcome
	QueuedTime    time.Duration // EventFinished: admission to the start of the call
	ExecutionTime time.Duration // EventFinished: start of the call to its end
}

// WithEventHook calls h for every Event of the bulkheads it configures. h runs
// synchronously on the goroutine of the call (or of the transition), so it must be quick
// and must not block or call back into the same bulkhead; it must be safe for concurrent
// use. Several hooks may be given; they run in order. A nil h is ignored. Without a hook,
// events cost nothing.
func WithEventHook(h func(Event)) Option {
	return func(o *options) {
		if h != nil {
			o.hooks = append(o.hooks, h)
		}
	}
}

// emit delivers e to the hooks. Callers check b.hooks != nil first, so that building the
// Event costs nothing without hooks.
func (b *Bulkhead) emit(e Event) {
	e.Bulkhead = b.name
	for _, h := range b.hooks {
		h(e)
	}
}
