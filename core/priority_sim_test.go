package core_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// The simulations run a dependency of 8 calls at once, 20ms each (400 calls/s), behind a
// bulkhead of 8 permits, in a synctest bubble: time is exact, so the
// numbers are the mechanism's alone.
const (
	simLatency = 20 * time.Millisecond
	simLimit   = 8
	simRun     = 5 * time.Second
)

// simTally is what the callers of one class saw.
type simTally struct {
	mu        sync.Mutex
	served    int
	refused   int
	latencies []time.Duration
}

func (s *simTally) record(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.refused++
		return
	}
	s.served++
	s.latencies = append(s.latencies, d)
}

func (s *simTally) share() float64 { return float64(s.served) / float64(s.served+s.refused) }

func (s *simTally) p99() time.Duration {
	slices.Sort(s.latencies)
	return s.latencies[(len(s.latencies)*99+99)/100-1]
}

func simBulkhead(t *testing.T, queue int) *core.Bulkhead {
	return newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = simLimit, queue })
}

// simCall makes one call through b that takes simLatency, and records it.
func simCall(ctx context.Context, b *core.Bulkhead, tl *simTally) {
	start := time.Now()
	_, err := core.Execute(ctx, b, func(context.Context) (int, error) {
		time.Sleep(simLatency)
		return 0, nil
	})
	tl.record(time.Since(start), err)
}

// TestSimCriticalShare offers, to a bulkhead with 8 queue places, ten times the dependency's concurrency from closed-loop
// clients (80 clients, each sending its next call when the last one is answered, or 20ms
// after a refusal), 20% of them sending PriorityCritical. The critical calls must nearly
// all be served, at no more than twice their unloaded latency. Without priorities (every
// call normal) the same critical clients get a small share.
func TestSimCriticalShare(t *testing.T) {
	run := func(t *testing.T, prioritized bool) (crit, rest *simTally) {
		crit, rest = new(simTally), new(simTally)
		synctest.Test(t, func(t *testing.T) {
			b := simBulkhead(t, simLimit)
			end := time.Now().Add(simRun)
			var wg sync.WaitGroup
			for i := range 10 * simLimit {
				ctx, tl := context.Background(), rest
				if i%5 == 0 {
					tl = crit
					if prioritized {
						ctx = core.WithPriority(ctx, core.PriorityCritical)
					}
				}
				wg.Go(func() {
					for time.Now().Before(end) {
						n := tl.refusedCount()
						simCall(ctx, b, tl)
						if tl.refusedCount() > n {
							time.Sleep(simLatency)
						}
					}
				})
			}
			wg.Wait()
			assertIdle(t, b.Stats())
		})
		return crit, rest
	}
	crit, rest := run(t, true)
	fifoCrit, _ := run(t, false)
	t.Logf("priorities: critical %d served (%.1f%%), p99 %v; others %d served, %d refused",
		crit.served, 100*crit.share(), crit.p99(), rest.served, rest.refused)
	t.Logf("FIFO: the same clients %d served (%.1f%%), p99 %v", fifoCrit.served, 100*fifoCrit.share(), fifoCrit.p99())
	assert.GreaterOrEqual(t, crit.share(), 0.99, "critical calls served")
	assert.LessOrEqual(t, crit.p99(), 2*simLatency, "critical p99 within twice the unloaded latency")
	assert.Less(t, fifoCrit.share(), 0.5, "without priorities the same clients are mostly refused")
}

