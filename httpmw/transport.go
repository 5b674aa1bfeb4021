package httpmw

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/bulkman-go/bulkman/core"
)

// Transport returns a client http.RoundTripper that sends each request through the
// bulkhead sel picks for it (nil: straight to base), so that at most MaxConcurrentCalls
// exchanges with a dependency are open at once. A nil base means http.DefaultTransport.
//
// The permit covers the whole exchange: it is taken before base.RoundTrip and given back
// when the response body is closed or read to its end (or fails), or at once when
// base.RoundTrip fails or the response has no body (http.NoBody). So close every
// response body, as http.Client's documentation asks; an unclosed body keeps its
// permit. A 101 Switching Protocols body stays writable (it implements io.Writer, as
// net/http's does), and its permit is held until it is closed.
//
// When the bulkhead refuses, RoundTrip closes the request body (as the RoundTripper
// contract requires) and returns a *core.Error of the caller's own (wrapping core.ErrFull,
// core.ErrCircuitOpen, core.ErrShutdown or core.ErrTimeout), or the request context's
// error if it ended while queued; http.Client wraps it in a *url.Error, and errors.Is
// and errors.As see through both. With a bulkhead Timeout, the request's context
// carries the deadline, which then bounds the whole exchange, body included.
//
// For the circuit: a status of 500 or more is a failure, any other status a success
// (WithFailureStatus changes which statuses fail); an exchange that breaks (base.RoundTrip
// or a body read fails, including when the bulkhead deadline passes) is a failure, unless
// the request's own context had ended (the caller gave up), which counts for neither.
// Closing a body before its end keeps the status's verdict. Of the options, only
// WithFailureStatus applies to a client; the others shape a server's responses and are
// ignored here.
//
// The request's priority and tenant (core.WithPriority, core.WithTenant on its context)
// rank it in the bulkhead's queue and go to the server as PriorityHeader and
// TenantHeader, replacing any the request had, whether or not sel picks a bulkhead; a
// request whose context carries neither is sent as it is.
//
// The RoundTripper is safe for concurrent use if base is. It does not modify the
// request (a request that gets headers is sent as a copy). It passes CloseIdleConnections on to base (http.Client.CloseIdleConnections
// reaches it).
func Transport(base http.RoundTripper, sel Selector, opts ...Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	o := buildOptions(opts)
	return &transport{base: base, sel: sel, failure: o.failure}
}

type transport struct {
	base    http.RoundTripper
	sel     Selector
	failure func(status int) bool // WithFailureStatus; nil: status >= 500
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := outbound(req)
	var b *core.Bulkhead
	if t.sel != nil {
		b = t.sel(req)
	}
	if b == nil {
		return t.base.RoundTrip(out)
	}
	p, err := b.Acquire(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		if ce, ok := err.(*core.Error); ok {
			own := *ce // the bulkhead shares its refusals; the caller gets one of its own
			return nil, &own
		}
		return nil, err
	}
	x := &exchange{permit: p, callerCtx: req.Context()}
	sent := out
	if ctx := p.Context(req.Context()); ctx != req.Context() {
		sent = out.WithContext(ctx) // ends at the permit's deadline, or when it is released
	}
	resp, err := t.base.RoundTrip(sent)
	if err != nil {
		x.end(x.failure())
		return nil, err
	}
	if failed(t.failure, resp.StatusCode) {
		x.verdict = core.Failure
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		x.end(x.verdict)
		return resp, nil
	}
	x.body = resp.Body
	if w, ok := resp.Body.(io.Writer); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &writableBody{exchange: x, w: w}
	} else {
		resp.Body = x
	}
	return resp, nil
}

// CloseIdleConnections closes base's idle connections, if base can (http.Client's
// CloseIdleConnections calls it).
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// exchange is one request holding a permit, and the response body that gives it back.
type exchange struct {
	body      io.ReadCloser
	permit    core.Permit
	verdict   core.Outcome // from the status
	callerCtx context.Context
	ended     atomic.Bool
}

func (x *exchange) Read(p []byte) (int, error) {
	n, err := x.body.Read(p)
	if err == io.EOF {
		x.end(x.verdict)
	} else if err != nil {
		x.end(x.failure())
	}
	return n, err
}

func (x *exchange) Close() error {
	err := x.body.Close()
	x.end(x.verdict)
	return err
}

// failure judges an exchange that broke: the caller's own context ending says nothing
// about the dependency.
func (x *exchange) failure() core.Outcome {
	if x.callerCtx.Err() != nil {
		return core.Neutral
	}
	return core.Failure
}

// end gives the permit back once, with outcome o.
func (x *exchange) end(o core.Outcome) {
	if !x.ended.CompareAndSwap(false, true) {
		return
	}
	_ = x.permit.Release(o) // which also ends the request's context if it has the permit's deadline
}

// writableBody is the body of a 101 Switching Protocols response, which the caller
// writes to as well as reads from.
type writableBody struct {
	*exchange
	w io.Writer
}

func (b *writableBody) Write(p []byte) (int, error) { return b.w.Write(p) }
