package httpmw

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/bulkman-go/bulkman/core"
)

// The baselines sit beside what they measure, so that one run gives the ratios:
//
//	go test -run '^$' -bench . -benchmem -count 6 ./httpmw/ | tee httpmw.txt
//	go run golang.org/x/perf/cmd/benchstat@latest httpmw.txt

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

func failsafeHandler(next http.Handler) http.Handler {
	return failsafehttp.NewHandler(next,
		bulkhead.New[*http.Response](1024),
		circuitbreaker.NewWithDefaults[*http.Response](),
		timeout.New[*http.Response](time.Second),
	)
}

// BenchmarkHandler calls each handler directly with a no-op next handler.
func BenchmarkHandler(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"impl=bare", nop},
		{"impl=bulkhead", Handler(nop, benchBulkhead(b, 0))},
		{"impl=bulkhead+timeout", Handler(nop, benchBulkhead(b, time.Second))},
		{"impl=failsafehttp", failsafeHandler(nop)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &nopWriter{h: http.Header{}}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkHandlerParallel is BenchmarkHandler under contention.
func BenchmarkHandlerParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"impl=bare", nop},
		{"impl=bulkhead", Handler(nop, benchBulkhead(b, 0))},
		{"impl=failsafehttp", failsafeHandler(nop)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &nopWriter{h: http.Header{}}
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				for pb.Next() {
					bc.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

func BenchmarkByPattern(b *testing.B) {
	bh := benchBulkhead(b, 0)
	sel, err := ByPattern(map[string]*core.Bulkhead{
		"GET /users/{id}": bh, "POST /users": bh, "GET /health": bh, "/static/": bh, "/api/v1/orders": bh,
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, method, target string }{
		{"route=static", "GET", "/api/v1/orders"},
		{"route=method", "GET", "/health"},
		{"route=wildcard", "GET", "/users/42"},
		{"route=prefix", "GET", "/static/css/site.css"},
		{"route=unmatched", "GET", "/metrics"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(bc.method, bc.target, nil)
			b.ReportAllocs()
			for b.Loop() {
				if sel(r) == nil && bc.name != "route=unmatched" {
					b.Fatal("no bulkhead")
				}
			}
		})
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
// so that load from elsewhere on a shared machine hits both alike. It reports the mean
// time per request of each and their ratio (mw/bare; the throughput ratio is its
// inverse).
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
	var bareNs, mwNs atomic.Int64
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
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		first := false
		for pb.Next() {
			first = !first
			if first {
				bareNs.Add(int64(get(bare.URL + "/api/items/42")))
				mwNs.Add(int64(get(guarded.URL + "/api/items/42")))
			} else {
				mwNs.Add(int64(get(guarded.URL + "/api/items/42")))
				bareNs.Add(int64(get(bare.URL + "/api/items/42")))
			}
		}
	})
	b.ReportMetric(float64(bareNs.Load())/float64(b.N), "bare-ns/req")
	b.ReportMetric(float64(mwNs.Load())/float64(b.N), "mw-ns/req")
	b.ReportMetric(float64(mwNs.Load())/float64(bareNs.Load()), "mw/bare")
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
