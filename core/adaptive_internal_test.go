package core

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// feed gives c calls of latency lat, held at a time, from now on, and returns the time
// after them; urgent is as for adaptive.sample.
func feed(c *adaptive, now time.Duration, lat time.Duration, held, calls int, urgent bool) time.Duration {
	for i := 0; i < calls; i += held {
		for range held {
			c.sample(now, now+lat, held, false, urgent)
		}
		now += lat
	}
	return now
}

// A reference taken at a quiet moment, then a host that delays every call: at a limit of
// 1 the delay looks like a call waiting (between the growth and the cut thresholds), and
// nothing but a probe would ever lower the reference. The limit must grow within a few
// windows instead of holding at 1 until the probes outvote the quiet one.
func TestAdaptiveLowReferenceAtLimitOne(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, QueuePerLimit: 0.5}, 200, 0)
	c.settled = true                                    // past the start, which grows at once
	now := feed(c, 0, 20*time.Millisecond, 1, 4, false) // the first probe, on a quiet host
	if c.unloaded != 20*time.Millisecond || c.limit != 1 {
		t.Fatalf("after the first probe: reference %v, limit %d; want 20ms, 1", c.unloaded, c.limit)
	}
	for w := range 4 {
		// The host now adds 25ms to every call: 45ms at one call at a time.
		now = feed(c, now, 45*time.Millisecond, c.inForce, max(2*c.inForce, windowMinCalls), false)
		if c.limit > 1 {
			t.Logf("limit %d after %d windows, reference %v", c.limit, w+1, c.unloaded)
			return
		}
	}
	t.Fatalf("the limit held at %d for 4 windows, reference %v", c.limit, c.unloaded)
}

// A probe falls due while high or critical calls wait: it waits for them, but not for
// ever, or a steady stream of urgent calls would keep a stale reference for good.
func TestAdaptiveProbePostponedForUrgentCalls(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 8, QueuePerLimit: 0.5}, 8, 0)
	c.settled = true
	now := feed(c, 0, 20*time.Millisecond, 8, 16, false) // the first probe
	if c.probing || c.probesDone != 1 {
		t.Fatalf("after the first probe: probing %v, probes %d", c.probing, c.probesDone)
	}
	windows := 0
	for !c.probing {
		now = feed(c, now, 20*time.Millisecond, c.inForce, max(2*c.inForce, windowMinCalls), true)
		windows++
		if windows > probePostpone*probeEvery {
			t.Fatalf("no probe after %d windows", windows)
		}
	}
	if windows != probePostpone*probeEvery {
		t.Errorf("probed after %d windows with urgent calls waiting, want %d", windows, probePostpone*probeEvery)
	}
	for range 200 {
		if now = feed(c, now, 20*time.Millisecond, c.inForce, max(2*c.inForce, windowMinCalls), false); c.probing {
			break
		}
	}
	windows = 0
	for !c.probing {
		now = feed(c, now, 20*time.Millisecond, c.inForce, max(2*c.inForce, windowMinCalls), false)
		windows++
	}
	if windows > probeEvery {
		t.Errorf("without urgent calls, probed after %d windows; want at most %d", windows, probeEvery)
	}
}

// Calls waiting inside the dependency take their places from the queue's bound for calls
// at or below PriorityNormal: a caller would otherwise wait in both queues. Calls above it
// keep the whole bound, and a probe, which runs below the capacity, gives the places back.
func TestAdaptiveQueueLessCallsWaitingInside(t *testing.T) {
	for _, tc := range []struct {
		name             string
		limit            int
		loaded           time.Duration // a window's mean latency at the limit (unloaded: 20ms)
		queue, plain     int
		probeQueue, held int
	}{
		{"capacity 2, limit 3", 3, 30 * time.Millisecond, 1, 0, 1, 3},
		{"capacity 8, limit 10", 10, 25 * time.Millisecond, 5, 2, 4, 10},
		{"capacity 16, limit 10", 10, 20 * time.Millisecond, 5, 5, 5, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: tc.limit, QueuePerLimit: 0.5, Tolerance: 0.25}, 200, 0)
			c.settled = true
			now := feed(c, 0, 20*time.Millisecond, tc.limit, 2*tc.limit, false) // the first probe
			if c.probing || c.unloaded != 20*time.Millisecond {
				t.Fatalf("after the first probe: probing %v, reference %v", c.probing, c.unloaded)
			}
			if got := c.plainQueueFor(100); got != tc.queue {
				t.Errorf("before a loaded window: bound %d, want the whole %d", got, tc.queue)
			}
			now = feed(c, now, tc.loaded, tc.held, 2*tc.limit, false)
			if c.limit != tc.limit {
				t.Fatalf("the limit moved to %d", c.limit)
			}
			if got, want := c.queueFor(100), tc.queue; got != want {
				t.Errorf("bound above PriorityNormal %d, want %d", got, want)
			}
			if got := c.plainQueueFor(100); got != tc.plain {
				t.Errorf("bound %d with the latency at %v, want %d", got, tc.loaded, tc.plain)
			}
			if got := c.plainQueueFor(2); got > 2 {
				t.Errorf("bound %d above MaxQueueSize 2", got)
			}
			for !c.probing {
				now = feed(c, now, tc.loaded, tc.held, 2*tc.limit, false)
			}
			if got := c.plainQueueFor(100); got != tc.probeQueue {
				t.Errorf("during a probe at %d: bound %d, want %d", c.inForce, got, tc.probeQueue)
			}
		})
	}
}

