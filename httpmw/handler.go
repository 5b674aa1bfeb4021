package httpmw

import (
	"net/http"

	"github.com/bulkman-go/bulkman/core"
)

// Handler returns a handler that serves each request through b: it takes a permit
// before calling next and gives it back when next returns, so at most
// b.Config().MaxConcurrentCalls requests run next at once. It is the shape of the
// standard library's wrappers (http.TimeoutHandler, http.MaxBytesHandler), for guarding
// one route:
//
//	mux.Handle("GET /reports/{id}", httpmw.Handler(reports, reportsBulkhead))
//
// A request the bulkhead refuses gets 503 Service Unavailable (see WriteRejection, and
// WithRejectionHandler to change it) and next is not called. A status of 500 or more,
// or a panic in next (re-raised after the permit is released, http.ErrAbortHandler
// included), counts as a failure for the circuit; any other status, or a hijacked
// connection, is a success; a request whose client went away before next returned
// (r.Context() is done) counts for neither.
//
// With a bulkhead Timeout, next's request context carries the deadline. If next has
// not started its response (WriteHeader, Write, Flush or Hijack) when the deadline
// passes, the client gets the timeout response at once and next's later writes are
// discarded (they return http.ErrHandlerTimeout), as with http.TimeoutHandler; next
// keeps running on its own goroutine and keeps its permit until it returns. Once the
// response has started, the deadline only cancels the context. Either way, a handler that
// returns after the deadline counts as timed out whatever its status, unless its client
// went away first (see core.Permit.Release). Without a Timeout, next runs on the caller's
// goroutine.
//
// A request's priority and tenant (see WithTrustedHeaders and WithPriorityFunc) rank it
// in the bulkhead's queue; next sees them in the request's context.
//
// The returned handler is safe for concurrent use. A nil b returns next unchanged.
func Handler(next http.Handler, b *core.Bulkhead, opts ...Option) http.Handler {
	if next == nil {
		panic("httpmw: Handler: nil handler")
	}
	if b == nil {
		return next
	}
	o := buildOptions(opts)
	return &guard{next: next, b: b, reject: o.reject, opts: o.classifier(), mux: asMux(next)}
}

// Middleware returns middleware, in the func(http.Handler) http.Handler shape of chi,
// alice and most routers, that serves each request through the bulkhead sel picks for
// it, exactly as Handler does; a request for which sel returns nil goes straight to the
// wrapped handler. Use it around a whole mux or router, or on routes, with a Selector
// such as ByPattern's.
//
// The middleware and the handlers it returns are safe for concurrent use. A nil sel
// returns middleware that leaves handlers unchanged.
func Middleware(sel Selector, opts ...Option) func(http.Handler) http.Handler {
	if sel == nil {
		return func(next http.Handler) http.Handler {
			if next == nil {
				panic("httpmw: Middleware: nil handler")
			}
			return next
		}
	}
	o := buildOptions(opts)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("httpmw: Middleware: nil handler")
		}
		return &guard{next: next, sel: sel, reject: o.reject, opts: o.classifier(), mux: asMux(next)}
	}
}

// guard is the handler behind Handler (b set) and Middleware (sel set).
type guard struct {
	next   http.Handler
	b      *core.Bulkhead
	sel    Selector
	reject func(w http.ResponseWriter, r *http.Request, err error)
	opts   *options       // nil unless requests get a priority or tenant from the options
	mux    *http.ServeMux // next, when it is a ServeMux: see muxRoutes
}

// asMux returns h if it is an *http.ServeMux, nil otherwise.
func asMux(h http.Handler) *http.ServeMux {
	m, _ := h.(*http.ServeMux)
	return m
}

// muxRoutes reports whether mux has a handler of its own for r: not its 404 Not Found or
// 405 Method Not Allowed, which cost the server nothing and so take no permit (a scan of
// unknown paths must not fill the bulkhead of real requests).
func muxRoutes(mux *http.ServeMux, r *http.Request) bool {
	_, pattern := mux.Handler(r)
	return pattern != ""
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.opts != nil {
		r = g.opts.classify(r)
	}
	b := g.b
	if b == nil {
		if b = g.sel(r); b == nil {
			g.next.ServeHTTP(w, r)
			return
		}
	}
	if g.mux != nil && !muxRoutes(g.mux, r) {
		g.next.ServeHTTP(w, r)
		return
	}
	p, err := b.Acquire(r.Context())
	if err != nil {
		g.reject(w, r, err)
		return
	}
	if _, ok := p.Deadline(); ok {
		g.serveTimed(w, r, p)
		return
	}
	rw := &responseWriter{ResponseWriter: w}
	returned := false
	defer func() {
		o := core.Success
		switch {
		case !returned:
			o = core.Failure // a panic, re-raised when this returns
		case rw.hijacked:
		case r.Context().Err() != nil:
			o = core.Neutral // the client went away
		case rw.status >= 500:
			o = core.Failure
		}
		_ = p.Release(o)
	}()
	g.next.ServeHTTP(rw, r)
	returned = true
}
