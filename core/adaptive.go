package core

import (
	"fmt"
	"math"
	"time"
)

// AdaptiveConfig makes a bulkhead find its own concurrency limit (Config.Adaptive). The
// limit moves between MinConcurrentCalls and Config.MaxConcurrentCalls, which becomes the
// ceiling. Only MinConcurrentCalls is required; every other field's zero value means its
// default, and the defaults need no tuning (docs/user-guide.md, "Adaptive limits").
//
// AdaptiveConfig is a plain value, copied into the bulkhead's Config.
type AdaptiveConfig struct {
	// MinConcurrentCalls is the floor of the limit (>= 1, at most MaxConcurrentCalls).
	MinConcurrentCalls int
	// InitialConcurrentCalls is the limit a new bulkhead starts with (0: the floor). The
	// limit then grows per measurement window (doubling under 4, by half from there)
	// while the latency stays near the dependency's unloaded latency, so a low start
	// costs little time.
	// When set, it must lie between MinConcurrentCalls and MaxConcurrentCalls.
	InitialConcurrentCalls int
	// QueuePerLimit bounds the queue by the limit: at most
	// min(MaxQueueSize, max(1, floor(limit x QueuePerLimit))) callers wait (0: 0.5, half the
	// limit's worth, so a caller waits about half a call of the dependency). Between 0 and
	// 100. A queue bound only by MaxQueueSize lets waits grow far past the dependency's
	// latency once the limit is well below the ceiling: 100 waiters behind a limit of 8
	// calls of 20ms wait 250ms.
	//
	// For calls up to PriorityNormal, once the controller has measured how many calls the
	// dependency serves at once (C), the bound is floor(C x QueuePerLimit - calls waiting
	// inside the dependency): a caller waits in both queues. It may be 0 once a call waits
	// inside, which keeps the dependency busy by itself. Calls above PriorityNormal keep
	// the whole bound.
	QueuePerLimit float64
	// Tolerance is how far the latency may rise above the unloaded latency, as a share of
	// the limit's worth of calls waiting inside the dependency, before the limit comes
	// down (0: 0.25, i.e. the dependency may hold a quarter of the limit beyond its
	// capacity, and at least one and a half). Between 0 and 1. The calls waiting inside
	// keep the dependency busy between one call's end and the next call's start: at a
	// fifth, the limit settled at 9 in front of a capacity of 8 and goodput was 0.4% lower.
	Tolerance float64
}

// Defaults of AdaptiveConfig's tuning fields.
const (
	defaultQueuePerLimit = 0.5
	defaultTolerance     = 0.25
	maxQueuePerLimit     = 100
)

// validate appends one *ConfigError per bad field of a, for a bulkhead whose ceiling is
// maxCalls.
func (a *AdaptiveConfig) validate(bad func(field string, value any, reason string), maxCalls int) {
	if a.MinConcurrentCalls < 1 || a.MinConcurrentCalls > maxCalls {
		bad("Adaptive.MinConcurrentCalls", a.MinConcurrentCalls, fmt.Sprintf("must be between 1 and MaxConcurrentCalls (%d)", maxCalls))
	}
	if a.InitialConcurrentCalls != 0 && (a.InitialConcurrentCalls < a.MinConcurrentCalls || a.InitialConcurrentCalls > maxCalls) {
		bad("Adaptive.InitialConcurrentCalls", a.InitialConcurrentCalls, fmt.Sprintf("must be 0 (the floor) or between MinConcurrentCalls (%d) and MaxConcurrentCalls (%d)", a.MinConcurrentCalls, maxCalls))
	}
	if !(a.QueuePerLimit >= 0 && a.QueuePerLimit <= maxQueuePerLimit) { // NaN fails too
		bad("Adaptive.QueuePerLimit", a.QueuePerLimit, fmt.Sprintf("must be between 0 (the default, %g) and %d", defaultQueuePerLimit, maxQueuePerLimit))
	}
	if !(a.Tolerance >= 0 && a.Tolerance <= 1) {
		bad("Adaptive.Tolerance", a.Tolerance, fmt.Sprintf("must be between 0 (the default, %g) and 1", defaultTolerance))
	}
}

