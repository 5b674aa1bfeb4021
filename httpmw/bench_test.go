package httpmw

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/cputime"
)

// The baselines sit beside what they measure, so that one run gives the ratios:
//
//	go test -run '^$' -bench . -benchmem -count 6 ./httpmw/ | tee httpmw.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl httpmw.txt
//
// The comparison with failsafe-go's failsafehttp handler lives in the nested module bench/
// (BenchmarkHTTPHandler, BenchmarkHTTPPaired), so that failsafehttp stays out of bulkman's
// go.mod; docs/performance.md has the commands.

// nopWriter is a ResponseWriter that costs nothing, so that the wrapper is measured and
// not a recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

var nop = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

func benchBulkhead(b *testing.B, timeout time.Duration) *core.Bulkhead {
	cfg := core.DefaultConfig("bench")
	cfg.MaxConcurrentCalls = 1024
	cfg.CircuitBreakerEnabled = true
	cfg.Timeout = timeout
	bh, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return bh
}

// benchRequest is a request whose context can end, as net/http's server gives every
// request: with context.Background, a context derived from it never has to follow its
// parent, and the rows would flatter the middleware.
func benchRequest(b *testing.B, method, target string) *http.Request {
	return httptest.NewRequestWithContext(b.Context(), method, target, nil)
}

// handlerCases are the handlers BenchmarkHandler and BenchmarkHandlerParallel compare:
// bare, behind a bulkhead without and with a Timeout (by default and in the prompt mode),
// and in http.TimeoutHandler, the baseline of the prompt mode.
func handlerCases(b *testing.B) []struct {
	name string
	h    http.Handler
} {
	return []struct {
		name string
		h    http.Handler
	}{
		{"impl=bare", nop},
		{"impl=bulkhead", Handler(nop, benchBulkhead(b, 0))},
		{"impl=bulkhead+timeout", Handler(nop, benchBulkhead(b, time.Second))},
		{"impl=bulkhead+prompt-timeout", Handler(nop, benchBulkhead(b, time.Second), WithPromptTimeout())},
		{"impl=timeouthandler", http.TimeoutHandler(nop, time.Second, "")},
	}
}

