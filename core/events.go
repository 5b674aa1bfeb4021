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

// Event is one thing a bulkhead did, delivered to the hooks given with WithEventHook and
// to the functions given to Manager.Subscribe. It is passed by value and holds no pointers
// into the bulkhead.
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
// use. Several hooks may be given; they run in order, before the functions given to
// Manager.Subscribe. A nil h is ignored. Without a hook or a subscriber, events cost
// nothing.
//
// WithEventHook fixes the hooks when a bulkhead is made. To attach an exporter to a
// Manager's bulkheads at any time (prommetrics, otelmetrics, grpchealth and statuspage do),
// use Manager.Subscribe.
func WithEventHook(h func(Event)) Option {
	return func(o *options) {
		if h != nil {
			o.hooks = append(o.hooks, h)
		}
	}
}

// emit delivers e to the hooks. Callers check b.hooks.Load() != nil first, so that
// building the Event costs nothing without hooks.
func (b *Bulkhead) emit(e Event) {
	hooks := b.hooks.Load()
	if hooks == nil { // the last subscriber left since the caller looked
		return
	}
	e.Bulkhead = b.name
	for _, h := range *hooks {
		h(e)
	}
}

// subscription is one Manager.Subscribe. It is a pointer so that unsubscribing removes
// this one even when the same function was subscribed twice.
type subscription struct{ h func(Event) }

// setSubscribers makes b's hooks its own (WithEventHook's) followed by subs, or nil when
// there are none. The list is replaced, never changed in place, so that emit reads it
// with one atomic load and no lock. New calls it before b is shared; after that only the
// Manager that holds b does, under its lock, which keeps writers in order.
func (b *Bulkhead) setSubscribers(subs []*subscription) {
	if len(b.ownHooks)+len(subs) == 0 {
		b.hooks.Store(nil)
		return
	}
	hooks := make([]func(Event), 0, len(b.ownHooks)+len(subs))
	hooks = append(hooks, b.ownHooks...)
	for _, s := range subs {
		hooks = append(hooks, s.h)
	}
	b.hooks.Store(&hooks)
}

// withSubscribers gives a bulkhead that a Manager creates the Manager's subscribers from
// the start, so that they see the events New may already emit (a circuit state adopted
// from a CircuitStore).
func withSubscribers(subs []*subscription) Option {
	return func(o *options) { o.subscribers = subs }
}