// Through admission: with one call seen waiting inside the dependency, a call of
// PriorityNormal finds an adaptive bulkhead at its limit full, while a critical call
// still waits for a permit.
func TestAdaptiveNormalRefusedWhereCriticalWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(Config{Name: "dep", MaxConcurrentCalls: 200, MaxQueueSize: 100,
			Adaptive: &AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 3}})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Shutdown(context.Background())
		l := &b.ledger
		l.mu.Lock()
		c := l.adapt
		c.probing, c.inForce, c.unloaded, c.served = false, 3, 20*time.Millisecond, 2
		l.applyLimitLocked()
		l.mu.Unlock()

		ctx := context.Background()
		var held []Permit
		for range 3 {
			p, err := b.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, p)
		}
		if _, err := b.Acquire(ctx); !errors.Is(err, ErrFull) {
			t.Fatalf("a normal call at the limit: %v, want ErrFull", err)
		}
		got := make(chan error, 1)
		go func() {
			p, err := b.Acquire(WithPriority(ctx, PriorityCritical))
			if err == nil {
				err = p.Release(Success)
			}
			got <- err
		}()
		synctest.Wait()
		if q := b.Stats().QueuedTasks; q != 1 {
			t.Fatalf("%d queued, want the critical call", q)
		}
		if _, err := b.Acquire(ctx); !errors.Is(err, ErrFull) {
			t.Fatalf("a normal call behind a waiting critical one: %v, want ErrFull", err)
		}
		if err := held[0].Release(Success); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("the critical call: %v", err)
		}
		for _, p := range held[1:] {
			p.Release(Success)
		}
		if s := b.Stats(); s.RejectedExecutions != 2 || s.SuccessfulExecutions != 4 {
			t.Errorf("stats %+v: want 2 rejected, 4 successful", s)
		}
	})
}

// Urgent calls that waited during a window postpone a probe even when none wait at the
// moment the window closes: the queue of a mix of critical and other calls often holds
// no critical call for an instant, and a probe then would cut the limit under the next.
func TestAdaptiveProbePostponedForUrgentCallsWithinWindow(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 8, QueuePerLimit: 0.5}, 8, 0)
	c.settled = true
	now := feed(c, 0, 20*time.Millisecond, 8, 16, false) // the first probe
	const lat = 20 * time.Millisecond
	windows := 0
	for windows < 2*probeEvery {
		// Urgent calls waited at each window's first sample only, not at its last.
		urgent := c.n == 0
		c.sample(now-lat, now, c.inForce, false, urgent)
		now += lat / time.Duration(c.inForce)
		if c.n == 0 {
			windows++
		}
		if c.probing {
			t.Fatalf("a probe started after %d windows in which urgent calls waited", windows)
		}
	}
}

// A window where a tenth of the calls timed out lowers the limit at once when the calls
// that ended by themselves were slow too (crowding), but not when they ran at the
// unloaded latency (the host's pauses timed the others out): lowering the limit would
// not make those fewer, and a host that pauses all the time would take it to the floor.
func TestAdaptiveTimeoutsWithFastCalls(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ended time.Duration // the latency of the calls that were not cut short
		lower bool
	}{
		{"the host's pauses", 1100 * time.Microsecond, false},
		{"crowding", 3 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 10, QueuePerLimit: 0.5}, 200, 0)
			c.settled = true
			now := feed(c, 0, time.Millisecond, 10, 500, false) // the first probe: 1ms
			if c.probing || c.unloaded != time.Millisecond {
				t.Fatalf("after the first probe: probing %v, reference %v", c.probing, c.unloaded)
			}
			// One window: 5 of every 20 calls cut short by a 5ms timeout.
			start := c.winStart
			for i := 0; c.winStart == start; i++ {
				d, cut := tc.ended, i%4 == 0
				if cut {
					d = 5 * time.Millisecond
				}
				c.sample(now, now+d, 10, cut, false)
				now += 100 * time.Microsecond
			}
			if lowered := c.limit < 10; lowered != tc.lower {
				t.Errorf("limit %d after the window: lowered %v, want %v", c.limit, lowered, tc.lower)
			}
		})
	}
}

