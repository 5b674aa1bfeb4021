package core

import (
	"context"
	"fmt"
	"time"
)

// Outcome is the verdict on a call admitted with Acquire, for the statistics and the
// circuit breaker.
type Outcome uint8

const (
	// Success: the dependency did its job (for HTTP, any status below 500).
	Success Outcome = iota
	// Failure: the dependency failed; it counts towards opening the circuit.
	Failure
	// Neutral: the call ended without a verdict on the dependency, e.g. the client went
	// away. It counts as failed in Stats (it did not succeed) but never moves the circuit,
	// and a half-open probe permit comes back.
	Neutral
	// TimedOut: the call ran past its Permit's Deadline. It counts as failed and as timed
	// out in Stats, and as a failure for the circuit (a hung dependency must trip it).
	TimedOut
)

// Permit is one admitted call, from Acquire until Release. Copy it freely; release it
// exactly once. The zero Permit holds nothing.
type Permit struct {
	b        *Bulkhead
	s        *slot
	gen      uint64
	deadline time.Duration // clock offset; 0 without a Timeout
}

// Acquire admits one call in two steps, for middleware whose call outlives one function
// (streams, response bodies). It applies the same checks as Execute, in the same order,
// and waits in the FIFO queue until a permit is free, ctx ends, or the bulkhead's Timeout
// passes (ErrTimeout). It never abandons the call: the permit is held until Release.
// With a Timeout, the permit keeps ctx until Release, to tell whether the caller left
// before the deadline (see Release).
//
// The error is ctx's error if ctx ended first (nothing counted), or a *Error wrapping
// ErrShutdown, ErrCircuitOpen, ErrFull or ErrTimeout.
func (b *Bulkhead) Acquire(ctx context.Context) (Permit, error) {
	if b == nil || ctx == nil {
		return Permit{}, invalidArg("Acquire: nil Bulkhead or context")
	}
	timeout := time.Duration(b.timeout.Load())
	s, err := b.admit(ctx, timeout, nil)
	if err != nil {
		return Permit{}, err
	}
	p := Permit{b: b, s: s, gen: s.gen.Add(1)}
	if timeout > 0 {
		p.deadline = s.admitted + timeout
		s.caller = ctx
	}
	return p, nil
}

// Release ends the call with outcome o and frees its permit.
//
// A call released after its permit's Deadline has timed out, as a call that runs past
// its Timeout does in Execute: Success and Failure are then recorded as TimedOut (failed
// and timed out in Stats, a failure for the circuit), unless the context given to Acquire
// has ended (the caller left first: its own deadline or cancellation), in which case o
// stands. Neutral and TimedOut always stand. So an adapter passes what the work's result
// says (or Neutral when its caller went away) and Release applies the deadline, by the
// bulkhead's clock rather than by the context of Context, which the bulkhead's timer ends
// a moment after the deadline.
//
// The first Release of a Permit returns nil. Any later one (and Release of a zero Permit)
// changes nothing and returns a *Error wrapping ErrReleased: it is a programmer error. An
// o that is none of the four Outcomes releases the permit as Neutral (a half-open probe
// comes back, the circuit does not move) and returns a *Error wrapping
// ErrInvalidArgument that names the value. Release is safe for concurrent use; exactly
// one of racing calls wins.
func (p Permit) Release(o Outcome) error {
	if p.s == nil {
		return &Error{Err: ErrReleased, detail: "zero Permit"}
	}
	if !p.s.gen.CompareAndSwap(p.gen, p.gen+1) {
		return &Error{Bulkhead: p.b.name, Err: ErrReleased}
	}
	var bad error
	if o > TimedOut {
		bad = &Error{Bulkhead: p.b.name, Err: ErrInvalidArgument,
			detail: fmt.Sprintf("Release: unknown Outcome %d, released as Neutral", o)}
		o = Neutral
	}
	b, s := p.b, p.s
	caller := s.caller
	s.caller = nil // the slot goes back to the free list: it must not keep the context
	var end time.Duration
	if p.deadline != 0 && o <= Failure {
		end = b.clock.now()
		if end >= p.deadline && caller.Err() == nil {
			o = TimedOut
		}
	} else if b.hooks.Load() != nil { // only the hooks want to know when it ended
		end = b.clock.now()
	}
	b.finish(s, o == Success, o, end, nil)
	return bad
}

// Deadline returns when the call's Timeout ends (admission plus Config.Timeout), and
// false when the bulkhead has no Timeout. Middleware gives the handler a context with
// this deadline.
func (p Permit) Deadline() (time.Time, bool) {
	if p.deadline == 0 {
		return time.Time{}, false
	}
	return p.b.clock.at(p.deadline), true
}

// Context returns the context for the work p covers: parent, bounded by p's deadline. It
// is done when the deadline passes (Err: context.DeadlineExceeded), when parent is done
// (parent's error), or when p is released (context.Canceled), whichever comes first: the
// context and the cancel function of context.WithDeadline, with Release as the cancel.
// When p has no deadline, or parent's comes first, Context returns parent itself, which
// Release does not end. Context may be called more than once, also concurrently; every
// other context it returned ends when p is released, and one asked for after the release
// is born done. The zero Permit returns parent. The returned context is safe for
// concurrent use.
//
// No timer of its own is set: the bulkhead's timer, the one it keeps for the Timeouts of
// Execute, ends it. It costs one allocation until someone asks it for Done or
// AfterFunc (Err looks at parent's Err instead); then, if parent can end, it follows
// parent through context.AfterFunc and makes its Done channel, five allocations in all,
// as many as context.WithDeadline takes (BenchmarkPermitContext). Middleware gives it to the handler.
func (p Permit) Context(parent context.Context) context.Context {
	if p.deadline == 0 {
		return parent
	}
	b := p.b
	if d, ok := parent.Deadline(); ok && !d.After(b.clock.at(p.deadline)) {
		return parent
	}
	c := &permitCtx{callCtx: callCtx{parent: parent, b: b}}
	c.dl.at, c.dl.c = p.deadline, &c.callCtx
	l := &b.ledger
	l.mu.Lock()
	if p.s.gen.Load() != p.gen { // released
		l.mu.Unlock()
		c.end(finished)
		return c
	}
	c.nextOfSlot, p.s.ctxs = p.s.ctxs, c
	l.due.add(&c.dl)
	l.mu.Unlock()
	return c
}

// Bulkhead returns the bulkhead that granted the permit (nil for the zero Permit).
func (p Permit) Bulkhead() *Bulkhead { return p.b }
