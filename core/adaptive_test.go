package core_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// simDep is a simulated dependency inside a synctest bubble. Its capacity and unloaded
// latency can change while it runs.
//
// In the queue model (the bench's) it serves capacity calls at once, each taking the
// unloaded latency, and the rest wait in FIFO order. In the processor-sharing model
// every call runs at once and each takes latency x max(1, n/capacity), n the calls inside
// when it starts: the latency grows past the capacity, as a CPU-bound service's does.
type simDep struct {
	sharing bool
	// noise, when set, adds a random delay to every call whatever the load: a host
	// starved of CPU, whose scheduler delays everyone.
	noise func() time.Duration
	// spread, when above 0, spreads the latencies: each call takes the latency times a
	// lognormal factor of mean 1 and this coefficient of variation, as a real service's
	// calls do.
	spread float64

	mu       sync.Mutex
	capacity int
	latency  time.Duration
	busy     int
	waiting  []chan struct{}
	inside   int
	peak     int // the most calls inside since resetPeak
	served   atomic.Int64
}

func (d *simDep) set(capacity int, latency time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity, d.latency = capacity, latency
	for d.busy < d.capacity && len(d.waiting) > 0 {
		d.busy++
		close(d.waiting[0])
		d.waiting = d.waiting[1:]
	}
}

func (d *simDep) resetPeak() {
	d.mu.Lock()
	d.peak = d.inside
	d.mu.Unlock()
}

func (d *simDep) peakInside() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peak
}

func (d *simDep) call(context.Context) (int, error) {
	if d.noise != nil {
		time.Sleep(d.noise()) // the host's delay, before the dependency sees the call
	}
	d.mu.Lock()
	d.inside++
	d.peak = max(d.peak, d.inside)
	lat := d.latency
	if d.spread > 0 {
		v := math.Log1p(d.spread * d.spread)
		lat = time.Duration(float64(lat) * math.Exp(math.Sqrt(v)*rand.NormFloat64()-v/2))
	}
	if d.sharing {
		lat = time.Duration(float64(lat) * max(1, float64(d.inside)/float64(d.capacity)))
		d.mu.Unlock()
	} else if d.busy < d.capacity {
		d.busy++
		d.mu.Unlock()
	} else {
		ch := make(chan struct{})
		d.waiting = append(d.waiting, ch)
		d.mu.Unlock()
		<-ch
	}
	time.Sleep(lat)
	d.mu.Lock()
	d.inside--
	if !d.sharing {
		d.busy--
		for d.busy < d.capacity && len(d.waiting) > 0 {
			d.busy++
			close(d.waiting[0])
			d.waiting = d.waiting[1:]
		}
	}
	d.mu.Unlock()
	d.served.Add(1)
	return 0, nil
}

// simLoad drives a bulkhead with closed-loop clients in a synctest bubble and samples it.
type simLoad struct {
	b       *core.Bulkhead
	dep     *simDep
	clients int
	pause   time.Duration // after a refusal

	mu      sync.Mutex
	served  []time.Duration // latency (queue + run) of served calls since resetServed
	limits  []int           // ConcurrencyLimit, sampled every tick
	overMax atomic.Int64    // calls that started while the limit's worth already ran
	running atomic.Int64
}

