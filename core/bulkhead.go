package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Bulkhead limits how many calls run at once against one dependency, queues a bounded
// number of callers in FIFO order, optionally bounds each call with a timeout, and
// optionally isolates the dependency with a circuit breaker (Python: Bulkhead).
//
// A Bulkhead is safe for concurrent use. The zero Bulkhead is not usable: call New or
// Manager.Create.
type Bulkhead struct {
	name     string
	cfgMu    sync.Mutex
	cfg      Config       // guarded by cfgMu
	timeout  atomic.Int64 // time.Duration; Config.Timeout
	idPrefix uint64
	clock    clock
	circuit  *circuit // nil when the circuit breaker is disabled
	sharer   *sharer  // nil without a CircuitStore
	logger   *slog.Logger
	hooks    atomic.Pointer[[]func(Event)] // nil when no hook is set: see emit
	ownHooks []func(Event)                 // WithEventHook's; a Manager's subscribers come after them
	closed   atomic.Bool

	ledger ledger

	errFull     atomic.Pointer[Error] // names the capacity, which Reconfigure may change
	errTimeout  *Error
	errShutdown *Error
}

func fullError(cfg Config) *Error {
	c := cfg.MaxConcurrentCalls + cfg.MaxQueueSize
	return &Error{Bulkhead: cfg.Name, Err: ErrFull, detail: fmt.Sprintf("%d/%d", c, c)}
}

// New returns a Bulkhead for cfg. It returns an error naming every invalid field when cfg
// does not pass Validate.
func New(cfg Config, opts ...Option) (*Bulkhead, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	b := &Bulkhead{
		name:        cfg.Name,
		cfg:         cfg,
		idPrefix:    newIDPrefix(),
		clock:       newClock(),
		logger:      o.logger,
		ownHooks:    o.hooks,
		errTimeout:  &Error{Bulkhead: cfg.Name, Err: ErrTimeout},
		errShutdown: &Error{Bulkhead: cfg.Name, Err: ErrShutdown},
	}
	b.setSubscribers(o.subscribers)
	b.timeout.Store(int64(cfg.Timeout))
	b.errFull.Store(fullError(cfg))
	b.ledger.init(cfg.MaxConcurrentCalls, cfg.MaxQueueSize, &b.clock, b.expireDue)
	if cfg.CircuitBreakerEnabled {
		b.circuit = newCircuit(cfg, b.clock, o.logger)
		b.circuit.observe = func(from, to circuitStatus, _ time.Duration, remote bool) {
			if b.hooks.Load() != nil {
				b.emit(Event{Kind: EventStateChanged, From: from.state(), To: to.state(), Remote: remote})
			}
		}
		if o.store != nil {
			b.sharer = newSharer(b, o.store, o.storeTimeout)
			b.circuit.share = b.sharer.local
			b.sharer.start()
		}
	}
	return b, nil
}

// Name returns the bulkhead's name.
func (b *Bulkhead) Name() string { return b.name }

// Config returns a copy of the bulkhead's configuration.
func (b *Bulkhead) Config() Config {
	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	return b.cfg
}

