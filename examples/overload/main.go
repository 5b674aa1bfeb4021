// Command overload shows what a bulkhead does for a server offered ten times what its
// dependency can take.
//
//	go run ./examples/overload
//
// A net/http server on loopback calls a dependency that takes 20ms and serves 8 calls at
// once (a database, say: 400 calls/s at best). 80 clients send requests back to back, and
// each gives up after 100ms, as callers with a deadline do. The server runs twice, 4
// seconds each: unprotected, then behind httpmw.Handler with a bulkhead of 8 calls, a
// queue of 8 and a 100ms Timeout. A progress line shows each run live; a table compares
// them at the end. It takes about 10 seconds and exits 0 (1 if it could not run).
//
// Unprotected, every request joins the line at the dependency: the line grows until a
// request waits longer than its caller's deadline, and from then on the dependency works
// mostly for callers that have already left. With the bulkhead, 8 requests run and 8
// wait; the rest are refused at once with 503 + Retry-After, and the requests that are
// served are served in about two dependency calls' time.
//
// bench/overload is the full version: gRPC and HTTP, failsafe-go's integration for
// comparison, the servers in processes of their own, goroutines and heap sampled every
// millisecond (see docs/performance.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

func main() {
	cfg := config{}
	flag.DurationVar(&cfg.runFor, "duration", 4*time.Second, "how long each run lasts")
	flag.IntVar(&cfg.clients, "clients", 80, "clients sending back to back")
	flag.DurationVar(&cfg.deadline, "deadline", 100*time.Millisecond, "when a client gives up on a request")
	flag.Parse()
	cfg.depLatency, cfg.depCapacity = 20*time.Millisecond, 8
	if err := run(cfg, os.Stdout); err != nil {
		log.Printf("overload example: %v", err)
		os.Exit(1)
	}
}

type config struct {
	runFor      time.Duration
	clients     int
	deadline    time.Duration
	depLatency  time.Duration
	depCapacity int
}

func run(cfg config, out io.Writer) error {
	fmt.Fprintf(out, "A dependency that takes %v and serves %d calls at once (%d/s at best),\n",
		cfg.depLatency, cfg.depCapacity, int(float64(cfg.depCapacity)/cfg.depLatency.Seconds()))
	fmt.Fprintf(out, "%d clients sending back to back, each giving up after %v: 10x overload.\n\n", cfg.clients, cfg.deadline)

	unprotected, err := runOnce(cfg, "unprotected", nil, out)
	if err != nil {
		return err
	}

	bc := core.DefaultConfig("dependency")
	bc.MaxConcurrentCalls = cfg.depCapacity // as many as the dependency serves
	bc.MaxQueueSize = cfg.depCapacity       // and as many waiting: at most one call's wait
	bc.Timeout = cfg.deadline
	bc.CircuitBreakerEnabled = true // overload is not failure: refusals never open it
	b, err := core.New(bc)
	if err != nil {
		return err
	}
	protected, err := runOnce(cfg, "bulkman", b, out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := b.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}

	fmt.Fprintln(out)
	printSummary(out, cfg, unprotected, protected)
	if st := b.Stats(); st.State == core.Healthy {
		fmt.Fprintf(out, "\nThe bulkhead's circuit is %s: a full bulkhead refuses calls without blaming the dependency.\n", st.State)
	} else {
		// Refusals never open it; timeouts do, and on a stalled machine a few in a row pass
		// the Timeout however fast the dependency is.
		fmt.Fprintf(out, "\nThe bulkhead's circuit is %s: %d admitted calls ran past its %v Timeout (a stalled machine?),\n"+
			"and %d of them in a row open it. Refusals of a full bulkhead never count against it.\n",
			st.State, st.TimedOutExecutions, bc.Timeout, bc.FailureThreshold)
	}
	return nil
}

// dependency serves capacity calls at once, latency each; the others wait in line.
type dependency struct {
	slots     chan struct{}
	latency   time.Duration
	inHandler atomic.Int64
	peak      atomic.Int64
}

func (d *dependency) call(ctx context.Context) error {
	n := d.inHandler.Add(1)
	defer d.inHandler.Add(-1)
	for p := d.peak.Load(); n > p && !d.peak.CompareAndSwap(p, n); p = d.peak.Load() {
	}
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.slots }()
	select {
	case <-time.After(d.latency):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome is how the bulkhead (or the dependency) answered one request.
type outcome int

const (
	served      outcome = iota // the dependency answered
	refused                    // 503, the bulkhead is full
	circuitOpen                // 503, the bulkhead's circuit is open: refused as well
	timedOut                   // 503, the call passed the bulkhead's Timeout
	failed                     // anything else
)

// tally is one run's outcome, as the clients saw it.
type tally struct {
	mu          sync.Mutex
	served      []time.Duration // latencies of the requests the dependency answered
	refused     []time.Duration // latencies of the bulkhead's refusals (full or circuit open)
	circuitOpen int             // of those, refused because the circuit was open
	timedOut    int             // the bulkhead's Timeout answered
	gaveUp      int             // the client's deadline passed first
	failed      int             // anything else (a broken connection, say)
	firstErr    error           // the first of those
	elapsed     time.Duration
	peakBusy    int64 // most requests inside the handler at once
}

func (t *tally) add(o outcome, d time.Duration, gaveUp bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case o == served:
		t.served = append(t.served, d)
	case gaveUp:
		t.gaveUp++
	case o == refused, o == circuitOpen:
		t.refused = append(t.refused, d)
		if o == circuitOpen {
			t.circuitOpen++
		}
	case o == timedOut:
		t.timedOut++
	default:
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
	}
}

