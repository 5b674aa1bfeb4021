package core

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The timeout of a bulkhead is one component: a list of deadlines in deadline order, one
// timer set for the earliest, and the contexts that the timer ends. Execute with a Timeout,
// Acquire's wait in the queue and Permit.Context all go through it:
//
//   - a caller waiting in the queue (Execute's or Acquire's) has its waiter's deadline in
//     the list, and is refused with ErrTimeout when it passes;
//   - a running timed call of Execute has its context's deadline there instead (it takes
//     its waiter's place if it queued first), and the context is ended when it passes;
//   - a context from Permit.Context has its own deadline there, and is ended the same way.
//
// Every call of a bulkhead has the same Timeout, so a new deadline goes to the tail, and
// the timer is moved only for a deadline earlier than the one it is set for (after
// Reconfigure shortened the Timeout, or for a Permit.Context asked for long after its
// admission). A deadline that leaves the list leaves the timer alone: a timer that fires
// for nothing sets itself for the next deadline. All of it is guarded by ledger.mu, which
// admission and release take anyway.

// deadline is one entry of the list: a queued caller (w) or a context (c).
type deadline struct {
	at         time.Duration // a clock offset
	prev, next *deadline
	listed     bool
	w          *waiter  // a caller in the queue: refused with ErrTimeout when due
	c          *callCtx // a running timed call or a Permit's context: ended when due
}

// deadlines is the list and its timer (ledger.mu).
type deadlines struct {
	head, tail *deadline
	timer      *time.Timer
	armed      bool
	armedFor   time.Duration // the deadline the timer is set for
	clock      *clock        // the bulkhead's
	fire       func()        // the timer's function: Bulkhead.expireDue
}

// add puts e in the list, in deadline order, and sets the timer if e is due first.
func (d *deadlines) add(e *deadline) {
	p := d.tail
	for p != nil && p.at > e.at { // only after Reconfigure shortened the Timeout
		p = p.prev
	}
	e.prev = p
	if p != nil {
		e.next, p.next = p.next, e
	} else {
		e.next, d.head = d.head, e
	}
	if e.next != nil {
		e.next.prev = e
	} else {
		d.tail = e
	}
	e.listed = true
	if !d.armed || e.at < d.armedFor {
		d.arm(e.at)
	}
}

// replace puts e, due at the same time as old, in old's place.
func (d *deadlines) replace(old, e *deadline) {
	if !old.listed {
		return
	}
	e.prev, e.next, e.listed = old.prev, old.next, true
	if e.prev != nil {
		e.prev.next = e
	} else {
		d.head = e
	}
	if e.next != nil {
		e.next.prev = e
	} else {
		d.tail = e
	}
	old.prev, old.next, old.listed = nil, nil, false
}

// remove takes e out of the list, if it is there.
func (d *deadlines) remove(e *deadline) {
	if !e.listed {
		return
	}
	e.listed = false
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		d.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		d.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// arm sets the timer for the deadline at. It reads the clock, which only a deadline due
// before all others (or the timer's own run) needs.
func (d *deadlines) arm(at time.Duration) {
	after := max(at-d.clock.now(), 0)
	if d.timer == nil {
		d.timer = time.AfterFunc(after, d.fire)
	} else {
		d.timer.Reset(after)
	}
	d.armed, d.armedFor = true, at
}

// expireDue is the bulkhead's deadline timer: it refuses every due caller still in the
// queue (there and then, under the lock, as Shutdown refuses waiters), ends every due
// context after the lock, and sets the timer for the next deadline. A timer that fires
// late or for nothing does no harm.
func (b *Bulkhead) expireDue() {
	var buf [8]*callCtx
	due := buf[:0]
	l := &b.ledger
	now := b.clock.now()
	l.mu.Lock()
	d := &l.due
	for e := d.head; e != nil && e.at <= now; e = d.head {
		d.remove(e)
		if e.w != nil {
			if l.refuseLocked(e.w, b.errTimeout) {
				l.rejected++
			}
			continue
		}
		due = append(due, e.c)
	}
	d.armed = false
	if e := d.head; e != nil {
		d.arm(e.at)
	}
	l.checkDrainedLocked()
	l.mu.Unlock()
	for _, c := range due {
		c.end(expired)
	}
}

// What ended a context: the first of the work's end, the deadline and the parent's end.
const (
	running  int32 = iota
	finished       // the work ended first (fn returned or panicked, or the permit was released)
	expired        // the deadline passed first
	departed       // the parent (the caller's ctx) ended first
)

// callCtx is the context fn gets when its bulkhead has a Timeout, and the meeting point
// of the caller and the goroutine running fn. (It is also the heart of Permit.Context's
// context, permitCtx, which no caller waits on.) Whichever of fn's return, the deadline
// and the caller's ctx comes first wins end (one compare-and-swap) and so decides the
// call. fn's return and the deadline wake the caller with a token on its permit's wake
// channel, which is reused from call to call; Done's channel is made only if fn asks for
// it, as context.WithCancel does. No lock is taken unless fn asks for Done or registers
// an AfterFunc (as context.WithCancel(ctx) does), and no timer is set: the bulkhead's
// deadline list ends it. docs/design.md ("The timeout") compares it with
// context.WithDeadline.
type callCtx struct {
	parent context.Context
	b      *Bulkhead
	dl     deadline                      // in the bulkhead's list while it runs (dl.c is the context itself)
	wake   chan struct{}                 // the permit's wake channel (nil for a Permit's context)
	done   atomic.Pointer[chan struct{}] // &doneCh once Done made it, or &closedchan once ended
	doneCh chan struct{}                 // made by the first Done, under mu, before done points to it

	decided atomic.Int32 // running until end picks the winner, which is then what Err reports

	// An abandoned call's permit comes back when both the caller has recorded its
	// departure and fn has returned: whichever of the two counts 2 hands it back.
	leaving atomic.Int32

	hasAfter atomic.Bool // AfterFunc was called: end must look at afterFuncs
	panicked bool        // fn panicked or called runtime.Goexit (see timedCall.run)

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
	deadline := c.b.clock.at(c.dl.at)
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

// Err returns nil until the context is done, then why it ended.
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
	return fmt.Sprintf("%v.WithBulkheadTimeout(%v)", c.parent, c.b.clock.at(c.dl.at))
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
