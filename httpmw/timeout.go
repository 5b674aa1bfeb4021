package httpmw

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkman-go/bulkman/core"
)

// The states of a timed response. Whoever moves it out of pending owns the real
// ResponseWriter: the handler (started) or the deadline (timedOut).
const (
	pending = iota
	started
	timedOut
)

// timedCall is a request served under a bulkhead Timeout in the prompt mode
// (WithPromptTimeout). The handler runs on its own goroutine so that ServeHTTP can answer
// at the deadline if the handler has not started its response by then, as
// http.TimeoutHandler does. Unlike TimeoutHandler it does not buffer: once the handler
// starts its response it owns the connection, and the deadline only cancels its context.
type timedCall struct {
	w     http.ResponseWriter
	orig  *http.Request // as ServeHTTP got it: its context is the client's
	p     core.Permit
	done  chan struct{} // closed when the handler has returned
	left  atomic.Int32  // ServeHTTP and the handler each add 1 when done: the second releases
	timer *time.Timer   // wakes ServeHTTP at the deadline

	mu       sync.Mutex
	state    int
	status   int
	hijacked bool
	header   http.Header // the handler's headers while pending (and after a timeout)

	panicked bool
	panicVal any
	failure  func(status int) bool // the guard's WithFailureStatus
}

// servePrompt serves r under p, which has a deadline, in the prompt mode.
//
// ServeHTTP waits for the handler or a timer at the deadline, not for the context's Done:
// asking for Done would make the permit's context follow the client's, which costs
// allocations and work on the client context's lock that only a handler that asks needs.
// The permit is released by whichever of ServeHTTP and the handler's goroutine is done
// last: ServeHTTP when it waits for the handler, so that the release runs on its grown
// stack rather than on the handler's fresh one.
func (g *guard) servePrompt(w http.ResponseWriter, r *http.Request, p core.Permit) {
	ctx := p.Context(r.Context()) // ends at the deadline, or when the permit is released
	d, _ := p.Deadline()
	c := &timedCall{w: w, orig: r, p: p, done: make(chan struct{}), failure: g.failure}
	c.timer = time.NewTimer(time.Until(d))
	go c.run(g.next, r.WithContext(ctx))

	select {
	case <-c.done:
		c.timer.Stop()
	case <-c.timer.C:
		// The deadline passed. If the client is still there and the response has not
		// started, answer now; otherwise the handler is left to notice and return.
		if r.Context().Err() == nil && c.claim(timedOut) {
			b := p.Bulkhead()
			g.reject(w, r, &core.Error{Bulkhead: b.Name(), Err: core.ErrTimeout})
			c.leave() // the handler goes on alone; it releases the permit when it returns
			return
		}
		<-c.done
	}
	c.leave()
	if c.panicked && c.panicVal != nil {
		panic(c.panicVal) // after the release, on the ServeHTTP goroutine
	}
}

// leave records that one side is done with the call; the second releases the permit.
func (c *timedCall) leave() {
	if c.left.Add(1) == 2 {
		c.release()
	}
}

// release records the outcome and frees the permit.
func (c *timedCall) release() {
	c.mu.Lock()
	state, status, hijacked := c.state, c.status, c.hijacked
	c.mu.Unlock()
	o := core.Success
	switch {
	case c.panicked:
		o = core.Failure
	case state == timedOut:
		o = core.TimedOut
	case hijacked:
	case c.orig.Context().Err() != nil:
		o = core.Neutral // the client went away
	case failed(c.failure, status): // after the deadline, Release records TimedOut
		o = core.Failure
	}
	_ = c.p.Release(o)
}

// run calls the handler. A panic is handed to the ServeHTTP goroutine; if that has
// already answered at the deadline, there is nobody to give it to and it is dropped (as
// http.TimeoutHandler does), still counting as a failure.
func (c *timedCall) run(next http.Handler, r *http.Request) {
	returned := false
	defer func() {
		if !returned {
			c.panicked, c.panicVal = true, recover()
		}
		c.claim(started) // an empty response: keep its headers
		c.leave()        // before done: a ServeHTTP still waiting is then the second
		close(c.done)
	}()
	next.ServeHTTP(c, r)
	returned = true
}

