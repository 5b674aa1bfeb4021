package httpmw

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestMuxAnswersTakeNoPermit: around a ServeMux, a request the mux answers 404 or 405
// itself takes no permit, even when the Selector picks a bulkhead for it (here: every
// request), so that a scan of unknown paths neither fills the bulkhead nor gets 503s; a
// request the mux routes to a handler is guarded.
func TestMuxAnswersTakeNoPermit(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", text("user"))
	mux.Handle("/static/", text("file"))
	for _, wrap := range []struct {
		name string
		wrap func(b *core.Bulkhead) http.Handler
	}{
		{"Middleware(Always)", func(b *core.Bulkhead) http.Handler {
			return Middleware(func(*http.Request) *core.Bulkhead { return b })(mux)
		}},
		{"Middleware(ByPattern with a catch-all)", func(b *core.Bulkhead) http.Handler {
			sel, err := ByPattern(map[string]*core.Bulkhead{"/": b})
			require.NoError(t, err)
			return Middleware(sel)(mux)
		}},
		{"Handler", func(b *core.Bulkhead) http.Handler { return Handler(mux, b) }},
	} {
		t.Run(wrap.name, func(t *testing.T) {
			b := newBulkhead(t, "api", single)
			h := wrap.wrap(b)
			for _, tc := range []struct {
				method, target string
				code           int
				guarded        bool
			}{
				{"GET", "/users/7", http.StatusOK, true},
				{"GET", "/static/a.css", http.StatusOK, true},
				{"GET", "/nothing/here", http.StatusNotFound, false},
				{"POST", "/users/7", http.StatusMethodNotAllowed, false},
				{"GET", "/static", 0, true}, // ServeMux's redirect to /static/ (a 3xx): a route of its own
			} {
				before := b.Stats().TotalExecutions
				rec := serve(h, httptest.NewRequest(tc.method, tc.target, nil))
				if tc.code == 0 {
					assert.Equal(t, "/static/", rec.Header().Get("Location"))
				} else {
					assert.Equal(t, tc.code, rec.Code, "%s %s", tc.method, tc.target)
				}
				assert.Equal(t, tc.guarded, b.Stats().TotalExecutions > before, "%s %s guarded", tc.method, tc.target)
			}

			// While the bulkhead is full, 404s and 405s are still the mux's own.
			p, err := b.Acquire(t.Context())
			require.NoError(t, err)
			defer func() { _ = p.Release(core.Success) }()
			assert.Equal(t, http.StatusNotFound, serve(h, get("/nothing/here")).Code)
			assert.Equal(t, http.StatusMethodNotAllowed, serve(h, httptest.NewRequest("POST", "/users/7", nil)).Code)
			assert.Equal(t, http.StatusServiceUnavailable, serve(h, get("/users/7")).Code)
			assert.Zero(t, b.Stats().RejectedExecutions-1, "only the routed request was refused")
		})
	}
}

// TestNilHandlerPanicsAtConstruction: a nil next handler is reported when the handler is
// built, naming the argument, as http.Handle does, rather than as a nil dereference on
// the first request.
func TestNilHandlerPanicsAtConstruction(t *testing.T) {
	b := newBulkhead(t, "api")
	assert.PanicsWithValue(t, "httpmw: Handler: nil handler", func() { Handler(nil, b) })
	assert.PanicsWithValue(t, "httpmw: Handler: nil handler", func() { Handler(nil, nil) })
	mw := Middleware(func(*http.Request) *core.Bulkhead { return b })
	assert.PanicsWithValue(t, "httpmw: Middleware: nil handler", func() { mw(nil) })
	assert.PanicsWithValue(t, "httpmw: Middleware: nil handler", func() { Middleware(nil)(nil) })
}