func (t *tally) counts() (served, refused, gaveUp int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.served), len(t.refused), t.gaveUp
}

// runOnce serves the dependency behind b (unprotected when b is nil) for cfg.runFor under
// the clients' load, with a live progress line.
func runOnce(cfg config, name string, b *core.Bulkhead, out io.Writer) (*tally, error) {
	dep := &dependency{slots: make(chan struct{}, cfg.depCapacity), latency: cfg.depLatency}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := dep.call(r.Context()); err != nil {
			return // the caller left, or the bulkhead's timeout answers
		}
		_, _ = io.WriteString(w, "ok")
	})
	if b != nil {
		h = httpmw.Handler(h, b)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()

	tr := &http.Transport{MaxIdleConnsPerHost: cfg.clients, MaxConnsPerHost: cfg.clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + lis.Addr().String() + "/"

	t := &tally{}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.runFor)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, cfg.deadline)
				t0 := time.Now()
				o, err := get(rctx, client, url)
				d := time.Since(t0)
				gaveUp := o != served && rctx.Err() != nil
				rcancel()
				if ctx.Err() != nil && o != served {
					return // the run ended under this request: not counted
				}
				t.add(o, d, gaveUp, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
		}
		served, refused, gaveUp := t.counts()
		el := time.Since(start)
		fmt.Fprintf(out, "\r%-12s %4.1fs  served %5d (%3.0f/s)  gave up %5d  refused %6d  in the handler now %3d",
			name, el.Seconds(), served, float64(served)/el.Seconds(), gaveUp, refused, dep.inHandler.Load())
	}
	fmt.Fprintln(out)
	t.elapsed = time.Since(start)
	t.peakBusy = dep.peak.Load()
	return t, nil
}

// get sends one request and sorts its answer: httpmw's 503s by their problem type. err
// says what went wrong when the outcome is failed.
func get(ctx context.Context, c *http.Client, url string) (outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return failed, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return failed, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return failed, err
	}
	problem := func(typ string) bool {
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), `"`+typ+`"`)
	}
	switch {
	case resp.StatusCode == http.StatusOK && string(body) == "ok":
		return served, nil
	case problem(httpmw.ProblemFull):
		return refused, nil
	case problem(httpmw.ProblemCircuitOpen):
		return circuitOpen, nil
	case problem(httpmw.ProblemTimeout):
		return timedOut, nil
	}
	return failed, fmt.Errorf("status %d: %.80s", resp.StatusCode, body)
}

func printSummary(out io.Writer, cfg config, runs ...*tally) {
	row := func(label string, f func(t *tally) string) {
		fmt.Fprintf(out, "%-34s", label)
		for _, t := range runs {
			fmt.Fprintf(out, "%14s", f(t))
		}
		fmt.Fprintln(out)
	}
	pct := func(ds []time.Duration, q float64) string {
		if len(ds) == 0 {
			return "-"
		}
		ds = slices.Clone(ds)
		slices.Sort(ds)
		d := ds[min(len(ds)-1, int(q*float64(len(ds))))]
		if d < time.Millisecond {
			return fmt.Sprintf("%d µs", d.Microseconds())
		}
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	total := func(t *tally) int { return len(t.served) + len(t.refused) + t.timedOut + t.gaveUp + t.failed }
	// The circuit-open and timeout rows show only when some run had one: on a machine that
	// does not stall, a run has neither, and the table stays as the docs show it.
	some := func(f func(t *tally) int) bool {
		return slices.ContainsFunc(runs, func(t *tally) bool { return f(t) > 0 })
	}
	fmt.Fprintf(out, "%-34s%14s%14s\n", "", "unprotected", "bulkman")
	row("requests answered or abandoned", func(t *tally) string { return fmt.Sprint(total(t)) })
	row("served", func(t *tally) string { return fmt.Sprint(len(t.served)) })
	row("  per second (goodput)", func(t *tally) string {
		return fmt.Sprintf("%.0f", float64(len(t.served))/t.elapsed.Seconds())
	})
	row("  latency p50", func(t *tally) string { return pct(t.served, 0.50) })
	row("  latency p99", func(t *tally) string { return pct(t.served, 0.99) })
	row(fmt.Sprintf("client gave up after %v", cfg.deadline), func(t *tally) string { return fmt.Sprint(t.gaveUp) })
	row("refused at once (503)", func(t *tally) string { return fmt.Sprint(len(t.refused)) })
	row("  answered in, p99", func(t *tally) string { return pct(t.refused, 0.99) })
	if some(func(t *tally) int { return t.circuitOpen }) {
		row("  of them, circuit open", func(t *tally) string { return fmt.Sprint(t.circuitOpen) })
	}
	if some(func(t *tally) int { return t.timedOut }) {
		row("bulkhead timed out (503)", func(t *tally) string { return fmt.Sprint(t.timedOut) })
	}
	row("most requests inside the handler", func(t *tally) string { return fmt.Sprint(t.peakBusy) })
	for i, t := range runs {
		if t.failed > 0 {
			fmt.Fprintf(out, "run %d: %d other errors (a busy machine breaking connections?), the first: %v\n", i+1, t.failed, t.firstErr)
		}
	}
}
