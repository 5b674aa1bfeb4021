package core

import (
	"context"
	"time"
)

// Admission and release: the path every call takes through a bulkhead, Execute's and
// Acquire's alike. admit applies the checks in order and either starts the call on a free
// permit or queues it; finish records how a started call ended and frees its permit.

// reject counts a refusal of the call of ctx and returns err.
func (b *Bulkhead) reject(ctx context.Context, err *Error) error {
	b.ledger.mu.Lock()
	b.ledger.rejected++
	b.ledger.mu.Unlock()
	return b.refused(ctx, err)
}

// refused reports a refusal of the call of ctx that admit counted under the ledger's lock.
func (b *Bulkhead) refused(ctx context.Context, err *Error) error {
	if b.hooks.Load() != nil {
		b.emit(Event{Kind: EventRejected, Err: err.Err, Priority: PriorityFrom(ctx)})
	}
	return err
}

// admit runs the admission checks in the documented order and returns a held slot:
// ctx done, shut down, circuit open, capacity (where a call may take a queued caller's
// place: see waitQueue.victim), then a permit at once (startNow) or the wait in the queue
// (wait). The call's priority and tenant are read from ctx only when it cannot start at
// once.
//
// timeout is the bulkhead's Timeout as the call read it (0: none). It bounds the wait in
// the queue (ErrTimeout), through the bulkhead's deadline list. A timed Execute passes
// timed, which makes the call's context; admit calls it under the ledger's lock once the
// call starts, so that a refusal costs no allocation, and lists the context's deadline
// (admission plus timeout). Otherwise the clock is read outside the lock.
func (b *Bulkhead) admit(ctx context.Context, timeout time.Duration, timed func() *callCtx) (*slot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.closed.Load() {
		return nil, b.refused(ctx, b.errShutdown)
	}
	var probe uint64
	if c := b.circuit; c != nil {
		var err error
		if probe, err = c.acquire(); err != nil {
			return nil, b.reject(ctx, err.(*Error))
		}
	}
	l := &b.ledger
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		b.circuitNeutral(probe)
		return nil, b.refused(ctx, b.errShutdown)
	case l.held+l.queued >= l.capacity && l.queued == 0: // full, nobody to displace
		l.rejected++
		l.mu.Unlock()
		b.circuitNeutral(probe)
		return nil, b.refused(ctx, b.errFull.Load())
	case l.held+l.queued >= l.capacity:
		prio, tenant := classOf(ctx)
		return b.full(ctx, probe, timeout, timed, prio, tenant)
	case l.held < l.maxActive && l.queued == 0:
		return b.startNow(probe, timeout, timed), nil
	}
	return b.enqueue(ctx, probe, timeout, timed)
}

// full admits a call of priority prio and tenant to a full bulkhead in the place of the
// waiter it displaces, or refuses it. It is called with the ledger's lock held. (Apart
// from admit, like enqueue, so that the path of a call that starts at once stays as short
// as it was.)
func (b *Bulkhead) full(ctx context.Context, probe uint64, timeout time.Duration, timed func() *callCtx, prio Priority, tenant string) (*slot, error) {
	l := &b.ledger
	if l.adapt != nil && l.tenantRoomLocked(prio, tenant) {
		return b.queue(ctx, probe, timeout, timed, prio, tenant)
	}
	v := l.waiting.victim(prio, tenant)
	l.rejected++ // this call, or the waiter it displaces
	if v == nil {
		l.mu.Unlock()
		b.circuitNeutral(probe)
		return nil, b.refused(ctx, b.errFull.Load())
	}
	l.refuseLocked(v, b.errFull.Load())
	return b.wait(ctx, probe, timeout, timed, prio, tenant)
}

// enqueue queues a call that cannot start at once, unless its priority's share of the
// queue is used up (waitQueue.shed). It is called with the ledger's lock held. A call at
// or below PriorityNormal finds an adaptive bulkhead full at its smaller bound (plainCap,
// see adaptive.plainQueueFor).
func (b *Bulkhead) enqueue(ctx context.Context, probe uint64, timeout time.Duration, timed func() *callCtx) (*slot, error) {
	l := &b.ledger
	prio, tenant := classOf(ctx)
	if l.held+l.queued >= l.plainCap && prio <= PriorityNormal {
		return b.full(ctx, probe, timeout, timed, prio, tenant)
	}
	return b.queue(ctx, probe, timeout, timed, prio, tenant)
}

// queue is enqueue for a call whose priority and tenant are known.
func (b *Bulkhead) queue(ctx context.Context, probe uint64, timeout time.Duration, timed func() *callCtx, prio Priority, tenant string) (*slot, error) {
	l := &b.ledger
	if l.waiting.shed(prio, max(l.capacity-l.maxActive, l.queued)) {
		l.rejected++
		l.mu.Unlock()
		b.circuitNeutral(probe)
		return nil, b.refused(ctx, b.errFull.Load())
	}
	return b.wait(ctx, probe, timeout, timed, prio, tenant)
}