// The controller's fixed rules. They are ratios and counts of calls, so that they hold
// whether a call takes a millisecond or a minute; the one duration is the host's.
const (
	// A window ends when at least max(2 x limit, windowMinCalls) calls ended in it, and
	// two unloaded latencies passed, and at least windowMinTime: for calls of a few
	// milliseconds, whose latencies the host's scheduling blurs (a pause of the process, a
	// collection, a scheduler's slice of 4 to 10ms delays a whole window of them), a
	// shorter window mistakes one such pause for a crowded dependency. Measured on a busy
	// 2-CPU host at 1ms over HTTP, 40ms windows kept 1.3x to 2x the goodput of 10ms ones.
	windowMinCalls = 4
	windowMinTime  = 40 * time.Millisecond
	// Every probeEvery windows, one window runs at three quarters of the limit (one call
	// fewer at least) to measure the unloaded latency afresh: below the capacity whenever
	// the limit is within a third above it, as it is once settled. (At the ceiling with
	// nobody waiting, one call fewer: the dependency then serves the whole limit.) The
	// first probes come sooner (after 8 and 16 windows), while the limit is still finding
	// its level; not at the ceiling, where it has none left to find. A probe costs about
	// a third of an unloaded latency of the dependency's throughput: under 1% every 32
	// windows of about two unloaded latencies each.
	probeEvery = 32
	// The unloaded latency comes from the last probeKeep probes: their lowest, so that
	// one probe taken while the limit was far too high (right after the capacity fell)
	// cannot raise it, unless the spread of latencies says otherwise (see reference,
	// whose rules weigh a pair).
	probeKeep = 2
	// A probe that falls due while calls above PriorityNormal wait is postponed, up to
	// probePostpone x probeEvery windows since the last one. A probe slows the calls
	// that wait for about three windows (the limit's drain, the probe, the refill): so
	// that it touches fewer than 1% of them when urgent calls wait all the time, and
	// leaves their p99 alone, it may come only every few hundred windows.
	probePostpone = 16
	// A window's mean is as noisy as the dependency's latencies are spread. So that it
	// measures the calls waiting inside to a twentieth of the limit or better, and to a
	// quarter of a call at small limits (where the thresholds are counts of calls, not
	// shares of the limit), a window that does not already decide clearly (see decisive)
	// holds at least min(spreadSamples, 16 x limit^2) x cv^2 calls, cv the coefficient of
	// variation of the dependency's own latencies (its standard deviation over its mean,
	// measured where it is not crowded), up to maxSpread: at a limit of 5 or more, 100
	// calls at a cv of 0.5 and 400 at 1; at a limit of 2, 16 and 64. With calls that all
	// take about as long, this adds nothing to the counts above. Measured in simulation,
	// windows of 2 x limit calls let the limit wander between 5 and 14 in front of a
	// capacity of 8 at a cv of 0.5, and fall to 1 at a cv of 1.
	spreadSamples = 400
	maxSpread     = 4
	// decisiveZ is how many standard errors a window's waiting must lie from the
	// thresholds to close the window early.
	decisiveZ = 2
	// agreeZ is how many standard errors of their difference two measurements of the
	// unloaded latency may differ by and still count as measuring the same latency (see
	// reference). The mean of a few calls of a long-tailed latency is more often far below
	// the true mean than a normal one would be.
	agreeZ = 3
)