// run starts the clients and a sampler; stop ends them and waits.
func (s *simLoad) run(tick time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range s.clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				before := s.b.Stats().ConcurrencyLimit
				_, err := core.Execute(ctx, s.b, func(ctx context.Context) (int, error) {
					// Never more than the limit in force run at once. (The limit may have
					// fallen since this call was let in: the higher of the two then holds.)
					if n := s.running.Add(1); n > int64(max(before, s.b.Stats().ConcurrencyLimit)) {
						s.overMax.Add(1)
					}
					defer s.running.Add(-1)
					return s.dep.call(ctx)
				})
				switch {
				case err == nil:
					s.mu.Lock()
					s.served = append(s.served, time.Since(start))
					s.mu.Unlock()
				case errors.Is(err, core.ErrFull):
					time.Sleep(s.pause)
				case ctx.Err() != nil:
				default:
					panic(err)
				}
			}
		})
	}
	wg.Go(func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				st := s.b.Stats()
				s.mu.Lock()
				s.limits = append(s.limits, st.ConcurrencyLimit)
				s.mu.Unlock()
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// phase is what one stretch of a simulation measured.
type phase struct {
	goodput  float64 // served per second, as a share of the dependency's capacity
	p99      time.Duration
	peak     int // most calls inside the dependency
	limits   []int
	minLimit int
	maxLimit int
}

func (p phase) String() string {
	return fmt.Sprintf("goodput %.0f%%, served p99 %v, peak inside %d, limit %d..%d",
		100*p.goodput, p.p99, p.peak, p.minLimit, p.maxLimit)
}

// measure runs the load for d and reports, the peak counted from settle on.
func (s *simLoad) measure(d, settle time.Duration) phase {
	time.Sleep(settle)
	s.dep.resetPeak()
	s.mu.Lock()
	s.served, s.limits = s.served[:0], s.limits[:0]
	s.mu.Unlock()
	n0 := s.dep.served.Load()
	time.Sleep(d - settle)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dep.mu.Lock()
	capRate := float64(s.dep.capacity) / s.dep.latency.Seconds()
	s.dep.mu.Unlock()
	p := phase{
		goodput: float64(s.dep.served.Load()-n0) / (d - settle).Seconds() / capRate,
		peak:    s.dep.peakInside(),
		limits:  slices.Clone(s.limits),
	}
	if len(s.served) > 0 {
		ds := slices.Clone(s.served)
		slices.Sort(ds)
		p.p99 = ds[len(ds)*99/100]
	}
	if len(p.limits) > 0 {
		p.minLimit, p.maxLimit = slices.Min(p.limits), slices.Max(p.limits)
	}
	return p
}

// adaptiveBulkhead is a bulkhead with ceiling 200, floor 1 and the default tuning.
func adaptiveBulkhead(t *testing.T, mutate func(*core.Config)) *core.Bulkhead {
	return newBulkhead(t, func(c *core.Config) {
		c.MaxConcurrentCalls = 200
		c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1}
		if mutate != nil {
			mutate(c)
		}
	})
}

// assertWithin checks the overload targets on a phase: goodput >= 95% of the capacity,
// served p99 within p99 and at most 1.5x the capacity calls inside the dependency.
func assertWithin(t *testing.T, name string, p phase, capacity int, p99 time.Duration) {
	t.Helper()
	t.Logf("%s: %v", name, p)
	t.Logf("%s: limits %v", name, compress(p.limits))
	assert.GreaterOrEqual(t, p.goodput, 0.95, "%s: goodput", name)
	assert.LessOrEqual(t, p.p99, p99, "%s: served p99", name)
	// At a capacity of 2, 1.5x leaves no room for the one step above capacity+1 that a
	// limit probing upward takes before the latency it sees pulls it back (about one run
	// in twenty of the moving-capacity simulation reaches 4); allow capacity+2 there.
	assert.LessOrEqual(t, p.peak, max(capacity*3/2, capacity+2), "%s: peak inside the dependency", name)
}

func TestAdaptiveFindsCapacityUnderOverload(t *testing.T) {
	for _, sharing := range []bool{false, true} {
		t.Run(map[bool]string{false: "queue", true: "processor sharing"}[sharing], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dep := &simDep{sharing: sharing}
				dep.set(8, 20*time.Millisecond)
				load := &simLoad{b: adaptiveBulkhead(t, nil), dep: dep, clients: 80, pause: 20 * time.Millisecond}
				stop := load.run(10 * time.Millisecond)
				p := load.measure(10*time.Second, 5*time.Second)
				stop()
				assertWithin(t, "steady 10x overload", p, 8, 60*time.Millisecond)
				assert.Zero(t, load.overMax.Load(), "calls started beyond the limit")
				assertIdle(t, load.b.Stats())
			})
		})
	}
}

