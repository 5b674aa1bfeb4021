package core

import (
	"errors"
	"fmt"
	"time"
)

// The kinds of error a bulkhead produces. Every error the bulkhead itself returns is a
// *Error that wraps one of these, so errors.Is(err, ErrFull) and friends tell them apart
// and errors.As gives the details.
var (
	// ErrFull: every permit is taken and the queue is full (Python: BulkheadFullError).
	ErrFull = errors.New("bulkhead is full")
	// ErrCircuitOpen: the circuit is open, so the function was not run
	// (Python: BulkheadCircuitOpenError).
	ErrCircuitOpen = errors.New("circuit is open")
	// ErrTimeout: the call's Timeout passed while it waited or ran
	// (Python: BulkheadTimeoutError).
	ErrTimeout = errors.New("bulkhead timeout")
	// ErrShutdown: the bulkhead has been shut down (Python: BulkheadShutdownError).
	ErrShutdown = errors.New("bulkhead is shut down")
	// ErrNotFound: a Manager has no bulkhead of that name.
	ErrNotFound = errors.New("no such bulkhead")
	// ErrExists: a Manager already has a bulkhead of that name.
	ErrExists = errors.New("bulkhead already exists")
	// ErrReleased: a Permit was released twice, or a zero Permit was released. It is a
	// programmer error; the second release changes nothing.
	ErrReleased = errors.New("permit already released")
	// ErrInvalidArgument: a nil context, function, Bulkhead or Manager was passed, or an
	// unknown Outcome was given to Permit.Release.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Error is the error a bulkhead returns when it refuses or gives up on a call. It names
// the bulkhead and wraps one of the sentinel errors above.
//
// So that refusing allocates nothing, a bulkhead returns the same *Error for every refusal
// of a kind (for an open circuit, for every refusal within 10 ms): treat its fields as
// read-only, and copy it to change it. The adapters (grpcmw, httpmw) hand each caller a
// copy of its own.
type Error struct {
	Bulkhead   string        // the bulkhead's name
	Err        error         // one of the sentinels above
	RetryAfter time.Duration // a hint for adapters (the circuit's remaining isolation); 0 if unknown

	// detail is extra context for Error(), e.g. the occupancy for ErrFull.
	detail string
}

// Error describes the refusal and names the bulkhead, e.g.
// `bulkhead "api" is at capacity (110/110)`. The text depends on the bulkhead's name, the
// kind and its configuration only (the capacity, for ErrFull), never on the moment: every
// refusal of a kind reads the same until the bulkhead is reconfigured, so that logs and
// error trackers group them. The time left of an open circuit is in RetryAfter, not in the
// text.
func (e *Error) Error() string {
	var msg string
	switch e.Err {
	case ErrFull:
		msg = fmt.Sprintf("bulkhead %q is at capacity", e.Bulkhead)
	case ErrCircuitOpen:
		msg = fmt.Sprintf("bulkhead %q: circuit is open", e.Bulkhead)
	case ErrTimeout:
		msg = fmt.Sprintf("bulkhead %q: timed out", e.Bulkhead)
	case ErrShutdown:
		msg = fmt.Sprintf("bulkhead %q is shut down", e.Bulkhead)
	case ErrNotFound:
		msg = fmt.Sprintf("no bulkhead named %q", e.Bulkhead)
	case ErrExists:
		msg = fmt.Sprintf("a bulkhead named %q already exists", e.Bulkhead)
	case ErrReleased:
		msg = fmt.Sprintf("bulkhead %q: permit already released", e.Bulkhead)
	default:
		msg = fmt.Sprintf("bulkhead %q: %v", e.Bulkhead, e.Err)
	}
	if e.detail != "" {
		msg += " (" + e.detail + ")"
	}
	return msg
}

// Unwrap returns the sentinel kind, so errors.Is works.
func (e *Error) Unwrap() error { return e.Err }

// invalidArg returns an error for a programming mistake such as a nil function.
func invalidArg(what string) error {
	return fmt.Errorf("bulkman: %s: %w", what, ErrInvalidArgument)
}