// adaptive is the controller of an adaptive bulkhead's limit. It is fed one sample per
// call that ended (its latency and how many permits were held) and closes a measurement
// window every max(limit, 4) samples; only then does it compute, so the cost per call is
// a few additions. The ledger owns it and calls it under its lock.
//
// The rule is Vegas's, with Envoy's way of keeping the reference honest. With L calls
// allowed and a window's mean latency m against the unloaded latency u, about
// q = L x (1 - u/m) calls wait inside the dependency rather than being served. Above
// max(1.5, Tolerance x L), the limit falls to L x u/m plus a small headroom (at most by
// a quarter per window, so that one stall of the host does not halve it); below
// max(0.5, Tolerance/2 x L), with the limit in use, it grows, by 0, 1, 2, 4, ... in
// consecutive windows (one window's noise moves nothing), at most by half of itself per
// window. In between it holds. Until a window first shows calls waiting, the start grows
// the limit per window (twice it under 4, then by half), windows of one latency with no
// arming, so that a bulkhead starting at its floor reaches a capacity of 8 in about eight
// of the dependency's latencies.
//
// u is not the lowest latency ever seen: that ratchets the limit down for good when the
// dependency itself gets slower (failsafe-go#127 is a cousin), and a long-term average
// follows the latency that load causes, so the limit never comes down. Instead, every 32
// windows one window runs at three quarters of the limit (or at the calls the dependency
// was last seen to serve at once, if fewer), taking samples only from calls that started
// in it, when the dependency is not crowded, and u is the lowest of the last two such
// probes. A dependency that gets slower is therefore followed within two probes (sooner
// when the limit falls and the latency does not), one that gets much faster at once, and
// latency that load causes is never taken for the unloaded latency (unless the limit is
// more than a third above the capacity, as right after the capacity falls: the rule above
// corrects that within a few windows, and the lowest of two probes outvotes one such
// probe).
//
// Where the dependency's latencies spread, as a real service's do, one window's mean is
// noisy. The controller measures the spread (the squared coefficient of variation of the
// calls of windows that were not crowded) and lengthens the windows to match it, unless
// a window's mean already decides the next move by two standard errors; it keeps the
// number of calls each measurement of u rests on, and weighs them by it (see reference).
type adaptive struct {
	floor, ceiling int
	limit          int // the limit it wants
	inForce        int // the limit in force: limit, or the probe's lower limit
	queuePer       float64
	tolerance      float64

	// The current window.
	winStart time.Duration // clock offset
	n        int           // samples in it
	sum      time.Duration // their latencies
	sumSq    float64       // the sum of their squares, in ns^2
	mostHeld int           // the most permits held when a sample was taken
	skip     int           // samples still to ignore after a change of the limit
	cut      int           // samples in it that a timeout cut short
	cutSum   time.Duration // their latencies
	urgent   bool          // calls above PriorityNormal waited at one of its samples
	check    int           // windowDone looks no closer before this sample
	checkAt  time.Duration // nor before this time

	probing       bool
	windows       int                      // windows since the last probe
	probesDone    int                      // measurements of the unloaded latency so far
	probes        [probeKeep]time.Duration // the last of them, 0 if none
	probeCalls    [probeKeep]int           // how many calls each measured
	unloaded      time.Duration            // from probes: see reference
	unloadedCalls int                      // how many calls it rests on
	spreads       [probeKeep]float64       // cv^2 of the last windows that were not crowded
	spreadCalls   [probeKeep]int           // how many calls each measured
	spreadsN      int                      // how many were measured
	spread        float64                  // from spreads: the dependency's own cv^2
	lastMean      time.Duration            // the last window's mean latency, 0 after a probe
	lastCut       bool                     // the last window had calls cut short
	served        float64                  // calls served at once in the last crowded window, or 0
	cutFrom       int                      // the limit before the last window lowered it, or 0
	growth        int                      // the next increase
	crowded       int                      // 1 after a crowded window
	settled       bool                     // a window was crowded: the start is over
}

func newAdaptive(a AdaptiveConfig, ceiling int, now time.Duration) *adaptive {
	c := &adaptive{}
	c.configure(a, ceiling)
	c.limit = a.InitialConcurrentCalls
	if c.limit == 0 {
		c.limit = a.MinConcurrentCalls
	}
	c.limit = min(max(c.limit, c.floor), c.ceiling)
	c.startProbe(now, c.limit) // the first window measures the unloaded latency
	return c
}

// configure applies new bounds and tuning, keeping what was learned.
func (c *adaptive) configure(a AdaptiveConfig, ceiling int) {
	c.floor, c.ceiling = a.MinConcurrentCalls, ceiling
	c.queuePer = a.QueuePerLimit
	if c.queuePer == 0 {
		c.queuePer = defaultQueuePerLimit
	}
	c.tolerance = a.Tolerance
	if c.tolerance == 0 {
		c.tolerance = defaultTolerance
	}
	if c.limit != 0 {
		c.limit = min(max(c.limit, c.floor), c.ceiling)
		c.inForce = min(max(c.inForce, c.floor), c.limit)
	}
}