// compress run-length encodes a series of limits for a log line: "8x12 9x3 ...".
func compress(ls []int) string {
	var out []string
	for i := 0; i < len(ls); {
		j := i
		for j < len(ls) && ls[j] == ls[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%dx%d", ls[i], j-i))
		i = j
	}
	return strings.Join(out, " ")
}

// capacityStep is one stretch of a simulation: the dependency's capacity and latency.
type capacityStep struct {
	capacity int
	latency  time.Duration
	for_     time.Duration
}

// simulate runs an adaptive bulkhead against a dependency going through steps, with 80
// closed-loop clients pausing one unloaded latency after a refusal, and returns what each
// step measured from settle after its start.
func simulate(t *testing.T, dep *simDep, b *core.Bulkhead, settle time.Duration, steps ...capacityStep) ([]phase, *simLoad) {
	dep.set(steps[0].capacity, steps[0].latency)
	load := &simLoad{b: b, dep: dep, clients: 80, pause: steps[0].latency}
	stop := load.run(steps[0].latency / 2)
	var ps []phase
	for _, st := range steps {
		dep.set(st.capacity, st.latency)
		ps = append(ps, load.measure(st.for_, settle))
	}
	stop()
	assert.Zero(t, load.overMax.Load(), "calls started beyond the limit")
	assertIdle(t, b.Stats())
	return ps, load
}

func TestAdaptiveFollowsMovingCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lat = 20 * time.Millisecond
		ps, _ := simulate(t, &simDep{}, adaptiveBulkhead(t, nil), 3*time.Second,
			capacityStep{8, lat, 10 * time.Second},
			capacityStep{2, lat, 10 * time.Second},
			capacityStep{16, lat, 10 * time.Second},
			capacityStep{8, lat, 10 * time.Second})
		for i, capacity := range []int{8, 2, 16, 8} {
			assertWithin(t, fmt.Sprintf("capacity %d, from 3s after the change", capacity), ps[i], capacity, 3*lat)
		}
	})
}

// Real dependencies' latencies spread: a window's mean is noisy, and the limit must not
// take that noise for crowding, nor the low mean of a few calls for the unloaded latency.
// Lognormal latencies of mean 20ms and coefficient of variation 0.5 (a p99 three times
// the median) and 1 (seven times), measured from 10s to 70s, five runs each, judged by
// their medians (a few runs in a hundred go astray for a while, as below).
//
// With windows of twice the limit whatever the spread, the limit was in [8, 12] 87% and
// 31% of the time (medians of 30 runs), went down to 2 and to 1 and up to 19 and 23, and
// the goodput at a spread of 1 was 51% to 83% (median 67%). With windows as long as the
// spread needs, in 200 runs each: 98% and 97% of the time (medians), a goodput of 100%
// (medians), a peak of 13 and 14 at the most. At 0.5 the least was 81% of the time and a
// goodput of 97%; at 1, three runs served under 90% (the least 63%; 7 in another 300, the
// least 68%). Traced, such runs hold a reference a fifth to a third low (the start's few
// calls, or probes sized for a limit of 2 or 3), kept by the lower-of-two rule while the
// limit grows to 4 to 7, where that error reads as a call waiting: the limit holds until
// a later probe outvotes it. The medians are what this test holds to.
func TestAdaptiveSpreadLatencies(t *testing.T) {
	for _, tc := range []struct {
		spread  float64
		goodput float64 // the median at least
		inBand  float64 // the median share of the time with the limit in [8, 12], at least
		peak    int     // the median peak inside the dependency, at most
	}{
		{0.5, 0.95, 0.9, 12},
		{1, 0.9, 0.8, 13},
	} {
		t.Run(fmt.Sprint(tc.spread), func(t *testing.T) {
			const runs = 5
			var goodputs, shares []float64
			var peaks []int
			for range runs {
				synctest.Test(t, func(t *testing.T) {
					ps, _ := simulate(t, &simDep{spread: tc.spread}, adaptiveBulkhead(t, nil), 10*time.Second,
						capacityStep{8, 20 * time.Millisecond, 70 * time.Second})
					p := ps[0]
					in := 0
					for _, l := range p.limits {
						if l >= 8 && l <= 12 {
							in++
						}
					}
					share := float64(in) / float64(len(p.limits))
					t.Logf("from 10s: %v; limit in [8, 12] %.0f%% of the time", p, 100*share)
					goodputs, shares, peaks = append(goodputs, p.goodput), append(shares, share), append(peaks, p.peak)
				})
			}
			slices.Sort(goodputs)
			slices.Sort(shares)
			slices.Sort(peaks)
			assert.GreaterOrEqual(t, goodputs[runs/2], tc.goodput, "median goodput")
			assert.GreaterOrEqual(t, shares[runs/2], tc.inBand, "median share of the time with the limit in [8, 12]")
			assert.LessOrEqual(t, peaks[runs/2], tc.peak, "median peak inside the dependency")
		})
	}
}

