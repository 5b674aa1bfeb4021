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

// classifier returns the options a guard keeps for classify, or nil when there is nothing
// to classify by, so that the guard's hot path tests one pointer.
func (o options) classifier() *options {
	if !o.classifies() {
		return nil
	}
	return &o
}
