package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ledger is the bulkhead's admission control and its statistics, under one mutex so that
// Stats is a consistent snapshot (the rules listed on Stats hold at every instant).
//
// It is a semaphore of maxActive permits with a queue of at most capacity-maxActive
// waiters (waitQueue: by priority, tenants in turn, FIFO within a tenant; plain FIFO for
// calls without either). A released permit passes straight to the waiter the queue serves
// next, so late arrivals cannot barge ahead. failsafe-go's bulkhead (a buffered channel)
// cannot serve here: it has no bound on waiters, no count of them, and cannot be resized.
type ledger struct {
	mu        sync.Mutex
	maxActive int // permits
	capacity  int // permits + queue places
	plainCap  int // permits + queue places for calls at or below PriorityNormal (<= capacity)
	held      int // permits held: active calls, abandoned calls, and grants not yet resumed
	queued    int
	waiting   waitQueue
	free      []*slot
	closed    bool
	drained   chan struct{} // closed once closed && held == 0 && queued == 0

	// An adaptive bulkhead's controller (nil when static), which sets maxActive and
	// capacity; ceiling and maxQueue are then the configured MaxConcurrentCalls and
	// MaxQueueSize. See adaptive.go.
	adapt             *adaptive
	ceiling, maxQueue int

	active    int
	abandoned int
	total     int64
	succeeded int64
	failed    int64
	rejected  int64
	timedOut  int64
	seq       uint64

	due deadlines // the timeout's deadlines and timer (timeout.go)
}

// slot is one permit. It is reused from call to call; gen tells a live Permit from a
// stale copy, so that a second release is detected rather than freeing someone else's.
type slot struct {
	gen  atomic.Uint64
	wake chan struct{} // a timed call's caller waits here (capacity 1, see callCtx.end)

	// Owned by the permit's holder between grant and release.
	probe     uint64        // the circuit's half-open round if this permit is a probe, else 0
	seq       uint64        // the call's number, for its ExecutionID
	admitted  time.Duration // clock offsets
	started   time.Duration
	caller    context.Context // Acquire's ctx, with a Timeout: did the caller leave? (see Release)
	abandoned bool            // guarded by ledger.mu
	ctxs      *permitCtx      // the contexts of Permit.Context, ended on release (ledger.mu)
}

// waiter is a caller in the queue.
type waiter struct {
	ready      chan struct{} // closed when granted (slot != nil) or refused (err != nil)
	slot       *slot
	err        *Error // ErrShutdown, or ErrTimeout when its Timeout passed (expireDue)
	prio       Priority
	tenant     *tenantQueue // its line in the queue (waitQueue)
	prev, next *waiter      // its neighbours in that line
	due        deadline     // listed while it waits, when the bulkhead has a Timeout
}

// refuseLocked turns w away with err, whether it still waits or was just granted a permit
// it has not taken up yet (the permit then passes on). It reports whether it did: a waiter
// already refused (Shutdown, then its Timeout before its caller is back) is left as it is.
func (l *ledger) refuseLocked(w *waiter, err *Error) bool {
	if w.err != nil {
		return false
	}
	w.err = err
	if s := w.slot; s != nil {
		w.slot = nil
		l.passLocked(s)
		return true
	}
	l.unlinkLocked(w)
	close(w.ready)
	return true
}

func (l *ledger) init(maxActive, maxQueue int, clk *clock, onDue func()) {
	l.due.clock, l.due.fire = clk, onDue
	l.maxActive, l.ceiling, l.maxQueue = maxActive, maxActive, maxQueue
	l.capacity = maxActive + maxQueue
	l.plainCap = l.capacity
	l.drained = make(chan struct{})
}

// takeSlotLocked returns a free slot, marking it held.
func (l *ledger) takeSlotLocked() *slot {
	l.held++
	if n := len(l.free); n > 0 {
		s := l.free[n-1]
		l.free = l.free[:n-1]
		return s
	}
	return &slot{wake: make(chan struct{}, 1)}
}

// startLocked counts s as a started call and numbers it. The caller stamps s.started.
func (l *ledger) startLocked(s *slot) {
	l.active++
	l.total++
	l.seq++
	s.seq = l.seq
	s.abandoned = false
}

// passLocked gives the permit of s to the waiter served next, or frees it. After a resize
// down, permits above the new limit are freed rather than passed on.
func (l *ledger) passLocked(s *slot) {
	if l.queued > 0 && l.held <= l.maxActive {
		w := l.popLocked()
		w.slot = s
		close(w.ready)
		return
	}
	l.held--
	l.free = append(l.free, s)
	l.checkDrainedLocked()
}