// BenchmarkHandler calls each handler directly with a no-op next handler.
func BenchmarkHandler(b *testing.B) {
	for _, bc := range handlerCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			w := &nopWriter{h: http.Header{}}
			r := benchRequest(b, http.MethodGet, "/")
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkHandlerParallel is BenchmarkHandler under contention.
func BenchmarkHandlerParallel(b *testing.B) {
	for _, bc := range handlerCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &nopWriter{h: http.Header{}}
				r := benchRequest(b, http.MethodGet, "/")
				for pb.Next() {
					bc.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

// BenchmarkByPattern measures a lookup in a table of a few patterns (impl=bypattern)
// against http.ServeMux.Handler finding the pattern among the same ones (impl=servemux),
// the work a router does anyway.
func BenchmarkByPattern(b *testing.B) {
	bh := benchBulkhead(b, 0)
	patterns := []string{"GET /users/{id}", "POST /users", "GET /health", "/static/", "/api/v1/orders"}
	routes := make(map[string]*core.Bulkhead, len(patterns))
	mux := http.NewServeMux()
	for _, p := range patterns {
		routes[p] = bh
		mux.Handle(p, marker{})
	}
	sel, err := ByPattern(routes)
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		find func(r *http.Request) bool // whether a pattern matched
	}{
		{"impl=bypattern", func(r *http.Request) bool { return sel(r) != nil }},
		{"impl=servemux", func(r *http.Request) bool { _, p := mux.Handler(r); return p != "" }},
	}
	for _, bc := range []struct{ name, method, target string }{
		{"route=static", "GET", "/api/v1/orders"},
		{"route=method", "GET", "/health"},
		{"route=wildcard", "GET", "/users/42"},
		{"route=prefix", "GET", "/static/css/site.css"},
		{"route=unmatched", "GET", "/metrics"},
	} {
		for _, impl := range impls {
			b.Run(bc.name+"/"+impl.name, func(b *testing.B) {
				r := benchRequest(b, bc.method, bc.target)
				b.ReportAllocs()
				for b.Loop() {
					if !impl.find(r) && bc.name != "route=unmatched" {
						b.Fatal("no pattern")
					}
				}
			})
		}
	}
}

// reportCPU, deferred with an extra (), reports the process CPU time (client, server and
// kernel time on their behalf) per operation as cpu-ns/op. On a shared machine it is far
// steadier than wall time, and a saturated server's requests/s is cores / cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start, ok := cputime.Process()
	return func() {
		if end, ok2 := cputime.Process(); ok && ok2 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func serverMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

// BenchmarkMux is the middleware around a whole ServeMux, called directly: what the
// middleware adds to a request's CPU time, without the network.
func BenchmarkMux(b *testing.B) {
	mux := serverMux()
	tab := map[string]*core.Bulkhead{"GET /api/items/{id}": benchBulkhead(b, 0), "GET /health": benchBulkhead(b, 0)}
	sel, err := ByPattern(tab)
	if err != nil {
		b.Fatal(err)
	}
	noBreaker := func(name string) *core.Bulkhead {
		cfg := core.DefaultConfig(name)
		cfg.MaxConcurrentCalls = 1024
		bh, err := core.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return bh
	}
	for _, bc := range []struct {
		name   string
		h      http.Handler
		target string
	}{
		{"mw=off/route=wildcard", mux, "/api/items/42"},
		{"mw=on/route=wildcard", Middleware(sel)(mux), "/api/items/42"},
		{"mw=handler/route=wildcard", Handler(mux, tab["GET /api/items/{id}"]), "/api/items/42"},
		{"mw=handler-nobreaker/route=wildcard", Handler(mux, noBreaker("nb")), "/api/items/42"},
		{"mw=off/route=static", mux, "/health"},
		{"mw=on/route=static", Middleware(sel)(mux), "/health"},
		// The mux behind a HandlerFunc: the middleware cannot tell it is a ServeMux, so it
		// does not ask the mux whether it would answer 404 or 405 (the cost of that check
		// is mw=on over these).
		{"mw=on-hidden-mux/route=wildcard", Middleware(sel)(http.HandlerFunc(mux.ServeHTTP)), "/api/items/42"},
		{"mw=on-hidden-mux/route=static", Middleware(sel)(http.HandlerFunc(mux.ServeHTTP)), "/health"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &nopWriter{h: http.Header{}}
			base := benchRequest(b, http.MethodGet, bc.target)
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				r := *base // ServeMux records the match in r: a fresh copy each time
				bc.h.ServeHTTP(w, &r)
			}
		})
	}
}

// BenchmarkServer measures requests over a real loopback server with a keep-alive
// client, with and without the middleware around the whole mux.
func BenchmarkServer(b *testing.B) {
	mux := serverMux()
	sel, err := ByPattern(map[string]*core.Bulkhead{"GET /api/items/{id}": benchBulkhead(b, 0), "GET /health": benchBulkhead(b, 0)})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"mw=off", mux},
		{"mw=on", Middleware(sel)(mux)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(bc.h)
			defer srv.Close()
			tr := srv.Client().Transport.(*http.Transport)
			tr.MaxIdleConnsPerHost = 64
			client := srv.Client()
			url := srv.URL + "/api/items/42"
			b.ReportAllocs()
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkServerInterleaved is BenchmarkServer with the two servers measured in the same
// time window: every iteration sends one request to each, alternating which goes first,
// so that load from elsewhere on a shared machine weighs on both alike. It reports the
// mean and the median time per request of each, and their ratios mw/bare (the
// throughput ratio is the inverse). The median shrugs off the requests that a busy
// machine descheduled for milliseconds.
func BenchmarkServerInterleaved(b *testing.B) {
	mux := serverMux()
	sel, err := ByPattern(map[string]*core.Bulkhead{"GET /api/items/{id}": benchBulkhead(b, 0), "GET /health": benchBulkhead(b, 0)})
	if err != nil {
		b.Fatal(err)
	}
	bare := httptest.NewServer(mux)
	defer bare.Close()
	guarded := httptest.NewServer(Middleware(sel)(mux))
	defer guarded.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(url string) time.Duration {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return time.Since(start)
	}
	var mu sync.Mutex
	var bareTimes, mwTimes []time.Duration
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var bt, mt []time.Duration
		first := false
		for pb.Next() {
			first = !first
			if first {
				bt = append(bt, get(bare.URL+"/api/items/42"))
				mt = append(mt, get(guarded.URL+"/api/items/42"))
			} else {
				mt = append(mt, get(guarded.URL+"/api/items/42"))
				bt = append(bt, get(bare.URL+"/api/items/42"))
			}
		}
		mu.Lock()
		bareTimes, mwTimes = append(bareTimes, bt...), append(mwTimes, mt...)
		mu.Unlock()
	})
	b.StopTimer()
	bareMean, bareMedian := meanMedian(bareTimes)
	mwMean, mwMedian := meanMedian(mwTimes)
	b.ReportMetric(bareMedian, "bare-p50-ns/req")
	b.ReportMetric(mwMedian, "mw-p50-ns/req")
	b.ReportMetric(mwMedian/bareMedian, "mw/bare-p50")
	b.ReportMetric(mwMean/bareMean, "mw/bare-mean")
}

func meanMedian(ds []time.Duration) (mean, median float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum) / float64(len(ds)), float64(ds[len(ds)/2])
}

// BenchmarkTransport measures the client side over loopback: the base transport against
// the same transport behind Transport.
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport)
	base.MaxIdleConnsPerHost = 64
	bh := benchBulkhead(b, 0)
	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"mw=off", base},
		{"mw=on", Transport(base, func(*http.Request) *core.Bulkhead { return bh })},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := &http.Client{Transport: bc.rt}
			b.ReportAllocs()
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(srv.URL)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
