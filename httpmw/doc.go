// Package httpmw guards net/http servers and clients with bulkheads from package core:
// server middleware that limits how many requests run a handler at once, and a client
// transport that limits how many exchanges with a dependency are open at once.
//
// Handler wraps one handler in one bulkhead, in the shape of http.TimeoutHandler.
// Middleware takes a Selector that picks the bulkhead per request and returns the
// func(http.Handler) http.Handler that chi, alice and most routers chain; ByPattern builds
// a Selector from http.ServeMux patterns, so one table guards a whole mux or single routes:
//
//	mux.Handle("POST /reports", httpmw.Handler(runReport, reports))
//
//	sel, err := httpmw.ByPattern(map[string]*core.Bulkhead{
//		"POST /reports":    reports,
//		"GET /orders/{id}": orders,
//	})
//	if err != nil { ... } // a bad or conflicting pattern
//	srv := &http.Server{Handler: httpmw.Middleware(sel)(mux)}
//
//	client := &http.Client{Transport: httpmw.Transport(nil, func(r *http.Request) *core.Bulkhead {
//		return byHost[r.URL.Host] // nil: unguarded
//	})}
//
// Put the middleware inside recovery, logging and authentication, and retries outside the
// transport. The transport holds a permit until the response body is closed or read to its
// end: close every body.
//
// A refused request is answered 503 Service Unavailable with an application/problem+json
// body naming the bulkhead, and Retry-After when it is worth retrying (WriteRejection);
// WithRejectionHandler writes something else.
//
// With a bulkhead Timeout, the handler's context carries the deadline (queue wait
// included); a handler that has not started its response by then gets the timeout
// response when it returns, or at the deadline itself with WithPromptTimeout (as with
// http.TimeoutHandler). For the circuit, a status of 500 or more (WithFailureStatus), a
// panic and a passed deadline are failures, a 4xx an answer, and a request whose client
// went away neither; a handler that returns after the deadline is timed out whatever its
// status (see core.Permit.Release).
//
// The user guide (docs/user-guide.md, "HTTP middleware and transport") explains each rule.
package httpmw
