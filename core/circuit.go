package core

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// circuit is the bulkhead's circuit breaker: failsafe-go's breaker (count-based for the
// consecutive rule, time-based for the failure-rate rule), driven through its standalone
// permit API (TryAcquirePermit, RecordSuccess, RecordFailure), plus
// what failsafe-go does not offer and a bulkhead needs:
//
//   - an atomic mirror of the state, so that the hot path of a CLOSED circuit takes no lock
//     of ours;
//   - open-until owned here rather than by failsafe-go's delay, so that a peer's OPEN can
//     be adopted with the peer's end time (failsafe-go's Open always starts a fresh delay);
//   - a neutral outcome for half-open probes (failsafe-go has no "release without verdict");
//   - one place, transitionLocked, through which every state change passes.
//
// failsafe-go's own delay is set to forever: the breaker never moves from OPEN to
// HALF_OPEN by itself, only when acquireSlow says so, under mu. That keeps every half-open
// permit accounted for here.
type circuit struct {
	cb        atomic.Pointer[breakerBox] // replaced only by reconfigure, under mu
	status    atomic.Int32               // circuitStatus mirror; written only under mu
	openUntil atomic.Int64               // clock offset (time.Duration); written only under mu
	// failedSince: a failure was recorded in CLOSED since the last recorded success.
	failedSince atomic.Bool

	mu        sync.Mutex
	round     uint64 // half-open round; a probe permit carries the round it was granted in
	probesOut int    // probe permits of the current round not yet released
	owed      int    // probe permits of the current round given back without a verdict
	isolation time.Duration
	opened    time.Duration         // when the circuit last went OPEN (a clock offset)
	openErr   atomic.Pointer[Error] // cached refusal, so rejections do not allocate
	busyErr   *Error                // refusal while every half-open probe is taken

	clock   clock
	name    string
	logger  *slog.Logger
	observe func(from, to circuitStatus, until time.Duration, remote bool) // event hooks; may be nil
	share   func(to circuitStatus, until time.Time, remote bool)           // a CircuitStore's writer; may be nil
}

// forever is failsafe-go's delay: see the type comment.
const forever = time.Duration(1<<63 - 1)

// maxIsolation caps IsolationDuration when the circuit opens, so that the end of the
// isolation (an offset on the bulkhead's clock) and RetryAfter cannot overflow: an
// isolation of math.MaxInt64, meant as "until further notice", must not wrap around to
// an end in the past. 146 years is further notice enough.
const maxIsolation = forever / 2

func newCircuit(cfg Config, clk clock, logger *slog.Logger) *circuit {
	c := &circuit{
		clock:     clk,
		isolation: cfg.IsolationDuration,
		name:      cfg.Name,
		logger:    logger,
		busyErr:   &Error{Bulkhead: cfg.Name, Err: ErrCircuitOpen, detail: "half-open, every probe is taken"},
	}
	c.cb.Store(buildBreaker(cfg))
	return c
}

// breakerBox is failsafe-go's breaker with the rule it applies while CLOSED.
type breakerBox struct {
	circuitbreaker.CircuitBreaker[any]
	rate     uint // FailureRateThreshold; 0: the consecutive rule
	minCalls uint // MinimumCalls, for the failure-rate rule
}

func (c *circuit) breaker() circuitbreaker.CircuitBreaker[any] { return c.cb.Load().CircuitBreaker }

// reconfigure moves the circuit to new thresholds and isolation, keeping its state:
// failsafe-go's breaker cannot change its thresholds, so a new one takes over in the same
// state. A CLOSED circuit forgets its current run of failures; a HALF_OPEN one starts a
// new round of probes; an OPEN one keeps its end time.
func (c *circuit) reconfigure(cfg Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncLocked()
	box := buildBreaker(cfg)
	cb := box.CircuitBreaker
	switch c.state() {
	case statusOpen:
		cb.Open()
	case statusHalfOpen:
		cb.Open()
		cb.HalfOpen()
		c.round++
		c.probesOut, c.owed = 0, 0
	}
	c.failedSince.Store(false)
	c.isolation = cfg.IsolationDuration
	c.cb.Store(box)
}

