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
// Manager.Create. A nil *Bulkhead is no bulkhead (what a Selector returns for a call it
// leaves unguarded): no method panics on it; those that report answer as for nothing (Name
// "", the zero Config and Stats, State Healthy), and those that act (Execute, Acquire,
// Reconfigure, Shutdown) return an error wrapping ErrInvalidArgument.
type Bulkhead struct {
	name     string
	cfgMu    sync.Mutex
	cfg      Config       // guarded by cfgMu
	timeout  atomic.Int64 // time.Duration; Config.Timeout, at most maxTimeout
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
	b.timeout.Store(int64(min(cfg.Timeout, maxTimeout)))
	b.errFull.Store(fullError(cfg))
	b.cfg.Adaptive = cloneAdaptive(cfg.Adaptive)
	b.ledger.init(cfg.MaxConcurrentCalls, cfg.MaxQueueSize, &b.clock, b.expireDue)
	if cfg.Adaptive != nil {
		b.ledger.resize(cfg.MaxConcurrentCalls, cfg.MaxQueueSize, cfg.Adaptive)
	}
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

// Name returns the bulkhead's name ("" for a nil *Bulkhead).
func (b *Bulkhead) Name() string {
	if b == nil {
		return ""
	}
	return b.name
}

// Config returns a copy of the bulkhead's configuration (the zero Config for a nil
// *Bulkhead).
func (b *Bulkhead) Config() Config {
	if b == nil {
		return Config{}
	}
	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	cfg := b.cfg
	cfg.Adaptive = cloneAdaptive(cfg.Adaptive)
	return cfg
}

// cloneAdaptive returns a copy of a, so that a Bulkhead's Config shares nothing with its
// caller's.
func cloneAdaptive(a *AdaptiveConfig) *AdaptiveConfig {
	if a == nil {
		return nil
	}
	c := *a
	return &c
}

// Reconfigure changes a running bulkhead's limits, timeout, thresholds and isolation
// without losing its statistics or its circuit state, and without dropping or counting
// twice a call in flight:
//
//   - Raising MaxConcurrentCalls starts queued callers at once. Lowering it lets running
//     calls finish; new calls start only once fewer than the new limit run.
//   - Setting Adaptive makes the limit adaptive: it starts at Adaptive's initial limit
//     and finds its level from there. Changing an adaptive bulkhead's Adaptive or
//     MaxConcurrentCalls keeps the limit it found, within the new bounds. Setting Adaptive
//     to nil makes the limit MaxConcurrentCalls again. Statistics and circuit stay.
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
	if b == nil {
		return invalidArg("Reconfigure: nil Bulkhead")
	}
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
	b.timeout.Store(int64(min(cfg.Timeout, maxTimeout)))
	b.errFull.Store(fullError(cfg))
	if c := b.circuit; c != nil && (cfg.FailureThreshold != old.FailureThreshold ||
		cfg.SuccessThreshold != old.SuccessThreshold || cfg.IsolationDuration != old.IsolationDuration ||
		cfg.FailureRateThreshold != old.FailureRateThreshold || cfg.FailureRateWindow != old.FailureRateWindow ||
		cfg.MinimumCalls != old.MinimumCalls) {
		c.reconfigure(cfg)
	}
	cfg.Adaptive = cloneAdaptive(cfg.Adaptive)
	b.ledger.resize(cfg.MaxConcurrentCalls, cfg.MaxQueueSize, cfg.Adaptive)
	b.cfg = cfg
	return nil
}

// State returns Healthy, Degraded or Isolated from the circuit's state (Python: get_state).
// A circuit whose isolation is over reads Degraded (HALF_OPEN) at once, whether or not a
// call has arrived since: the next call is a probe (deviation: the Python library keeps
// reporting it isolated until that call). A bulkhead without a circuit breaker is always
// Healthy.
func (b *Bulkhead) State() State {
	if b == nil || b.circuit == nil {
		return Healthy
	}
	st, _ := b.circuit.reported()
	return st.state()
}

// IsHealthy reports whether the bulkhead is Healthy or Degraded (Python: is_healthy).
func (b *Bulkhead) IsHealthy() bool { return b.State() != Isolated }

// Stats returns one consistent snapshot of the bulkhead's counters (Python: get_stats);
// the zero Stats for a nil *Bulkhead.
func (b *Bulkhead) Stats() Stats {
	if b == nil {
		return Stats{}
	}
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
		MaxConcurrentCalls:   l.ceiling,
		MaxQueueSize:         l.maxQueue,
		ConcurrencyLimit:     l.maxActive,
	}
	l.mu.Unlock()
	if c := b.circuit; c != nil {
		st, until := c.reported()
		s.State = st.state()
		s.CircuitBreakerEnabled = true
		s.CircuitStatus = st.String()
		if st == statusOpen {
			s.OpenUntil = b.clock.at(until)
		}
	}
	return s
}

// ResetStats zeroes the counters. Calls running at the time stay counted as started, so
// that TotalExecutions == SuccessfulExecutions + FailedExecutions + ActiveTasks still
// holds when they finish (the Python library breaks this). It does not touch the circuit.
func (b *Bulkhead) ResetStats() {
	if b == nil {
		return
	}
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
//
// With a CircuitStore, Shutdown then writes the last transition not yet written, within
// ctx, and stops the bulkhead's store goroutine and subscription. If ctx ends first
// (running calls have not finished, or the store does not answer), the store call in
// progress is cancelled and nothing more is written; the goroutine and the subscription
// are gone all the same when Shutdown returns, so a bulkhead taken out of a Manager and
// shut down leaves nothing behind. A later Shutdown still waits for running calls.
func (b *Bulkhead) Shutdown(ctx context.Context) error {
	if b == nil || ctx == nil {
		return invalidArg("Shutdown: nil Bulkhead or context")
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
		if b.sharer != nil {
			_ = b.sharer.close(ctx) // ctx is done: stop sharing at once, writing nothing more
		}
		return ctx.Err()
	}
	if b.sharer != nil {
		return b.sharer.close(ctx)
	}
	return nil
}