func TestAdaptiveTimescales(t *testing.T) {
	for _, lat := range []time.Duration{time.Millisecond, 20 * time.Millisecond, time.Second} {
		for _, sharing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v sharing=%v", lat, sharing), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					// Windows last at least 40ms (calls faster than that are counted together,
					// as the host's scheduling blurs their latencies), so a 1ms dependency
					// takes longer to settle than 150 of its latencies.
					settle := max(150*lat, 1500*time.Millisecond)
					ps, _ := simulate(t, &simDep{sharing: sharing}, adaptiveBulkhead(t, nil), settle,
						capacityStep{8, lat, max(600*lat, settle+3*time.Second)})
					assertWithin(t, "steady 10x overload", ps[0], 8, 3*lat)
				})
			})
		}
	}
}

// A new adaptive bulkhead starts at its floor and must reach the dependency's capacity in
// a few of its latencies, whatever they are, without overshooting it by much.
func TestAdaptiveStart(t *testing.T) {
	for _, lat := range []time.Duration{20 * time.Millisecond, time.Second} {
		t.Run(lat.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dep := &simDep{}
				dep.set(8, lat)
				load := &simLoad{b: adaptiveBulkhead(t, nil), dep: dep, clients: 80, pause: lat}
				stop := load.run(lat / 2)
				start := load.measure(20*lat, 0)
				settled := load.measure(60*lat, 20*lat)
				stop()
				t.Logf("first 20 latencies: %v; limits %v", start, compress(start.limits))
				assert.GreaterOrEqual(t, start.goodput, 0.75, "goodput in the first 20 latencies")
				assert.LessOrEqual(t, start.peak, 2*8, "peak inside the dependency while starting")
				assertWithin(t, "from 40 latencies", settled, 8, 3*lat)
			})
		})
	}
}

// The failure modes of adaptive limiters, one test each.

// A dependency that gets slower by itself (not from load) must not ratchet the limit
// down for good: with a fixed reference latency (the lowest ever seen), every window
// looks crowded and the limit falls to the floor and stays there.
func TestAdaptiveFailureDriftDoesNotRatchetDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dep := &simDep{}
		steps := []capacityStep{{8, 20 * time.Millisecond, 5 * time.Second}}
		// The unloaded latency drifts from 20ms to 60ms over 20s, then stays.
		for lat := 22 * time.Millisecond; lat <= 60*time.Millisecond; lat += 2 * time.Millisecond {
			steps = append(steps, capacityStep{8, lat, time.Second})
		}
		steps = append(steps, capacityStep{8, 60 * time.Millisecond, 10 * time.Second})
		ps, _ := simulate(t, dep, adaptiveBulkhead(t, nil), 0, steps...)
		last := ps[len(ps)-1]
		assertWithin(t, "after the drift", last, 8, 3*60*time.Millisecond)
		for i, p := range ps {
			assert.GreaterOrEqual(t, p.goodput, 0.8, "step %d: %v", i, p)
		}
	})
}

