package statuspage

import (
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/metricvocab"
)

// The recent history the JSON handler keeps per bulkhead, and the rule that calls a
// bulkhead shedding.
const (
	// Step is the resolution of the history: its counts are per step.
	Step = 2 * time.Second
	// HistorySteps is how many complete steps the history holds: five minutes.
	HistorySteps = 150
	// SheddingWindow is how far back the shedding rule looks: the current step and the
	// ones before it, SheddingWindow in all.
	SheddingWindow = 10 * time.Second
	// SheddingShare is the share of refused calls, refusals / (ended calls + refusals),
	// from which a healthy bulkhead is shedding.
	SheddingShare = 0.05
	// SheddingMinRefusals is the fewest refusals within SheddingWindow that make a
	// bulkhead shedding, so that one refusal among a handful of calls does not.
	SheddingMinRefusals = 5
)

const (
	ringSize     = HistorySteps + 1 // the complete steps and the current one
	windowSteps  = int64(SheddingWindow / Step)
	numReasons   = len(metricvocab.Reasons)
	numPriority  = len(metricvocab.Priorities)
	numWaitSlots = 1 + 17 + 1 // 0, metricvocab.DefaultBuckets, above the last bound
)

// waitBounds are the upper bounds of the queue-wait buckets: 0 (a call that did not
// wait), then the metrics' default buckets.
var waitBounds = func() []time.Duration {
	b := []time.Duration{0}
	for _, s := range metricvocab.DefaultBuckets() {
		b = append(b, time.Duration(s*float64(time.Second)))
	}
	if len(b)+1 != numWaitSlots {
		panic("statuspage: numWaitSlots does not match metricvocab.DefaultBuckets")
	}
	return b
}()

// slot holds the counts of one step. Writers add to it without a lock; the first writer
// of a new step (or a reader) resets it under its track's lock.
type slot struct {
	step     atomic.Int64 // the step the counts belong to
	calls    atomic.Uint32
	refusals [numReasons]atomic.Uint32
	priority [numPriority]atomic.Uint32
	wait     [numWaitSlots]atomic.Uint32
	limit    atomic.Int32 // the concurrency limit a reader saw in this step; 0: none
}

// track is the history of one bulkhead: a ring of slots, one per step.
type track struct {
	born  int64 // the first step it recorded
	mu    sync.Mutex
	slots [ringSize]slot
}

// at returns the slot of step, reset if it last held an older step.
func (t *track) at(step int64) *slot {
	s := &t.slots[step%ringSize]
	if s.step.Load() == step {
		return s
	}
	t.mu.Lock()
	if s.step.Load() < step {
		s.calls.Store(0)
		for i := range s.refusals {
			s.refusals[i].Store(0)
		}
		for i := range s.priority {
			s.priority[i].Store(0)
		}
		for i := range s.wait {
			s.wait[i].Store(0)
		}
		s.limit.Store(0)
		s.step.Store(step)
	}
	t.mu.Unlock()
	return s
}

// read returns the slot of step if it holds that step, nil if nothing was recorded in it.
func (t *track) read(step int64) *slot {
	if step < t.born {
		return nil
	}
	s := &t.slots[step%ringSize]
	if s.step.Load() != step {
		return nil
	}
	return s
}

// history records a Manager's events per bulkhead and step. It is what JSON subscribes
// to the Manager.
//
// Reading the clock for every event would cost more than the rest of the hook (30 to
// 60ns on a VM), so the hook reads the current step from cur, which a timer sets at each
// step's start. The timer runs only while events come: a step without events stops it,
// and the next event starts it again (reading the clock that once).
type history struct {
	m      *core.Manager
	base   time.Time
	tracks atomic.Pointer[map[string]*track] // copied on write
	mu     sync.Mutex                        // serialises writers of tracks

	cur     atomic.Int64 // the current step while ticking
	ticking atomic.Bool  // the timer is set
	busy    atomic.Bool  // an event came since the last tick
	timer   *time.Timer  // calls tick at the start of each step while ticking
}

func newHistory(m *core.Manager) *history {
	h := &history{m: m, base: time.Now()}
	h.tracks.Store(&map[string]*track{})
	h.timer = time.AfterFunc(time.Hour, h.tick)
	h.timer.Stop()
	m.Subscribe(h.observe)
	return h
}

// step returns the current step from the clock. time.Since reads only the monotonic
// clock.
func (h *history) step() int64 { return int64(time.Since(h.base) / Step) }

// untilNext returns the time left in the current step.
func (h *history) untilNext() time.Duration { return Step - time.Since(h.base)%Step }

