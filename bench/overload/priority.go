package main

// The priority scenarios (-scenario mixed,flood): who is served when not everyone can be.
//
//	mixed  80 closed-loop clients (ten times the dependency's concurrency), a -critical
//	       share of them sending every request as critical, the others as normal; a
//	       client waits 20ms after a refusal. Target: >= 99% of the critical requests
//	       served, their p99 at most twice the p99 of critical requests alone (unloaded:
//	       one client). The critical clients alone are twice the dependency's capacity
//	       (16 clients, 8 places), so their p99 cannot fall below about twice one
//	       client's ("floor": the least mean latency they can have by Little's law,
//	       16 x 20ms / 8, over the alone p99); the "crit-only" columns are the second
//	       baseline: all the critical clients alone, no other traffic, on a server of
//	       their own.
//	flood  five tenants, open loop, evenly spaced: four send their fair share of the
//	       dependency (400/s / 5 = 80/s each), the fifth -flood-factor times as much.
//	       Target: the four keep >= 95% of the goodput they have without the fifth.
//
// Each runs in this process, in three modes, either calling the protection directly
// (-prio-transport direct, the default: a call costs microseconds, so that the machine's
// CPU does not limit what the dependency serves) or through an HTTP server on 127.0.0.1
// (-prio-transport http, where priorities and tenants travel as headers):
//
//	fifo      bulkman, httpmw.Handler, limit 8, queue -prio-queue, without
//	          WithTrustedHeaders: the headers are ignored, one FIFO queue
//	bulkman   the same with WithTrustedHeaders: Bulkman-Priority and Bulkman-Tenant rank
//	          the requests
//	adaptive  bulkman with an adaptive limit (1..8, initially 8; QueuePerLimit 2, so at
//	          most 2x the limit wait, and never more than -prio-queue)
//	failsafe  failsafe-go's adaptivelimiter (limits 1..8, initially 8; queueing 1x..2x
//	          the limit) built with a prioritizer (calibrated every second, with a usage
//	          tracker for tenants): X-Failsafe-Priority 4 (VeryHigh) for critical, 2
//	          (Medium) for normal, the tenant as the prioritizer's user
//
// The dependency is the one of the other scenarios: 8 calls at once, 20ms each, or, with
// -dep-spread, latencies spread around that mean as a real service's are. The floor is a
// mean and stays; the one-client p99 then lies well above the mean, and the target's
// ratio no longer sits on the floor.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/priority"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

// prioOptions are the priority scenarios' flags.
type prioOptions struct {
	scenarios   []string
	modes       []string
	critical    float64
	floodFactor int
	duration    time.Duration
	queue       int
	pause       time.Duration
	transport   string
}

func registerPrioFlags(fs *flag.FlagSet, o *prioOptions) func() error {
	scenarios := fs.String("scenario", "", "run priority scenarios instead, comma-separated: mixed, flood")
	modes := fs.String("prio-mode", "fifo,bulkman,adaptive,failsafe", "protections for -scenario, comma-separated: fifo, bulkman, adaptive, failsafe")
	fs.Float64Var(&o.critical, "critical", 0.2, "mixed: the share of clients sending critical requests")
	fs.IntVar(&o.floodFactor, "flood-factor", 10, "flood: how many times its fair share the flooding tenant sends")
	fs.DurationVar(&o.duration, "scenario-duration", 5*time.Second, "how long each scenario run lasts")
	fs.IntVar(&o.queue, "prio-queue", 16, "bulkman MaxQueueSize for -scenario")
	fs.DurationVar(&o.pause, "prio-refusal-pause", 20*time.Millisecond, "mixed: how long a client waits after a refusal")
	fs.StringVar(&o.transport, "prio-transport", "direct", "how -scenario clients reach the protection: direct (in-process calls) or http")
	return func() error {
		o.scenarios, o.modes = splitList(*scenarios), splitList(*modes)
		for _, s := range o.scenarios {
			if s != "mixed" && s != "flood" {
				return fmt.Errorf("unknown scenario %q", s)
			}
		}
		for _, m := range o.modes {
			if m != "fifo" && m != "bulkman" && m != "adaptive" && m != "failsafe" {
				return fmt.Errorf("unknown -prio-mode %q", m)
			}
		}
		if o.transport != "direct" && o.transport != "http" {
			return fmt.Errorf("unknown -prio-transport %q", o.transport)
		}
		if o.critical < 0 || o.critical > 1 || o.floodFactor < 1 || o.duration <= 0 || o.queue < 0 {
			return fmt.Errorf("-critical must be in 0..1, -flood-factor >= 1, -scenario-duration > 0, -prio-queue >= 0")
		}
		return nil
	}
}