// startStep returns the limit after a clean window of the start: twice the limit while it
// is under 4 (1, 2, 4), half as much again from there (6, 9, 13, ...), within the bounds.
// The doubling may take a capacity of 2 or 3 one or two calls over for a window; the
// smaller steps keep the last one, from just below a larger capacity, within half of it.
func (c *adaptive) startStep() int {
	step := max(1, c.limit/2)
	if c.limit < 4 {
		step = c.limit
	}
	return min(max(c.limit+step, c.floor), c.ceiling)
}

// queueFor returns how many callers above PriorityNormal may wait when maxQueue is
// configured: the limit's share, rounded down (at a limit of 3, one caller rather than
// two: at a capacity of 2 a second waiter adds half a dependency call to the served p99),
// and at least one.
func (c *adaptive) queueFor(maxQueue int) int {
	return min(int(max(math.Floor(float64(c.limit)*c.queuePer), 1)), maxQueue)
}

// plainQueueFor returns how many callers of any priority may wait. A caller waits about
// QueuePerLimit of a dependency call when that many times the calls the dependency serves
// at once wait ahead of it, here and inside the dependency together: once a crowded
// window measured how many it serves, the bound is that share less the calls waiting
// inside when the limit in force is used. (A caller that queues here while calls wait
// there too waits in both: at a capacity of 2 and a limit of 3, with one call waiting
// inside, one more place in this queue took the served p99 from two dependency latencies
// to three.) Once a call waits inside, the dependency stays busy without this queue, and
// the bound may fall to 0; before, it is queueFor's, at least one, to hand a released
// permit on at once.
func (c *adaptive) plainQueueFor(maxQueue int) int {
	if c.served == 0 {
		return c.queueFor(maxQueue)
	}
	inside := max(math.Round(float64(c.inForce)-c.served), 0) // Little's law on one window: noisy
	q := math.Floor(c.served*c.queuePer - inside)
	if inside < 1 {
		q = max(q, 1)
	}
	return min(int(max(q, 0)), c.queueFor(maxQueue))
}

func (c *adaptive) startProbe(now time.Duration, limit int) {
	c.probing = true
	c.inForce = limit
	c.resetWindow(now)
}

func (c *adaptive) resetWindow(now time.Duration) {
	c.winStart, c.n, c.sum, c.sumSq, c.mostHeld, c.cut, c.cutSum, c.urgent = now, 0, 0, 0, 0, 0, 0, false
	c.check, c.checkAt = 0, 0
}

// sample records one call that started at started and ended at now, when held permits
// were held (this call's included); cut is set when the call did not end by itself (its
// timeout ended it, or its caller gave up on it): its latency is then a lower bound;
// urgent is set when calls above PriorityNormal wait. It reports whether a window closed:
// the limit in force may have changed, and the queue's bound for normal calls with the
// capacity the window measured.
func (c *adaptive) sample(started, now time.Duration, held int, cut, urgent bool) bool {
	c.urgent = c.urgent || urgent
	switch {
	case c.probing && started < c.winStart:
		return false // started before the probe, in a crowded dependency
	case c.skip > 0:
		// The limit just changed: the calls that were running then ran under the old one.
		// (Taking only calls that started in the window instead would favour the fast
		// ones: the first to end are the ones that waited least.)
		c.skip--
		return false
	}
	c.n++
	d := max(now-started, 0)
	if cut {
		c.cut++
		c.cutSum += d
	}
	c.sum += d
	c.sumSq += float64(d) * float64(d)
	c.mostHeld = max(c.mostHeld, held)
	if !c.windowDone(now) {
		return false
	}
	before := c.inForce
	c.closeWindow(now)
	if c.inForce != before {
		c.skip = held - 1
	}
	return true
}

// windowDone reports whether the current window has enough samples and time to close at
// now: at least max(2 x limit, windowMinCalls) samples over two unloaded latencies, or,
// until the limit first finds the dependency crowded, max(limit, 2) over one. The start
// thus takes about two unloaded latencies per step (one to let the calls running at the
// change end, one to measure), however slow the dependency: at 1s, limits of 1, 2, 4, 6
// and 9 in about eight seconds. Where the dependency's latencies spread, a window then
// runs on until it holds the calls spreadNeed asks for, unless its waiting already decides
// the limit's next move clearly (see decisive; a probe, which measures the unloaded
// latency, always runs on).
func (c *adaptive) windowDone(now time.Duration) bool {
	// Until the window has its least samples and time, or its next sample at which to
	// weigh the spread, one comparison each: this runs at every call's end.
	if c.n < c.check || now < c.checkAt {
		return false
	}
	return c.windowEnds(now)
}

