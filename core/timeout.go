package core

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// What ended a timed call: the first of fn's return, the Timeout and the caller's ctx.
const (
	running  int32 = iota
	finished       // fn returned (or panicked) first
	expired        // the Timeout passed first
	departed       // the caller's ctx ended first
)

// callCtx is the context fn gets when its bulkhead has a Timeout, and the meeting point
// of the caller and the goroutine running fn. (It is also the heart of Permit.Context's
// context, permitCtx, which no caller waits on.) Whichever of fn's return, the Timeout and
// the caller's ctx comes first wins end (one compare-and-swap) and so decides the call.
// fn's return and the Timeout wake the caller with a token on its permit's wake channel,
// which is reused from call to call; Done's channel is made only if fn asks for it, as
// context.WithCancel does. No lock is taken unless fn asks for Done or registers an
// AfterFunc (as context.WithCancel(ctx) does). The context thus costs one allocation (two
// once fn asks for Done), against four for context.WithDeadline (docs/performance.md).
//
// No timer is set per call: the bulkhead keeps its timed calls in a list in deadline
// order (see ledger.watchLocked) and one timer for the earliest.
type callCtx struct {
	parent context.Context
	b      *Bulkhead
	start  time.Duration                 // admission, a clock offset
	due    time.Duration                 // admission + Timeout, a clock offset
	wake   chan struct{}                 // the permit's wake channel, set when the call starts (ledger.mu)
	done   atomic.Pointer[chan struct{}] // &doneCh once Done made it, or &closedchan once ended
	doneCh chan struct{}                 // made by the first Done, under mu, before done points to it

	decided atomic.Int32 // running until end picks the winner, which is then what Err reports

	// An abandoned call's permit comes back when both the caller has recorded its
	// departure and fn has returned: whichever of the two counts 2 hands it back.
	leaving atomic.Int32

	hasAfter atomic.Bool // AfterFunc was called: end must look at afterFuncs
	watched  bool        // in the ledger's list (ledger.mu)
	panicked bool        // fn panicked or called runtime.Goexit (see timedCall.run)

	// Guarded by ledger.mu: the ledger's list of timed calls, in deadline order, and the
	// queue place of a call that has not started yet.
	prev, next *callCtx
	waiter     *waiter

	mu         sync.Mutex
	afterFuncs map[*afterFunc]struct{} // guarded by mu
}

// closedchan is the Done of a context that ended before anyone asked for its Done.
var closedchan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (c *callCtx) Deadline() (time.Time, bool) {
	deadline := c.b.clock.at(c.due)
	if d, ok := c.parent.Deadline(); ok && d.Before(deadline) {
		return d, true
	}
	return deadline, true
}

// Done makes its channel the first time it is asked (end does not wait for it: it swaps in
// closedchan when there is none yet), so a function that never asks costs no channel.
func (c *callCtx) Done() <-chan struct{} {
	if d := c.done.Load(); d != nil {
		return *d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.done.Load(); d != nil {
		return *d // made by another Done, or ended
	}
	c.doneCh = make(chan struct{})
	if c.done.CompareAndSwap(nil, &c.doneCh) {
		return c.doneCh // end will close it
	}
	return *c.done.Load() // end came first: closedchan
}

// Err returns nil until the context is done, then why the call ended.
func (c *callCtx) Err() error {
	r := c.decided.Load()
	if r == running {
		return nil
	}
	<-c.Done() // end closes it right after deciding: no Err before Done is closed
	switch r {
	case finished:
		return context.Canceled
	case expired:
		return context.DeadlineExceeded
	}
	return c.parent.Err() // departed: the parent's own error
}

func (c *callCtx) Value(key any) any { return c.parent.Value(key) }

func (c *callCtx) String() string {
	return fmt.Sprintf("%v.WithBulkheadTimeout(%v)", c.parent, c.b.clock.at(c.due))
}

// end closes the context for reason r, unless it has already ended, and wakes the caller
// unless the caller is the one leaving. It reports whether this call decided the outcome.
func (c *callCtx) end(r int32) bool {
	if !c.decided.CompareAndSwap(running, r) {
		return false
	}
	if d := c.done.Swap(&closedchan); d != nil {
		close(*d)
	}
	// AfterFunc sets hasAfter before it reads decided, and this reads hasAfter after the
	// swap above: one of the two sees the other, so every registered function runs once.
	if c.hasAfter.Load() {
		c.runAfterFuncs()
	}
	if r != departed && c.wake != nil { // a Permit's context has no caller waiting
		c.wake <- struct{}{} // buffered: exactly one token per call, taken by the caller
	}
	return true
}

// runAfterFuncs runs the functions registered with AfterFunc. It is apart from end to
// keep end's stack frame small: end runs on goroutines that have just started, where a
// larger frame can cost a stack copy per call.
//
//go:noinline
func (c *callCtx) runAfterFuncs() {
	c.mu.Lock()
	fs := c.afterFuncs
	c.afterFuncs = nil
	c.mu.Unlock()
	for f := range fs {
		go f.f()
	}
}

type afterFunc struct{ f func() }

// AfterFunc lets contexts derived from this one (context.WithCancel and friends) learn
// that it ended without a watcher goroutine each: the context package looks for it.
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hasAfter.Store(true)
	if c.decided.Load() != running {
		go f()
		return func() bool { return false }
	}
	if c.afterFuncs == nil {
		c.afterFuncs = make(map[*afterFunc]struct{})
	}
	c.afterFuncs[a] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.afterFuncs[a]
		delete(c.afterFuncs, a)
		return ok
	}
}

