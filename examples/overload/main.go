// Command overload shows what a bulkhead does for a server offered ten times what its
// dependency can take, and why its limit should be adaptive.
//
//	go run ./examples/overload
//
// A net/http server on loopback calls a dependency that takes 20ms and serves 8 calls at
// once (a database, say: 400 calls/s at best). 80 clients send requests back to back, and
// each gives up after 100ms, as callers with a deadline do. The server runs three times,
// 4 seconds each:
//
//   - unprotected;
//   - behind httpmw.Handler with a static bulkhead told a wrong capacity: 64 calls, as
//     someone guessing "high enough" would configure it, a queue of 64 and a 100ms Timeout;
//   - behind httpmw.Handler with an adaptive bulkhead told nothing about the capacity:
//     Config.Adaptive with a floor of 1 and a ceiling of 200, the same queue and Timeout.
//
// A progress line shows each run live; a table compares them at the end, then a verdict:
// the adaptive bulkhead must serve clearly more than the other two (by a quarter at
// least), with fewer of its clients giving up waiting. It takes about 15 seconds and
// exits 0 when the point is made, 1 when it is not (or the program could not run).
//
// Unprotected, and behind the wrongly told bulkhead, every request joins the line at the
// dependency: the line grows until a request waits longer than its caller's deadline, and
// from then on the dependency works mostly for callers that have already left. The
// adaptive bulkhead measures the dependency's latency as it serves, finds that about 8
// calls at once keep it busy without a line, and refuses the rest at once with 503 +
// Retry-After; the requests it serves are served in about two dependency calls' time. It
// measures its own host too: on a machine so busy that every call takes longer, it does
// not mistake the slowness for a full dependency (try it with a CPU hog beside it).
//
// bench/overload is the full version: gRPC and HTTP, failsafe-go's adaptive limiter for
// comparison, capacities that change, the servers in processes of their own (see
// docs/performance.md).
package main

import (
	"context"
	"errors"
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
	flag.IntVar(&cfg.guess, "guess", 64, "the static bulkhead's (wrong) MaxConcurrentCalls")
	flag.Parse()
	cfg.depLatency, cfg.depCapacity = 20*time.Millisecond, 8
	err := run(cfg, os.Stdout)
	if errors.Is(err, errPointNotMade) {
		os.Exit(1)
	}
	if err != nil {
		log.Printf("overload example: %v", err)
		os.Exit(1)
	}
}

type config struct {
	runFor      time.Duration
	clients     int
	deadline    time.Duration
	guess       int
	depLatency  time.Duration
	depCapacity int
}

// errPointNotMade is run's error when the adaptive bulkhead did not beat the other two.
var errPointNotMade = errors.New("the adaptive bulkhead did not make its point")

func run(cfg config, out io.Writer) error {
	fmt.Fprintf(out, "A dependency that takes %v and serves %d calls at once (%d/s at best),\n",
		cfg.depLatency, cfg.depCapacity, int(float64(cfg.depCapacity)/cfg.depLatency.Seconds()))
	fmt.Fprintf(out, "%d clients sending back to back, each giving up after %v: 10x overload.\n\n", cfg.clients, cfg.deadline)

	unprotected, err := runOnce(cfg, "unprotected", nil, out)
	if err != nil {
		return err
	}

	static := core.DefaultConfig("dependency")
	static.MaxConcurrentCalls = cfg.guess // a guess, far above what the dependency serves
	static.MaxQueueSize = cfg.guess
	static.Timeout = cfg.deadline
	guessed, err := runWith(cfg, fmt.Sprintf("static %d", cfg.guess), static, out)
	if err != nil {
		return err
	}

	adaptive := core.DefaultConfig("dependency")
	adaptive.MaxConcurrentCalls = 200 // only a ceiling: the capacity is not given
	adaptive.MaxQueueSize = cfg.guess
	adaptive.Timeout = cfg.deadline
	adaptive.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1}
	found, err := runWith(cfg, "adaptive", adaptive, out)
	if err != nil {
		return err
	}

	fmt.Fprintln(out)
	printSummary(out, cfg, []string{"unprotected", fmt.Sprintf("static %d", cfg.guess), "adaptive"}, unprotected, guessed, found)
	return verdict(out, cfg, unprotected, guessed, found)
}

