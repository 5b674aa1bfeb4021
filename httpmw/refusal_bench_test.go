package httpmw

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bulkman-go/bulkman/core"
)

// refusingBulkhead returns a bulkhead that refuses every call: with core.ErrFull (its
// only permit held until tb ends), or with core.ErrCircuitOpen (its circuit open for an
// hour).
func refusingBulkhead(tb testing.TB, open bool) *core.Bulkhead {
	tb.Helper()
	cfg := core.DefaultConfig("bench")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	if open {
		withCircuit(&cfg)
	}
	bh, err := core.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := bh.Acquire(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if open {
		_ = p.Release(core.Failure)
		if bh.State() != core.Isolated {
			tb.Fatal("the circuit did not open")
		}
	} else {
		tb.Cleanup(func() { _ = p.Release(core.Success) })
	}
	return bh
}

// bareRefusal is the baseline of a refusal: a handler that writes the same status,
// headers and body as the middleware's, with a body it made beforehand, as a hand-written
// load shedder would.
func bareRefusal(body []byte, retry string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/problem+json")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Retry-After", retry)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(body)
	})
}

// refusalCases are the handlers BenchmarkRefusal compares: for each kind, the bare
// baseline and the middleware refusing.
func refusalCases(tb testing.TB) []struct {
	name string
	h    http.Handler
} {
	full, open := refusingBulkhead(tb, false), refusingBulkhead(tb, true)
	return []struct {
		name string
		h    http.Handler
	}{
		{"kind=full/impl=bare", bareRefusal(kindFull.body("bench"), "1")},
		{"kind=full/impl=httpmw", Handler(nop, full)},
		{"kind=circuit-open/impl=bare", bareRefusal(kindOpen.body("bench"), "3600")},
		{"kind=circuit-open/impl=httpmw", Handler(nop, open)},
	}
}

// freshWriter is a ResponseWriter that costs nothing but starts every response with an
// empty header map, as net/http's does (clear keeps the map's memory, as a pooled writer
// would).
type freshWriter struct {
	h    http.Header
	code int
}

func (w *freshWriter) Header() http.Header         { return w.h }
func (w *freshWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *freshWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkRefusal measures a refused request against a bare handler writing the same
// response, into a writer that costs nothing (writer=fresh) and into an
// httptest.ResponseRecorder (writer=recorder).
func BenchmarkRefusal(b *testing.B) {
	for _, bc := range refusalCases(b) {
		b.Run("writer=fresh/"+bc.name, func(b *testing.B) {
			w := &freshWriter{h: http.Header{}}
			r := benchRequest(b, http.MethodGet, "/")
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				clear(w.h)
				bc.h.ServeHTTP(w, r)
				if w.code != http.StatusServiceUnavailable {
					b.Fatalf("status %d", w.code)
				}
			}
		})
		b.Run("writer=recorder/"+bc.name, func(b *testing.B) {
			r := benchRequest(b, http.MethodGet, "/")
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, r)
				if w.Code != http.StatusServiceUnavailable {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// TestRefusalCasesAnswerAlike: the bare baseline writes what the middleware writes.
func TestRefusalCasesAnswerAlike(t *testing.T) {
	cases := refusalCases(t)
	for i := 0; i < len(cases); i += 2 {
		bare, mw := serve(cases[i].h, get("/")), serve(cases[i+1].h, get("/"))
		if cases[i+1].name == "kind=circuit-open/impl=httpmw" {
			ra := mw.Header().Get("Retry-After")
			if ra != "3600" && ra != "3599" {
				t.Fatalf("Retry-After %q", ra)
			}
			mw.Header().Set("Retry-After", "3600")
		}
		if bare.Code != mw.Code || bare.Body.String() != mw.Body.String() {
			t.Fatalf("%s: %d %q, %s: %d %q", cases[i].name, bare.Code, bare.Body, cases[i+1].name, mw.Code, mw.Body)
		}
		for k := range bare.Header() {
			if bare.Header().Get(k) != mw.Header().Get(k) {
				t.Fatalf("%s: %s", cases[i+1].name, k)
			}
		}
	}
}
