package httpmw_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

// mustBulkhead returns a bulkhead that runs limit calls at once and queues none.
func mustBulkhead(name string, limit int) *core.Bulkhead {
	cfg := core.DefaultConfig(name)
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = limit, 0
	b, err := core.New(cfg)
	if err != nil {
		panic(err)
	}
	return b
}

func ExampleHandler() {
	reports := mustBulkhead("reports", 1)
	mux := http.NewServeMux()
	mux.Handle("POST /reports", httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "report ready")
	}), reports))

	// Someone else holds the only permit: the request is turned away.
	p, _ := reports.Acquire(context.Background())
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/reports", nil))
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))

	_ = p.Release(core.Success)
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/reports", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 503 1 application/problem+json
	// 200 report ready
}

func ExampleMiddleware() {
	// One bulkhead for everything under /api/, picked by a hand-written Selector.
	api := mustBulkhead("api", 1)
	guard := httpmw.Middleware(func(r *http.Request) *core.Bulkhead {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			return api
		}
		return nil // unguarded
	})

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	h := guard(app) // chi: r.Use(guard); alice: alice.New(guard).Then(app)

	p, _ := api.Acquire(context.Background()) // /api/ is saturated
	for _, path := range []string{"/api/users", "/healthz"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code)
	}
	_ = p.Release(core.Success)
	// Output:
	// /api/users 503
	// /healthz 200
}

func ExampleByPattern() {
	sel, err := httpmw.ByPattern(map[string]*core.Bulkhead{
		"GET /users/{id}":    mustBulkhead("users", 10),
		"GET /users/me":      mustBulkhead("me", 10), // more specific: wins for /users/me
		"/static/":           mustBulkhead("static", 50),
		"POST api.test/jobs": mustBulkhead("jobs", 2), // host patterns come first
	})
	if err != nil {
		panic(err)
	}
	for _, target := range []string{"/users/42", "/users/me", "/static/app.js", "http://api.test/jobs", "/other"} {
		method := "GET"
		if strings.HasSuffix(target, "/jobs") {
			method = "POST"
		}
		name := "unguarded"
		if b := sel(httptest.NewRequest(method, target, nil)); b != nil {
			name = b.Name()
		}
		fmt.Println(method, target, "->", name)
	}

	_, err = httpmw.ByPattern(map[string]*core.Bulkhead{"GET /a/{x}": nil, "/a/b": nil})
	fmt.Println(err != nil)
	// Output:
	// GET /users/42 -> users
	// GET /users/me -> me
	// GET /static/app.js -> static
	// POST http://api.test/jobs -> jobs
	// GET /other -> unguarded
	// true
}

func ExampleTransport() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "pong")
	}))
	defer upstream.Close()

	b := mustBulkhead("upstream", 1)
	client := &http.Client{Transport: httpmw.Transport(upstream.Client().Transport, func(*http.Request) *core.Bulkhead {
		return b
	})}

	resp, err := client.Get(upstream.URL)
	if err != nil {
		panic(err)
	}
	fmt.Println("open exchanges:", b.Stats().InFlightCount)

	// The permit is held until the body is done, so a second call is refused.
	_, err = client.Get(upstream.URL)
	fmt.Println("second call full:", errors.Is(err, core.ErrFull))

	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	fmt.Println(string(body), "open exchanges:", b.Stats().InFlightCount)
	// Output:
	// open exchanges: 1
	// second call full: true
	// pong open exchanges: 0
}

func ExampleWithRejectionHandler() {
	b := mustBulkhead("api", 1)
	h := httpmw.Handler(http.NotFoundHandler(), b, httpmw.WithRejectionHandler(
		func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("X-Shed-By", "bulkman")
			httpmw.WriteRejection(w, r, err) // keep the default body
		}))

	p, _ := b.Acquire(context.Background())
	defer func() { _ = p.Release(core.Success) }()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("X-Shed-By"))
	fmt.Print(rec.Body.String())
	// Output:
	// 503 bulkman
	// {"type":"urn:bulkman:full","title":"Bulkhead full","status":503,"detail":"bulkhead \"api\" is at capacity","bulkhead":"api"}
}

// Keys in another router's syntax match no request in a ServeMux pattern: ByPattern and
// ValidatePattern refuse them, naming the key and the ServeMux way to write it.
func ExampleValidatePattern() {
	for _, key := range []string{"GET /users/{id}", "/static/*", "/orders/{id:[0-9]+}", "/users/:id"} {
		if err := httpmw.ValidatePattern(key); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(key, "ok")
	}
	// Output:
	// GET /users/{id} ok
	// httpmw: pattern "/static/*": "*" is a literal asterisk in a ServeMux pattern, not a wildcard (as in chi or a glob): write "/static/" or "/static/{path...}" for everything under /static/, "{name}" for one segment, or %2A for an asterisk
	// httpmw: pattern "/orders/{id:[0-9]+}": segment "{id:[0-9]+}" has a regular expression (chi's syntax), and a ServeMux wildcard has none: write "{id}" and check the value in the handler
	// httpmw: pattern "/users/:id": segment ":id" is literal text in a ServeMux pattern, not a parameter (httprouter's, gin's and echo's syntax): write "{id}", or %3A for a colon
}
