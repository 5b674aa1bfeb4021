package httpmw_test

// The Examples of docs/user-guide.md's HTTP and operations sections; docs/docs_test.go
// checks that the guide's code is in these bodies.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

// With a bulkhead Timeout, the handler's context ends at the deadline. A handler that has
// not started its response by then gets the timeout response when it returns, and the call
// counts as failed and timed out.
func ExampleHandler_timeout() {
	cfg := core.DefaultConfig("reports")
	cfg.Timeout = 50 * time.Millisecond
	reports, err := core.New(cfg)
	if err != nil {
		panic(err)
	}
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()        // a query that honours its context, cancelled at the deadline
		fmt.Fprintln(w, "too late") // refused: the response belongs to the timeout
	})
	h := httpmw.Handler(slow, reports)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/reports/1", nil))
	fmt.Println(rec.Code, strings.Contains(rec.Body.String(), httpmw.ProblemTimeout))
	s := reports.Stats()
	fmt.Println(s.FailedExecutions, s.TimedOutExecutions)
	// Output:
	// 503 true
	// 1 1
}

// WithPromptTimeout answers at the deadline even when the handler ignores its context: it
// runs on a goroutine of its own and keeps its permit until it returns.
func ExampleWithPromptTimeout() {
	cfg := core.DefaultConfig("reports")
	cfg.Timeout = 50 * time.Millisecond
	reports, err := core.New(cfg)
	if err != nil {
		panic(err)
	}
	hung := make(chan struct{}) // a dependency that hangs past the deadline
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-hung                      // ignores r.Context(), which ends at the deadline
		fmt.Fprintln(w, "too late") // discarded
	})
	h := httpmw.Handler(slow, reports, httpmw.WithPromptTimeout())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/reports/1", nil)) // returns at the deadline
	fmt.Println(rec.Code, strings.Contains(rec.Body.String(), httpmw.ProblemTimeout))
	close(hung)

	_ = reports.Shutdown(context.Background()) // waits for the handler to return its permit
	s := reports.Stats()
	fmt.Println(s.FailedExecutions, s.TimedOutExecutions)
	// Output:
	// 503 true
	// 1 1
}

// Shutdown order: stop the server first (it waits for the handlers, which give their
// permits back), then the bulkheads, then what they use (a CircuitStore, its pool).
func Example_gracefulShutdown() {
	m := core.NewManager()
	api, err := m.Create(core.DefaultConfig("api"))
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}), api)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = srv.Serve(ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	fmt.Println(string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// 1. The server: no new requests; running handlers finish and release their permits.
	fmt.Println("server:", srv.Shutdown(ctx))
	// 2. The bulkheads: they wait for functions still running (abandoned at a Timeout).
	fmt.Println("bulkheads:", m.Shutdown(ctx))
	// 3. Then a CircuitStore and its pool: store.Close(), pool.Close().
	fmt.Println(api.Stats().SuccessfulExecutions)
	// Output:
	// hello
	// server: <nil>
	// bulkheads: <nil>
	// 1
}

// WithFailureStatus decides which statuses count against the circuit, here a client's.
func ExampleWithFailureStatus() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer upstream.Close()
	cfg := core.DefaultConfig("payments")
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 2
	payments, err := core.New(cfg)
	if err != nil {
		panic(err)
	}

	// A dependency's 429 is a failure; 501 Not Implemented is an answer.
	failing := httpmw.WithFailureStatus(func(status int) bool {
		return status == http.StatusTooManyRequests || status >= 500 && status != http.StatusNotImplemented
	})
	client := &http.Client{Transport: httpmw.Transport(upstream.Client().Transport,
		func(*http.Request) *core.Bulkhead { return payments }, failing)}
	for range 3 {
		resp, err := client.Get(upstream.URL)
		if err != nil {
			fmt.Println(errors.Is(err, core.ErrCircuitOpen))
			continue
		}
		_ = resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 429
	// 429
	// true
}
