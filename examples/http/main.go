// Command http shows per-route bulkheads on a net/http server: a slow route saturates,
// serves what its queue can hold and sheds the rest with 503 + Retry-After, while a fast
// route next to it keeps answering.
//
//	go run ./examples/http
//
// It starts a server on loopback, runs its client against it, prints a summary and exits
// (status 1 if the bulkheads did not behave as described).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

const slowWork = 300 * time.Millisecond

func main() {
	if err := run(); err != nil {
		log.Printf("http example: %v", err)
		os.Exit(1)
	}
}

func run() error {
	m := core.NewManager()
	defer m.Shutdown(context.Background())

	slowCfg := core.DefaultConfig("reports")
	// Two at a time, and four more may wait: the last waits two reports' time (600ms), the
	// latency budget of this route. A burst beyond that is shed at once.
	slowCfg.MaxConcurrentCalls, slowCfg.MaxQueueSize = 2, 4
	slow, err := m.Create(slowCfg)
	if err != nil {
		return err
	}
	fastCfg := core.DefaultConfig("lookups")
	fastCfg.MaxConcurrentCalls, fastCfg.MaxQueueSize = 20, 20
	fast, err := m.Create(fastCfg)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /reports/{id}", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(slowWork): // an expensive report
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "report %s\n", r.PathValue("id"))
	})
	mux.HandleFunc("GET /lookups/{key}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "value of %s\n", r.PathValue("key"))
	})

	// One table, one middleware around the whole mux.
	sel, err := httpmw.ByPattern(map[string]*core.Bulkhead{
		"GET /reports/{id}":  slow,
		"GET /lookups/{key}": fast,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: httpmw.Middleware(sel)(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()
	fmt.Printf("server on %s: GET /reports/{id} (bulkhead %q, %d at a time, %d waiting, %v each), GET /lookups/{key} (bulkhead %q)\n\n",
		ln.Addr(), slow.Name(), slowCfg.MaxConcurrentCalls, slowCfg.MaxQueueSize, slowWork, fast.Name())

	client := &http.Client{Timeout: 5 * time.Second}

	// Ten reports at once: two run, four wait, four are shed at once.
	const reports = 10
	served := slowCfg.MaxConcurrentCalls + slowCfg.MaxQueueSize
	start := time.Now()
	var wg sync.WaitGroup
	slowResults := make(chan result, reports)
	for i := range reports {
		wg.Go(func() { slowResults <- fetch(client, fmt.Sprintf("%s/reports/%d", base, i)) })
	}
	// Meanwhile, lookups: wait until the rejections are back, so the report route is
	// surely saturated, then ask away while the reports still run.
	var rs []result
	for len(rs) < reports-served {
		r := <-slowResults
		rs = append(rs, r)
		if r.status == http.StatusOK {
			break // should not happen before the rejections
		}
	}
	var fastRs []result
	for i := range 5 {
		fastRs = append(fastRs, fetch(client, fmt.Sprintf("%s/lookups/k%d", base, i)))
	}
	saturatedDuringLookups := slow.Stats().ActiveTasks == slowCfg.MaxConcurrentCalls
	wg.Wait()
	close(slowResults)
	for r := range slowResults {
		rs = append(rs, r)
	}

	fmt.Printf("GET /reports/{id} x%d at once:\n", reports)
	slowCounts := summarize(rs)
	during := "while the reports ran"
	if !saturatedDuringLookups {
		during = "(the reports had already finished: a slow machine)"
	}
	fmt.Printf("GET /lookups/{key} x%d %s:\n", len(fastRs), during)
	fastCounts := summarize(fastRs)
	fmt.Printf("\nfinished in %v\n", time.Since(start).Round(10*time.Millisecond))
	for _, name := range m.Names() {
		s := m.Stats()[name]
		fmt.Printf("bulkhead %-8q total=%d successful=%d rejected=%d in_flight=%d\n",
			name, s.TotalExecutions, s.SuccessfulExecutions, s.RejectedExecutions, s.InFlightCount)
	}

	var problems []string
	if slowCounts[http.StatusOK] != served || slowCounts[http.StatusServiceUnavailable] != reports-served {
		problems = append(problems, fmt.Sprintf("reports: want %d x 200 and %d x 503, got %v", served, reports-served, slowCounts))
	}
	if fastCounts[http.StatusOK] != len(fastRs) {
		problems = append(problems, fmt.Sprintf("lookups: want all 200, got %v", fastCounts))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Println("\nok: the slow route served what its queue could hold and shed the rest with 503 + Retry-After; the fast route never noticed")
	return nil
}

func roundTook(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

type result struct {
	status     int
	retryAfter string
	problem    string // the problem+json type of a rejection
	took       time.Duration
	err        error
}

func fetch(c *http.Client, url string) result {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	body, _ := io.ReadAll(resp.Body)
	r.took = time.Since(start)
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		var p struct{ Type string }
		_ = json.Unmarshal(body, &p)
		r.problem = p.Type
	}
	return r
}

// summarize prints one line per status and returns the count of each.
func summarize(rs []result) map[int]int {
	type group struct {
		n        int
		max      time.Duration
		retry    string
		problem  string
		firstErr error
	}
	groups := map[int]*group{}
	for _, r := range rs {
		g := groups[r.status]
		if g == nil {
			g = &group{retry: r.retryAfter, problem: r.problem, firstErr: r.err}
			groups[r.status] = g
		}
		g.n++
		g.max = max(g.max, r.took)
	}
	statuses := make([]int, 0, len(groups))
	for s := range groups {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	counts := map[int]int{}
	for _, s := range statuses {
		g := groups[s]
		counts[s] = g.n
		line := fmt.Sprintf("  %d x %d %s, slowest %v", g.n, s, http.StatusText(s), roundTook(g.max))
		if s == 0 {
			line = fmt.Sprintf("  %d x error: %v", g.n, g.firstErr)
		}
		if g.retry != "" {
			line += ", Retry-After: " + g.retry
		}
		if g.problem != "" {
			line += ", " + g.problem
		}
		fmt.Println(line)
	}
	return counts
}
