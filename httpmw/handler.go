package httpmw

import (
	"maps"
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
// WithRejectionHandler to change it) and next is not called. A status of 500 or more
// (WithFailureStatus changes which), or a panic in next (re-raised after the permit is
// released, http.ErrAbortHandler included), counts as a failure for the circuit; any
// other status, or a hijacked connection, is a success; a request whose client went away
// before next returned (r.Context() is done) counts for neither.
//
// next runs on the server's goroutine. With a bulkhead Timeout, its request context
// carries the permit's deadline, and a response next has not started (WriteHeader,
// Write, Flush or Hijack) by the deadline belongs to the timeout: next's later attempts
// to start it return http.ErrHandlerTimeout, and when next returns the client gets the
// timeout response, with the headers set before next ran but none of next's. Once the
// response has started, the deadline only cancels the context. A handler that returns
// after the deadline counts as timed out whatever its status, unless its client went away
// first (see core.Permit.Release). For a response at the deadline itself even when next
// ignores its context, see WithPromptTimeout.
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
	return &guard{next: next, b: b, reject: o.reject, failure: o.failure, prompt: o.prompt, opts: o.classifier(), mux: asMux(next)}
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
		return &guard{next: next, sel: sel, reject: o.reject, failure: o.failure, prompt: o.prompt, opts: o.classifier(), mux: asMux(next)}
	}
}

// guard is the handler behind Handler (b set) and Middleware (sel set).
type guard struct {
	next    http.Handler
	b       *core.Bulkhead
	sel     Selector
	reject  func(w http.ResponseWriter, r *http.Request, err error)
	failure func(status int) bool // WithFailureStatus; nil: status >= 500
	prompt  bool                  // WithPromptTimeout
	opts    *options              // nil unless requests get a priority or tenant from the options
	mux     *http.ServeMux        // next, when it is a ServeMux: see muxRoutes
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
	d, timed := p.Deadline()
	if timed && g.prompt {
		g.servePrompt(w, r, p)
		return
	}
	rw := &responseWriter{ResponseWriter: w, deadline: d}
	sent := r
	if timed {
		if h := w.Header(); len(h) > 0 {
			rw.outer = h.Clone() // what the timeout response keeps of the headers
		}
		if ctx := p.Context(r.Context()); ctx != r.Context() {
			sent = r.WithContext(ctx) // ends at the permit's deadline, or when it is released
		}
	}
	returned := false
	defer func() {
		if !returned { // a panic, re-raised when this returns
			_ = p.Release(core.Failure)
			return
		}
		if timed && rw.timedOut(r) {
			_ = p.Release(core.TimedOut)
			h := w.Header() // the handler's headers were for its response, not this one
			clear(h)
			maps.Copy(h, rw.outer)
			g.reject(w, r, &core.Error{Bulkhead: p.Bulkhead().Name(), Err: core.ErrTimeout})
			return
		}
		o := core.Success
		switch {
		case rw.hijacked:
		case r.Context().Err() != nil:
			o = core.Neutral // the client went away
		case failed(g.failure, rw.status):
			o = core.Failure
		}
		_ = p.Release(o) // after the deadline, Release records TimedOut
	}()
	g.next.ServeHTTP(rw, sent)
	returned = true
}