// prioServer is a dependency guarded by one mode: an HTTP server (url), or a function to
// call in process (call).
type prioServer struct {
	url      string
	call     func(ctx context.Context, cl prioClass) bool
	shutdown func()
}

// directCall returns the in-process call of a mode.
func directCall(mode string, dep *dependency, b *core.Bulkhead, limiter adaptivelimiter.PriorityLimiter[*http.Response]) func(context.Context, prioClass) bool {
	switch mode {
	case "fifo":
		return func(ctx context.Context, _ prioClass) bool {
			_, err := core.Execute(ctx, b, func(ctx context.Context) (struct{}, error) { return struct{}{}, dep.handle(ctx) })
			return err == nil
		}
	case "bulkman", "adaptive":
		return func(ctx context.Context, cl prioClass) bool {
			if cl.critical {
				ctx = core.WithPriority(ctx, core.PriorityCritical)
			}
			if cl.tenant != "" {
				ctx = core.WithTenant(ctx, cl.tenant)
			}
			_, err := core.Execute(ctx, b, func(ctx context.Context) (struct{}, error) { return struct{}{}, dep.handle(ctx) })
			return err == nil
		}
	}
	return func(ctx context.Context, cl prioClass) bool {
		ctx = priority.ContextWithPriority(ctx, priority.Medium)
		if cl.critical {
			ctx = priority.ContextWithPriority(ctx, priority.VeryHigh)
		}
		if cl.tenant != "" {
			ctx = priority.ContextWithUser(ctx, cl.tenant)
		}
		p, err := limiter.AcquirePermit(ctx)
		if err != nil {
			return false
		}
		if err := dep.handle(ctx); err != nil {
			p.Drop()
			return false
		}
		p.Record()
		return true
	}
}

func startPrioServer(mode string, o options) (*prioServer, error) {
	dep := newDependency(o.server.DepLatency, o.server.DepCapacity, o.server.DepSpread)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := dep.handle(r.Context()); err != nil {
			return
		}
		_, _ = io.WriteString(w, okBody)
	})
	var stop func()
	var b *core.Bulkhead
	var limiter adaptivelimiter.PriorityLimiter[*http.Response]
	switch mode {
	case "fifo", "bulkman", "adaptive":
		cfg := core.Config{Name: "dep", MaxConcurrentCalls: o.server.Limit, MaxQueueSize: o.prio.queue}
		if mode == "adaptive" {
			cfg.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: o.server.Limit, QueuePerLimit: 2}
		}
		var err error
		b, err = core.New(cfg)
		if err != nil {
			return nil, err
		}
		var opts []httpmw.Option
		if mode != "fifo" {
			opts = append(opts, httpmw.WithTrustedHeaders())
		}
		h = httpmw.Handler(h, b, opts...)
	case "failsafe":
		p := adaptivelimiter.NewPrioritizerBuilder().WithUsageTracker(priority.NewUsageTracker(time.Minute, 100)).Build()
		stop = p.ScheduleCalibrations(context.Background(), time.Second)
		limiter = adaptivelimiter.NewBuilder[*http.Response]().
			WithLimits(1, uint(o.server.Limit), uint(o.server.Limit)).
			WithQueueing(1, 2).
			BuildPrioritized(p)
		inner := failsafehttp.NewHandler(h, limiter)
		withUser := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t := r.Header.Get(httpmw.TenantHeader); t != "" {
				r = r.WithContext(priority.ContextWithUser(r.Context(), t))
			}
			inner.ServeHTTP(w, r)
		})
		h = failsafehttp.NewHandlerWithLevel(withUser, false)
	default:
		return nil, unknownMode(mode)
	}
	if o.prio.transport == "direct" {
		return &prioServer{call: directCall(mode, dep, b, limiter), shutdown: func() {
			if stop != nil {
				stop()
			}
		}}, nil
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	return &prioServer{url: "http://" + lis.Addr().String() + "/", shutdown: func() {
		_ = srv.Close()
		<-served
		if stop != nil {
			stop()
		}
	}}, nil
}

// prioClass is what a request says about itself.
type prioClass struct {
	critical bool
	tenant   string
}

// prioClient sends requests, with the headers of the mode.
type prioClient struct {
	c    *http.Client
	url  string
	call func(ctx context.Context, cl prioClass) bool
	mode string
}

