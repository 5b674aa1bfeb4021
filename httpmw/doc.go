// Package httpmw guards net/http servers and clients with bulkheads from package core:
// server middleware that limits how many requests run a handler at once, and a client
// transport that limits how many exchanges with a dependency are open at once.
//
// # Server
//
// Handler wraps one handler in one bulkhead, in the shape of http.TimeoutHandler:
//
//	mux.Handle("POST /reports", httpmw.Handler(runReport, reports))
//
// Middleware takes a Selector that picks the bulkhead per request, and returns the
// func(http.Handler) http.Handler that chi, alice and most routers chain. ByPattern
// builds a Selector from http.ServeMux patterns, so one table guards a whole mux:
//
//	sel, err := httpmw.ByPattern(map[string]*core.Bulkhead{
//		"POST /reports":    reports,
//		"GET /orders/{id}": orders,
//	})
//	if err != nil { ... } // a bad or conflicting pattern
//	srv := &http.Server{Handler: httpmw.Middleware(sel)(mux)}
//
// or single routes, after routing (r.Pattern is then set):
//
//	mux.Handle("GET /orders/{id}", httpmw.Middleware(sel)(getOrder))
//	r.With(httpmw.Middleware(sel)).Get("/orders/{id}", getOrder) // chi
//
// Put the bulkhead inside recovery, logging and authentication middleware: rejections
// are then logged, unauthenticated floods take no permits, and a permit measures handler
// work only.
//
// # Rejections
//
// A request the bulkhead refuses is answered 503 Service Unavailable with an
// application/problem+json body naming the bulkhead, and Retry-After when the refusal
// is full, open circuit or shut down (see WriteRejection). WithRejectionHandler writes
// something else. 503, not 429: the server is overloaded, the client did nothing wrong
// (RFC 9110 §15.6.4).
//
// # Timeouts
//
// With a bulkhead Timeout, the handler's context carries the deadline (queue wait
// included). A handler that has not started its response by then is answered with the
// timeout response at once and its later writes are discarded, as with
// http.TimeoutHandler; it keeps its permit until it really returns. A handler that has
// started streaming keeps the response, and only its context is cancelled. Without a
// Timeout the handler runs on the server's goroutine, at the cost of one small
// allocation per request.
//
// # Outcomes
//
// The circuit breaker counts a status of 500 or more, a panic, a passed deadline and a
// broken client exchange as failures, and 4xx as successes (the dependency answered). A
// handler that returns after the bulkhead's deadline is timed out whatever its status (see
// core.Permit.Release). A request whose client went away counts for neither, so it cannot
// open the circuit or spend a half-open probe.
//
// # Client
//
// Transport wraps an http.RoundTripper. The permit is held until the response body is
// closed or read to its end, so a bulkhead of 4 really means 4 open exchanges.
//
//	client := &http.Client{Transport: httpmw.Transport(nil, func(r *http.Request) *core.Bulkhead {
//		return byHost[r.URL.Host] // nil: unguarded
//	})}
//
// Put retries outside the transport, so that every attempt takes its own permit and no
// permit is held while backing off.
//
// # ResponseWriter features
//
// The ResponseWriter a guarded handler gets supports http.Flusher, http.Hijacker,
// io.StringWriter, io.ReaderFrom (sendfile) and http.ResponseController (Unwrap,
// deadlines, full duplex). It is not pooled: a handler that keeps its ResponseWriter
// after returning (which the Handler contract forbids) must not reach another request.
package httpmw