func (s *simTally) refusedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// TestSimTenantFlood offers four tenants their fair share of the dependency (80 calls/s
// each of 400/s, open loop, evenly spaced) and a fifth ten times its share (800/s). The
// four must keep at least 95% of the goodput they have without the flood, with a queue
// of about three places per tenant (16). With fewer places per tenant, the four tenants'
// own backlogs (each sends exactly what its turns serve, so a call that just missed its
// turn waits a whole round while the next arrives) fill the queue and push each other's
// calls out: a few percent are lost, which the test logs. Without tenants (every call
// tenant "") the flood takes most of their goodput.
func TestSimTenantFlood(t *testing.T) {
	const fair = 80 // calls/s
	run := func(t *testing.T, queue int, flood, tenants bool) (good *simTally) {
		good = new(simTally)
		synctest.Test(t, func(t *testing.T) {
			b := simBulkhead(t, queue)
			end := time.Now().Add(simRun)
			var wg sync.WaitGroup
			send := func(name string, rate int, tl *simTally) {
				ctx := context.Background()
				if tenants {
					ctx = core.WithTenant(ctx, name)
				}
				interval := time.Second / time.Duration(rate)
				for time.Now().Before(end) {
					wg.Go(func() { simCall(ctx, b, tl) })
					time.Sleep(interval)
				}
			}
			var senders sync.WaitGroup
			for i, name := range []string{"a", "b", "c", "d"} {
				senders.Go(func() {
					time.Sleep(time.Duration(i) * time.Second / fair / 4) // spread the four over one interval
					send(name, fair, good)
				})
			}
			if flood {
				senders.Go(func() { send("flood", 10*fair, new(simTally)) })
			}
			senders.Wait()
			wg.Wait()
			assertIdle(t, b.Stats())
		})
		return good
	}
	for _, queue := range []int{2 * simLimit, simLimit} {
		base := run(t, queue, false, true)
		flooded := run(t, queue, true, true)
		fifo := run(t, queue, true, false)
		require.Positive(t, base.served)
		t.Logf("queue %d: the four tenants' goodput: %d calls alone, %d under the flood (%.1f%%), %d under the flood without tenants (%.1f%%)",
			queue, base.served, flooded.served, 100*float64(flooded.served)/float64(base.served), fifo.served, 100*float64(fifo.served)/float64(base.served))
		if queue == 2*simLimit {
			assert.GreaterOrEqual(t, float64(flooded.served), 0.95*float64(base.served), "the flood costs the others at most 5%")
		}
		assert.Less(t, float64(fifo.served), 0.8*float64(base.served), "without tenants the flood costs them much more")
	}
}

// TestSimTenantFloodAdaptive is TestSimTenantFlood under an adaptive limit, against a
// dependency that serves 8 calls at once (20ms each) and queues the rest: the limit finds
// about 8 to 10, so its queue bound (half the limit by default) is about 5 places for 5
// tenants. The bulkhead then lets tenants with a short line wait beyond the bound, up to
// three places per tenant waiting (and MaxQueueSize), so that the four tenants at their
// fair share keep at least 95% of their goodput, with the default QueuePerLimit and with
// the bench's 2.
func TestSimTenantFloodAdaptive(t *testing.T) {
	const fair = 80 // calls/s
	run := func(t *testing.T, adaptive core.AdaptiveConfig, flood bool) (good, flooder *simTally) {
		good, flooder = new(simTally), new(simTally)
		synctest.Test(t, func(t *testing.T) {
			dep := &simDep{}
			dep.set(simLimit, simLatency)
			b := newBulkhead(t, func(c *core.Config) {
				c.MaxConcurrentCalls, c.MaxQueueSize = 2*simLimit, 2*simLimit
				c.Adaptive = &adaptive
			})
			end := time.Now().Add(simRun)
			var wg sync.WaitGroup
			send := func(name string, rate int, tl *simTally) {
				ctx := core.WithTenant(context.Background(), name)
				interval := time.Second / time.Duration(rate)
				for time.Now().Before(end) {
					wg.Go(func() {
						start := time.Now()
						_, err := core.Execute(ctx, b, dep.call)
						tl.record(time.Since(start), err)
					})
					time.Sleep(interval)
				}
			}
			var senders sync.WaitGroup
			for i, name := range []string{"a", "b", "c", "d"} {
				senders.Go(func() {
					time.Sleep(time.Duration(i) * time.Second / fair / 4)
					send(name, fair, good)
				})
			}
			if flood {
				senders.Go(func() { send("flood", 10*fair, flooder) })
			}
			senders.Wait()
			wg.Wait()
			assertIdle(t, b.Stats())
		})
		return good, flooder
	}
	for _, a := range []core.AdaptiveConfig{
		{MinConcurrentCalls: 1, InitialConcurrentCalls: simLimit},
		{MinConcurrentCalls: 1, InitialConcurrentCalls: simLimit, QueuePerLimit: 2},
	} {
		t.Run(fmt.Sprintf("QueuePerLimit=%v", a.QueuePerLimit), func(t *testing.T) {
			base, _ := run(t, a, false)
			flooded, flooder := run(t, a, true)
			require.Positive(t, base.served)
			kept := float64(flooded.served) / float64(base.served)
			t.Logf("the four tenants: %d calls alone, %d under the flood (%.1f%%), p99 %v; the flood: %d served, %d refused, p99 %v",
				base.served, flooded.served, 100*kept, flooded.p99(), flooder.served, flooder.refused, flooder.p99())
			assert.GreaterOrEqual(t, kept, 0.95, "the flood costs the others at most 5%")
			// A wait is bounded by about three turns of each of the five tenants, at the
			// dependency's 400 calls/s: 15 places, 37.5ms, plus the call's own 20ms, and a
			// probe window at half the limit.
			assert.LessOrEqual(t, flooded.p99(), 5*simLatency, "the fair tenants' p99")
			if a.QueuePerLimit == 0 {
				// The places beyond the bound are not the flood's: it waits within the
				// bound of about 5 places. (With QueuePerLimit 2 the bound is 16 places,
				// which the flood may fill, as it may a static bulkhead's queue.)
				assert.LessOrEqual(t, flooder.p99(), 5*simLatency, "the flood waits within the bound")
			}
		})
	}
}

