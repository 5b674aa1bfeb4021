package httpmw

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bulkman-go/bulkman/core"
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
//	{"type": "urn:bulkman:full", "title": "Bulkhead full", "status": 503,
//	 "detail": "bulkhead \"api\" is at capacity (12/12)", "bulkhead": "api"}
//
// The type is one of ProblemFull, ProblemCircuitOpen, ProblemTimeout and
// ProblemShutdown, or "about:blank" for any other err (such as the request context's
// error). For core.ErrFull, core.ErrCircuitOpen and core.ErrShutdown it also sets
// Retry-After, in whole seconds rounded up and at least 1, from core.Error.RetryAfter (1
// when that is 0). core.ErrTimeout gets no Retry-After, like http.TimeoutHandler.
//
// It is safe for concurrent use; call it from a handler given to WithRejectionHandler to
// keep the default and add headers first.
func WriteRejection(w http.ResponseWriter, _ *http.Request, err error) {
	p := problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable), Status: http.StatusServiceUnavailable}
	if err != nil {
		p.Detail = err.Error()
	}
	retry := false
	var ce *core.Error
	if errors.As(err, &ce) {
		p.Bulkhead = ce.Bulkhead
		switch {
		case errors.Is(ce.Err, core.ErrFull):
			p.Type, p.Title, retry = ProblemFull, "Bulkhead full", true
		case errors.Is(ce.Err, core.ErrCircuitOpen):
			p.Type, p.Title, retry = ProblemCircuitOpen, "Circuit open", true
		case errors.Is(ce.Err, core.ErrShutdown):
			p.Type, p.Title, retry = ProblemShutdown, "Bulkhead shut down", true
		case errors.Is(ce.Err, core.ErrTimeout):
			p.Type, p.Title = ProblemTimeout, "Bulkhead timeout"
		}
	} else if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		p.Detail = "the request ended while it waited for a permit: " + p.Detail
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if retry {
		h.Set("Retry-After", retryAfter(ce.RetryAfter))
	}
	body, _ := json.Marshal(p) // cannot fail: strings and an int
	body = append(body, '\n')
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// retryAfter renders d as a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(int64(s), 10)
}