// windowEnds is windowDone past the quick test: it sets when to ask again.
func (c *adaptive) windowEnds(now time.Duration) bool {
	least, span := max(2*c.inForce, windowMinCalls), max(windowMinTime, 2*c.unloaded)
	if !c.settled {
		least, span = max(c.inForce, 2), max(windowMinTime/2, c.unloaded)
	}
	if c.n < least || now-c.winStart < span {
		c.check, c.checkAt = least, c.winStart+span
		return false
	}
	// Past its least, a window asks the rest once per limit's worth of calls, so that a
	// long window costs its calls no more than a short one.
	c.check = c.n + max(c.inForce, windowMinCalls)
	if c.probing {
		// A probe measures the spread too: its own calls may show more of it than the
		// windows before (the first window of all has nothing before it).
		return float64(c.n) >= c.callsFor(max(c.spread, min(c.windowSpread(), maxSpread)))
	}
	return float64(c.n) >= c.spreadNeed() || c.decisive()
}

// spreadNeed returns how many calls a window needs for the dependency's spread (see
// spreadSamples): at the limit the window judges, a probe's included.
func (c *adaptive) spreadNeed() float64 {
	return c.callsFor(c.spread)
}

// callsFor returns how many calls a window needs for a spread (cv^2) of spread.
func (c *adaptive) callsFor(spread float64) float64 {
	l := float64(c.limit)
	return min(spreadSamples, 16*l*l) * spread
}

// decisive reports whether the current window's waiting (see waiting) lies decisiveZ
// standard errors or more from the thresholds that decide the limit's next move, the
// standard error following from the dependency's own spread: the window would end the
// same way with more calls. A window of calls cut short by timeouts decides as it is.
func (c *adaptive) decisive() bool {
	if c.unloaded == 0 || c.cut*10 >= c.n {
		return true
	}
	mean := c.sum / time.Duration(c.n)
	q := c.waiting(mean, c.mostHeld)
	se := float64(max(c.mostHeld, 1)) * float64(c.unloaded) / float64(mean) * math.Sqrt(c.spread/float64(c.n))
	lo, hi := q-decisiveZ*se, q+decisiveZ*se
	if !c.settled {
		return hi < 0.5 || lo >= 0.5 // clean or not, by the start's rule
	}
	alpha, beta := c.growBelow(), c.crowdedAbove()
	return hi < alpha || lo > beta || (lo >= alpha && hi <= beta)
}

// windowSpread returns the current window's squared coefficient of variation, or -1 with
// fewer than two calls or none that took any time (a fake clock's).
func (c *adaptive) windowSpread() float64 {
	if c.n < 2 || c.sum <= 0 {
		return -1
	}
	n, mean := float64(c.n), float64(c.sum)/float64(c.n)
	variance := max(c.sumSq/n-mean*mean, 0) * n / (n - 1)
	return variance / (mean * mean)
}

// noteSpread records v, the squared coefficient of variation of a window of n calls, as a
// measurement of the dependency's own spread (from a window where it was not crowded: a
// probe, or a clean window of the start), and makes the spread the mean of the last
// probeKeep, weighted by their calls: a few calls of a long-tailed latency may show a
// spread several times too large or too small.
func (c *adaptive) noteSpread(v float64, n int) {
	if v < 0 {
		return
	}
	i := c.spreadsN % probeKeep
	c.spreads[i], c.spreadCalls[i] = min(v, maxSpread), n
	c.spreadsN++
	var sum, calls float64
	for i, v := range c.spreads {
		sum += v * float64(c.spreadCalls[i])
		calls += float64(c.spreadCalls[i])
	}
	c.spread = sum / calls
}

