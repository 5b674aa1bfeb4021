// Package otelmetrics records what a core.Manager's bulkheads do as OpenTelemetry
// metrics, on a MeterProvider the caller gives: the same content as package prommetrics,
// with names that an OpenTelemetry-to-Prometheus exporter turns into the same metric and
// label names.
//
// # Two sources
//
// Like prommetrics it has two sources. The observable instruments (running, queued and
// abandoned calls, the limits, the state) are read from Manager.Stats in a callback, when
// a reader collects, and cost nothing on the path of a call. The counters and histograms
// are fed by the Manager's event hook. Wire both:
//
//	r, err := otelmetrics.New(meterProvider)
//	if err != nil { ... }
//	defer r.Close()
//	m := core.NewManager(core.WithEventHook(r.Observe)) // counters and histograms
//	r.Watch(m)                                          // observable instruments
//
// # Instruments
//
// The instruments, on the meter named "github.com/bulkman-go/bulkman/otelmetrics"; every
// measurement has the attribute bulkhead (the bulkhead's name):
//
//	bulkman.calls                 Int64Counter                   {call}  attribute outcome: success, failure, neutral
//	bulkman.rejections            Int64Counter                   {call}  attribute reason: full, circuit_open, timeout, shutdown
//	bulkman.timeouts              Int64Counter                   {call}  running calls whose Timeout fired
//	bulkman.state_changes         Int64Counter                   {transition}  attribute state: the state entered
//	bulkman.active_calls          Int64ObservableUpDownCounter   {call}
//	bulkman.queued_calls          Int64ObservableUpDownCounter   {call}
//	bulkman.abandoned_calls       Int64ObservableUpDownCounter   {call}
//	bulkman.max_concurrent_calls  Int64ObservableUpDownCounter   {call}
//	bulkman.max_queue_size        Int64ObservableUpDownCounter   {call}
//	bulkman.state                 Int64ObservableGauge                   attribute state: 1 for the current one, 0 for the others
//	bulkman.queue_wait.duration   Float64Histogram               s
//	bulkman.execution.duration    Float64Histogram               s       attribute outcome
//
// The histograms advise prommetrics.DefaultBuckets as their bucket boundaries; a View on
// the MeterProvider changes them. The attribute keys are bare (bulkhead, not
// bulkman.bulkhead) so that both packages export identical label names.
//
// docs/observability.md in the repository explains every instrument.
package otelmetrics
