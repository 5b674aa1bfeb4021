package httpmw

import (
	"net/http"

	"github.com/bulkman-go/bulkman/core"
)

// Option configures Handler, Middleware or Transport. Options are applied once, when the
// handler or transport is built.
type Option func(*options)

type options struct {
	reject       func(w http.ResponseWriter, r *http.Request, err error)
	failure      func(status int) bool                         // WithFailureStatus; nil: status >= 500
	prompt       bool                                          // WithPromptTimeout
	trustHeaders bool                                          // WithTrustedHeaders
	priorityFunc func(r *http.Request) (core.Priority, string) // WithPriorityFunc
}

// classifies reports whether requests get a priority or tenant from the options.
func (o *options) classifies() bool { return o.trustHeaders || o.priorityFunc != nil }

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.reject == nil {
		o.reject = newRejecter().write
	}
	return o
}

// WithRejectionHandler replaces the response Handler and Middleware write when a request
// is not served: h gets the request and why. err is a *core.Error wrapping core.ErrFull,
// core.ErrCircuitOpen, core.ErrShutdown or core.ErrTimeout (the request waited in the
// queue too long, or the handler had not started its response by the deadline), or the
// request context's error if the client gave up while queued.
//
// h must be safe for concurrent use. It may call WriteRejection to keep the default
// response and add to it. A nil h keeps the default. Transport ignores this option: a
// client gets the error from RoundTrip.
func WithRejectionHandler(h func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(o *options) {
		if h != nil {
			o.reject = h
		}
	}
}

// WithFailureStatus sets which response statuses count against the bulkhead's circuit,
// replacing the default, a status of 500 or more. f gets the status the handler sent (200
// when it wrote nothing), or for Transport the status of the response from the server; it
// must be safe for concurrent use and should be quick, since it runs on every response. A
// nil f keeps the default.
//
// A status f does not report is a success (the dependency answered), except:
//
//   - a request whose client went away (Handler, Middleware) or whose caller's context
//     ended (Transport) is neutral: it says nothing about the dependency, so it never moves
//     the circuit, and a half-open circuit gets its probe permit back;
//   - a panic in the handler, and an exchange that breaks on the client (base.RoundTrip or
//     a body read fails), are failures;
//   - a handler that returns after the bulkhead's Timeout has passed is timed out (a
//     failure) whatever its status (see core.Permit.Release).
//
// It is the counterpart of grpcmw.WithFailureCodes. For example, to let a 501 Not
// Implemented pass and count 429 Too Many Requests from a dependency as a failure:
//
//	httpmw.WithFailureStatus(func(status int) bool {
//		return status == http.StatusTooManyRequests || status >= 500 && status != http.StatusNotImplemented
//	})
func WithFailureStatus(f func(status int) bool) Option {
	return func(o *options) {
		if f != nil {
			o.failure = f
		}
	}
}

// WithPromptTimeout makes Handler and Middleware answer at the bulkhead's deadline even
// when the handler ignores its context: the handler runs on a goroutine of its own, as
// with http.TimeoutHandler, and a handler that has not started its response when the
// deadline passes is answered with the timeout response (see WithRejectionHandler) there
// and then; its later writes are discarded (they return http.ErrHandlerTimeout). It keeps
// running, and keeps its permit, until it returns. Once the response has started, the
// deadline only cancels the context.
//
// Without it (the default), the handler runs on the server's goroutine, with the deadline
// in its request context; a response it has not started by the deadline belongs to the
// timeout (later writes return http.ErrHandlerTimeout), and the timeout response is
// written when the handler returns. That is several times cheaper, and right for handlers
// that honour their context (database and RPC clients do). Use WithPromptTimeout for
// handlers that may block without looking at their context (a library that takes no
// context, a lock, a blocking read), where a client must hear back at the deadline. It
// changes nothing for a bulkhead without a Timeout, and Transport ignores it.
func WithPromptTimeout() Option {
	return func(o *options) { o.prompt = true }
}

// failed reports whether status counts against the circuit.
func failed(f func(int) bool, status int) bool {
	if status == 0 {
		status = http.StatusOK // nothing written: net/http sends 200
	}
	if f == nil {
		return status >= 500
	}
	return f(status)
}

// classifier returns the options a guard keeps for classify, or nil when there is nothing
// to classify by, so that the guard's hot path tests one pointer.
func (o options) classifier() *options {
	if !o.classifies() {
		return nil
	}
	return &o
}
