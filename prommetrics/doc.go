// Package prommetrics exports what a core.Manager's bulkheads do as Prometheus metrics.
//
// # One step, two sources
//
// New attaches a Collector to a Manager in one call; it reads two sources of it. Gauges
// (running, queued and abandoned calls, the limits, the state, the end of an isolation)
// are read from Manager.Stats when Prometheus scrapes, so they cost nothing on the path of
// a call. Counters (calls by outcome, rejections by reason and priority, timeouts, state
// changes) and the histograms (queue wait, execution time) come from the Manager's events,
// to which New subscribes (core.Manager.Subscribe), because Stats has no per-reason
// rejection count, no neutral outcome and no latencies, and because a counter must only
// ever go up (Stats counters go back to zero on ResetStats). Bulkheads the Manager
// creates later are included:
//
//	m := core.NewManager()
//	reg.MustRegister(prommetrics.New(m))
//
// # Metrics
//
// Every series has the label bulkhead (the bulkhead's name). The metrics, all prefixed
// bulkman_:
//
//	bulkman_calls_total{outcome}              counter   admitted calls that ended: success, failure, neutral
//	bulkman_rejections_total{reason,priority} counter   refused calls: full, circuit_open, timeout, shutdown;
//	                                                    by the call's priority: low, normal, high, critical
//	bulkman_timeouts_total                    counter   running calls whose Timeout fired (also outcome="failure")
//	bulkman_state_changes_total{state}        counter   transitions into healthy, degraded or isolated
//	bulkman_active_calls                      gauge     running calls (Stats.ActiveTasks)
//	bulkman_queued_calls                      gauge     callers waiting for a permit (Stats.QueuedTasks)
//	bulkman_abandoned_calls                   gauge     timed-out functions still holding a permit (Stats.AbandonedTasks)
//	bulkman_max_concurrent_calls              gauge     Config.MaxConcurrentCalls
//	bulkman_max_queue_size                    gauge     Config.MaxQueueSize
//	bulkman_concurrency_limit                 gauge     the limit in force (Stats.ConcurrencyLimit; moves when adaptive)
//	bulkman_open_until_timestamp_seconds      gauge     end of the isolation, Unix seconds; only while the circuit is open
//	bulkman_state{state}                      gauge     1 for the current state, 0 for the other two
//	bulkman_queue_wait_duration_seconds       histogram admission to start of the function
//	bulkman_execution_duration_seconds        histogram start of the function to its end (or its timeout)
//
// The counters of a bulkhead the Manager knows are exported from the first scrape
// on, at 0 until something happens, so that rate() sees the first increase. A histogram
// series is exported once a call it counts has ended, as OpenTelemetry does.
//
// docs/observability.md in the repository explains every metric and gives example queries.
package prommetrics