// A dependency that gets faster by itself must not leave the limit far above its
// capacity: against a reference latency three times too high, three times the capacity
// looks like no crowding at all until the next probe.
func TestAdaptiveFollowsFasterDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ps, _ := simulate(t, &simDep{}, adaptiveBulkhead(t, nil), time.Second,
			capacityStep{8, 60 * time.Millisecond, 10 * time.Second},
			capacityStep{8, 20 * time.Millisecond, 4 * time.Second})
		t.Logf("60ms: %v", ps[0])
		assertWithin(t, "20ms, from 1s after the change", ps[1], 8, 3*20*time.Millisecond)
	})
}

// After the capacity rises, the limit must reach it quickly: growing by one per window,
// as additive-increase limiters do, takes many windows.
func TestAdaptiveFailureSlowRampAfterCapacityIncrease(t *testing.T) {
	for _, lat := range []time.Duration{time.Millisecond, 20 * time.Millisecond, time.Second} {
		t.Run(lat.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dep := &simDep{}
				b := adaptiveBulkhead(t, nil)
				dep.set(2, lat)
				load := &simLoad{b: b, dep: dep, clients: 80, pause: lat}
				stop := load.run(lat / 2)
				time.Sleep(200 * lat)
				require.LessOrEqual(t, b.Stats().ConcurrencyLimit, 3, "settled at capacity 2")
				dep.set(16, lat)
				start := time.Now()
				for b.Stats().ConcurrencyLimit < 16 && time.Since(start) < 1000*lat {
					time.Sleep(lat / 4)
				}
				took := time.Since(start)
				stop()
				t.Logf("capacity 2 -> 16: limit at 16 after %v (%.0f unloaded latencies)", took, float64(took)/float64(lat))
				// (Windows last at least 40ms, for calls whose latency the host's scheduling blurs.)
				assert.Less(t, took, max(60*lat, 600*time.Millisecond), "the limit took too long to follow the capacity up")
			})
		})
	}
}

// Under a steady load the limit must settle, not swing: most of the time it sits between
// the capacity and 1.5 times it (the probes, which run below the capacity, excepted).
func TestAdaptiveFailureOscillation(t *testing.T) {
	for _, sharing := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharing=%v", sharing), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ps, _ := simulate(t, &simDep{sharing: sharing}, adaptiveBulkhead(t, nil), 5*time.Second,
					capacityStep{8, 20 * time.Millisecond, 30 * time.Second})
				var inBand, probe, changes int
				for i, l := range ps[0].limits {
					switch {
					case l >= 8 && l <= 12:
						inBand++
					case l < 8:
						probe++
					}
					if i > 0 && l != ps[0].limits[i-1] {
						changes++
					}
				}
				n := len(ps[0].limits)
				t.Logf("%d samples: %d in [8, 12], %d probes, %d changes", n, inBand, probe, changes)
				assert.GreaterOrEqual(t, float64(inBand)/float64(n-probe), 0.95, "limit outside [capacity, 1.5 x capacity]")
				assert.LessOrEqual(t, float64(probe)/float64(n), 0.1, "time spent probing")
			})
		})
	}
}