// A window that leaves the limit where it was still measured the capacity, which the
// queue's bound for normal calls follows: sample must report it, so that the ledger
// applies the new bound.
func TestAdaptiveWindowReportedWithoutLimitChange(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 3, QueuePerLimit: 0.5, Tolerance: 0.25}, 3, 0)
	now := feed(c, 0, 20*time.Millisecond, 3, 6, false) // the first probe
	if c.probing || c.limit != 3 {
		t.Fatalf("after the first probe: probing %v, limit %d", c.probing, c.limit)
	}
	before := c.plainQueueFor(100)
	reported := false
	for start := c.winStart; c.winStart == start; now += 10 * time.Millisecond {
		reported = c.sample(now-30*time.Millisecond, now, 3, false, false) // one call waits inside
	}
	if c.limit != 3 || c.inForce != 3 {
		t.Fatalf("the limit moved to %d (%d in force)", c.limit, c.inForce)
	}
	if after := c.plainQueueFor(100); after == before {
		t.Fatalf("the window left the bound at %d", after)
	}
	if !reported {
		t.Error("the window closed without a report: the ledger keeps the old bound")
	}
}

// A probe goes no higher than the calls the dependency was last seen to serve at once,
// rounded: at a limit of 10 in front of a capacity of 8, a window that measured 7.6 of
// them probes at 8, below the capacity by nothing, not at 7.
func TestAdaptiveProbeAtServedCalls(t *testing.T) {
	for _, tc := range []struct {
		loaded time.Duration // a window's mean latency at a limit of 10 (unloaded: 20ms)
		probe  int
	}{
		{26300 * time.Microsecond, 8}, // 7.6 served: the nearest count
		{25 * time.Millisecond, 8},    // 8 served: three quarters of the limit anyway
		{30 * time.Millisecond, 7},    // 6.7 served
		{40 * time.Millisecond, 5},    // 5 served: at most half the limit off
	} {
		t.Run(tc.loaded.String(), func(t *testing.T) {
			c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 10, QueuePerLimit: 0.5, Tolerance: 0.25}, 200, 0)
			c.settled = true
			now := feed(c, 0, 20*time.Millisecond, 10, 20, false)                 // the first probe
			c.windows = min(probeEvery, windowMinCalls<<min(c.probesDone, 3)) - 2 // the second window from now ends in a probe
			now = feed(c, now, tc.loaded, 10, 20, false)
			if c.limit != 10 || c.probing {
				t.Fatalf("after one loaded window: limit %d, probing %v", c.limit, c.probing)
			}
			feed(c, now, tc.loaded, 10, 20, false)
			if !c.probing {
				t.Fatalf("no probe: limit %d", c.limit)
			}
			if c.inForce != tc.probe {
				t.Errorf("probe at %d (served %.1f), want %d", c.inForce, c.served, tc.probe)
			}
		})
	}
}

// The reference is the lower of the last two measurements of the unloaded latency, however
// many calls each rests on, where calls all take about as long: a probe taken in a crowded
// dependency right after its capacity fell has more calls than the one before it, and
// must not raise the reference. Only where latencies spread does a measurement of a few
// calls give way, to one of many calls.
func TestAdaptiveReferenceByCalls(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 10}, 200, 0)
	c.remember(20*time.Millisecond, 4)
	c.remember(30*time.Millisecond, 20)
	if c.unloaded != 20*time.Millisecond {
		t.Errorf("without spread: reference %v, want the lower, 20ms", c.unloaded)
	}

	c = newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 10}, 200, 0)
	c.spread = 0.25 // a cv of 0.5: a window at a limit of 10 needs 100 calls
	c.remember(5*time.Millisecond, 2)
	c.remember(20*time.Millisecond, 100)
	if c.unloaded != 20*time.Millisecond {
		t.Errorf("with spread: reference %v, want the one of 100 calls, 20ms", c.unloaded)
	}
	c.remember(19*time.Millisecond, 100)
	if c.unloaded != 19*time.Millisecond {
		t.Errorf("with spread, two of 100 calls: reference %v, want the lower, 19ms", c.unloaded)
	}
}