// runWith runs the server behind a new bulkhead of bc, and shuts the bulkhead down after.
func runWith(cfg config, name string, bc core.Config, out io.Writer) (*tally, error) {
	b, err := core.New(bc)
	if err != nil {
		return nil, err
	}
	t, err := runOnce(cfg, name, b, out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := b.Shutdown(ctx); err == nil {
		err = serr
	}
	return t, err
}

// verdict prints whether the adaptive bulkhead made its point: it served at least a
// quarter more than each of the other two, and fewer of its clients gave up waiting (as a
// share of their requests) than of either other run's. (Not the served p99: on a machine
// busy enough, a response that beat the deadline can be read after it.)
func verdict(out io.Writer, cfg config, unprotected, guessed, found *tally) error {
	rate := func(t *tally) float64 { return float64(len(t.served)) / t.elapsed.Seconds() }
	gaveUp := func(t *tally) float64 {
		n := len(t.served) + len(t.refused) + t.timedOut + t.gaveUp + t.failed
		if n == 0 {
			return 1
		}
		return float64(t.gaveUp) / float64(n)
	}
	best := max(rate(unprotected), rate(guessed))
	fewest := min(gaveUp(unprotected), gaveUp(guessed))
	fmt.Fprintf(out, "\nThe adaptive bulkhead settled at a limit of %d (the dependency serves %d at once).\n", found.limit, cfg.depCapacity)
	if rate(found) >= 1.25*best && gaveUp(found) < fewest {
		fmt.Fprintf(out, "Verdict: point made. Told nothing, the adaptive bulkhead served %.1fx the better of the other two (%.0f/s against %.0f/s),\n"+
			"and %.0f%% of its clients gave up waiting against %.0f%% at best without it.\n",
			rate(found)/best, rate(found), best, 100*gaveUp(found), 100*fewest)
		return nil
	}
	fmt.Fprintf(out, "Verdict: POINT NOT MADE. The adaptive bulkhead served %.0f/s against %.0f/s for the better of the other two (it needs 1.25x),\n"+
		"and %.0f%% of its clients gave up waiting against %.0f%% at best without it.\n",
		rate(found), best, 100*gaveUp(found), 100*fewest)
	return errPointNotMade
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
	limit       int   // the bulkhead's Stats.ConcurrencyLimit at the end (0: none)
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
		limit := ""
		if b != nil {
			limit = fmt.Sprintf("  limit %3d", b.Stats().ConcurrencyLimit)
		}
		fmt.Fprintf(out, "\r%-12s %4.1fs  served %5d (%3.0f/s)  gave up %5d  refused %6d  in the handler now %3d%s",
			name, el.Seconds(), served, float64(served)/el.Seconds(), gaveUp, refused, dep.inHandler.Load(), limit)
	}
	fmt.Fprintln(out)
	t.elapsed = time.Since(start)
	t.peakBusy = dep.peak.Load()
	if b != nil {
		t.limit = b.Stats().ConcurrencyLimit
	}
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

func printSummary(out io.Writer, cfg config, names []string, runs ...*tally) {
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
		return fmtDur(quantile(ds, q))
	}
	total := func(t *tally) int { return len(t.served) + len(t.refused) + t.timedOut + t.gaveUp + t.failed }
	// The circuit-open and timeout rows show only when some run had one: on a machine that
	// does not stall, a run has neither, and the table stays as the docs show it.
	some := func(f func(t *tally) int) bool {
		return slices.ContainsFunc(runs, func(t *tally) bool { return f(t) > 0 })
	}
	fmt.Fprintf(out, "%-34s", "")
	for _, n := range names {
		fmt.Fprintf(out, "%14s", n)
	}
	fmt.Fprintln(out)
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
	row("limit at the end", func(t *tally) string {
		if t.limit == 0 {
			return "-"
		}
		return fmt.Sprint(t.limit)
	})
	for i, t := range runs {
		if t.failed > 0 {
			fmt.Fprintf(out, "run %d: %d other errors (a busy machine breaking connections?), the first: %v\n", i+1, t.failed, t.firstErr)
		}
	}
}

// quantile returns the q-quantile of ds (0 for none).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// fmtDur prints d in µs below a millisecond, in ms with one decimal above.
func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
