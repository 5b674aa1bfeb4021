package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// modeTitle is the column header of a mode.
var modeTitle = map[string]string{"none": "no protection", "bulkman": "bulkman", "failsafe": "failsafe-go",
	"bulkman-adaptive": "bulkman adaptive", "failsafe-adaptive": "failsafe-go adaptivelimiter"}

// printTable writes one markdown table: a row per measure, a column per run.
func printTable(w io.Writer, title string, o options, rs []result) {
	fmt.Fprintf(w, "\n### %s\n\n|  |", title)
	for _, r := range rs {
		fmt.Fprintf(w, " %s |", modeTitle[r.Mode])
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(rs)))
	row := func(name string, f func(r result) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %s |", f(r))
		}
		fmt.Fprintln(w)
	}
	count := func(oc outcome) func(r result) string {
		return func(r result) string { return fmt.Sprint(r.Client.Counts[oc]) }
	}
	lat := func(oc outcome, pick func(summary) time.Duration) func(r result) string {
		return func(r result) string {
			if r.Client.Latency[oc].N == 0 {
				return "–"
			}
			return fmtDur(pick(r.Client.Latency[oc]))
		}
	}
	p50 := func(s summary) time.Duration { return s.P50 }
	p99 := func(s summary) time.Duration { return s.P99 }
	pmax := func(s summary) time.Duration { return s.Max }

	row("wall time", func(r result) string {
		s := fmt.Sprintf("%.2f s", r.Client.Elapsed.Seconds())
		if r.Client.HitTimeBound {
			s += " (time bound)"
		}
		return s
	})
	row("requests sent", func(r result) string { return fmt.Sprint(r.Client.Sent) })
	row("served", count(outcomeOK))
	row("refused (full)", count(outcomeRefused))
	row("timed out (guard's timeout)", count(outcomeTimedOut))
	if o.load.ClientTimeout > 0 {
		row("client deadline passed", count(outcomeClientDeadline))
	}
	row("other errors", count(outcomeOther))
	row("cut off at the time bound", count(outcomeCutOff))
	row("dependency calls run (work done)", func(r result) string { return fmt.Sprint(r.Server.DepCalls) })
	row("**goodput** (served/s)", func(r result) string { return fmt.Sprintf("**%.0f**", r.Client.Goodput()) })
	row("served latency p50", lat(outcomeOK, p50))
	row("**served latency p99**", func(r result) string { return bold(lat(outcomeOK, p99)(r)) })
	row("served latency max", lat(outcomeOK, pmax))
	row("refusal latency p50 (client)", lat(outcomeRefused, p50))
	row("**refusal latency p99** (client)", func(r result) string { return bold(lat(outcomeRefused, p99)(r)) })
	row("refusal latency p99 (server)", func(r result) string {
		if r.Server.Refused.N == 0 {
			return "–"
		}
		return fmtDur(r.Server.Refused.P99)
	})
	row("timed-out latency p99 (client)", lat(outcomeTimedOut, p99))
	row("no-op probe p50 / p99: idle → under load", func(r result) string {
		c := r.Client
		return fmt.Sprintf("%s / %s → %s / %s", fmtDur(c.ProbeIdle.P50), fmtDur(c.ProbeIdle.P99), fmtDur(c.ProbeLoad.P50), fmtDur(c.ProbeLoad.P99))
	})
	row("goroutines: idle → **peak** (mean)", func(r result) string {
		return fmt.Sprintf("%d → **%d** (%.0f)", r.Server.IdleGoroutines, r.Server.PeakGoroutines, r.Server.MeanGoroutines)
	})
	row("peak requests inside the handler", func(r result) string { return fmt.Sprint(r.Server.PeakInHandler) })
	row("heap in use: idle → **peak**", func(r result) string {
		return fmt.Sprintf("%s → **%s**", fmtBytes(r.Server.IdleHeap), fmtBytes(r.Server.PeakHeap))
	})
	row("CPU: server + load generator", func(r result) string {
		cores := (r.Server.CPU + r.Client.CPU).Seconds() / r.Client.Elapsed.Seconds()
		return fmt.Sprintf("%.2f + %.2f s (%.1f cores)", r.Server.CPU.Seconds(), r.Client.CPU.Seconds(), cores)
	})
	if o.server.Breaker {
		row("circuit at the end", func(r result) string {
			if r.Server.Circuit == "" {
				return "–"
			}
			return r.Server.Circuit
		})
	}

	for _, r := range rs {
		if r.Mode == "bulkman" {
			printTargets(w, o, r)
		}
	}
	printPhases(w, o, rs)
}

// goroutineSlack is the constant of the goroutine target: goroutines beyond the idle
// count, the limit and the queue that a run may peak at (refusals in progress, timers,
// the HTTP/1.1 server's per-request background reader).
const goroutineSlack = 10

// printTargets checks bulkman's run against the targets.
func printTargets(w io.Writer, o options, r result) {
	sc := o.server
	queueWait := time.Duration((sc.Queue+sc.Limit-1)/sc.Limit) * sc.DepLatency
	servedBound := 2*sc.DepLatency + queueWait
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	served := r.Client.Latency[outcomeOK]
	refused := r.Client.Latency[outcomeRefused]
	fmt.Fprintf(w, "\nbulkman targets (%s):\n", r.Proto)
	fmt.Fprintf(w, "- served p99 %s <= 2 x %v + queue wait %v (queue %d / limit %d x %v) = %v: %s\n",
		fmtDur(served.P99), sc.DepLatency, queueWait, sc.Queue, sc.Limit, sc.DepLatency, servedBound,
		verdict(served.N > 0 && served.P99 <= servedBound))
	fmt.Fprintf(w, "- refusal p99 %s (client; server side %s; an unguarded no-op request at the same time: p99 %s) < 1ms: %s\n",
		fmtDur(refused.P99), fmtDur(r.Server.Refused.P99), fmtDur(r.Client.ProbeLoad.P99), verdict(refused.N > 0 && refused.P99 < time.Millisecond))
	extra := r.Server.PeakGoroutines - r.Server.IdleGoroutines
	fmt.Fprintf(w, "- peak goroutines idle %d + %d <= idle + limit + queue (%d) + %d: %s (mean idle + %.0f; clients %d)\n",
		r.Server.IdleGoroutines, extra, sc.Limit+sc.Queue, goroutineSlack,
		verdict(extra <= sc.Limit+sc.Queue+goroutineSlack), r.Server.MeanGoroutines-float64(r.Server.IdleGoroutines), o.load.Clients)
	fmt.Fprintf(w, "- requests inside the handler at once %d <= limit %d: %s\n",
		r.Server.PeakInHandler, sc.Limit, verdict(r.Server.PeakInHandler <= int64(sc.Limit)))
}

func bold(s string) string {
	if s == "–" {
		return s
	}
	return "**" + s + "**"
}

// fmtDur prints d in µs below a millisecond, in ms with one decimal above.
func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func fmtBytes(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