// A host starved of CPU delays every call whatever the load. The limit must not collapse
// (lowering it cannot bring that latency down), and goodput must hold at least as well as
// with a static limit told the dependency's true capacity.
func TestAdaptiveFailureCPUStarvation(t *testing.T) {
	starved := func(t *testing.T, b *core.Bulkhead) phase {
		const lat = 20 * time.Millisecond
		rng := rand.New(rand.NewPCG(1, 2))
		var mu sync.Mutex
		stallUntil := time.Now()
		dep := &simDep{noise: func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			// Every call is delayed by the scheduler (exponential, mean half the latency),
			// and now and then the whole process stalls for 50ms.
			d := time.Duration(rng.ExpFloat64() * float64(lat/2))
			if now.After(stallUntil) && rng.IntN(200) == 0 {
				stallUntil = now.Add(50 * time.Millisecond)
			}
			if now.Before(stallUntil) {
				d += stallUntil.Sub(now)
			}
			return d
		}}
		ps, _ := simulate(t, dep, b, 5*time.Second, capacityStep{8, lat, 30 * time.Second})
		return ps[0]
	}
	var static, adaptive phase
	synctest.Test(t, func(t *testing.T) {
		static = starved(t, newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 8, 4 }))
	})
	synctest.Test(t, func(t *testing.T) {
		adaptive = starved(t, adaptiveBulkhead(t, nil))
	})
	t.Logf("CPU-starved, static limit 8: %v", static)
	t.Logf("CPU-starved, adaptive: %v", adaptive)
	t.Logf("limits %v", compress(adaptive.limits))
	ls := slices.Clone(adaptive.limits)
	slices.Sort(ls)
	assert.GreaterOrEqual(t, ls[len(ls)/2], 8, "median limit: collapsed")
	assert.Greater(t, ls[len(ls)/20], 3, "the limit spent 5% of the time at 3 or below")
	assert.GreaterOrEqual(t, adaptive.goodput, static.goodput, "goodput below the static limit's")
}

// The limit stays within its floor and ceiling, whatever the dependency does.
func TestAdaptiveBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls = 6
			c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 4}
		})
		ps, _ := simulate(t, &simDep{}, b, time.Second,
			capacityStep{16, 20 * time.Millisecond, 5 * time.Second},
			capacityStep{1, 20 * time.Millisecond, 5 * time.Second})
		assert.Equal(t, 6, ps[0].maxLimit, "capacity 16: at the ceiling")
		assert.Equal(t, 4, ps[1].minLimit, "capacity 1: at the floor")
		for _, p := range ps {
			assert.GreaterOrEqual(t, p.minLimit, 4)
			assert.LessOrEqual(t, p.maxLimit, 6)
		}
		st := b.Stats()
		assert.Equal(t, 6, st.MaxConcurrentCalls)
		assert.Equal(t, 100, st.MaxQueueSize)
	})
}

// Under an adaptive limit the queue holds at most half the limit's worth of callers, so
// that a caller waits about half a call of the dependency, not MaxQueueSize of them.
func TestAdaptiveQueueFollowsTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls = 100
			c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 4}
		})
		g := newGate()
		var calls []*call
		for range 10 {
			calls = append(calls, goExecute(context.Background(), b, hold(g, 1, nil)))
		}
		synctest.Wait()
		st := b.Stats()
		assert.Equal(t, 4, st.ConcurrencyLimit)
		assert.Equal(t, 4, st.ActiveTasks)
		assert.Equal(t, 2, st.QueuedTasks, "ceil(4 x 0.5) waiters")
		assert.Equal(t, int64(4), st.RejectedExecutions)
		close(g)
		for _, c := range calls {
			c.wait()
		}
		assertIdle(t, b.Stats())
	})
}

