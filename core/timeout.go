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

// Why a timed call's context ended.
const (
	running  = iota
	finished // fn returned (or panicked) first
	expired  // the Timeout passed first
	departed // the caller's ctx ended first
)

// callCtx is the context fn gets when its bulkhead has a Timeout, and the meeting point
// of the caller and the goroutine running fn. Whichever of fn's return, the Timeout and
// the caller's ctx comes first closes done and decides the call (reason); the caller waits
// on done alone. It costs one allocation plus the done channel, against four for
// context.WithDeadline: see docs/performance.md.
type callCtx struct {
	parent   context.Context
	deadline time.Time
	done     chan struct{}
	timer    *deadlineTimer

	mu         sync.Mutex
	reason     int
	err        error
	fnReturned bool // fn returned after the caller gave up
	callerLeft bool // the caller gave up and recorded it
	afterFuncs map[*afterFunc]struct{}
}

func (c *callCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *callCtx) Done() <-chan struct{} { return c.done }

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *callCtx) Value(key any) any { return c.parent.Value(key) }

func (c *callCtx) String() string {
	return fmt.Sprintf("%v.WithBulkheadTimeout(%v)", c.parent, c.deadline)
}

// end closes the context for reason, unless it has already ended. It reports whether this
// call decided the outcome.
func (c *callCtx) end(reason int, err error) bool {
	c.mu.Lock()
	if c.reason != running {
		c.mu.Unlock()
		return false
	}
	c.reason, c.err = reason, err
	fs := c.afterFuncs
	c.afterFuncs = nil
	close(c.done)
	c.mu.Unlock()
	for f := range fs {
		go f.f()
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

// deadlineTimer is a reusable timer that ends whichever callCtx it is armed for. Timers
// are pooled so that a call with a Timeout allocates no timer of its own. The pool is the
// bulkhead's (Bulkhead.timers), not the process's: a timer made in a testing/synctest
// bubble belongs to that bubble, and reusing it outside the bubble (or in another one)
// crashes the program or never fires.
type deadlineTimer struct {
	t      *time.Timer
	target atomic.Pointer[callCtx]
}

func (d *deadlineTimer) fire() {
	if c := d.target.Swap(nil); c != nil {
		c.end(expired, context.DeadlineExceeded)
	}
}

func armTimer(pool *sync.Pool, c *callCtx, after time.Duration) {
	d, _ := pool.Get().(*deadlineTimer)
	if d == nil {
		d = new(deadlineTimer)
		d.target.Store(c)
		d.t = time.AfterFunc(after, d.fire)
	} else {
		d.target.Store(c)
		d.t.Reset(after)
	}
	c.timer = d
}

// disarm stops the timer. It goes back to the pool only if it provably will not fire for
// this call any more; otherwise it is dropped.
func (c *callCtx) disarm(pool *sync.Pool) {
	d := c.timer
	if d.t.Stop() && d.target.CompareAndSwap(c, nil) {
		pool.Put(d)
	}
}

type timedCall[T any] struct {
	callCtx
	value    T
	err      error
	panicked bool
	panicVal any
}

// run calls fn on its own goroutine and reports back through the context.
func (c *timedCall[T]) run(b *Bulkhead, s *slot, fn func(context.Context) (T, error)) {
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
		c.conclude(b, s)
	}()
	c.value, c.err = fn(&c.callCtx)
	returned = true
	c.conclude(b, s)
}

// conclude runs on fn's goroutine when fn is over. If fn came first, the caller records
// the outcome; otherwise the caller already recorded the call as failed, and whichever of
// the two comes second hands the permit back.
func (c *timedCall[T]) conclude(b *Bulkhead, s *slot) {
	if c.end(finished, context.Canceled) {
		return
	}
	c.mu.Lock()
	last := c.callerLeft
	c.fnReturned = true
	c.mu.Unlock()
	if c.panicked && c.panicVal != nil {
		b.logger.Error("bulkman: function panicked after its caller gave up",
			slog.String("bulkhead", b.name), slog.Any("panic", c.panicVal))
	}
	if last {
		b.freeAbandoned(s)
	}
}

func executeTimed[T any](ctx context.Context, b *Bulkhead, fn func(context.Context) (T, error), r Result[T], timeout time.Duration) (Result[T], error) {
	now := b.clock.now()
	c := &timedCall[T]{callCtx: callCtx{parent: ctx, deadline: b.clock.at(now + timeout), done: make(chan struct{})}}
	armTimer(&b.timers, &c.callCtx, timeout)
	s, err := b.admit(ctx, c.done, 0)
	if err != nil {
		c.end(departed, context.Canceled)
		c.disarm(&b.timers)
		return r, err
	}
	r.ExecutionID = s.id
	r.QueuedTime = s.started - now
	s.admitted = now
	go c.run(b, s, fn)

	select {
	case <-c.done:
	case <-ctx.Done():
		c.end(departed, ctx.Err())
	}
	c.disarm(&b.timers)
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	end := b.clock.now()
	r.ExecutionTime = end - s.started

	if reason == finished {
		if c.panicked {
			b.finish(s, false, Failure, end)
			if c.panicVal == nil {
				runtime.Goexit()
			}
			panic(c.panicVal)
		}
		b.finish(s, c.err == nil, verdict(ctx, c.err), end)
		if c.err != nil {
			r.Err = c.err
			return r, nil
		}
		r.Value, r.Success = c.value, true
		return r, nil
	}

	// The caller gives up on a running fn: count it failed now, keep its permit held.
	timedOut := reason == expired
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
	l.mu.Unlock()
	c.mu.Lock()
	last := c.fnReturned
	c.callerLeft = true
	c.mu.Unlock()
	if last {
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
