package httpmw

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/perbulkhead"
)

// Problem types of the default rejection body (RFC 9457). They are stable: clients may
// branch on them.
const (
	ProblemFull        = "urn:bulkman:full"         // core.ErrFull
	ProblemCircuitOpen = "urn:bulkman:circuit-open" // core.ErrCircuitOpen
	ProblemTimeout     = "urn:bulkman:timeout"      // core.ErrTimeout
	ProblemShutdown    = "urn:bulkman:shutdown"     // core.ErrShutdown
)

// problem is the application/problem+json body (RFC 9457) of a rejection.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Bulkhead string `json:"bulkhead,omitempty"`
}

// WriteRejection is the default response for a request a bulkhead did not serve:
// 503 Service Unavailable with an application/problem+json body
//
//	{"type":"urn:bulkman:full","title":"Bulkhead full","status":503,
//	 "detail":"bulkhead \"api\" is at capacity","bulkhead":"api"}
//
// The type is one of ProblemFull, ProblemCircuitOpen, ProblemTimeout and
// ProblemShutdown, or "about:blank" for any other err (such as the request context's
// error). The body names the bulkhead and the kind of refusal and nothing else: it is the
// same bytes for every refusal of one kind by one bulkhead, so that logs and error
// trackers group them. For core.ErrFull, core.ErrCircuitOpen and core.ErrShutdown it also
// sets Retry-After, in whole seconds rounded up and at least 1, from core.Error.RetryAfter
// (1 when that is 0): an open circuit's remaining isolation travels there, not in the
// body. core.ErrTimeout gets no Retry-After, like http.TimeoutHandler.
//
// Each response gets header values of its own, so a handler further out may change them.
// It is safe for concurrent use; call it from a handler given to WithRejectionHandler to
// keep the default and add headers first. Handler and Middleware write the same response
// without calling it, from bodies they build once per bulkhead.
func WriteRejection(w http.ResponseWriter, _ *http.Request, err error) {
	if ce, ok := errors.AsType[*core.Error](err); ok {
		if k := kindOf(ce.Err); k != nil {
			writeProblem(w, k.body(ce.Bulkhead), retryValue(k, ce.RetryAfter))
			return
		}
	}
	writeProblem(w, otherBody(err), "")
}

// kind is one kind of refusal's part of the problem body.
type kind struct {
	typ, title string
	sentinel   error
	retry      bool // the response has a Retry-After
}

var (
	kindFull     = &kind{ProblemFull, "Bulkhead full", core.ErrFull, true}
	kindOpen     = &kind{ProblemCircuitOpen, "Circuit open", core.ErrCircuitOpen, true}
	kindShutdown = &kind{ProblemShutdown, "Bulkhead shut down", core.ErrShutdown, true}
	kindTimeout  = &kind{ProblemTimeout, "Bulkhead timeout", core.ErrTimeout, false}
)

// kindOf returns the kind of refusal sentinel is, or nil if it is none.
func kindOf(sentinel error) *kind {
	switch {
	case errors.Is(sentinel, core.ErrFull):
		return kindFull
	case errors.Is(sentinel, core.ErrCircuitOpen):
		return kindOpen
	case errors.Is(sentinel, core.ErrShutdown):
		return kindShutdown
	case errors.Is(sentinel, core.ErrTimeout):
		return kindTimeout
	}
	return nil
}

// body renders the problem body of a refusal of kind k by the bulkhead named name. Its
// detail is core's text for the kind without any detail (no capacity, no time).
func (k *kind) body(name string) []byte {
	return problemBody(problem{
		Type:     k.typ,
		Title:    k.title,
		Status:   http.StatusServiceUnavailable,
		Detail:   (&core.Error{Bulkhead: name, Err: k.sentinel}).Error(),
		Bulkhead: name,
	})
}

// otherBody renders the problem body for an err that is not a bulkhead's refusal.
func otherBody(err error) []byte {
	p := problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable), Status: http.StatusServiceUnavailable}
	if err != nil {
		p.Detail = err.Error()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		p.Detail = "the request ended while it waited for a permit: " + p.Detail
	}
	return problemBody(p)
}

func problemBody(p problem) []byte {
	body, _ := json.Marshal(p) // cannot fail: strings and an int
	return append(body, '\n')
}

// retryValue returns the Retry-After of a refusal of kind k, "" for none.
func retryValue(k *kind, d time.Duration) string {
	if !k.retry {
		return ""
	}
	return retryAfter(d)
}

// writeProblem writes a 503 with body, and Retry-After unless retry is "". The header
// values are fresh slices (one allocation for all of them), so that whoever changes them
// afterwards changes only this response's; body is only read (io.Writer's contract).
func writeProblem(w http.ResponseWriter, body []byte, retry string) {
	vals := new([3]string)
	vals[0], vals[1], vals[2] = "application/problem+json", "nosniff", retry
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["X-Content-Type-Options"] = vals[1:2:2]
	delete(h, "Content-Length")
	if retry != "" {
		h["Retry-After"] = vals[2:3:3]
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(body)
}

// retryAfter renders d as a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(retrySeconds(d), 10)
}

func retrySeconds(d time.Duration) int64 {
	s := (d + time.Second - 1) / time.Second
	if s < 1 {
		s = 1
	}
	return int64(s)
}

// rejecter writes the default response of Handler and Middleware: WriteRejection's,
// from bodies built once per bulkhead and kind.
type rejecter struct {
	bodies perbulkhead.Cache[*bodies]
}

// bodies are one bulkhead's problem bodies, and the last Retry-After of an open circuit.
type bodies struct {
	full, open, shutdown, timeout []byte
	openRetry                     atomic.Pointer[retryAfterValue]
}

// retryAfterValue is a rendered Retry-After: an open circuit's changes once a second, so
// the last one is nearly always the one wanted.
type retryAfterValue struct {
	seconds int64
	value   string
}

func newRejecter() *rejecter {
	r := &rejecter{}
	r.bodies.New = func(name string) *bodies {
		return &bodies{
			full:     kindFull.body(name),
			open:     kindOpen.body(name),
			shutdown: kindShutdown.body(name),
			timeout:  kindTimeout.body(name),
		}
	}
	return r
}

// write is WriteRejection, without building the body.
func (r *rejecter) write(w http.ResponseWriter, req *http.Request, err error) {
	ce, ok := errors.AsType[*core.Error](err)
	if !ok {
		WriteRejection(w, req, err)
		return
	}
	switch ce.Err {
	case core.ErrFull:
		writeProblem(w, r.bodies.Get(ce.Bulkhead).full, retryAfter(ce.RetryAfter))
	case core.ErrCircuitOpen:
		b := r.bodies.Get(ce.Bulkhead)
		writeProblem(w, b.open, b.retryAfter(ce.RetryAfter))
	case core.ErrShutdown:
		writeProblem(w, r.bodies.Get(ce.Bulkhead).shutdown, retryAfter(ce.RetryAfter))
	case core.ErrTimeout:
		writeProblem(w, r.bodies.Get(ce.Bulkhead).timeout, "")
	default:
		WriteRejection(w, req, err)
	}
}

// retryAfter is the package's retryAfter, keeping the last value rendered: past 99
// seconds, strconv allocates each one.
func (b *bodies) retryAfter(d time.Duration) string {
	s := retrySeconds(d)
	if v := b.openRetry.Load(); v != nil && v.seconds == s {
		return v.value
	}
	v := &retryAfterValue{s, strconv.FormatInt(s, 10)}
	b.openRetry.Store(v)
	return v.value
}