// Calls that take no time at all, as under a fake clock whose time moves only between
// them, have no spread to measure: the windows close and the limit grows as for calls
// that all take the same time.
func TestAdaptiveInstantCalls(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1}, 8, 0)
	now := time.Duration(0)
	for range 200 {
		held := c.inForce
		for range held {
			c.sample(now, now, held, false, false)
		}
		now += 10 * time.Millisecond
	}
	if c.probing || c.limit != 8 {
		t.Errorf("after 200 rounds of instant calls: limit %d, probing %v, spread %v; want the ceiling, 8", c.limit, c.probing, c.spread)
	}
}

// The first window of all, at a limit of 1, has no spread measured before it: it runs on
// as its own calls' spread asks, rather than closing on two calls that may be a third
// off the unloaded latency.
func TestAdaptiveFirstProbeMeasuresItsSpread(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1}, 200, 0)
	now := time.Duration(0)
	calls := 0
	for c.probing && calls < 100 {
		lat := 10 * time.Millisecond
		if calls%2 == 1 {
			lat = 30 * time.Millisecond // a cv of about 0.5
		}
		c.sample(now, now+lat, 1, false, false)
		now += lat
		calls++
	}
	if calls < 4 || calls > 16 {
		t.Errorf("the first window closed after %d calls, want about 16 x cv^2 = 4 to 8", calls)
	}
	if c.unloaded < 15*time.Millisecond || c.unloaded > 25*time.Millisecond {
		t.Errorf("reference %v, want about 20ms", c.unloaded)
	}
}

// At the ceiling, with the dependency not crowded there, the limit has no level left to
// find: the probes come every probeEvery windows from the first on, not sooner as while
// the limit finds its level. Each takes calls' places for a window, which a bulkhead
// whose ceiling is its dependency's capacity cannot make up.
func TestAdaptiveProbesAtTheCeiling(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 8}, 8, 0)
	now := feed(c, 0, 20*time.Millisecond, 8, 16, false) // the first probe
	if c.probing || !c.settled || c.limit != 8 {
		t.Fatalf("after the first probe: probing %v, settled %v, limit %d", c.probing, c.settled, c.limit)
	}
	windows := 0
	for !c.probing && windows <= probeEvery {
		now = feed(c, now, 20*time.Millisecond, 8, 16, false)
		windows++
	}
	if windows != probeEvery {
		t.Errorf("at the ceiling, probed after %d windows, want %d", windows, probeEvery)
	}

	// Below the ceiling, the early probes stay.
	c = newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 8}, 200, 0)
	c.settled = true
	now = feed(c, 0, 20*time.Millisecond, 8, 16, false)
	windows = 0
	for !c.probing && windows <= probeEvery {
		// 1.5 calls of 8 wait inside: the limit holds between growth and cut.
		now = feed(c, now, 20*time.Millisecond*16/13, c.inForce, 2*c.inForce, false)
		windows++
	}
	if windows >= probeEvery || c.limit != 8 {
		t.Errorf("below the ceiling at %d, probed after %d windows, want the early probe", c.limit, windows)
	}
}

// A probe's own calls may show the spread for the first time (two calls of the first
// window that happened to agree measured none): the reference is derived with it, so that
// the first window's two calls give way to the probe's many instead of holding the lower
// mean of the two.
func TestAdaptiveProbeJudgedByItsOwnSpread(t *testing.T) {
	c := newAdaptive(AdaptiveConfig{MinConcurrentCalls: 1}, 200, 0)
	now := feed(c, 0, 16*time.Millisecond, 1, 2, false) // the first window: two calls alike
	if c.probing || c.unloaded != 16*time.Millisecond || c.spread != 0 {
		t.Fatalf("after the first window: probing %v, reference %v, spread %v", c.probing, c.unloaded, c.spread)
	}
	c.settled = true
	c.startProbe(now, 1)
	for i := 0; c.probing && i < 1000; i++ {
		lat := 10 * time.Millisecond // a cv of 0.5 about a mean of 20ms
		if i%2 == 1 {
			lat = 30 * time.Millisecond
		}
		c.sample(now, now+lat, 1, false, false)
		now += lat
	}
	if c.probing || c.spread == 0 {
		t.Fatalf("the probe: probing %v, spread %v", c.probing, c.spread)
	}
	if c.unloaded < 18*time.Millisecond {
		t.Errorf("reference %v (on %d calls), want about 20ms: the first window's 2 calls of 16ms weighed with the probe's", c.unloaded, c.unloadedCalls)
	}
}