// startNow starts a call on a free permit. It is called with the ledger's lock held and
// releases it.
func (b *Bulkhead) startNow(probe uint64, timeout time.Duration, timed func() *callCtx) *slot {
	l := &b.ledger
	s := l.takeSlotLocked()
	l.startLocked(s)
	var now time.Duration
	if timed != nil {
		now = b.clock.now() // under the lock: the deadline list is in deadline order
		b.startTimedLocked(s, timed, now+timeout, nil)
	}
	l.mu.Unlock()
	if timed == nil {
		now = b.clock.now() // outside the lock: the slot is ours now
	}
	s.probe = probe
	s.admitted, s.started = now, now
	return s
}

// startTimedLocked makes a timed call's context and lists its deadline, in the place of
// its waiter's (w) if it queued.
func (b *Bulkhead) startTimedLocked(s *slot, timed func() *callCtx, due time.Duration, w *waiter) {
	c := timed()
	c.wake = s.wake
	c.dl.at, c.dl.c = due, c
	if w != nil {
		b.ledger.due.replace(&w.due, &c.dl)
	} else {
		b.ledger.due.add(&c.dl)
	}
}

// wait queues the caller, of priority prio and tenant, until a permit passes to it, its
// ctx ends, its timeout passes, a call of a higher priority or of a tenant with fewer
// waiters takes its place, or the bulkhead shuts down. It is called with the ledger's
// lock held.
func (b *Bulkhead) wait(ctx context.Context, probe uint64, timeout time.Duration, timed func() *callCtx, prio Priority, tenant string) (*slot, error) {
	l := &b.ledger
	w := &waiter{ready: make(chan struct{})}
	l.pushLocked(w, prio, tenant)
	var admitted time.Duration
	if timeout > 0 {
		admitted = b.clock.now() // under the lock: the deadline list is in deadline order
		w.due.at, w.due.w = admitted+timeout, w
		l.due.add(&w.due)
	}
	l.mu.Unlock()
	if timeout == 0 {
		admitted = b.clock.now()
	}

	var refusal error
	select {
	case <-w.ready:
	case <-ctx.Done():
		refusal = ctx.Err()
	}
	l.mu.Lock()
	s := w.slot
	switch {
	case w.err != nil: // shut down, displaced, or its timeout passed (counted then)
		refusal = w.err
	case s == nil: // still queued: leave, giving the place back at once
		l.unlinkLocked(w)
	case refusal != nil: // granted just as ctx ended: pass the permit on
		l.passLocked(s)
	default:
		l.startLocked(s)
		if timed != nil {
			b.startTimedLocked(s, timed, admitted+timeout, w)
		} else {
			l.due.remove(&w.due)
		}
		l.mu.Unlock()
		s.probe = probe
		s.admitted, s.started = admitted, b.clock.now()
		return s, nil
	}
	l.due.remove(&w.due)
	l.checkDrainedLocked()
	l.mu.Unlock()
	b.circuitNeutral(probe)
	if e, ok := refusal.(*Error); ok {
		return nil, b.refused(ctx, e)
	}
	return nil, refusal
}

// circuitNeutral gives back a circuit permit that was never used.
func (b *Bulkhead) circuitNeutral(probe uint64) {
	if c := b.circuit; c != nil {
		c.release(probe, Neutral)
	}
}

// finish records the outcome of a started call: ok for the ledger, o for the circuit.
// end is when the call ended (a clock offset); tc is the call's context if it is timed.
func (b *Bulkhead) finish(s *slot, ok bool, o Outcome, end time.Duration, tc *callCtx) {
	timedOut := o == TimedOut
	if timedOut {
		o = Failure
	}
	if c := b.circuit; c != nil {
		c.release(s.probe, o)
	}
	var queued, ran time.Duration
	hooks := b.hooks.Load() // once: a subscriber may come or go meanwhile
	if hooks != nil {
		if end < s.started { // Permit.Release reads the clock only if there were hooks
			end = b.clock.now()
		}
		queued, ran = s.started-s.admitted, end-s.started
	}
	l := &b.ledger
	l.mu.Lock()
	ctxs := s.ctxs
	if ctxs != nil {
		s.ctxs = nil
		for c := ctxs; c != nil; c = c.nextOfSlot {
			l.due.remove(&c.dl)
		}
	}
	l.finishLocked(s, ok, ok || timedOut, end)
	if timedOut {
		l.timedOut++
	}
	if tc != nil {
		l.due.remove(&tc.dl)
	}
	l.mu.Unlock()
	for c := ctxs; c != nil; c = c.nextOfSlot {
		c.release()
	}
	if hooks != nil {
		b.emitFinished(timedOut, o, queued, ran)
	}
}

// emitFinished tells the hooks that a call ended. It is apart from finish to keep the
// events off finish's stack frame: finish runs on goroutines that have just started (a
// timed call's, an HTTP handler's), where a larger frame can cost a stack copy per call.
//
//go:noinline
func (b *Bulkhead) emitFinished(timedOut bool, o Outcome, queued, ran time.Duration) {
	if timedOut {
		b.emit(Event{Kind: EventTimedOut})
	}
	b.emit(Event{Kind: EventFinished, Outcome: o, QueuedTime: queued, ExecutionTime: ran})
}