// Switching between static and adaptive keeps the statistics, the circuit and every call
// in flight.
func TestAdaptiveReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dep := &simDep{}
		dep.set(8, 20*time.Millisecond)
		b := newBulkhead(t, func(c *core.Config) {
			c.MaxConcurrentCalls = 50
			c.CircuitBreakerEnabled = true
		})
		load := &simLoad{b: b, dep: dep, clients: 80, pause: 20 * time.Millisecond}
		stop := load.run(10 * time.Millisecond)
		time.Sleep(2 * time.Second)
		before := b.Stats()
		assert.Equal(t, 50, before.ConcurrencyLimit)

		cfg := b.Config()
		cfg.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1}
		require.NoError(t, b.Reconfigure(cfg))
		time.Sleep(5 * time.Second)
		st := b.Stats()
		assert.GreaterOrEqual(t, st.TotalExecutions, before.TotalExecutions, "statistics kept")
		assert.Equal(t, "CLOSED", st.CircuitStatus)
		assert.Equal(t, 50, st.MaxConcurrentCalls)
		assert.LessOrEqual(t, st.ConcurrencyLimit, 12, "adaptive: near the capacity")

		// Tighter bounds apply at once, keeping what was learned within them.
		cfg.MaxConcurrentCalls = 9
		cfg.Adaptive.MinConcurrentCalls = 9
		require.NoError(t, b.Reconfigure(cfg))
		assert.Equal(t, 9, b.Stats().ConcurrencyLimit)

		cfg.MaxConcurrentCalls = 30
		cfg.Adaptive = nil
		require.NoError(t, b.Reconfigure(cfg))
		assert.Equal(t, 30, b.Stats().ConcurrencyLimit, "static again")
		time.Sleep(time.Second)
		assert.Equal(t, 30, b.Stats().ConcurrencyLimit)
		stop()
		assert.Zero(t, load.overMax.Load())
		after := b.Stats()
		assertIdle(t, after)
		assert.Equal(t, after.TotalExecutions, after.SuccessfulExecutions+after.FailedExecutions)
		assert.GreaterOrEqual(t, after.SuccessfulExecutions, before.SuccessfulExecutions)

		bad := cfg
		bad.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 31}
		err := b.Reconfigure(bad)
		assert.Equal(t, []string{"Adaptive.MinConcurrentCalls"}, configFields(t, err))
		assert.Nil(t, b.Config().Adaptive, "an invalid config changes nothing")
	})
}

// TestAdaptiveHammer is TestHammer's mix against adaptive bulkheads while another
// goroutine keeps switching them between static and adaptive with other floors and
// tuning. The ceiling stays 8, so every snapshot must show the usual invariants and a
// limit between 1 and 8, and never more than 8 functions may run at once.
func TestAdaptiveHammer(t *testing.T) {
	calls := 100_000
	if testing.Short() {
		calls = 10_000
	}
	const workers = 32
	newHammered := func(name string, timeout time.Duration) *core.Bulkhead {
		return newBulkhead(t, func(c *core.Config) {
			c.Name = name
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 8, 24, timeout
			c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1}
		})
	}
	bulkheads := []*core.Bulkhead{newHammered("timed", 2*time.Millisecond), newHammered("plain", 0)}
	tallies := []*tally{new(tally), new(tally)}

	stop := make(chan struct{})
	var background sync.WaitGroup
	var snapshots, reconfigs atomic.Int64
	limits := make([]atomic.Int64, 9) // how often each limit was seen
	for r := range 2 {
		background.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := bulkheads[(i+r)%2].Stats()
				snapshots.Add(1)
				if !invariantsHold(s) || s.ConcurrencyLimit < 1 || s.ConcurrencyLimit > 8 {
					assertInvariants(t, s)
					assert.Fail(t, "limit out of bounds", "%+v", s)
					return
				}
				limits[s.ConcurrencyLimit].Add(1)
				runtime.Gosched()
			}
		})
	}
	background.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			b := bulkheads[i%2]
			cfg := b.Config()
			switch rng.IntN(4) {
			case 0:
				cfg.Adaptive = nil
			default:
				floor := 1 + rng.IntN(8)
				cfg.Adaptive = &core.AdaptiveConfig{
					MinConcurrentCalls:     floor,
					InitialConcurrentCalls: floor + rng.IntN(9-floor),
					QueuePerLimit:          []float64{0, 0.25, 3}[rng.IntN(3)],
					Tolerance:              []float64{0, 0.5}[rng.IntN(2)],
				}
			}
			if err := b.Reconfigure(cfg); err != nil {
				assert.NoError(t, err)
				return
			}
			reconfigs.Add(1)
		}
	})

	hammerBoth(bulkheads, tallies, workers, calls, 43)
	close(stop)
	background.Wait()

	for k, b := range bulkheads {
		tl := tallies[k]
		s := shutdownAndMatch(t, b, tl)
		assert.LessOrEqual(t, tl.mostRunning.Load(), int32(8), "%s: never more than the ceiling at once", b.Name())
		assert.Positive(t, s.SuccessfulExecutions, "%s: the mix has successes", b.Name())
		assert.Positive(t, tl.full.Load(), "%s: the mix has ErrFull", b.Name())
	}
	var seen []string
	for l := range limits {
		if n := limits[l].Load(); n > 0 {
			seen = append(seen, fmt.Sprintf("%d:%d", l, n))
		}
	}
	t.Logf("%d snapshots, %d reconfigurations; limits seen %v", snapshots.Load(), reconfigs.Load(), seen)
	assert.Positive(t, reconfigs.Load())
}

