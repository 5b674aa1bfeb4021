package prommetrics

import (
	"maps"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/metricvocab"
)

// Collector is a prometheus.Collector over one core.Manager, attached to it by New.
//
// A Collector is safe for concurrent use. The zero Collector is not usable: call New.
type Collector struct {
	manager     *core.Manager // nil: nothing to export
	unsubscribe func()
	closed      atomic.Bool

	// series maps a bulkhead's name to its counters, and byAddr the address of the
	// name's bytes (see lookup). Both maps are copied on write (once per new bulkhead), so
	// that observe reads them without a lock or an allocation.
	series   atomic.Pointer[map[string]*series]
	byAddr   atomic.Pointer[map[*byte]*series]
	seriesMu sync.Mutex // serialises writers of series and byAddr

	queueLayout, executionLayout layout

	calls, rejections, timeouts, stateChanges    *prometheus.Desc
	queueWait, execution                         *prometheus.Desc
	active, queued, abandoned, maxConc, maxQueue *prometheus.Desc
	limit, state, openUntil                      *prometheus.Desc
}

// The label values; observe picks a counter by the index of its label value.
var (
	outcomeNames  = metricvocab.Outcomes
	reasonNames   = metricvocab.Reasons
	priorityNames = metricvocab.Priorities
	states        = metricvocab.States
)

// series is what the hook records for one bulkhead, laid out so that a call that did not
// wait costs two atomic adds:
//
//   - execution is kept per outcome, and its counts are bulkman_calls_total;
//   - it is also split by whether the call waited in the queue. A call that did not wait
//     (QueuedTime 0, the common case) is counted only there; those counts make up the
//     zero bucket of the queue-wait histogram at scrape time. Only calls that waited are
//     observed in queueWait.
//
// Every bucket of every exported histogram is a sum of counters that only go up, so each
// stays monotonic between scrapes.
type series struct {
	name         string
	execution    [2][len(outcomeNames)]histogram // [waited][outcome]
	queueWait    histogram                       // calls that waited
	rejections   [len(reasonNames)][len(priorityNames)]atomic.Uint64
	timeouts     atomic.Uint64
	stateChanges [len(states)]atomic.Uint64
}

// Option configures a Collector.
type Option func(*options)

type options struct {
	queueBuckets, executionBuckets []float64
}

// DefaultBuckets returns the default histogram buckets, in seconds: 100µs to 30s, about
// three per decade. It returns a new slice each time; the caller owns it.
func DefaultBuckets() []float64 { return metricvocab.DefaultBuckets() }

// WithQueueWaitBuckets sets the upper bounds, in seconds, of
// bulkman_queue_wait_duration_seconds. New copies, sorts and deduplicates them and drops
// NaN and infinite ones (the +Inf bucket is always there); nothing left means
// DefaultBuckets.
func WithQueueWaitBuckets(bounds []float64) Option {
	return func(o *options) { o.queueBuckets = bounds }
}

// WithExecutionBuckets sets the upper bounds, in seconds, of
// bulkman_execution_duration_seconds, like WithQueueWaitBuckets.
func WithExecutionBuckets(bounds []float64) Option {
	return func(o *options) { o.executionBuckets = bounds }
}

const (
	namespace     = "bulkman"
	labelBulkhead = "bulkhead"
)