// claim moves a pending response to state. For started, it hands the handler's
// headers over to the real response. It reports whether the caller now owns it.
func (c *timedCall) claim(state int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claimLocked(state)
}

func (c *timedCall) claimLocked(state int) bool {
	if c.state != pending {
		return c.state == state
	}
	c.state = state
	if state == started && c.header != nil {
		dst := c.w.Header()
		for k, v := range c.header {
			dst[k] = v
		}
		c.header = nil
	}
	return true
}

// own reports whether the handler owns the real response, starting it if it was
// pending and recording code (0: unknown yet).
func (c *timedCall) own(code int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.claimLocked(started) {
		return false
	}
	if c.status == 0 && code != 0 {
		c.status = code
	}
	return true
}

func (c *timedCall) Header() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == started {
		return c.w.Header() // trailers set after WriteHeader land here
	}
	if c.header == nil {
		c.header = make(http.Header)
	}
	return c.header
}

func (c *timedCall) WriteHeader(code int) {
	status := 0
	if code >= 200 || code == http.StatusSwitchingProtocols {
		status = code
	}
	if c.own(status) {
		c.w.WriteHeader(code)
	}
}

func (c *timedCall) Write(p []byte) (int, error) {
	if !c.own(http.StatusOK) {
		return 0, http.ErrHandlerTimeout
	}
	return c.w.Write(p)
}

func (c *timedCall) WriteString(s string) (int, error) {
	if !c.own(http.StatusOK) {
		return 0, http.ErrHandlerTimeout
	}
	return io.WriteString(c.w, s)
}

func (c *timedCall) ReadFrom(src io.Reader) (int64, error) {
	if !c.own(http.StatusOK) {
		return 0, http.ErrHandlerTimeout
	}
	if rf, ok := c.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{c.w}, src)
}

func (c *timedCall) Flush() { _ = c.FlushError() }

func (c *timedCall) FlushError() error {
	if !c.own(http.StatusOK) {
		return http.ErrHandlerTimeout
	}
	return http.NewResponseController(c.w).Flush()
}

func (c *timedCall) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !c.own(0) {
		return nil, nil, http.ErrHandlerTimeout
	}
	conn, rw, err := http.NewResponseController(c.w).Hijack()
	if err == nil {
		c.mu.Lock()
		c.hijacked = true
		c.mu.Unlock()
	}
	return conn, rw, err
}

// The deadline setters and full duplex act on the connection, which the timeout
// response may be using: they are refused once the deadline has answered, and are
// serialised with it before.

func (c *timedCall) SetReadDeadline(t time.Time) error {
	return c.control(func(rc *http.ResponseController) error { return rc.SetReadDeadline(t) })
}

func (c *timedCall) SetWriteDeadline(t time.Time) error {
	return c.control(func(rc *http.ResponseController) error { return rc.SetWriteDeadline(t) })
}

func (c *timedCall) EnableFullDuplex() error {
	return c.control(func(rc *http.ResponseController) error { return rc.EnableFullDuplex() })
}

func (c *timedCall) control(f func(*http.ResponseController) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == timedOut {
		return http.ErrHandlerTimeout
	}
	return f(http.NewResponseController(c.w))
}

// Unwrap hands the handler the real ResponseWriter, for interfaces the methods above do
// not cover. That is taking over the response: from then on the deadline only cancels
// the context. After a timeout it returns a writer that discards everything.
func (c *timedCall) Unwrap() http.ResponseWriter {
	if !c.own(0) {
		return discard{}
	}
	return c.w
}

// discard is the ResponseWriter behind a response the deadline already answered.
type discard struct{}

func (discard) Header() http.Header       { return http.Header{} }
func (discard) WriteHeader(int)           {}
func (discard) Write([]byte) (int, error) { return 0, http.ErrHandlerTimeout }
