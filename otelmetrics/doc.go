// Package otelmetrics records what a core.Manager's bulkheads do as OpenTelemetry
// metrics, on a MeterProvider the caller gives: the same content as package prommetrics,
// with names that an OpenTelemetry-to-Prometheus exporter turns into the same metric and
// label names.
//
// # One step, two sources
//
// New attaches a Recorder to a Manager in one call; like prommetrics it reads two sources
// of it. The observable instruments (running, queued and abandoned calls, the limits, the
// state, the end of an isolation) are read from Manager.Stats in a callback, when a
// reader collects, and cost nothing on the path of a call. The counters and histograms
// come from the Manager's events, to which New subscribes (core.Manager.Subscribe).
// Bulkheads the Manager creates later are included:
//
//	m := core.NewManager()
//	r, err := otelmetrics.New(m, meterProvider)
//	if err != nil { ... }
//	defer r.Close()
//
// # Instruments
//
// The instruments, on the meter named "github.com/bulkman-go/bulkman/otelmetrics"; every
// measurement has the attribute bulkhead (the bulkhead's name):
//
//	bulkman.calls                 Int64Counter                   {call}  attribute outcome: success, failure, neutral
//	bulkman.rejections            Int64Counter                   {call}  attribute reason: full, circuit_open, timeout, shutdown;
//	                                                                     attribute priority: low, normal, high, critical
//	bulkman.timeouts              Int64Counter                   {call}  running calls whose Timeout fired
//	bulkman.state_changes         Int64Counter                   {transition}  attribute state: the state entered
//	bulkman.active_calls          Int64ObservableUpDownCounter   {call}
//	bulkman.queued_calls          Int64ObservableUpDownCounter   {call}
//	bulkman.abandoned_calls       Int64ObservableUpDownCounter   {call}
//	bulkman.max_concurrent_calls  Int64ObservableUpDownCounter   {call}
//	bulkman.max_queue_size        Int64ObservableUpDownCounter   {call}
//	bulkman.concurrency_limit     Int64ObservableUpDownCounter   {call}  the limit in force (Stats.ConcurrencyLimit)
//	bulkman.open_until_timestamp  Float64ObservableGauge         s       Unix time the isolation ends; only while open
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