// New returns a Collector of m's bulkheads, attached to m in this one step: it subscribes
// to m's events (core.Manager.Subscribe) for the counters and histograms, and reads m's
// Stats at every scrape for the gauges. Bulkheads m creates later are included; Close
// detaches it. A nil m gives a Collector that exports nothing.
//
// Register the Collector with a prometheus.Registerer once; registering it twice with one
// Registerer fails because the metric names are taken.
func New(m *core.Manager, opts ...Option) *Collector {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, append([]string{labelBulkhead}, labels...), nil)
	}
	c := &Collector{
		queueLayout:     newLayout(o.queueBuckets),
		executionLayout: newLayout(o.executionBuckets),

		calls: desc("calls_total",
			"Admitted calls that ended, by outcome: success, failure (error, panic or timeout) or neutral (the caller went away).",
			"outcome"),
		rejections: desc("rejections_total",
			"Calls the bulkhead refused, by reason (full, circuit_open, timeout while queued, or shutdown) and by the refused call's priority (low, normal, high, critical).",
			"reason", "priority"),
		timeouts: desc("timeouts_total",
			"Running calls whose timeout fired; bulkman_calls_total counts them with outcome failure."),
		stateChanges: desc("state_changes_total",
			"Circuit transitions, by the state entered: healthy (closed), degraded (half-open) or isolated (open).",
			"state"),
		queueWait: desc("queue_wait_duration_seconds",
			"Time from admission to the start of the function, for admitted calls that ended."),
		execution: desc("execution_duration_seconds",
			"Time from the start of the function to its end (or to its timeout), by outcome.",
			"outcome"),
		active:    desc("active_calls", "Calls running now whose outcome is not yet recorded."),
		queued:    desc("queued_calls", "Callers waiting for a permit."),
		abandoned: desc("abandoned_calls", "Timed-out functions still running and still holding a permit."),
		maxConc:   desc("max_concurrent_calls", "The most calls that may run at once (Config.MaxConcurrentCalls)."),
		maxQueue:  desc("max_queue_size", "The most callers that may wait for a permit (Config.MaxQueueSize)."),
		limit: desc("concurrency_limit",
			"The concurrency limit in force now: max_concurrent_calls for a static bulkhead, the limit an adaptive one found (Stats.ConcurrencyLimit)."),
		openUntil: desc("open_until_timestamp_seconds",
			"While the circuit is open: when its isolation ends, in seconds since the Unix epoch (Stats.OpenUntil). Absent otherwise."),
		state: desc("state",
			"1 for the bulkhead's current state, 0 for the others: healthy (circuit closed, or no breaker), degraded (half-open), isolated (open).",
			"state"),
	}
	c.series.Store(&map[string]*series{})
	c.byAddr.Store(&map[*byte]*series{})
	c.manager = m
	c.unsubscribe = func() {}
	if m != nil {
		c.unsubscribe = m.Subscribe(c.observe)
	}
	return c
}

// Close detaches c from its Manager: its counters and histograms stop counting, and its
// gauges are no longer exported. What it counted so far is still exported while it stays
// registered. Close is idempotent.
func (c *Collector) Close() {
	c.unsubscribe()
	c.closed.Store(true)
}

// Describe sends the descriptors of every metric c exports. It implements
// prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

func (c *Collector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		c.calls, c.rejections, c.timeouts, c.stateChanges, c.queueWait, c.execution,
		c.active, c.queued, c.abandoned, c.maxConc, c.maxQueue, c.limit, c.state, c.openUntil,
	}
}

// Collect sends every metric: the gauges from the Manager's Stats, the counters and
// histograms from its events. It implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if m := c.manager; m != nil && !c.closed.Load() {
		stats := m.Stats()
		c.track(stats)
		for name, s := range stats {
			gauge := func(d *prometheus.Desc, v int) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), name)
			}
			gauge(c.active, s.ActiveTasks)
			gauge(c.queued, s.QueuedTasks)
			gauge(c.abandoned, s.AbandonedTasks)
			gauge(c.maxConc, s.MaxConcurrentCalls)
			gauge(c.maxQueue, s.MaxQueueSize)
			gauge(c.limit, s.ConcurrencyLimit)
			if !s.OpenUntil.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.openUntil, prometheus.GaugeValue,
					float64(s.OpenUntil.UnixNano())/1e9, name)
			}
			for _, st := range states {
				v := 0.0
				if s.State == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, name, st.String())
			}
		}
	}
	ql, el := &c.queueLayout, &c.executionLayout
	for name, s := range *c.series.Load() {
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		queueCounts := make([]uint64, len(ql.seconds)+1)
		queueSum := s.queueWait.addTo(queueCounts)
		for o := range outcomeNames {
			counts := make([]uint64, len(el.seconds)+1)
			sum := s.execution[0][o].addTo(counts)
			for _, n := range counts { // these calls did not wait
				queueCounts[ql.zero] += n
			}
			sum += s.execution[1][o].addTo(counts)
			count, buckets, seconds := el.exposition(counts, sum)
			counter(c.calls, count, outcomeNames[o])
			if count > 0 {
				ch <- prometheus.MustNewConstHistogram(c.execution, count, seconds, buckets, name, outcomeNames[o])
			}
		}
		if count, buckets, seconds := ql.exposition(queueCounts, queueSum); count > 0 {
			ch <- prometheus.MustNewConstHistogram(c.queueWait, count, seconds, buckets, name)
		}
		for r := range s.rejections {
			for p := range s.rejections[r] {
				counter(c.rejections, s.rejections[r][p].Load(), reasonNames[r], priorityNames[p])
			}
		}
		counter(c.timeouts, s.timeouts.Load())
		for i := range s.stateChanges {
			counter(c.stateChanges, s.stateChanges[i].Load(), states[i].String())
		}
	}
}