// Reconfigure changes a running bulkhead's limits, timeout, thresholds and isolation
// without losing its statistics or its circuit state, and without dropping or counting
// twice a call in flight:
//
//   - Raising MaxConcurrentCalls starts queued callers at once. Lowering it lets running
//     calls finish; new calls start only once fewer than the new limit run.
//   - Lowering MaxQueueSize keeps the callers already waiting; new callers are refused
//     with ErrFull until the queue is under the new size.
//   - A new Timeout applies to calls admitted from now on.
//   - New thresholds, and a change between the consecutive and the failure-rate rule,
//     apply at once: a CLOSED circuit forgets its current run of failures (or the calls
//     of its failure-rate window), a HALF_OPEN one starts a new round of probes, an OPEN
//     one stays open until its isolation ends; a new IsolationDuration applies from the
//     next opening.
//
// Name and CircuitBreakerEnabled cannot change (create a new bulkhead instead), and
// HealthCheckInterval takes effect for bulkheads created after the change. An invalid cfg,
// or one that changes Name or CircuitBreakerEnabled, returns an error and changes nothing.
func (b *Bulkhead) Reconfigure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	old := b.cfg
	var errs []error
	if cfg.Name != old.Name {
		errs = append(errs, &ConfigError{Bulkhead: old.Name, Field: "Name", Value: cfg.Name, Reason: "cannot change on a running bulkhead"})
	}
	if cfg.CircuitBreakerEnabled != old.CircuitBreakerEnabled {
		errs = append(errs, &ConfigError{Bulkhead: old.Name, Field: "CircuitBreakerEnabled", Value: cfg.CircuitBreakerEnabled, Reason: "cannot change on a running bulkhead"})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b.timeout.Store(int64(cfg.Timeout))
	b.errFull.Store(fullError(cfg))
	if c := b.circuit; c != nil && (cfg.FailureThreshold != old.FailureThreshold ||
		cfg.SuccessThreshold != old.SuccessThreshold || cfg.IsolationDuration != old.IsolationDuration ||
		cfg.FailureRateThreshold != old.FailureRateThreshold || cfg.FailureRateWindow != old.FailureRateWindow ||
		cfg.MinimumCalls != old.MinimumCalls) {
		c.reconfigure(cfg)
	}
	b.ledger.resize(cfg.MaxConcurrentCalls, cfg.MaxQueueSize)
	b.cfg = cfg
	return nil
}

// State returns Healthy, Degraded or Isolated from the circuit's state (Python: get_state).
// Like Python bulkman, it does not move an OPEN circuit to HALF_OPEN when the isolation
// is over; the next call does that.
func (b *Bulkhead) State() State {
	if b.circuit == nil {
		return Healthy
	}
	return b.circuit.state().state()
}

// IsHealthy reports whether the bulkhead is Healthy or Degraded (Python: is_healthy).
func (b *Bulkhead) IsHealthy() bool { return b.State() != Isolated }

// Stats returns one consistent snapshot of the bulkhead's counters (Python: get_stats).
func (b *Bulkhead) Stats() Stats {
	l := &b.ledger
	l.mu.Lock()
	s := Stats{
		Name:                 b.name,
		TotalExecutions:      l.total,
		SuccessfulExecutions: l.succeeded,
		FailedExecutions:     l.failed,
		RejectedExecutions:   l.rejected,
		TimedOutExecutions:   l.timedOut,
		ActiveTasks:          l.active,
		AbandonedTasks:       l.abandoned,
		QueuedTasks:          l.queued,
		InFlightCount:        l.queued + l.active,
		MaxConcurrentCalls:   l.maxActive,
		MaxQueueSize:         l.capacity - l.maxActive,
		ConcurrencyLimit:     l.maxActive,
	}
	l.mu.Unlock()
	if c := b.circuit; c != nil {
		st := c.state()
		s.State = st.state()
		s.CircuitBreakerEnabled = true
		s.CircuitStatus = st.String()
		if st == statusOpen {
			s.OpenUntil = b.clock.at(time.Duration(c.openUntil.Load()))
		}
	}
	return s
}

// ResetStats zeroes the counters. Calls running at the time stay counted as started, so
// that TotalExecutions == SuccessfulExecutions + FailedExecutions + ActiveTasks still
// holds when they finish (the Python library breaks this). It does not touch the circuit.
func (b *Bulkhead) ResetStats() {
	l := &b.ledger
	l.mu.Lock()
	l.total = int64(l.active)
	l.succeeded, l.failed, l.rejected, l.timedOut = 0, 0, 0, 0
	l.mu.Unlock()
}

