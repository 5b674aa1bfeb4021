package otelmetrics

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/metricvocab"
)

// ScopeName is the name of the meter the instruments are created on.
const ScopeName = "github.com/bulkman-go/bulkman/otelmetrics"

// Recorder records one core.Manager's bulkheads on a MeterProvider, attached to the
// Manager by New.
//
// A Recorder is safe for concurrent use. The zero Recorder is not usable: call New.
type Recorder struct {
	manager     *core.Manager
	reg         metric.Registration
	unsubscribe func()
	closed      atomic.Bool

	// attrs maps a bulkhead's name to its pre-built measurement options. The map is
	// copied on write (once per new bulkhead), so that Observe reads it without a lock.
	attrs   atomic.Pointer[map[string]*bulkheadAttrs]
	attrsMu sync.Mutex

	calls, rejections, timeouts, stateChanges metric.Int64Counter
	queueWait, execution                      metric.Float64Histogram

	active, queued, abandoned, maxConc, maxQueue, limit metric.Int64ObservableUpDownCounter
	state                                               metric.Int64ObservableGauge
	openUntil                                           metric.Float64ObservableGauge
}

// bulkheadAttrs holds one bulkhead's attribute sets as ready-made option slices: the
// measurement methods are variadic, and a slice built at each call would be allocated.
type bulkheadAttrs struct {
	add      []metric.AddOption     // {bulkhead}
	record   []metric.RecordOption  // {bulkhead}
	observe  []metric.ObserveOption // {bulkhead}
	outcomes [len(metricvocab.Outcomes)]labelled
	reasons  [len(metricvocab.Reasons)][len(metricvocab.Priorities)]labelled // {bulkhead, reason, priority}
	states   [len(metricvocab.States)]labelled                               // for the state gauge and state changes
}

// labelled is one attribute set {bulkhead, key=value} as options of each kind.
type labelled struct {
	add     []metric.AddOption
	record  []metric.RecordOption
	observe []metric.ObserveOption
}

func newLabelled(set attribute.Set) labelled {
	o := metric.WithAttributeSet(set)
	return labelled{add: []metric.AddOption{o}, record: []metric.RecordOption{o}, observe: []metric.ObserveOption{o}}
}

