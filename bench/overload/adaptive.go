package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulkman-go/bulkman/core"
)

// The adaptive modes: no capacity given to the guard.
//
//	bulkman-adaptive   core.Config.Adaptive (floor 1, every other setting at its default),
//	                   MaxConcurrentCalls -ceiling (200) as the ceiling, MaxQueueSize -queue
//	                   (the adaptive queue bound applies within it), Timeout -timeout
//	failsafe-adaptive  failsafe.With(timeout -timeout, adaptivelimiter.NewWithDefaults()):
//	                   failsafe-go's adaptive limiter with its default settings
//
// Scenarios for them (see docs/performance.md, "Adaptive limits"):
//
//	go run ./overload -mode bulkman-adaptive,failsafe-adaptive -refusal-pause 20ms -max-duration 15s -requests 1000000
//	go run ./overload -mode bulkman-adaptive,failsafe-adaptive -refusal-pause 20ms -max-duration 15s -requests 1000000 -dep-spread 0.5
//	go run ./overload -mode bulkman-adaptive,failsafe-adaptive -refusal-pause 20ms -capacity-schedule 8,2,16 -capacity-every 10s -max-duration 30s -requests 1000000
//	go run ./overload -mode bulkman-adaptive,failsafe-adaptive -dep-latency 1ms -refusal-pause 1ms -timeout 5ms -max-duration 15s -requests 1000000
//	go run ./overload -mode bulkman-adaptive,failsafe-adaptive -dep-latency 1s -refusal-pause 1s -timeout 5s -max-duration 60s -requests 1000000
var adaptiveModes = map[string]bool{"bulkman-adaptive": true, "failsafe-adaptive": true}

// The targets for a guard that is not told the capacity: from settleStart after the start
// (settleChange after each change of the capacity), goodput at least targetGoodput of
// the capacity, served p99 at most targetP99 dependency latencies (60ms for 20ms), and at
// most targetPeak times the capacity inside the handler.
const (
	settleStart   = 5 * time.Second
	settleChange  = 3 * time.Second
	targetGoodput = 0.95
	targetP99     = 3
	targetPeak    = 1.5
)

// timelineEvery is the step of the server's timeline.
const timelineEvery = 100 * time.Millisecond

func adaptiveFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.server.Ceiling, "ceiling", 200, "bulkman-adaptive MaxConcurrentCalls (the ceiling)")
	fs.Func("capacity-schedule", "the dependency's capacity over time, comma-separated (e.g. 8,2,16): one value every -capacity-every", func(s string) error {
		o.server.Schedule = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("capacity %q: want an integer >= 1", f)
			}
			o.server.Schedule = append(o.server.Schedule, n)
		}
		return nil
	})
	fs.DurationVar(&o.server.ScheduleEvery, "capacity-every", 10*time.Second, "how long each capacity of -capacity-schedule lasts")
}

func checkAdaptiveFlags(o *options) error {
	switch {
	case o.server.Ceiling < 1:
		return errors.New("-ceiling must be at least 1")
	case len(o.server.Schedule) > 0 && o.server.ScheduleEvery <= 0:
		return errors.New("-capacity-every must be positive")
	}
	if len(o.server.Schedule) > 0 {
		o.server.DepCapacity = slices.Max(o.server.Schedule)
	}
	return nil
}

// adaptiveServer makes the bulkman-adaptive bulkhead. (failsafe-adaptive needs nothing
// here: its limiter is made with the interceptor.)
func (s *server) adaptiveServer(cfg serverConfig) error {
	if cfg.Mode != "bulkman-adaptive" {
		return nil
	}
	bc := core.DefaultConfig("dependency")
	bc.MaxConcurrentCalls = cfg.Ceiling
	bc.MaxQueueSize = cfg.Queue
	bc.Timeout = cfg.Timeout
	bc.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1}
	var err error
	s.bh, err = core.New(bc)
	return err
}

// timelineStep is one step of the server's timeline.
type timelineStep struct {
	Peak      int64 `json:"peak"`      // the most requests inside the handler at once
	Completed int64 `json:"completed"` // dependency calls that ended in the step
	Limit     int   `json:"limit"`     // bulkman's Stats.ConcurrencyLimit at its end (0: none)
}

// adaptiveState is the server's capacity schedule and timeline while the load runs.
type adaptiveState struct {
	cfg  serverConfig
	stop chan struct{}
	done sync.WaitGroup
	mu   sync.Mutex
	line []timelineStep
}

// startTimeline samples the dependency every timelineEvery and, with a schedule, moves its
// capacity. The dependency's semaphore has room for the largest capacity; a lower one is
// made by holding the rest of its slots (taking them waits for running calls to end, as
// a real dependency losing capacity lets the calls it has finish).
func (s *server) startTimeline() {
	a := &s.adapt
	a.stop = make(chan struct{})
	cfg := a.cfg
	held := 0
	setCapacity := func(c int) {
		want := cap(s.dep.slots) - c
		for ; held < want; held++ {
			select {
			case s.dep.slots <- struct{}{}:
			case <-a.stop:
				return
			}
		}
		for ; held > want; held-- {
			<-s.dep.slots
		}
	}
	if len(cfg.Schedule) > 0 {
		setCapacity(cfg.Schedule[0])
		a.done.Go(func() {
			for _, c := range cfg.Schedule[1:] {
				select {
				case <-a.stop:
					return
				case <-time.After(cfg.ScheduleEvery):
				}
				setCapacity(c)
			}
			<-a.stop
		})
	}
	a.done.Go(func() {
		tick := time.NewTicker(timelineEvery)
		defer tick.Stop()
		last := s.dep.completed.Load()
		s.dep.stepPeak.Store(s.dep.inHandler.Load())
		for {
			select {
			case <-a.stop:
				return
			case <-tick.C:
			}
			n := s.dep.completed.Load()
			st := timelineStep{Peak: s.dep.stepPeak.Swap(s.dep.inHandler.Load()), Completed: n - last}
			last = n
			if s.bh != nil {
				st.Limit = s.bh.Stats().ConcurrencyLimit
			}
			a.mu.Lock()
			a.line = append(a.line, st)
			a.mu.Unlock()
		}
	})
}