// closeWindow ends the current window and adjusts the limit.
func (c *adaptive) closeWindow(now time.Duration) {
	mean, n := c.sum/time.Duration(c.n), c.n
	mostHeld, cut, timedOut := c.mostHeld, c.cut > 0, c.cut*10 >= c.n
	// Calls above PriorityNormal waited at any of the window's samples. (At its last only,
	// a moment when the queue happened to hold none of them would let a probe cut the
	// limit under them.)
	urgent := c.urgent
	spread := c.windowSpread()
	if !c.settled && !c.probing && !timedOut && c.unloaded > 0 && mean <= c.unloaded && c.unloadedCalls < n && c.agrees(mean, n) {
		// A window of the start whose calls took no longer than the unloaded latency,
		// and more calls than the reference rests on: where latencies spread, the start's
		// first window (two calls at a limit of 1) may be a third off, and this one
		// measures it better. (Not a slower one: a window one call over the capacity
		// agrees with a reference of few calls by the noise of both, and would raise it.
		// A reference too low is measured again by a probe once the start is over.)
		c.extend(mean, n)
	}
	startClean := !c.settled && !timedOut && c.unloaded > 0 && c.waiting(mean, mostHeld) < 0.5
	if timedOut && c.cut*2 < c.n && c.unloaded > 0 {
		// Most calls ended by themselves. Calls timed out by crowding leave the others
		// slow too; calls timed out by the host's pauses (a process starved of CPU, a
		// collection) leave them near the unloaded latency, and a lower limit would not
		// make them fewer: such a window goes by its latency, which needs a second window
		// to confirm it, instead of lowering the limit at once.
		ended := (c.sum - c.cutSum) / time.Duration(c.n-c.cut)
		timedOut = c.waiting(ended, mostHeld) > c.crowdedAbove()
	}
	c.resetWindow(now)
	if c.probing {
		c.probing = false
		c.noteSpread(spread, n) // first: the reference weighs measurements by it
		c.remember(mean, n)
		c.windows = 0
		c.growth, c.crowded = 0, 0
		c.lastMean, c.cutFrom = 0, 0
		if !c.settled && c.probesDone == 1 && mostHeld >= c.limit {
			// A new bulkhead's first window, at its initial limit, measured the unloaded
			// latency: nobody waited in it by definition, so it is a clean window of the
			// start as well.
			c.limit = c.startStep()
			c.settled = c.limit == c.ceiling
		}
		c.inForce = c.limit
		return
	}
	c.windows++
	// Calls that ran well faster than the unloaded latency mean the dependency got faster
	// since the last probe: probe now rather than let the limit grow against a reference
	// that makes crowding look like none. (Only well faster, and beyond the noise of
	// both: one window a little faster is noise.) In the start, whose windows run below
	// the capacity until one is crowded, such a window measured the unloaded latency
	// itself, and a probe at a lower limit would cost more than it tells.
	faster := !cut && mean < c.unloaded*3/4 && !c.agrees(mean, n)
	if faster && !c.settled {
		c.remember(mean, n)
		faster = false
	}
	every := min(probeEvery, windowMinCalls<<min(c.probesDone, 3))
	if c.limit == c.ceiling && c.crowded == 0 {
		// At the ceiling, and not crowded there, the limit has no level left to find:
		// the early probes, there for a limit still finding it, would each take calls'
		// places for a window.
		every = probeEvery
	}
	due := c.windows >= every
	// A reference that rests on under a quarter of the calls a window needs has twice
	// its standard error or more (the start's first window has two calls at a limit of
	// 1, and where latencies spread its mean may be a third off, which holds the limit
	// wherever it is): measure it again now.
	due = due || c.settled && float64(c.unloadedCalls) < c.spreadNeed()/4
	if due && urgent && c.windows < probePostpone*probeEvery {
		// A probe lowers the limit for a window: not while high or critical calls wait,
		// whose latency is what priorities are for. Postponed at most so long, so that a
		// stream of urgent calls cannot keep the reference stale for good.
		due = false
	}
	if faster || due {
		depth := max(1, c.limit/4)
		if c.served > 0 {
			// No higher than the calls the dependency served at once in the last window
			// (by this reference), down to half the limit: where latencies spread, the
			// limit wanders up to half again the capacity, and a quarter below it is
			// still above the capacity. (Not further: that estimate rests on the
			// reference, which may be the one that is wrong.)
			depth = max(depth, min(c.limit-int(math.Round(c.served)), c.limit/2))
		}
		if c.limit == c.ceiling && c.served == 0 {
			// At the ceiling with nobody waiting, the dependency serves the whole limit
			// at once: one call fewer is below its capacity. (Not below the ceiling: a
			// reference from before the dependency got a little faster also shows
			// nobody waiting, with the limit above the capacity.)
			depth = 1
		}
		c.startProbe(now, max(c.floor, c.limit-depth))
		return
	}
	if c.cutFrom > 0 && c.lastMean > 0 && !cut && !c.lastCut {
		// The limit came down from cutFrom before this window. Latency that load causes
		// falls with it, about in proportion; latency that does not fall is the
		// dependency's own (it got slower, or the host is starved of CPU): it becomes the
		// reference, instead of pushing the limit down further and for good. (Not when
		// timeouts cut calls short: their latencies stay at the timeout however crowded
		// the dependency is.)
		expected := 1 - float64(c.limit)/float64(c.cutFrom)
		fell := 1 - float64(mean)/float64(c.lastMean)
		if expected >= 0.1 && fell < expected/4 {
			c.remember(mean, n)
		}
	}
	if startClean {
		c.noteSpread(spread, n)
	}
	before := c.limit
	c.limit = c.next(mean, n, mostHeld, timedOut)
	c.inForce = c.limit
	c.lastMean, c.lastCut, c.cutFrom = mean, cut, 0
	if c.limit < before {
		c.cutFrom = before
	}
}