// TestSimCriticalShareAdaptive is TestSimCriticalShare under an adaptive limit (floor 1,
// ceiling 8, initially 8, QueuePerLimit 2: the bench's) against a dependency that serves
// 8 calls at once and queues the rest. The 16 critical clients are twice its capacity on
// their own, so the baseline that says what priorities cost them is the same 16 clients
// alone on the same kind of bulkhead, not one client: with the other 64 clients added,
// they must still be served (>= 99%) with their p99 at most 1.25x that baseline, and at
// most 2x one client's (the floor: each waits for one call ahead of it). The adaptive
// limit postpones its probe windows, which lower the limit, while critical calls wait.
func TestSimCriticalShareAdaptive(t *testing.T) {
	run := func(t *testing.T, others bool) (crit *simTally) {
		crit = new(simTally)
		synctest.Test(t, func(t *testing.T) {
			dep := &simDep{}
			dep.set(simLimit, simLatency)
			b := newBulkhead(t, func(c *core.Config) {
				c.MaxConcurrentCalls, c.MaxQueueSize = simLimit, 2*simLimit
				c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: simLimit, QueuePerLimit: 2}
			})
			end := time.Now().Add(simRun)
			var wg sync.WaitGroup
			for i := range 10 * simLimit {
				ctx, tl := context.Background(), new(simTally)
				if i%5 == 0 {
					ctx, tl = core.WithPriority(ctx, core.PriorityCritical), crit
				} else if !others {
					continue
				}
				wg.Go(func() {
					for time.Now().Before(end) {
						start := time.Now()
						_, err := core.Execute(ctx, b, dep.call)
						tl.record(time.Since(start), err)
						if err != nil {
							time.Sleep(simLatency)
						}
					}
				})
			}
			wg.Wait()
			assertIdle(t, b.Stats())
		})
		return crit
	}
	alone, mixed := run(t, false), run(t, true)
	t.Logf("16 critical clients alone: %d served (%.1f%%), p99 %v; with 64 normal clients: %d served (%.1f%%), p99 %v (%.2fx alone, %.2fx one client's %v)",
		alone.served, 100*alone.share(), alone.p99(), mixed.served, 100*mixed.share(), mixed.p99(),
		float64(mixed.p99())/float64(alone.p99()), float64(mixed.p99())/float64(simLatency), simLatency)
	assert.GreaterOrEqual(t, mixed.share(), 0.99, "critical calls served")
	assert.LessOrEqual(t, float64(mixed.p99()), 1.25*float64(alone.p99()), "critical p99 against the critical clients alone")
	assert.LessOrEqual(t, mixed.p99(), 2*simLatency, "critical p99 against one client's")
}