func (c *prioClient) do(ctx context.Context, cl prioClass) (time.Duration, bool) {
	if c.call != nil {
		start := time.Now()
		ok := c.call(ctx, cl)
		return time.Since(start), ok
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return 0, false
	}
	switch {
	case c.mode == "failsafe" && cl.critical:
		req.Header.Set("X-Failsafe-Priority", strconv.Itoa(int(priority.VeryHigh)))
	case c.mode == "failsafe":
		req.Header.Set("X-Failsafe-Priority", strconv.Itoa(int(priority.Medium)))
	case cl.critical:
		req.Header.Set(httpmw.PriorityHeader, "critical")
	}
	if cl.tenant != "" {
		req.Header.Set(httpmw.TenantHeader, cl.tenant)
	}
	start := time.Now()
	resp, err := c.c.Do(req)
	if err != nil {
		return 0, false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	return time.Since(start), err == nil && classifyHTTP(resp.StatusCode, string(body)) == outcomeOK
}

// classTally is what the requests of one class got.
type classTally struct {
	mu      sync.Mutex
	served  []time.Duration
	refused int
}

func (t *classTally) add(d time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		t.served = append(t.served, d)
	} else {
		t.refused++
	}
}

func (t *classTally) share() float64 {
	n := len(t.served) + t.refused
	if n == 0 {
		return 0
	}
	return float64(len(t.served)) / float64(n)
}

func newPrioClient(srv *prioServer, mode string, conns int) *prioClient {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true, IdleConnTimeout: time.Minute}
	return &prioClient{c: &http.Client{Transport: tr}, url: srv.url, call: srv.call, mode: mode}
}

func (c *prioClient) close() { c.c.CloseIdleConnections() }

// mixedResult is one run of the mixed scenario.
type mixedResult struct {
	mode             string
	unloaded         summary    // critical requests alone, one client
	criticalOnly     classTally // the critical clients alone, all of them, no other traffic
	critical, normal classTally
}

// runClients runs one closed-loop client per tally, of the class at the same index in
// classes, against c until end; a client pauses after a refusal.
func runClients(c *prioClient, tallies []*classTally, classes []prioClass, pause time.Duration, end time.Time) {
	var wg sync.WaitGroup
	for i, tl := range tallies {
		wg.Go(func() {
			for time.Now().Before(end) {
				d, ok := c.do(context.Background(), classes[i])
				tl.add(d, ok)
				if !ok {
					time.Sleep(pause)
				}
			}
		})
	}
	wg.Wait()
}

// aloneCalls is how many critical requests, one after another, measure the unloaded p99.
const aloneCalls = 500

// criticalClients is how many of the mixed scenario's clients send critical requests.
func criticalClients(o options) int {
	return int(float64(o.load.Clients)*o.prio.critical + 0.5)
}

// criticalFloor is the least mean latency any scheduler can give the mixed scenario's
// critical clients: closed loops without a pause, served at most capacity/latency calls a
// second, take clients/that each on average (Little's law), and never less than one
// latency.
func criticalFloor(o options) time.Duration {
	n, capacity := criticalClients(o), o.server.DepCapacity
	return o.server.DepLatency * time.Duration(max(n, capacity)) / time.Duration(capacity)
}

func runMixed(mode string, o options) (*mixedResult, error) {
	clients := o.load.Clients
	nCritical := criticalClients(o)
	r := &mixedResult{mode: mode}

	// The second baseline: the critical clients alone, on a server of their own, so
	// that what the mixed run finds is not what this one left behind.
	only, err := startPrioServer(mode, o)
	if err != nil {
		return nil, err
	}
	oc := newPrioClient(only, mode, nCritical+1)
	tallies, classes := make([]*classTally, nCritical), make([]prioClass, nCritical)
	for i := range tallies {
		tallies[i], classes[i] = &r.criticalOnly, prioClass{critical: true}
	}
	runClients(oc, tallies, classes, o.prio.pause, time.Now().Add(o.prio.duration))
	oc.close()
	only.shutdown()

	srv, err := startPrioServer(mode, o)
	if err != nil {
		return nil, err
	}
	defer srv.shutdown()
	c := newPrioClient(srv, mode, clients+1)
	defer c.close()

	// Unloaded: critical requests one after another; enough of them that their p99 is not
	// one slow call's (with 200, it moved from 20.4 to 22.1ms from run to run).
	var alone []time.Duration
	for range aloneCalls {
		if d, ok := c.do(context.Background(), prioClass{critical: true}); ok {
			alone = append(alone, d)
		}
	}
	r.unloaded = summarize(alone)

	tallies, classes = make([]*classTally, clients), make([]prioClass, clients)
	for i := range clients {
		tallies[i] = &r.normal
		if i*nCritical/clients != (i+1)*nCritical/clients { // spread evenly
			tallies[i], classes[i] = &r.critical, prioClass{critical: true}
		}
	}
	runClients(c, tallies, classes, o.prio.pause, time.Now().Add(o.prio.duration))
	return r, nil
}

