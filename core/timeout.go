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
// of the caller and the goroutine running fn. Whichever of fn's return, the Timeout and
// the caller's ctx comes first wins end (one compare-and-swap) and so decides the call.
// fn's return and the Timeout wake the caller with a token on its permit's wake channel,
// which is reused from call to call; Done's channel is made only if fn asks for it, as
// context.WithCancel does. A call with a Timeout thus costs one allocation, against four
// for context.WithDeadline (docs/performance.md).
//
// No timer is set per call: the bulkhead keeps its timed calls in a list in deadline
// order (see ledger.watchLocked) and one timer for the earliest.
type callCtx struct {
	parent   context.Context
	deadline time.Time     // admission + Timeout, for Deadline
	due      time.Duration // the same instant as a clock offset
	start    time.Duration // admission, a clock offset

	decided atomic.Int32  // running until end picks the winner
	wake    chan struct{} // the permit's wake channel, set when the call starts (ledger.mu)

	// Guarded by ledger.mu: the ledger's list of timed calls, in deadline order, and the
	// queue place of a call that has not started yet.
	prev, next *callCtx
	watched    bool
	waiter     *waiter

	// An abandoned call's permit comes back when both the caller has recorded its
	// departure and fn has returned: whichever of the two counts 2 hands it back.
	leaving atomic.Int32

	done       atomic.Value // chan struct{}, made by the first Done or by end
	mu         sync.Mutex
	reason     int32 // what Err reports
	afterFuncs map[*afterFunc]struct{}
}

// closedchan is the Done of a context that ended before anyone asked for its Done.
var closedchan = make(chan struct{})

func init() { close(closedchan) }

func (c *callCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *callCtx) Done() <-chan struct{} {
	if d := c.done.Load(); d != nil {
		return d.(chan struct{})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, _ := c.done.Load().(chan struct{})
	if d == nil {
		d = make(chan struct{})
		c.done.Store(d)
	}
	return d
}

// Err returns nil until the context is done, then why the call ended.
func (c *callCtx) Err() error {
	c.mu.Lock()
	r := c.reason
	c.mu.Unlock()
	switch r {
	case running:
		return nil
	case finished:
		return context.Canceled
	case expired:
		return context.DeadlineExceeded
	}
	return c.parent.Err() // departed: the parent's own error
}

func (c *callCtx) Value(key any) any { return c.parent.Value(key) }

func (c *callCtx) String() string {
	return fmt.Sprintf("%v.WithBulkheadTimeout(%v)", c.parent, c.deadline)
}

// end closes the context for reason r, unless it has already ended, and wakes the caller
// unless the caller is the one leaving. It reports whether this call decided the outcome.
func (c *callCtx) end(r int32) bool {
	if !c.decided.CompareAndSwap(running, r) {
		return false
	}
	c.mu.Lock()
	c.reason = r
	if d, _ := c.done.Load().(chan struct{}); d != nil {
		close(d)
	} else {
		c.done.Store(closedchan)
	}
	fs := c.afterFuncs
	c.afterFuncs = nil
	c.mu.Unlock()
	for f := range fs {
		go f.f()
	}
	if r != departed {
		c.wake <- struct{}{} // buffered: exactly one token per call, taken by the caller
	}
	return true
}

type afterFunc struct{ f func() }

// AfterFunc lets contexts derived from this one (context.WithCancel and friends) learn
// that it ended without a watcher goroutine each: the context package looks for it.
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason != running {
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
	running := buf[:0]
	l := &b.ledger
	now := b.clock.now()
	l.mu.Lock()
	for c := l.dueHead; c != nil && c.due <= now; c = l.dueHead {
		l.unwatchLocked(c)
		if w := c.waiter; w != nil {
			c.waiter = nil
			l.refuseLocked(w, b.errTimeout)
			l.rejected++
			continue
		}
		running = append(running, c)
	}
	l.armed = false
	if c := l.dueHead; c != nil {
		l.armLocked(c.due, now)
	}
	l.checkDrainedLocked()
	l.mu.Unlock()
	for _, c := range running {
		c.end(expired)
	}
}

type timedCall[T any] struct {
	callCtx
	b        *Bulkhead
	s        *slot
	fn       func(context.Context) (T, error)
	value    T
	err      error
	panicked bool
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

func executeTimed[T any](ctx context.Context, b *Bulkhead, fn func(context.Context) (T, error), r Result[T], timeout time.Duration) (Result[T], error) {
	now := b.clock.now()
	c := &timedCall[T]{b: b, fn: fn}
	c.parent, c.start, c.due, c.deadline = ctx, now, now+timeout, b.clock.at(now+timeout)
	s, err := b.admit(ctx, &c.callCtx, 0)
	if err != nil {
		return r, err
	}
	c.s = s
	r.ExecutionID = s.id
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

	if c.decided.Load() == finished {
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
			return r, nil
		}
		r.Value, r.Success = c.value, true
		return r, nil
	}

	// The caller gives up on a running fn: count it failed now, keep its permit held.
	timedOut := c.decided.Load() == expired
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
	if b.hooks != nil {
		if timedOut {
			b.emit(Event{Kind: EventTimedOut})
		}
		b.emit(Event{Kind: EventFinished, Outcome: o, QueuedTime: r.QueuedTime, ExecutionTime: r.ExecutionTime})
	}
	if timedOut {
		return r, b.errTimeout
	}
	return r, ctx.Err()
}

// freeAbandoned hands back the permit of an abandoned call whose fn has returned.
func (b *Bulkhead) freeAbandoned(s *slot) {
	l := &b.ledger
	l.mu.Lock()
	l.finishLocked(s, false)
	l.mu.Unlock()
}