// remember records d, the mean latency of n calls, as a measurement of the unloaded
// latency (a probe's, or a window's that showed the latency is not the load's) in place
// of the oldest, and derives the unloaded latency from those kept (see reference).
func (c *adaptive) remember(d time.Duration, n int) {
	i := c.probesDone % probeKeep
	c.probes[i], c.probeCalls[i] = max(d, 1), max(n, 1)
	c.probesDone++
	c.reference()
}

// extend adds d, the mean latency of n more calls that agree with it (see agrees), to the
// latest measurement of the unloaded latency: a clean window of the start measures it as
// well as a probe does.
func (c *adaptive) extend(d time.Duration, n int) {
	i := (c.probesDone - 1) % probeKeep
	c.probes[i] = max(weightedMean(c.probes[i], c.probeCalls[i], d, n), 1)
	c.probeCalls[i] += n
	c.reference()
}

// weightedMean returns the mean latency of na calls of mean a and nb calls of mean b.
func weightedMean(a time.Duration, na int, b time.Duration, nb int) time.Duration {
	return time.Duration((float64(a)*float64(na) + float64(b)*float64(nb)) / float64(na+nb))
}

// agrees reports whether the mean latency d of n calls differs from the unloaded latency
// by no more than agreeZ standard errors of the difference, by the dependency's spread.
func (c *adaptive) agrees(d time.Duration, n int) bool {
	return c.sameLatency(d, n, c.unloaded, c.unloadedCalls)
}

// sameLatency reports whether a, the mean latency of na calls, and b, of nb, differ by no
// more than agreeZ standard errors of their difference, by the dependency's spread.
func (c *adaptive) sameLatency(a time.Duration, na int, b time.Duration, nb int) bool {
	fa, fb := float64(a), float64(b)
	return math.Abs(fa-fb) <= agreeZ*math.Sqrt(c.spread*(fa*fa/float64(na)+fb*fb/float64(nb)))
}

// reference derives the unloaded latency from the measurements kept: the lower of the
// two, so that one taken while the limit was far too high (right after the capacity fell)
// cannot raise it. Where one rests on too few calls for the dependency's spread (under
// half of what a window needs), its noise decides instead: two that measured the same
// latency within it are averaged, weighted by their calls (the lower of two noisy means
// is biased low), and of two that did not, the one with twice the calls or more is kept
// (the start's first window has two calls at a limit of 1, and where latencies spread its
// mean may be a third off, which would hold the limit down until two more probes).
func (c *adaptive) reference() {
	a, b := c.probes[0], c.probes[1]
	na, nb := c.probeCalls[0], c.probeCalls[1]
	weak := float64(min(na, nb)) < c.spreadNeed()/2 // too few calls for the spread
	switch {
	case a == 0 || b == 0:
		c.unloaded, c.unloadedCalls = max(a, b), max(na, nb)
	case weak && c.sameLatency(a, na, b, nb):
		c.unloaded = weightedMean(a, na, b, nb)
		c.unloadedCalls = na + nb
	case weak && (na*2 < nb || nb*2 < na):
		if na > nb {
			c.unloaded, c.unloadedCalls = a, na
		} else {
			c.unloaded, c.unloadedCalls = b, nb
		}
	case a < b:
		c.unloaded, c.unloadedCalls = a, na
	default:
		c.unloaded, c.unloadedCalls = b, nb
	}
}

