package core

import (
	"context"
	"sync/atomic"
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
//
// The error is ctx's error if ctx ended first (nothing counted), or a *Error wrapping
// ErrShutdown, ErrCircuitOpen, ErrFull or ErrTimeout.
func (b *Bulkhead) Acquire(ctx context.Context) (Permit, error) {
	if b == nil || ctx == nil {
		return Permit{}, invalidArg("Acquire: nil Bulkhead or context")
	}
	timeout := time.Duration(b.timeout.Load())
	s, err := b.admit(ctx, nil, timeout)
	if err != nil {
		return Permit{}, err
	}
	p := Permit{b: b, s: s, gen: s.gen.Add(1)}
	if timeout > 0 {
		p.deadline = s.admitted + timeout
	}
	return p, nil
}

// Release ends the call with outcome o and frees its permit. The first Release of a
// Permit returns nil; any later one (and Release of a zero Permit) changes nothing and
// returns a *Error wrapping ErrReleased: it is a programmer error.
// Release is safe for concurrent use; exactly one of racing calls wins.
func (p Permit) Release(o Outcome) error {
	if p.s == nil {
		return &Error{Err: ErrReleased, detail: "zero Permit"}
	}
	if !p.s.gen.CompareAndSwap(p.gen, p.gen+1) {
		return &Error{Bulkhead: p.b.name, Err: ErrReleased}
	}
	var end time.Duration
	if p.b.hooks.Load() != nil { // only the hooks want to know when it ended
		end = p.b.clock.now()
	}
	p.b.finish(p.s, o == Success, o, end, nil)
	return nil
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

// Expired reports whether p's deadline has passed, by the bulkhead's clock; false when
// the bulkhead has no Timeout (and for the zero Permit). It is the question to ask when
// choosing between TimedOut and another Outcome: the context of Context learns of the
// deadline from the bulkhead's timer, which may run a moment after it.
func (p Permit) Expired() bool {
	return p.deadline != 0 && p.b.clock.now() >= p.deadline
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
	c := &permitCtx{callCtx: callCtx{parent: parent, b: b, due: p.deadline}}
	l := &b.ledger
	l.mu.Lock()
	if p.s.gen.Load() != p.gen { // released
		l.mu.Unlock()
		c.end(finished)
		return c
	}
	c.nextOfSlot, p.s.ctxs = p.s.ctxs, c
	l.watchLocked(&c.callCtx)
	l.mu.Unlock()
	return c
}

// permitCtx is the context of Permit.Context: a callCtx that no caller waits on, ended by
// the bulkhead's timer, by the release, or by its parent's end, which it learns through
// context.AfterFunc, registered when someone first asks for Done or AfterFunc (until then
// nobody waits for its end, and Err asks the parent itself).
type permitCtx struct {
	callCtx
	following  atomic.Int32 // notFollowing, then following (by followParent) or released
	stop       func() bool  // stops following the parent (callCtx.mu)
	nextOfSlot *permitCtx   // the slot's other contexts (ledger.mu)
}

// The states of permitCtx.following.
const (
	notFollowing = iota
	following
	released // released before anyone asked: never follow
)

func (c *permitCtx) Done() <-chan struct{} {
	c.followParent()
	return c.callCtx.Done()
}

func (c *permitCtx) Err() error {
	if c.decided.Load() == running && c.parent.Err() != nil {
		// The parent ended, and nobody follows it or the AfterFunc that tells us is still
		// on its way: its error shows at once, as a child of context.WithCancel's would.
		c.end(departed)
	}
	return c.callCtx.Err()
}

func (c *permitCtx) AfterFunc(f func()) (stop func() bool) {
	c.followParent()
	return c.callCtx.AfterFunc(f)
}

// followParent makes the context end when its parent does. After the first call it is one
// atomic load.
func (c *permitCtx) followParent() {
	if c.following.Load() != notFollowing {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.following.CompareAndSwap(notFollowing, following) {
		return // followed by another caller, or released
	}
	if c.parent.Done() == nil || c.decided.Load() != running {
		return // the parent never ends, or this context already has
	}
	c.stop = context.AfterFunc(c.parent, func() { c.end(departed) })
}

// release ends the context when its permit is released, and stops following the parent.
// A context nobody asked about costs one compare-and-swap here.
func (c *permitCtx) release() {
	c.end(finished)
	if c.following.CompareAndSwap(notFollowing, released) {
		return
	}
	c.mu.Lock() // waits for a followParent in progress
	stop := c.stop
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Bulkhead returns the bulkhead that granted the permit (nil for the zero Permit).
func (p Permit) Bulkhead() *Bulkhead { return p.b }