func buildBreaker(cfg Config) *breakerBox {
	b := circuitbreaker.NewBuilder[any]().
		WithSuccessThreshold(uint(cfg.SuccessThreshold)).
		WithDelay(forever)
	if cfg.FailureRateThreshold > 0 {
		// failsafe-go's time-based window (ten buckets over the period) keeps the count
		// of calls and failures; the circuit compares them itself (see checkRateLocked),
		// exactly: failsafe-go rounds the rate to two decimals before comparing, which
		// would open a 50% threshold at 49.5%. An execution threshold no count reaches
		// keeps failsafe-go from opening by itself. The period is at least one
		// nanosecond per bucket, which failsafe-go divides by.
		b = b.WithFailureRateThreshold(1, math.MaxUint, max(cfg.FailureRateWindow, rateBuckets))
		return &breakerBox{CircuitBreaker: b.Build(), rate: uint(cfg.FailureRateThreshold), minCalls: uint(cfg.MinimumCalls)}
	}
	// A count-based window of n results that opens at n failures opens after n
	// consecutive failures; likewise for the half-open window of SuccessThreshold, which
	// also caps the probes admitted at once and re-opens on the first probe failure.
	return &breakerBox{CircuitBreaker: b.WithFailureThreshold(uint(cfg.FailureThreshold)).Build()}
}

// rateBuckets is the number of buckets of failsafe-go's time-based window.
const rateBuckets = 10

// checkRateLocked opens a CLOSED circuit under the failure-rate rule when, in the window
// as failsafe-go keeps it after the last record, at least minCalls calls ended and at
// least rate percent of them failed.
func (c *circuit) checkRateLocked(box *breakerBox) {
	m := box.Metrics()
	if n := m.Executions(); n >= box.minCalls && m.Failures()*100 >= box.rate*n {
		box.Open()
		c.syncLocked()
	}
}

func (c *circuit) state() circuitStatus { return circuitStatus(c.status.Load()) }

// reported returns the state as Stats and State show it, and the end of the isolation
// (a clock offset) when that state is OPEN. An OPEN whose isolation is over reads
// HALF_OPEN: the next call is a probe (acquireSlow moves the circuit itself then), and
// until it comes the circuit refuses nothing. Computed on read, so that no timer runs
// and no call pays for it.
func (c *circuit) reported() (circuitStatus, time.Duration) {
	st := c.state()
	if st != statusOpen {
		return st, 0
	}
	until := time.Duration(c.openUntil.Load()) // stored before the status: see transitionLocked
	if c.clock.now() >= until {
		return statusHalfOpen, 0
	}
	return statusOpen, until
}

// acquire asks the circuit to let one call through. It returns the half-open round when
// the permit is a probe (0 otherwise), or a *Error wrapping ErrCircuitOpen.
func (c *circuit) acquire() (uint64, error) {
	switch c.state() {
	case statusOpen:
		// Refuse without the lock while the isolation lasts.
		if now := c.clock.now(); int64(now) < c.openUntil.Load() {
			return 0, c.openRefusal(now)
		}
	case statusClosed:
		// failsafe-go's TryAcquirePermit grants every CLOSED request and keeps no count
		// of them, so the hot path asks only the mirror. The mirror leaves CLOSED before
		// failsafe-go can hand out a half-open permit (see acquireSlow), so every such
		// permit passes through acquireSlow and is counted there.
		return 0, nil
	}
	return c.acquireSlow()
}

