package core

import (
	"testing"
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
