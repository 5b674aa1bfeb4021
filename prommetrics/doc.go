// Package prommetrics exports what a core.Manager's bulkheads do as Prometheus metrics.
//
// # Two sources
//
// A Collector has two sources. Gauges (running, queued and abandoned calls, the limits, the
// state) are read from Manager.Stats when Prometheus scrapes, so they cost nothing on the
// path of a call. Counters (calls by outcome, rejections by reason, timeouts, state
// changes) and the histograms (queue wait, execution time) are fed by the Manager's event
// hook, because Stats has no per-reason rejection count, no neutral outcome and no
// latencies, and because a counter must only ever go up (Stats counters go back to zero on
// ResetStats). Wire both sources:
//
//	c := prommetrics.New()
//	m := core.NewManager(core.WithEventHook(c.Observe)) // counters and histograms
//	c.Watch(m)                                          // gauges, read at scrape time
//	reg.MustRegister(c)
//
// # Metrics
//
// Every series has the label bulkhead (the bulkhead's name). The metrics, all prefixed
// bulkman_:
//
//	bulkman_calls_total{outcome}              counter   admitted calls that ended: success, failure, neutral
//	bulkman_rejections_total{reason}          counter   refused calls: full, circuit_open, timeout, shutdown
//	bulkman_timeouts_total                    counter   running calls whose Timeout fired (also outcome="failure")
//	bulkman_state_changes_total{state}        counter   transitions into healthy, degraded or isolated
//	bulkman_active_calls                      gauge     running calls (Stats.ActiveTasks)
//	bulkman_queued_calls                      gauge     callers waiting for a permit (Stats.QueuedTasks)
//	bulkman_abandoned_calls                   gauge     timed-out functions still holding a permit (Stats.AbandonedTasks)
//	bulkman_max_concurrent_calls              gauge     Config.MaxConcurrentCalls
//	bulkman_max_queue_size                    gauge     Config.MaxQueueSize
//	bulkman_state{state}                      gauge     1 for the current state, 0 for the other two
//	bulkman_queue_wait_duration_seconds       histogram admission to start of the function
//	bulkman_execution_duration_seconds        histogram start of the function to its end (or its timeout)
//
// The counters of a bulkhead the watched Manager knows are exported from the first scrape
// on, at 0 until something happens, so that rate() sees the first increase. A histogram
// series is exported once a call it counts has ended, as OpenTelemetry does.
//
// docs/observability.md in the repository explains every metric and gives example queries.
package prommetrics