func (s *server) stopTimeline() []timelineStep {
	a := &s.adapt
	if a.stop == nil {
		return nil
	}
	close(a.stop)
	a.done.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.line)
}

// phaseReport is one stretch of a run measured against the adaptive targets.
type phaseReport struct {
	From      time.Duration `json:"from"` // since the start of the load
	To        time.Duration `json:"to"`
	Capacity  int           `json:"capacity"`
	Goodput   float64       `json:"goodput"`    // served/s, as a share of capacity / latency
	ServedP99 time.Duration `json:"served_p99"` // of requests that ended in the stretch
	Peak      int64         `json:"peak"`       // most requests inside the handler at once
	LimitMin  int           `json:"limit_min"`  // bulkman's limit in the stretch (0: none)
	LimitMax  int           `json:"limit_max"`
}

// met reports whether p meets the adaptive targets for a dependency of latency lat.
func (p phaseReport) met(lat time.Duration) bool {
	return p.Goodput >= targetGoodput && p.ServedP99 <= targetP99*lat && float64(p.Peak) <= targetPeak*float64(p.Capacity)
}

// phases cuts r into the stretches the adaptive targets apply to: from settleStart to the
// end without a schedule; with one, each capacity from settleChange after it starts
// (settleStart for the first) to its end. It cuts the runs of the adaptive modes, and of
// none: with every client inside the dependency, none's goodput is the most the
// dependency serves on this host, the ceiling the guards' goodput is measured against.
func phases(o options, r result) []phaseReport {
	if !adaptiveModes[r.Mode] && r.Mode != "none" {
		return nil
	}
	sc := o.server
	end := r.Client.Elapsed
	type span struct {
		from, to time.Duration
		capacity int
	}
	var spans []span
	if len(sc.Schedule) == 0 {
		spans = append(spans, span{settleStart, end, sc.DepCapacity})
	} else {
		for i, c := range sc.Schedule {
			from, to := time.Duration(i)*sc.ScheduleEvery, time.Duration(i+1)*sc.ScheduleEvery
			if i == len(sc.Schedule)-1 {
				to = end
			}
			settle := settleChange
			if i == 0 {
				settle = settleStart
			}
			spans = append(spans, span{from + settle, min(to, end), c})
		}
	}
	var out []phaseReport
	for _, sp := range spans {
		if sp.to <= sp.from {
			continue
		}
		p := phaseReport{From: sp.from, To: sp.to, Capacity: sp.capacity}
		var ds []time.Duration
		for _, s := range r.Client.Served {
			if s.End >= sp.from && s.End < sp.to {
				ds = append(ds, s.D)
			}
		}
		p.Goodput = float64(len(ds)) / (sp.to - sp.from).Seconds() / (float64(sp.capacity) / sc.DepLatency.Seconds())
		p.ServedP99 = summarize(ds).P99
		for i, st := range r.Server.Timeline {
			at := time.Duration(i+1) * timelineEvery // the step's end
			if at-timelineEvery < sp.from || at > sp.to {
				continue
			}
			p.Peak = max(p.Peak, st.Peak)
			if st.Limit > 0 {
				if p.LimitMin == 0 || st.Limit < p.LimitMin {
					p.LimitMin = st.Limit
				}
				p.LimitMax = max(p.LimitMax, st.Limit)
			}
		}
		out = append(out, p)
	}
	return out
}

// servedAt is one served request: when it ended and how long it took.
type servedAt struct {
	End, D time.Duration
}

// printPhases writes the adaptive targets' table for the runs of rs that phases cut.
func printPhases(w io.Writer, o options, rs []result) {
	lat := o.server.DepLatency
	header := false
	for _, r := range rs {
		for _, p := range r.Phases {
			if !header {
				fmt.Fprintf(w, "\nadaptive targets (capacity not given): goodput >= %.0f%% of capacity, served p99 <= %v, peak inside <= %.1f x capacity, from %v after the start and %v after each change\n\n",
					100*targetGoodput, targetP99*lat, targetPeak, settleStart, settleChange)
				fmt.Fprintln(w, "| guard | stretch | capacity | goodput | served p99 | peak inside | limit | targets |")
				fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---|")
				header = true
			}
			limit := "–"
			if p.LimitMax > 0 {
				limit = fmt.Sprintf("%d..%d", p.LimitMin, p.LimitMax)
			}
			verdict := "met"
			switch {
			case r.Mode == "none":
				verdict = "– (the dependency's ceiling)"
			case !p.met(lat):
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "| %s | %.0f-%.0f s | %d | %.0f%% | %s | %d | %s | %s |\n",
				modeTitle[r.Mode], p.From.Seconds(), p.To.Seconds(), p.Capacity, 100*p.Goodput,
				fmtDur(p.ServedP99), p.Peak, limit, verdict)
		}
	}
}