// expireDue is the bulkhead's deadline timer: it ends every timed call whose Timeout has
// passed and sets the timer for the next one. A call still waiting for a permit is
// refused with ErrTimeout there and then, under the lock, like Shutdown refuses waiters. A
// timer that fires late or for nothing (the call it was set for has finished) does no
// harm.
func (b *Bulkhead) expireDue() {
	var buf [8]*callCtx
	started := buf[:0] // due calls whose function runs: ended after the lock
	l := &b.ledger
	now := b.clock.now()
	l.mu.Lock()
	for c := l.dueHead; c != nil && c.due <= now; c = l.dueHead {
		l.unwatchLocked(c)
		if w := c.waiter; w != nil {
			c.waiter = nil
			if l.refuseLocked(w, b.errTimeout) {
				l.rejected++
			}
			continue
		}
		started = append(started, c)
	}
	l.armed = false
	if c := l.dueHead; c != nil {
		l.armLocked(c.due)
	}
	l.checkDrainedLocked()
	l.mu.Unlock()
	for _, c := range started {
		c.end(expired)
	}
}

type timedCall[T any] struct {
	callCtx
	s        *slot
	fn       func(context.Context) (T, error)
	value    T
	err      error
	panicVal any
}

// run calls fn on its own goroutine and reports back through the context.
func (c *timedCall[T]) run() {
	returned := false
	defer func() {
		if returned {
			return
		}
		// A panic is re-raised on the caller's goroutine, if the caller still waits. A nil
		// recover means fn called runtime.Goexit (panic(nil) arrives as a
		// *runtime.PanicNilError): the caller's goroutine exits the same way.
		p := recover()
		c.panicked, c.panicVal = true, p
		c.conclude()
	}()
	c.value, c.err = c.fn(&c.callCtx)
	returned = true
	c.conclude()
}

// conclude runs on fn's goroutine when fn is over. If fn came first, the caller records
// the outcome; otherwise the caller already recorded the call as failed, and whichever of
// the two comes second hands the permit back.
func (c *timedCall[T]) conclude() {
	if c.end(finished) {
		return
	}
	b := c.b
	if c.panicked && c.panicVal != nil {
		b.logger.Error("bulkman: function panicked after its caller gave up",
			slog.String("bulkhead", b.name), slog.Any("panic", c.panicVal))
	}
	if c.leaving.Add(1) == 2 {
		b.freeAbandoned(c.s)
	}
}

// executeTimed is Execute for a bulkhead with a Timeout. It fills in *r and returns
// Execute's error.
func executeTimed[T any](ctx context.Context, b *Bulkhead, fn func(context.Context) (T, error), r *Result[T], timeout time.Duration) error {
	var c *timedCall[T]
	s, err := b.admit(ctx, func() *callCtx {
		now := b.clock.now()
		c = &timedCall[T]{fn: fn}
		c.parent, c.b, c.start, c.due = ctx, b, now, now+timeout
		return &c.callCtx
	}, 0)
	if err != nil {
		return err
	}
	c.s = s
	r.ExecutionID.set(b.idPrefix, s.seq)
	r.QueuedTime = s.started - s.admitted
	go c.run()

	if parentDone := ctx.Done(); parentDone == nil {
		<-s.wake
	} else {
		select {
		case <-s.wake:
		case <-parentDone:
			if !c.end(departed) {
				<-s.wake // fn's return or the Timeout came first: its token is on the way
			}
		}
	}
	end := b.clock.now()
	r.ExecutionTime = end - s.started

	decided := c.decided.Load()
	if decided == finished {
		if c.panicked {
			b.finish(s, false, Failure, end, &c.callCtx)
			if c.panicVal == nil {
				runtime.Goexit()
			}
			panic(c.panicVal)
		}
		b.finish(s, c.err == nil, verdict(ctx, c.err), end, &c.callCtx)
		if c.err != nil {
			r.Err = c.err
			return nil
		}
		r.Value, r.Success = c.value, true
		return nil
	}

	// The caller gives up on a running fn: count it failed now, keep its permit held.
	timedOut := decided == expired
	o := Neutral
	if timedOut {
		o = Failure // a hung dependency must be able to trip the circuit
	}
	if cb := b.circuit; cb != nil {
		cb.release(s.probe, o)
	}
	l := &b.ledger
	l.mu.Lock()
	l.abandonLocked(s, timedOut)
	l.unwatchLocked(&c.callCtx)
	l.mu.Unlock()
	if c.leaving.Add(1) == 2 {
		b.freeAbandoned(s)
	}
	if b.hooks.Load() != nil {
		b.emitFinished(timedOut, o, r.QueuedTime, r.ExecutionTime)
	}
	if timedOut {
		return b.errTimeout
	}
	return ctx.Err()
}

// freeAbandoned hands back the permit of an abandoned call whose fn has returned.
func (b *Bulkhead) freeAbandoned(s *slot) {
	l := &b.ledger
	l.mu.Lock()
	l.finishLocked(s, false)
	l.mu.Unlock()
}