// Shutdown stops the bulkhead: from now on calls are refused with ErrShutdown (not
// counted), and callers waiting in the queue get ErrShutdown at once. Running calls finish
// normally and are recorded. Shutdown returns when every permit is back (including those
// of abandoned functions), or with ctx's error if ctx ends first. It is idempotent and
// safe to call concurrently.
func (b *Bulkhead) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return invalidArg("Shutdown: nil context")
	}
	b.closed.Store(true)
	l := &b.ledger
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for l.queued > 0 {
			l.refuseLocked(l.waiting.peek(), b.errShutdown)
		}
		l.checkDrainedLocked()
	}
	drained := l.drained
	l.mu.Unlock()
	select {
	case <-drained:
	case <-ctx.Done():
		return ctx.Err()
	}
	if b.sharer != nil {
		b.sharer.close()
	}
	return nil
}

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
// ctx done, shut down, circuit open, capacity, then the FIFO wait for a permit.
//
// A timed call passes timed, which makes the call's record (it reads the clock: the call
// is admitted at tc.start). admit calls it, under the ledger's lock, only once the call
// is admitted or queued, so that a refusal costs no allocation, and puts the record in
// the ledger's list of timed calls; its Timeout passing while it waits ends the wait with
// ErrTimeout, as does waitLimit (when > 0) passing. Otherwise the clock is read only when
// a call is admitted.
func (b *Bulkhead) admit(ctx context.Context, timed func() *callCtx, waitLimit time.Duration) (*slot, error) {
	var tc *callCtx
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
	var prio Priority // read from ctx only once the call cannot start at once
	var tenant string
	displaced := false
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		b.circuitNeutral(probe)
		return nil, b.refused(ctx, b.errShutdown)
	case l.held+l.queued >= l.capacity:
		// Full: take the place of a waiter of a lower priority, or of a tenant with more
		// waiters than this call's (see waitQueue.victim); else refuse.
		var v *waiter
		if l.queued > 0 { // else nobody to displace: no need to read ctx
			prio, tenant = classOf(ctx)
			v = l.waiting.victim(prio, tenant)
		}
		l.rejected++ // this call, or the waiter it displaces
		if v == nil {
			l.mu.Unlock()
			b.circuitNeutral(probe)
			return nil, b.refused(ctx, b.errFull.Load())
		}
		l.refuseLocked(v, b.errFull.Load())
		displaced = true
	case l.held < l.maxActive && l.queued == 0:
		s := l.takeSlotLocked()
		l.startLocked(s)
		var now time.Duration
		if timed != nil {
			tc = timed()
			now = tc.start
			tc.wake = s.wake
			l.watchLocked(tc)
		}
		l.mu.Unlock()
		if tc == nil {
			now = b.clock.now() // outside the lock: the slot is ours now
		}
		s.probe = probe
		s.admitted, s.started = now, now
		return s, nil
	}
	if !displaced {
		prio, tenant = classOf(ctx)
		if l.waiting.shed(prio, l.capacity-l.maxActive) {
			l.rejected++
			l.mu.Unlock()
			b.circuitNeutral(probe)
			return nil, b.refused(ctx, b.errFull.Load())
		}
	}
	w := &waiter{ready: make(chan struct{})}
	l.pushLocked(w, prio, tenant)
	var admitted time.Duration
	if timed != nil {
		tc = timed()
		admitted = tc.start
		tc.waiter = w
		l.watchLocked(tc)
	}
	l.mu.Unlock()
	if tc == nil {
		admitted = b.clock.now()
	}

	var timerC <-chan time.Time
	if waitLimit > 0 {
		t := time.NewTimer(waitLimit)
		defer t.Stop()
		timerC = t.C
	}
	var refusal error
	select {
	case <-w.ready:
	case <-ctx.Done():
		refusal = ctx.Err()
	case <-timerC:
		refusal = b.errTimeout
	}
	l.mu.Lock()
	if tc != nil {
		tc.waiter = nil
	}
	s := w.slot
	switch {
	case w.err != nil: // shut down, or its Timeout passed (expireDue counted it)
		refusal = w.err
	case s == nil: // still queued: leave, giving the place back at once
		l.unlinkLocked(w)
		if refusal == b.errTimeout {
			l.rejected++
		}
	case refusal != nil: // granted just as we gave up: pass the permit on
		l.passLocked(s)
		if refusal == b.errTimeout {
			l.rejected++
		}
	default:
		l.startLocked(s)
		if tc != nil {
			tc.wake = s.wake
		}
		l.mu.Unlock()
		s.probe = probe
		s.admitted, s.started = admitted, b.clock.now()
		return s, nil
	}
	if tc != nil {
		l.unwatchLocked(tc)
	}
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
			l.unwatchLocked(&c.callCtx)
		}
	}
	l.finishLocked(s, ok)
	if timedOut {
		l.timedOut++
	}
	if tc != nil {
		l.unwatchLocked(tc)
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