// lookup returns the series of bulkhead name, creating it the first time.
func (c *Collector) lookup(name string) *series {
	// A bulkhead passes the same string (its own name) in every event, so the address of
	// the name's bytes finds its series without hashing or comparing the name. A
	// string with the same name at another address takes the slow path, and still finds
	// the same series.
	p := unsafe.StringData(name)
	if s, ok := (*c.byAddr.Load())[p]; ok && len(s.name) == len(name) {
		return s
	}
	return c.lookupSlow(name)
}

func (c *Collector) lookupSlow(name string) *series {
	if s, ok := (*c.series.Load())[name]; ok {
		return s
	}
	c.seriesMu.Lock()
	defer c.seriesMu.Unlock()
	old := *c.series.Load()
	if s, ok := old[name]; ok {
		return s
	}
	s := c.newSeries(name)
	// Only the address of the first string seen is remembered, so that names built
	// afresh for every event cannot grow the map; track replaces it by the live
	// bulkheads' own names at the next scrape.
	byAddr := maps.Clone(*c.byAddr.Load())
	byAddr[unsafe.StringData(name)] = s
	c.byAddr.Store(&byAddr)
	next := maps.Clone(old)
	next[name] = s
	c.series.Store(&next)
	return s
}

func (c *Collector) newSeries(name string) *series {
	s := &series{name: name}
	s.queueWait.init(c.queueLayout.durations)
	for w := range s.execution {
		for o := range s.execution[w] {
			s.execution[w][o].init(c.executionLayout.durations)
		}
	}
	return s
}

// track creates the series of each bulkhead in stats (the Manager's), so that
// its counters are exported at 0 before anything happens, and makes byAddr the addresses
// of these bulkheads' names. The keys of Manager.Stats are the bulkheads' own name
// strings, the ones their events carry: a bulkhead removed from the Manager and created
// again under the same name, from a string built at run time, carries a new address,
// which lookup would otherwise never learn (it remembers the first address of a name
// only). Rebuilding here, when a live bulkhead's address is missing or byAddr holds more
// than the live bulkheads, keeps observe free of that work and byAddr bounded by the live
// bulkheads; a bulkhead the Manager does not have takes the slow path. While the
// bulkheads stay the same, track costs a map read per bulkhead.
func (c *Collector) track(stats map[string]core.Stats) {
	if byAddr := *c.byAddr.Load(); len(byAddr) <= len(stats) {
		current := true
		for name := range stats {
			if _, ok := byAddr[unsafe.StringData(name)]; !ok {
				current = false
				break
			}
		}
		if current {
			return
		}
	}
	c.seriesMu.Lock()
	defer c.seriesMu.Unlock()
	all := *c.series.Load()
	cloned := false
	byAddr := make(map[*byte]*series, len(stats))
	for name := range stats {
		s, ok := all[name]
		if !ok {
			if !cloned {
				all, cloned = maps.Clone(all), true
			}
			s = c.newSeries(name)
			all[name] = s
		}
		byAddr[unsafe.StringData(name)] = s
	}
	if cloned {
		c.series.Store(&all)
	}
	c.byAddr.Store(&byAddr)
}

// observe records e: it is what New subscribes to the Manager. It takes no lock and does
// not allocate, except the first time it sees a bulkhead.
func (c *Collector) observe(e core.Event) {
	s := c.lookup(e.Bulkhead)
	switch e.Kind {
	case core.EventFinished:
		if o := metricvocab.OutcomeIndex(e.Outcome); o >= 0 {
			waited := 0
			if e.QueuedTime > 0 {
				waited = 1
				s.queueWait.observe(e.QueuedTime)
			}
			s.execution[waited][o].observe(e.ExecutionTime)
		}
	case core.EventRejected:
		if r := metricvocab.Reason(e.Err); r >= 0 {
			s.rejections[r][metricvocab.PriorityIndex(e.Priority)].Add(1)
		}
	case core.EventTimedOut:
		s.timeouts.Add(1)
	case core.EventStateChanged:
		if i := metricvocab.StateIndex(e.To); i >= 0 {
			s.stateChanges[i].Add(1)
		}
	}
}
