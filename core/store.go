package core

import (
	"context"
	"time"
)

// Circuit statuses as a CircuitStore keeps them (and as Stats.CircuitStatus shows them).
const (
	StatusClosed   = "CLOSED"
	StatusOpen     = "OPEN"
	StatusHalfOpen = "HALF_OPEN"
)

// CircuitRecord is one circuit's shared state: what a CircuitStore keeps for each
// (namespace, name). The namespace belongs to the store.
type CircuitRecord struct {
	Name      string    // the bulkhead's Config.Name
	Status    string    // StatusClosed, StatusOpen or StatusHalfOpen
	OpenUntil time.Time // end of the isolation when Status is StatusOpen; zero otherwise
	UpdatedAt time.Time // when the writer changed state
}

// live reports whether r is an OPEN whose isolation is not over at now.
func (r CircuitRecord) live(now time.Time) bool {
	return r.Status == StatusOpen && r.OpenUntil.After(now)
}

// CircuitStore shares circuit state between processes (Python: resilient-circuit's storage).
// core never calls it on a call's path: it loads state when a bulkhead is created, writes
// on state transitions only, from a goroutine of its own, and bounds every call with a
// deadline (see WithStoreTimeout). A store that fails never fails a call: the circuit goes
// on working locally and the state is written again once the store answers.
//
// Implementations must be safe for concurrent use, and Load and Save must return
// promptly once their ctx is done (as database drivers do), even when the store itself
// does not answer: Shutdown keeps to its own ctx by cancelling the store call in
// progress, and then waits for it to return.
type CircuitStore interface {
	// Load returns the record of the circuit called name; ok is false when there is none.
	Load(ctx context.Context, name string) (rec CircuitRecord, ok bool, err error)

	// Save writes rec, unless the stored record is a live OPEN (Status OPEN and OpenUntil
	// in the future by the store's clock): that one is never overwritten, so the first
	// opener wins and its end time never moves. After it expires, any write is accepted,
	// so recovery is never blocked. Save returns the record stored after the call: rec
	// when it was written, the live OPEN when it was not.
	//
	// A store may keep times to a precision of its own, no coarser than a millisecond
	// (PostgreSQL keeps microseconds): what Save returns, Load reads and Subscribe
	// delivers may then carry rec's times rounded. core takes times less than a
	// millisecond apart for the same.
	Save(ctx context.Context, rec CircuitRecord) (stored CircuitRecord, err error)

	// Subscribe arranges for fn to be called with every record saved to the store from
	// now on, by any process (this one included), promptly and in order per name. fn must
	// not block. cancel stops the calls; after it returns fn is not called again.
	Subscribe(fn func(CircuitRecord)) (cancel func())
}

// WithCircuitStore shares the circuit state of the bulkheads it configures through s
// (Python: circuit_storage). Only bulkheads with CircuitBreakerEnabled use it. Each such
// bulkhead runs one goroutine until Shutdown.
func WithCircuitStore(s CircuitStore) Option {
	return func(o *options) { o.store = s }
}

// WithStoreTimeout bounds every CircuitStore call (default 2s; d <= 0 keeps the default).
func WithStoreTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.storeTimeout = d
		}
	}
}

const defaultStoreTimeout = 2 * time.Second

// storePrecision is the coarsest precision a CircuitStore may keep times to (see Save).
const storePrecision = time.Millisecond

// sameInstant reports whether a and b are one instant as a store may keep it: less than
// storePrecision apart.
func sameInstant(a, b time.Time) bool {
	d := a.Sub(b)
	return -storePrecision < d && d < storePrecision
}