func (c *circuit) acquireSlow() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncLocked()
	switch c.state() {
	case statusClosed:
		if c.breaker().TryAcquirePermit() {
			return 0, nil
		}
		c.syncLocked()
		return 0, c.refusalLocked()
	case statusOpen:
		if now := c.clock.now(); int64(now) < c.openUntil.Load() {
			return 0, c.openRefusal(now)
		}
		// Isolation is over: start a half-open round. The mirror moves first, so that a
		// fast-path caller never takes a half-open permit believing the circuit closed.
		c.transitionLocked(statusOpen, statusHalfOpen, 0, false)
		c.breaker().HalfOpen()
	}
	if c.breaker().TryAcquirePermit() {
		c.probesOut++
		return c.round, nil
	}
	c.syncLocked()
	return 0, c.refusalLocked()
}

// release records the outcome of a call the circuit let through with probe round probe.
func (c *circuit) release(probe uint64, o Outcome) {
	if probe == 0 && c.state() == statusClosed {
		switch o {
		case Neutral:
			return // CLOSED permits hold nothing in failsafe-go: nothing to give back
		case Success:
			if c.cb.Load().rate != 0 {
				break // the failure-rate rule counts every call: record it below
			}
			// In a count-based window of n that opens at n failures, a success matters
			// only when failures were recorded after the last success: after that one,
			// the window cannot be all failures until n more failures come. So the hot
			// path records a success only when a failure came since the last one.
			// (A success racing a failure is then ordered before it, which is as valid
			// an order as any for calls that end at the same time.)
			if c.failedSince.Load() && c.failedSince.CompareAndSwap(true, false) {
				// The circuit may have opened (and even gone half-open) since the
				// state was read above: record only while it is still CLOSED, or
				// failsafe-go counts a half-open success it never gave a permit for.
				c.mu.Lock()
				if c.state() == statusClosed {
					c.breaker().RecordSuccess()
				}
				c.mu.Unlock()
			}
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncLocked()
	switch c.state() {
	case statusOpen:
		return // a late outcome while OPEN changes nothing
	case statusHalfOpen:
		if probe != c.round {
			// Granted before this round began: recording it would hand failsafe-go a
			// permit it never gave out, letting one probe too many through.
			return
		}
		c.probesOut--
		switch o {
		case Success:
			c.breaker().RecordSuccess()
		case Failure:
			c.breaker().RecordFailure()
		case Neutral:
			c.owed++
		}
		c.syncLocked()
		if c.state() == statusHalfOpen && c.probesOut == 0 && c.owed > 0 {
			// Probes ended without a verdict and took their permits with them. Start the
			// round afresh so that probing goes on (earlier successes of the round are
			// forgotten: the circuit closes only on a full run of them).
			c.breaker().Open()
			c.breaker().HalfOpen()
			c.round++
			c.owed = 0
		}
	case statusClosed:
		box := c.cb.Load()
		switch o {
		case Success:
			c.failedSince.Store(false)
			box.RecordSuccess()
		case Failure:
			box.RecordFailure()
			c.failedSince.Store(true) // after the record: see the Success case above
		default:
			return
		}
		if box.rate != 0 {
			// A success can open it too: it may bring the count to MinimumCalls, and
			// the window it slides may drop older successes. failsafe-go never moves
			// by itself under this rule (see buildBreaker): only checkRateLocked does.
			c.checkRateLocked(box)
			return
		}
		c.syncLocked()
	}
}

// syncLocked brings the mirror in line with failsafe-go's state after a Record call that
// may have moved it (CLOSED→OPEN on a failure, HALF_OPEN→OPEN or →CLOSED on a probe).
func (c *circuit) syncLocked() {
	var actual circuitStatus
	switch c.breaker().State() {
	case circuitbreaker.OpenState:
		actual = statusOpen
	case circuitbreaker.HalfOpenState:
		actual = statusHalfOpen
	default:
		actual = statusClosed
	}
	if from := c.state(); from != actual {
		var until time.Duration
		if actual == statusOpen {
			until = c.clock.now() + min(c.isolation, maxIsolation)
		}
		c.transitionLocked(from, actual, until, false)
	}
}

// transitionLocked is the one place every state change passes through: the mirror, the
// open-until, the half-open round, logging and the observer (a store, events) all follow
// from here. remote marks a state adopted from a peer, which must not be written back.
// until is the end of isolation for OPEN, as a clock offset.
func (c *circuit) transitionLocked(from, to circuitStatus, until time.Duration, remote bool) {
	switch to {
	case statusOpen:
		c.opened = c.clock.now()
		// open-until first: a lock-free reader that sees OPEN must see its end time.
		c.openUntil.Store(int64(until))
		c.openErr.Store(nil)
	case statusHalfOpen:
		c.round++
		c.probesOut = 0
		c.owed = 0
	case statusClosed:
		c.failedSince.Store(false) // failsafe-go starts an empty window
	}
	c.status.Store(int32(to))
	if c.logger.Enabled(context.Background(), slog.LevelWarn) {
		attrs := []any{slog.String("bulkhead", c.name), slog.String("from", from.String()), slog.String("to", to.String())}
		if to == statusOpen {
			attrs = append(attrs, slog.Time("open_until", c.clock.at(until)))
		}
		if remote {
			attrs = append(attrs, slog.Bool("remote", true))
		}
		level := slog.LevelInfo
		if to == statusOpen {
			level = slog.LevelWarn
		}
		c.logger.Log(context.Background(), level, "bulkman: circuit state changed", attrs...)
	}
	if c.observe != nil {
		c.observe(from, to, until, remote)
	}
	if c.share != nil {
		c.share(to, c.clock.at(until), remote)
	}
}

// adopt applies a record a peer saved (or the stored record at start). A live OPEN is
// adopted with the peer's end time; a CLOSED is adopted unless this process's own
// isolation still runs or it was written before this circuit opened; HALF_OPEN is
// ignored (each process probes for itself). Adopted
// transitions are marked remote, so they are not written back.
func (c *circuit) adopt(rec CircuitRecord) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncLocked()
	cur := c.state()
	switch rec.Status {
	case StatusOpen:
		if !rec.live(now) {
			return
		}
		until := c.clock.offset(rec.OpenUntil)
		if cur == statusOpen {
			// The first opener's end time wins, unless it is this one's as the store keeps
			// it (rounded: see CircuitStore.Save), which must not move it.
			if d := time.Duration(c.openUntil.Load()) - until; d <= -storePrecision || d >= storePrecision {
				c.openUntil.Store(int64(until))
				c.openErr.Store(nil)
			}
			return
		}
		c.breaker().Open()
		c.transitionLocked(cur, statusOpen, until, true)
	case StatusClosed:
		if cur == statusClosed || (cur == statusOpen && int64(c.clock.now()) < c.openUntil.Load()) {
			return
		}
		if c.clock.offset(rec.UpdatedAt) < c.opened {
			// Written before this circuit opened (a peer's recovery from an earlier
			// opening, or, under a quorum, the fleet's record while this replica opened
			// alone): it says nothing of the dependency since. The circuit probes for
			// itself.
			return
		}
		c.breaker().Close()
		c.transitionLocked(cur, statusClosed, 0, true)
	}
}

// refusalLocked returns the error for a refused call, with RetryAfter the isolation left.
// It is cached per 10ms of remaining isolation so that refusals do not allocate.
func (c *circuit) refusalLocked() error {
	if c.state() != statusOpen {
		return c.busyErr
	}
	return c.openRefusal(c.clock.now())
}

const retryAfterGrain = 10 * time.Millisecond

func (c *circuit) openRefusal(now time.Duration) *Error {
	left := time.Duration(c.openUntil.Load()) - now
	if left < 0 {
		left = 0
	}
	// Round up to the grain: a hint to retry too early is worse than one a little late.
	left = (left + retryAfterGrain - 1) / retryAfterGrain * retryAfterGrain
	if e := c.openErr.Load(); e != nil && e.RetryAfter == left {
		return e
	}
	e := &Error{Bulkhead: c.name, Err: ErrCircuitOpen, RetryAfter: left}
	c.openErr.Store(e)
	return e
}