func ExampleAdaptiveConfig() {
	cfg := core.DefaultConfig("search")
	cfg.MaxConcurrentCalls = 200 // the ceiling, not a guess
	cfg.Timeout = 2 * time.Second
	cfg.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1} // the floor; the rest defaults
	b, err := core.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	st := b.Stats()
	fmt.Println(st.ConcurrencyLimit, st.MaxConcurrentCalls) // the limit in force, the ceiling
	// Output: 1 200
}

// Through Acquire and Release, as the middleware admits calls, with a Timeout: when the
// capacity falls so far that calls time out, the timed-out calls are what the limit
// learns from (their latencies stop at the timeout, so they never make the reference).
func TestAdaptivePermitsWithTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lat = 20 * time.Millisecond
		dep := &simDep{}
		dep.set(8, lat)
		b := adaptiveBulkhead(t, func(c *core.Config) { c.Timeout = 5 * lat })
		ctx, cancel := context.WithCancel(context.Background())
		var wg, calls sync.WaitGroup
		var served atomic.Int64
		for range 80 {
			wg.Go(func() {
				for ctx.Err() == nil {
					p, err := b.Acquire(ctx)
					if err != nil {
						time.Sleep(lat)
						continue
					}
					pctx := p.Context(ctx)
					done := make(chan struct{})
					calls.Go(func() { _, _ = dep.call(pctx); close(done) })
					select {
					case <-done:
					case <-pctx.Done():
					}
					o := core.Success
					if dl, _ := p.Deadline(); !time.Now().Before(dl) {
						o = core.TimedOut
					} else {
						served.Add(1)
					}
					require.NoError(t, p.Release(o))
				}
			})
		}
		time.Sleep(5 * time.Second)
		dep.set(2, lat) // calls now wait far past the Timeout at the old limit
		time.Sleep(3 * time.Second)
		dep.resetPeak()
		n0 := served.Load()
		var limits []int
		for range 70 {
			time.Sleep(100 * time.Millisecond)
			limits = append(limits, b.Stats().ConcurrencyLimit)
		}
		goodput := float64(served.Load()-n0) / 7 / (2 / lat.Seconds())
		cancel()
		wg.Wait()
		calls.Wait() // the dependency's calls that outlived their permits
		t.Logf("capacity 2 through permits: goodput %.0f%%, peak inside %d, limits %v", 100*goodput, dep.peakInside(), compress(limits))
		assert.GreaterOrEqual(t, goodput, 0.9)
		assert.LessOrEqual(t, slices.Max(limits), 4, "the limit came down to the capacity")
		assertIdle(t, b.Stats())
	})
}