func (l *ledger) checkDrainedLocked() {
	if l.closed && l.held == 0 && l.queued == 0 {
		select {
		case <-l.drained:
		default:
			close(l.drained)
		}
	}
}

// resize changes the limits, starting waiters at once if permits were added. With a
// (non-nil) adaptive configuration the limit becomes adaptive, keeping what its
// controller learned if it already was; with nil it becomes maxActive.
func (l *ledger) resize(maxActive, maxQueue int, a *AdaptiveConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ceiling, l.maxQueue = maxActive, maxQueue
	switch {
	case a == nil:
		l.adapt = nil
	case l.adapt == nil:
		l.adapt = newAdaptive(*a, maxActive, l.due.clock.now())
	default:
		l.adapt.configure(*a, maxActive)
	}
	l.applyLimitLocked()
}

// applyLimitLocked sets the limit in force (the configured one, or the controller's) and
// the queue's bounds, and starts waiters at once if permits were added.
func (l *ledger) applyLimitLocked() {
	if c := l.adapt; c != nil {
		l.maxActive = c.inForce
		l.capacity = c.inForce + c.queueFor(l.maxQueue)
		l.plainCap = c.inForce + c.plainQueueFor(l.maxQueue)
	} else {
		l.maxActive = l.ceiling
		l.capacity = l.ceiling + l.maxQueue
		l.plainCap = l.capacity
	}
	for l.queued > 0 && l.held < l.maxActive {
		w := l.popLocked()
		w.slot = l.takeSlotLocked()
		close(w.ready)
	}
}

// tenantPlaces is how many queue places each tenant with waiters needs for the queue to
// serve the tenants in turn: a tenant that sends exactly its share has a backlog of one or
// two when its turn comes, and the call that arrives meanwhile needs a place too.
const tenantPlaces = 3

// tenantRoomLocked reports whether an adaptive bulkhead whose queue is at its bound may
// still queue a call of priority p and tenant, beyond the bound: when at least two tenants
// wait at p (the call's own counted), the call's tenant has fewer than tenantPlaces
// waiters at p, and the queue holds fewer than tenantPlaces per tenant waiting at p and
// fewer than MaxQueueSize. Calls without tenants never pass the bound.
//
// The adaptive bound (a fraction of the limit) keeps waits short, but it may be fewer
// places than the tenants waiting need: with 5 tenants behind a limit of 10, 5 places
// leave a tenant that sends exactly its share no room for the call that arrives while
// its last one waits, and tenants within their share push each other's calls out. The
// places added here go only to tenants with a short line, so a tenant that floods still
// waits within the bound, and a call waits at most about tenantPlaces turns of each
// tenant waiting.
func (l *ledger) tenantRoomLocked(p Priority, tenant string) bool {
	if l.queued >= l.maxQueue {
		return false
	}
	mine, tenants := l.waiting.tenantLine(p, tenant)
	if mine == 0 {
		tenants++
	}
	return tenants > 1 && mine < tenantPlaces && l.queued < tenantPlaces*tenants
}

func (l *ledger) pushLocked(w *waiter, p Priority, tenant string) {
	l.queued++
	l.waiting.push(w, p, tenant)
}

// popLocked takes the waiter to serve next out of the queue; the queue must not be empty.
func (l *ledger) popLocked() *waiter {
	l.queued--
	return l.waiting.pop()
}

func (l *ledger) unlinkLocked(w *waiter) {
	l.queued--
	l.waiting.remove(w)
}

// finishLocked records the end of a started call at end (a clock offset; before
// s.started if not read) and frees its permit. An adaptive bulkhead's controller learns
// the call's latency when learn is set: the call succeeded, timed out or was abandoned (a
// call that failed fast, or whose caller went away, says nothing about load).
func (l *ledger) finishLocked(s *slot, ok, learn bool, end time.Duration) {
	if c := l.adapt; c != nil && (learn || s.abandoned) {
		if end < s.started {
			end = l.due.clock.now()
		}
		if c.sample(s.started, end, l.held, !ok, l.waiting.urgent()) {
			l.applyLimitLocked()
		}
	}
	if s.abandoned {
		// Counted as failed when its caller gave up; now its permit comes back.
		l.abandoned--
	} else {
		l.active--
		if ok {
			l.succeeded++
		} else {
			l.failed++
		}
	}
	l.passLocked(s)
}

// abandonLocked records that the caller of a running call gave up on it (timeout or
// cancellation). The call counts as failed now; its permit stays held until it returns.
func (l *ledger) abandonLocked(s *slot, timedOut bool) {
	s.abandoned = true
	l.active--
	l.abandoned++
	l.failed++
	if timedOut {
		l.timedOut++
	}
}