// New creates the instruments on mp's meter ScopeName and attaches them to m in this one
// step: it subscribes to m's events (core.Manager.Subscribe) for the counters and
// histograms, and registers a callback that reads m's Stats for the observable
// instruments. Bulkheads m creates later are included. It returns an error, and attaches
// nothing, if m or mp is nil or mp refuses an instrument. Call Close to detach the
// Recorder when it is no longer used.
func New(m *core.Manager, mp metric.MeterProvider) (*Recorder, error) {
	var nils []error
	if m == nil {
		nils = append(nils, errors.New("otelmetrics: nil Manager"))
	}
	if mp == nil {
		nils = append(nils, errors.New("otelmetrics: nil MeterProvider"))
	}
	if err := errors.Join(nils...); err != nil {
		return nil, err
	}
	meter := mp.Meter(ScopeName)
	r := &Recorder{manager: m}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(metricvocab.DefaultBuckets()...))
		errs = append(errs, err)
		return h
	}
	upDown := func(name, desc string) metric.Int64ObservableUpDownCounter {
		c, err := meter.Int64ObservableUpDownCounter(name, metric.WithUnit("{call}"), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	r.calls = counter("bulkman.calls", "{call}",
		"Admitted calls that ended, by outcome: success, failure (error, panic or timeout) or neutral (the caller went away).")
	r.rejections = counter("bulkman.rejections", "{call}",
		"Calls the bulkhead refused, by reason (full, circuit_open, timeout while queued, or shutdown) and by the refused call's priority (low, normal, high, critical).")
	r.timeouts = counter("bulkman.timeouts", "{call}",
		"Running calls whose timeout fired; bulkman.calls counts them with outcome failure.")
	r.stateChanges = counter("bulkman.state_changes", "{transition}",
		"Circuit transitions, by the state entered: healthy (closed), degraded (half-open) or isolated (open).")
	r.queueWait = histogram("bulkman.queue_wait.duration",
		"Time from admission to the start of the function, for admitted calls that ended.")
	r.execution = histogram("bulkman.execution.duration",
		"Time from the start of the function to its end (or to its timeout), by outcome.")
	r.active = upDown("bulkman.active_calls", "Calls running now whose outcome is not yet recorded.")
	r.queued = upDown("bulkman.queued_calls", "Callers waiting for a permit.")
	r.abandoned = upDown("bulkman.abandoned_calls", "Timed-out functions still running and still holding a permit.")
	r.maxConc = upDown("bulkman.max_concurrent_calls", "The most calls that may run at once (Config.MaxConcurrentCalls).")
	r.maxQueue = upDown("bulkman.max_queue_size", "The most callers that may wait for a permit (Config.MaxQueueSize).")
	r.limit = upDown("bulkman.concurrency_limit",
		"The concurrency limit in force now: max_concurrent_calls for a static bulkhead, the limit an adaptive one found (Stats.ConcurrencyLimit).")
	var err error
	r.openUntil, err = meter.Float64ObservableGauge("bulkman.open_until_timestamp", metric.WithUnit("s"), metric.WithDescription(
		"While the circuit is open: when its isolation ends, in seconds since the Unix epoch (Stats.OpenUntil). Absent otherwise."))
	errs = append(errs, err)
	r.state, err = meter.Int64ObservableGauge("bulkman.state", metric.WithDescription(
		"1 for the bulkhead's current state, 0 for the others: healthy (circuit closed, or no breaker), degraded (half-open), isolated (open)."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	empty := map[string]*bulkheadAttrs{}
	r.attrs.Store(&empty)
	r.reg, err = meter.RegisterCallback(r.collect, r.active, r.queued, r.abandoned, r.maxConc, r.maxQueue, r.limit, r.state, r.openUntil)
	if err != nil {
		return nil, err
	}
	r.unsubscribe = m.Subscribe(r.observe)
	return r, nil
}

// Close detaches r from its Manager: it unsubscribes from its events and unregisters the
// callback of the observable instruments. The counters and histograms stay on the
// MeterProvider (OpenTelemetry cannot remove instruments) with what they counted. Close
// returns the MeterProvider's error, if any; a second Close returns nil.
func (r *Recorder) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.unsubscribe()
	return r.reg.Unregister()
}

// collect is the callback of the observable instruments: it reads the Manager's Stats,
// and starts the counters of its bulkheads at 0 at the first collection.
func (r *Recorder) collect(_ context.Context, o metric.Observer) error {
	for name, s := range r.manager.Stats() {
		a := r.lookup(name)
		o.ObserveInt64(r.active, int64(s.ActiveTasks), a.observe...)
		o.ObserveInt64(r.queued, int64(s.QueuedTasks), a.observe...)
		o.ObserveInt64(r.abandoned, int64(s.AbandonedTasks), a.observe...)
		o.ObserveInt64(r.maxConc, int64(s.MaxConcurrentCalls), a.observe...)
		o.ObserveInt64(r.maxQueue, int64(s.MaxQueueSize), a.observe...)
		o.ObserveInt64(r.limit, int64(s.ConcurrencyLimit), a.observe...)
		if !s.OpenUntil.IsZero() {
			o.ObserveFloat64(r.openUntil, float64(s.OpenUntil.UnixNano())/1e9, a.observe...)
		}
		for i, st := range metricvocab.States {
			var v int64
			if s.State == st {
				v = 1
			}
			o.ObserveInt64(r.state, v, a.states[i].observe...)
		}
	}
	return nil
}

// lookup returns the options of bulkhead name, building them the first time; then it
// also adds 0 to each of the bulkhead's counters, so that they are exported before
// anything happens.
func (r *Recorder) lookup(name string) *bulkheadAttrs {
	if a, ok := (*r.attrs.Load())[name]; ok {
		return a
	}
	r.attrsMu.Lock()
	defer r.attrsMu.Unlock()
	old := *r.attrs.Load()
	if a, ok := old[name]; ok {
		return a
	}
	bulkhead := attribute.String("bulkhead", name)
	with := func(key, value string) labelled {
		return newLabelled(attribute.NewSet(bulkhead, attribute.String(key, value)))
	}
	only := newLabelled(attribute.NewSet(bulkhead))
	a := &bulkheadAttrs{add: only.add, record: only.record, observe: only.observe}
	for i, o := range metricvocab.Outcomes {
		a.outcomes[i] = with("outcome", o)
	}
	for i, reason := range metricvocab.Reasons {
		for j, p := range metricvocab.Priorities {
			a.reasons[i][j] = newLabelled(attribute.NewSet(bulkhead, attribute.String("reason", reason), attribute.String("priority", p)))
		}
	}
	for i, st := range metricvocab.States {
		a.states[i] = with("state", st.String())
	}
	next := maps.Clone(old)
	next[name] = a
	r.attrs.Store(&next)

	ctx := context.Background()
	for _, o := range a.outcomes {
		r.calls.Add(ctx, 0, o.add...)
	}
	for _, byPriority := range a.reasons {
		for _, o := range byPriority {
			r.rejections.Add(ctx, 0, o.add...)
		}
	}
	r.timeouts.Add(ctx, 0, a.add...)
	for _, o := range a.states {
		r.stateChanges.Add(ctx, 0, o.add...)
	}
	return a
}

// observe records e: it is what New subscribes to the Manager. It builds no attribute set
// and allocates nothing, except the first time it sees a bulkhead; what a measurement
// costs beyond that is the MeterProvider's.
func (r *Recorder) observe(e core.Event) {
	a := r.lookup(e.Bulkhead)
	ctx := context.Background() // the hook has no context; the measurements need none
	switch e.Kind {
	case core.EventFinished:
		if i := metricvocab.OutcomeIndex(e.Outcome); i >= 0 {
			o := &a.outcomes[i]
			r.calls.Add(ctx, 1, o.add...)
			r.queueWait.Record(ctx, e.QueuedTime.Seconds(), a.record...)
			r.execution.Record(ctx, e.ExecutionTime.Seconds(), o.record...)
		}
	case core.EventRejected:
		if i := metricvocab.Reason(e.Err); i >= 0 {
			r.rejections.Add(ctx, 1, a.reasons[i][metricvocab.PriorityIndex(e.Priority)].add...)
		}
	case core.EventTimedOut:
		r.timeouts.Add(ctx, 1, a.add...)
	case core.EventStateChanged:
		if i := metricvocab.StateIndex(e.To); i >= 0 {
			r.stateChanges.Add(ctx, 1, a.states[i].add...)
		}
	}
}
