package chitest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

// A Selector keyed by chi's own route patterns, wildcards and regular expressions
// included, in a middleware on the routes (after chi has routed the request).
func Example_routePattern() {
	newBulkhead := func(name string) *core.Bulkhead {
		cfg := core.DefaultConfig(name)
		cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
		b, err := core.New(cfg)
		if err != nil {
			panic(err)
		}
		return b
	}
	orders := newBulkhead("orders")
	table := map[string]*core.Bulkhead{"/api/orders/{id:[0-9]+}": orders}
	getOrder := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "order", chi.URLParam(r, "id")) }

	guard := httpmw.Middleware(func(r *http.Request) *core.Bulkhead {
		return table[chi.RouteContext(r.Context()).RoutePattern()] // "/api/orders/{id:[0-9]+}"
	})
	r := chi.NewRouter()
	r.Route("/api", func(r chi.Router) { r.With(guard).Get("/orders/{id:[0-9]+}", getOrder) })

	p, _ := orders.Acquire(context.Background()) // someone holds the only permit
	for _, target := range []string{"/api/orders/42", "/api/orders/abc"} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		fmt.Println(target, rec.Code)
	}
	_ = p.Release(core.Success)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/api/orders/42", nil))
	fmt.Print(rec.Body.String())
	// Output:
	// /api/orders/42 503
	// /api/orders/abc 404
	// order 42
}
