package chitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// full returns a bulkhead of one permit and no queue, whose permit is held until the
// test ends: every request it guards is refused with 503 and counted as rejected.
func full(t *testing.T, name string) *core.Bulkhead {
	t.Helper()
	cfg := core.DefaultConfig(name)
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	b, err := core.New(cfg)
	require.NoError(t, err)
	p, err := b.Acquire(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Release(core.Success) })
	return b
}

// ok answers 200 with the route pattern chi matched and the request's r.Pattern.
func ok(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte(chi.RouteContext(r.Context()).RoutePattern() + " " + r.Pattern))
}

func do(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

// request is a request to a router, which bulkhead should refuse it (nil: none should
// see it), and the status the client gets.
type request struct {
	method, target string
	refusedBy      *core.Bulkhead
	code           int
}

// check sends each request to h and checks who refused it: exactly refusedBy, or none of
// bs.
func check(t *testing.T, h http.Handler, bs []*core.Bulkhead, reqs []request) {
	t.Helper()
	for _, rq := range reqs {
		before := make([]int64, len(bs))
		for i, b := range bs {
			before[i] = b.Stats().RejectedExecutions
		}
		rec := do(h, rq.method, rq.target)
		assert.Equal(t, rq.code, rec.Code, "%s %s: %s", rq.method, rq.target, rec.Body)
		for i, b := range bs {
			refused := b.Stats().RejectedExecutions > before[i]
			assert.Equal(t, b == rq.refusedBy, refused, "%s %s refused by %s", rq.method, rq.target, b.Name())
		}
	}
}

// TestRouteLevel: middleware on routes (r.With, or r.Use inside r.Group) runs after chi
// has routed the request, so requests chi answers 404 or 405 take no permit; and chi
// v5.2.3 and later have set r.Pattern (chi's full route pattern, which has no method) for
// ByPattern to match first. Keys are ServeMux patterns: chi's "/files/*" is
// "/files/{path...}", its "{id:[0-9]+}" is "{id}" (the route's expression still decides
// which requests reach the middleware).
func TestRouteLevel(t *testing.T) {
	users, orders, files := full(t, "users"), full(t, "orders"), full(t, "files")
	sel, err := httpmw.ByPattern(map[string]*core.Bulkhead{
		"/users/{id}":            users,  // equal to chi's r.Pattern: wins by it
		"GET /api/orders/{id}":   orders, // r.Pattern has no method: matched by the URL
		"/files/{path...}":       files,
		"GET /api/orders/export": nil, // an exception, as with ServeMux
	})
	require.NoError(t, err)
	guard := httpmw.Middleware(sel)

	r := chi.NewRouter()
	r.With(guard).Get("/users/{id}", ok)
	r.Route("/api", func(r chi.Router) {
		r.With(guard).Get("/orders/{id:[0-9]+}", ok)
		r.With(guard).Get("/orders/export", ok)
	})
	r.Group(func(r chi.Router) {
		r.Use(guard) // a group's Use applies to its routes only, after routing
		r.Get("/files/*", ok)
	})

	check(t, r, []*core.Bulkhead{users, orders, files}, []request{
		{"GET", "/users/7", users, 503},
		{"GET", "/api/orders/42", orders, 503},
		{"GET", "/api/orders/export", nil, 200},
		{"GET", "/files/a/b.css", files, 503},
		{"GET", "/users/7/extra", nil, 404}, // chi's 404: never reaches the middleware
		{"POST", "/users/7", nil, 405},      // chi's 405 too
		{"GET", "/api/orders/abc", nil, 404},
		{"DELETE", "/files/a.css", nil, 405},
		{"GET", "/nothing/at/all", nil, 404},
	})
	assert.Equal(t, "/api/orders/export /api/orders/export", do(r, "GET", "/api/orders/export").Body.String(),
		"chi set r.Pattern to its full route pattern")
}

// TestRouterLevel: middleware given to r.Use on the router (or on a sub-router of
// r.Route or r.Mount) runs before chi routes the request, as around a whole ServeMux:
// r.Pattern is not set yet, so ByPattern matches the URL with ServeMux's rules. A request
// chi then answers 404 or 405 is guarded when a key matches it; with keys that mirror the
// routes, only a broader key (a prefix, a key without a method) does.
func TestRouterLevel(t *testing.T) {
	users, api := full(t, "users"), full(t, "api")
	sel, err := httpmw.ByPattern(map[string]*core.Bulkhead{
		"GET /users/{id}": users, // mirrors the route: chi's 404s and 405s do not match it
		"/api/":           api,   // broader than the routes under it
	})
	require.NoError(t, err)

	r := chi.NewRouter()
	r.Use(httpmw.Middleware(sel))
	r.Get("/users/{id}", ok)
	r.Route("/api", func(r chi.Router) { r.Get("/orders/{id}", ok) })

	check(t, r, []*core.Bulkhead{users, api}, []request{
		{"GET", "/users/7", users, 503},
		{"POST", "/users/7", nil, 405},
		{"GET", "/users/7/x", nil, 404},
		{"GET", "/api/orders/1", api, 503},
		{"GET", "/api/nothing", api, 503}, // chi would answer 404: the prefix key took it first
	})
}

// TestRoutePatternSelector: a Selector over chi's own route pattern, for tables written
// in chi's syntax (wildcards, regular expressions). It works after routing only (r.With,
// a group's Use); before routing chi has matched nothing yet and every request is
// unguarded.
func TestRoutePatternSelector(t *testing.T) {
	orders, files := full(t, "orders"), full(t, "files")
	table := map[string]*core.Bulkhead{
		"/api/orders/{id:[0-9]+}": orders,
		"/files/*":                files,
	}
	byRoute := httpmw.Middleware(func(r *http.Request) *core.Bulkhead {
		return table[chi.RouteContext(r.Context()).RoutePattern()]
	})

	r := chi.NewRouter()
	r.Route("/api", func(r chi.Router) { r.With(byRoute).Get("/orders/{id:[0-9]+}", ok) })
	r.With(byRoute).Get("/files/*", ok)
	check(t, r, []*core.Bulkhead{orders, files}, []request{
		{"GET", "/api/orders/42", orders, 503},
		{"GET", "/files/a/b.css", files, 503},
		{"GET", "/api/orders/x", nil, 404},
	})

	before := chi.NewRouter()
	before.Use(byRoute)
	before.Get("/files/*", ok)
	check(t, before, []*core.Bulkhead{files}, []request{{"GET", "/files/a.css", nil, 200}})
}

// TestBeforeChiSetPattern: chi before v5.2.3 never set r.Pattern. ByPattern then matches
// the URL on every route, as around a whole mux, and picks the same bulkheads.
func TestBeforeChiSetPattern(t *testing.T) {
	users, orders := full(t, "users"), full(t, "orders")
	sel, err := httpmw.ByPattern(map[string]*core.Bulkhead{
		"/users/{id}":          users,
		"GET /api/orders/{id}": orders,
	})
	require.NoError(t, err)
	oldChi := func(next http.Handler) http.Handler { // what chi v5.2.2 and earlier left
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Pattern = ""
			next.ServeHTTP(w, r)
		})
	}
	r := chi.NewRouter()
	r.With(oldChi, httpmw.Middleware(sel)).Get("/users/{id}", ok)
	r.With(oldChi, httpmw.Middleware(sel)).Get("/api/orders/{id:[0-9]+}", ok)
	check(t, r, []*core.Bulkhead{users, orders}, []request{
		{"GET", "/users/7", users, 503},
		{"GET", "/api/orders/42", orders, 503},
	})
}

// TestChiKeysAreRefused: a table written in chi's syntax is refused, naming the key, by
// ByPattern and ValidatePattern alike, rather than accepted to match nothing.
func TestChiKeysAreRefused(t *testing.T) {
	for _, key := range []string{"/files/*", "/orders/{id:[0-9]+}", "GET /api/*"} {
		err := httpmw.ValidatePattern(key)
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), `httpmw: pattern "`+key+`"`)
		_, err = httpmw.ByPattern(map[string]*core.Bulkhead{key: nil})
		assert.Error(t, err, key)
	}
}