// floodResult is one run of the flood scenario.
type floodResult struct {
	mode        string
	alone, fair classTally // the four fair tenants, without and with the flood
	flood       classTally
}

func runFlood(mode string, o options) (*floodResult, error) {
	r := &floodResult{mode: mode}
	for _, withFlood := range []bool{false, true} {
		srv, err := startPrioServer(mode, o)
		if err != nil {
			return nil, err
		}
		c := newPrioClient(srv, mode, 4*o.load.Clients)
		capacity := float64(o.server.DepCapacity) / o.server.DepLatency.Seconds() // calls/s
		fair := capacity / 5
		tl := &r.alone
		if withFlood {
			tl = &r.fair
		}
		end := time.Now().Add(o.prio.duration)
		var calls, senders sync.WaitGroup
		send := func(tenant string, rate float64, phase time.Duration, tl *classTally) {
			interval := time.Duration(float64(time.Second) / rate)
			next := time.Now().Add(phase)
			for next.Before(end) {
				time.Sleep(time.Until(next))
				calls.Go(func() {
					d, ok := c.do(context.Background(), prioClass{tenant: tenant})
					tl.add(d, ok)
				})
				next = next.Add(interval)
			}
		}
		for i, t := range []string{"a", "b", "c", "d"} {
			senders.Go(func() { send(t, fair, time.Duration(float64(i)*float64(time.Second)/fair/4), tl) })
		}
		if withFlood {
			senders.Go(func() { send("flood", fair*float64(o.prio.floodFactor), 0, &r.flood) })
		}
		senders.Wait()
		calls.Wait()
		c.close()
		srv.shutdown()
	}
	return r, nil
}

// runPriorities runs the chosen scenarios, modes interleaved within each round.
func runPriorities(o options, w io.Writer) error {
	fmt.Fprintf(w, "priority scenarios (%s): dependency %s; bulkman limit %d, queue %d; %v per run; %d rounds\n",
		o.prio.transport, depDesc(o.server), o.server.Limit, o.prio.queue, o.prio.duration, o.rounds)
	for round := 1; round <= o.rounds; round++ {
		for _, s := range o.prio.scenarios {
			switch s {
			case "mixed":
				fmt.Fprintf(w, "\nmixed, round %d: %d closed-loop clients, %.0f%% critical, %v pause after a refusal\n",
					round, o.load.Clients, 100*o.prio.critical, o.prio.pause)
				fmt.Fprintf(w, "%-9s %9s %9s %9s %8s %8s %9s %8s %9s %9s\n", "mode", "crit ok", "crit p99", "alone p99", "ratio", "floor", "crit-only", "ratio", "crit/s", "normal/s")
				for _, m := range o.prio.modes {
					r, err := runMixed(m, o)
					if err != nil {
						return fmt.Errorf("mixed %s: %w", m, err)
					}
					p99 := summarize(r.critical.served).P99
					secs := o.prio.duration.Seconds()
					only := summarize(r.criticalOnly.served).P99
					alone := float64(max(r.unloaded.P99, 1))
					fmt.Fprintf(w, "%-9s %8.1f%% %9s %9s %7.2fx %7.2fx %9s %7.2fx %9.0f %9.0f\n", m, 100*r.critical.share(), fmtDur(p99), fmtDur(r.unloaded.P99),
						float64(p99)/alone, float64(criticalFloor(o))/alone, fmtDur(only), float64(p99)/float64(max(only, 1)),
						float64(len(r.critical.served))/secs, float64(len(r.normal.served))/secs)
				}
			case "flood":
				fmt.Fprintf(w, "\nflood, round %d: four tenants at their fair share (1/5 of the dependency), one at %dx\n", round, o.prio.floodFactor)
				fmt.Fprintf(w, "%-9s %11s %11s %8s %9s %10s\n", "mode", "four alone", "with flood", "kept", "fair p99", "flood ok/s")
				for _, m := range o.prio.modes {
					r, err := runFlood(m, o)
					if err != nil {
						return fmt.Errorf("flood %s: %w", m, err)
					}
					secs := o.prio.duration.Seconds()
					alone, fair := float64(len(r.alone.served))/secs, float64(len(r.fair.served))/secs
					fmt.Fprintf(w, "%-9s %9.0f/s %9.0f/s %7.1f%% %9s %10.0f\n", m, alone, fair, 100*fair/max(alone, 1),
						fmtDur(summarize(r.fair.served).P99), float64(len(r.flood.served))/secs)
				}
			}
		}
	}
	return nil
}