// eventStep returns the current step for an event: cur while the timer runs, else it
// starts the timer.
func (h *history) eventStep() int64 {
	if !h.busy.Load() {
		h.busy.Store(true)
	}
	if !h.ticking.Load() {
		// cur is stale: set it before the timer runs, so that no event reads a stale one
		// once ticking is true.
		step := h.step()
		h.cur.Store(step)
		if h.ticking.CompareAndSwap(false, true) {
			h.timer.Reset(h.untilNext())
		}
		return step
	}
	return h.cur.Load()
}

// tick starts a step: it sets cur, and sets the timer again if events came in the step
// that ended.
func (h *history) tick() {
	h.cur.Store(h.step())
	if h.busy.Swap(false) {
		h.timer.Reset(h.untilNext())
		return
	}
	h.ticking.Store(false)
}

// startOf returns when step began.
func (h *history) startOf(step int64) time.Time { return h.base.Add(time.Duration(step) * Step) }

func (h *history) track(name string, step int64) *track {
	if t, ok := (*h.tracks.Load())[name]; ok {
		return t
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.tracks.Load()
	if t, ok := old[name]; ok {
		return t
	}
	// A new bulkhead: drop the tracks of those the Manager no longer has, so that the
	// tracks stay as many as the live bulkheads. (Manager.Get takes only the Manager's
	// own lock, never a bulkhead's.)
	next := make(map[string]*track, len(old)+1)
	for n, t := range old {
		if _, live := h.m.Get(n); live {
			next[n] = t
		}
	}
	t := &track{born: step}
	next[name] = t
	h.tracks.Store(&next)
	return t
}

// observe records e in the current step of its bulkhead. It takes no lock and does not
// allocate, except in the first event of a bulkhead and the first of each step.
func (h *history) observe(e core.Event) {
	switch e.Kind {
	case core.EventFinished, core.EventRejected:
	default:
		return
	}
	step := h.eventStep()
	s := h.track(e.Bulkhead, step).at(step)
	if e.Kind == core.EventFinished {
		s.calls.Add(1)
		s.wait[waitSlot(e.QueuedTime)].Add(1)
		return
	}
	if r := metricvocab.Reason(e.Err); r >= 0 {
		s.refusals[r].Add(1)
		s.priority[metricvocab.PriorityIndex(e.Priority)].Add(1)
	}
}

// waitSlot returns the bucket of a queue wait d.
func waitSlot(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	lo, hi := 1, len(waitBounds) // the first bound >= d, by binary search
	for lo < hi {
		mid := (lo + hi) / 2
		if waitBounds[mid] >= d {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// quantile returns the q-quantile of the counts, interpolated linearly within its
// bucket as Prometheus's histogram_quantile does, in seconds; NaN without calls.
func quantile(q float64, counts *[numWaitSlots]uint64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var seen uint64
	for i, c := range counts {
		if c == 0 || float64(seen+c) < rank {
			seen += c
			continue
		}
		if i == 0 {
			return 0
		}
		if i == len(waitBounds) { // above the last bound: the last bound, as a floor
			return waitBounds[i-1].Seconds()
		}
		lo, hi := waitBounds[i-1].Seconds(), waitBounds[i].Seconds()
		return lo + (hi-lo)*(rank-float64(seen))/float64(c)
	}
	return waitBounds[len(waitBounds)-1].Seconds()
}

// Recent is what the JSON handler adds to a bulkhead's Stats: its recent history, from
// its events, and the shedding rule's inputs.
type Recent struct {
	// At is when the snapshot was taken, in milliseconds since the Unix epoch; the page
	// counts the end of an isolation down from it, so that its own clock does not matter.
	At int64 `json:"at_unix_ms"`
	// StepSeconds is the length of a step of the series.
	StepSeconds float64 `json:"step_seconds"`
	// End is when the last step of the series ended (the current step began), in
	// milliseconds since the Unix epoch. The series are oldest first.
	End int64 `json:"end_unix_ms"`

	// CallsPerSecond are the admitted calls that ended, per second, in each step.
	CallsPerSecond Series `json:"calls_per_second"`
	// RefusalsPerSecond are the refused calls per second in each step, by reason (full,
	// circuit_open, timeout, shutdown).
	RefusalsPerSecond map[string]Series `json:"refusals_per_second"`
	// QueueWaitP99 is the 99th percentile of the queue wait of the calls that ended in
	// each step, in seconds; null for a step without calls.
	QueueWaitP99 Series `json:"queue_wait_p99_seconds"`
	// ConcurrencyLimit is the limit in force as this handler saw it during each step;
	// null for a step in which no request came.
	ConcurrencyLimit Series `json:"concurrency_limit"`

	// WindowSeconds is how far back the shedding rule looked; Calls and Refusals are the
	// ended and refused calls within it, and RefusalShare refusals / (calls + refusals).
	WindowSeconds float64 `json:"window_seconds"`
	Calls         int64   `json:"window_calls"`
	Refusals      int64   `json:"window_refusals"`
	RefusalShare  float64 `json:"window_refusal_share"`
	// RefusedByPriority counts the refused calls of the whole series by their priority
	// (low, normal, high, critical).
	RefusedByPriority map[string]int64 `json:"refused_by_priority"`
}

// Series is a list of numbers, oldest first, in which NaN stands for "no data" and is
// written as null in JSON.
type Series []float64

// MarshalJSON writes the numbers rounded to three decimals, and NaN as null.
func (s Series) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(s)*4)
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = appendFloat(b, math.Round(v*1000)/1000)
	}
	return append(b, ']'), nil
}

// recent builds the Recent of bulkhead name, whose Stats are s, and records s's
// concurrency limit in the current step.
func (h *history) recent(name string, s core.Stats, now time.Time) *Recent {
	cur := h.step()
	t := h.track(name, cur)
	t.at(cur).limit.Store(int32(min(s.ConcurrencyLimit, math.MaxInt32)))

	perSecond := float64(time.Second) / float64(Step)
	r := &Recent{
		At:                now.UnixMilli(),
		StepSeconds:       Step.Seconds(),
		End:               h.startOf(cur).UnixMilli(),
		CallsPerSecond:    make(Series, HistorySteps),
		RefusalsPerSecond: make(map[string]Series, numReasons),
		QueueWaitP99:      make(Series, HistorySteps),
		ConcurrencyLimit:  make(Series, HistorySteps),
		WindowSeconds:     SheddingWindow.Seconds(),
		RefusedByPriority: make(map[string]int64, numPriority),
	}
	refusals := make([]Series, numReasons)
	for i, reason := range metricvocab.Reasons {
		refusals[i] = make(Series, HistorySteps)
		r.RefusalsPerSecond[reason] = refusals[i]
	}
	var byPriority [numPriority]int64
	for i := range HistorySteps {
		step := cur - HistorySteps + int64(i)
		if step < t.born {
			r.CallsPerSecond[i], r.QueueWaitP99[i], r.ConcurrencyLimit[i] = math.NaN(), math.NaN(), math.NaN()
			for _, ser := range refusals {
				ser[i] = math.NaN()
			}
			continue
		}
		sl := t.read(step)
		if sl == nil { // nothing happened in that step
			r.QueueWaitP99[i], r.ConcurrencyLimit[i] = math.NaN(), math.NaN()
			continue
		}
		r.CallsPerSecond[i] = float64(sl.calls.Load()) * perSecond
		for k := range refusals {
			refusals[k][i] = float64(sl.refusals[k].Load()) * perSecond
		}
		for p := range byPriority {
			byPriority[p] += int64(sl.priority[p].Load())
		}
		var counts [numWaitSlots]uint64
		for k := range counts {
			counts[k] = uint64(sl.wait[k].Load())
		}
		r.QueueWaitP99[i] = quantile(0.99, &counts)
		r.ConcurrencyLimit[i] = math.NaN()
		if l := sl.limit.Load(); l > 0 {
			r.ConcurrencyLimit[i] = float64(l)
		}
	}
	if sl := t.read(cur); sl != nil {
		for p := range byPriority {
			byPriority[p] += int64(sl.priority[p].Load())
		}
	}
	for p, name := range metricvocab.Priorities {
		r.RefusedByPriority[name] = byPriority[p]
	}
	for step := cur - windowSteps + 1; step <= cur; step++ {
		if sl := t.read(step); sl != nil {
			r.Calls += int64(sl.calls.Load())
			for k := range sl.refusals {
				r.Refusals += int64(sl.refusals[k].Load())
			}
		}
	}
	if n := r.Calls + r.Refusals; n > 0 {
		r.RefusalShare = float64(r.Refusals) / float64(n)
	}
	return r
}

// Status says what the page shows for a bulkhead. A circuit that is not closed decides:
// "isolated" (open) or "degraded" (half-open). Otherwise the bulkhead is "shedding" when,
// within SheddingWindow, it refused at least SheddingMinRefusals calls and at least
// SheddingShare of the calls that reached it (refused / (ended + refused)); else
// "healthy".
func Status(s core.Stats, r *Recent) string {
	switch s.State {
	case core.Isolated:
		return "isolated"
	case core.Degraded:
		return "degraded"
	}
	if r != nil && r.Refusals >= SheddingMinRefusals && r.RefusalShare >= SheddingShare {
		return "shedding"
	}
	return "healthy"
}

// prune drops the tracks of bulkheads not in live.
func (h *history) prune(live map[string]core.Stats) {
	if len(*h.tracks.Load()) <= len(live) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	next := maps.Clone(*h.tracks.Load())
	maps.DeleteFunc(next, func(n string, _ *track) bool { _, ok := live[n]; return !ok })
	h.tracks.Store(&next)
}