// waiting returns how many of mostHeld calls waited inside the dependency rather than
// being served, by Little's law, when their mean latency was mean.
func (c *adaptive) waiting(mean time.Duration, mostHeld int) float64 {
	return float64(max(mostHeld, 1)) * (1 - float64(c.unloaded)/float64(mean))
}

// growBelow returns how few calls must wait inside the dependency for a window that used
// the whole limit to grow it: alpha, max(0.5, Tolerance/2 x limit).
func (c *adaptive) growBelow() float64 {
	return max(0.5, c.tolerance/2*float64(c.limit))
}

// crowdedAbove returns how many calls may wait inside the dependency before a window
// counts as crowded: beta, max(1.5, Tolerance x limit).
func (c *adaptive) crowdedAbove() float64 {
	return max(1.5, c.tolerance*float64(c.limit))
}

// next returns the limit after a window of mean latency mean in which at most mostHeld
// permits were held at once; timedOut is set when a tenth of its calls or more were cut
// short by a timeout, which takes no second window to confirm.
func (c *adaptive) next(mean time.Duration, n, mostHeld int, timedOut bool) int {
	limit := float64(c.limit)
	inFlight := float64(max(mostHeld, 1))
	waiting := c.waiting(mean, mostHeld)
	c.served = 0
	if waiting >= 0.5 {
		c.served = inFlight - waiting // a lower bound of the capacity otherwise
	}
	alpha, beta := c.growBelow(), c.crowdedAbove()
	next := c.limit
	if waiting >= inFlight-1+alpha && !timedOut {
		// More calls seem to wait than could (by a clear margin): of those held, one at
		// least was being served. The reference is too low: taken at a quiet moment of
		// the host, or before the dependency got slower. At a limit of 1 or 2 this would
		// hold the limit where it is for good, since it is never lowered to show (by the
		// rule in closeWindow) that the latency is not the load's. Take this window's
		// latency as the reference.
		c.remember(mean, n)
		c.growth, c.crowded, c.served = 0, 0, 0
		return next
	}
	crowded := waiting > beta || timedOut
	if !crowded {
		c.crowded = 0
	}
	if !c.settled {
		// The start: until a window shows calls waiting inside the dependency, every
		// window that used the whole limit grows it by a start step, without a first
		// window to arm it. Only a window with nearly no one waiting counts as clean
		// here, so that the last step, from just below the capacity, overshoots it by
		// half at most.
		// The start ends at the ceiling too: its windows of one latency would make the
		// probes, counted in windows, twice as frequent there for good.
		if waiting < 0.5 && !crowded {
			if mostHeld >= c.limit {
				next = c.startStep() // within the bounds, as c.limit is
			}
			c.settled = next == c.ceiling
			return next
		}
		c.settled = true
	}
	switch {
	case crowded && c.crowded == 0 && !timedOut:
		// The first crowded window only arms the decrease: one stall of the host, which
		// delays every call whatever the limit, moves nothing.
		c.crowded = 1
		c.growth = 0
	case crowded:
		// Down to what the dependency served in the window, plus a little headroom.
		target := math.Ceil(inFlight - waiting + alpha)
		next = int(max(target, math.Ceil(limit*3/4)))
		next = min(next, c.limit-1)
		c.growth = 0
	case waiting < alpha && mostHeld >= c.limit:
		// The first clean window only arms the growth: one window's noise moves nothing.
		next = c.limit + min(c.growth, (c.limit+1)/2)
		c.growth = min(max(c.growth*2, 1), c.ceiling)
	default:
		c.growth = 0
	}
	return min(max(next, c.floor), c.ceiling)
}
