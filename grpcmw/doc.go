// Package grpcmw guards gRPC servers and clients with bulkheads from package core: four
// interceptors, named as go-grpc-middleware v2 names them, that take a permit for each
// RPC, refuse it with a proper gRPC status when the bulkhead is full, timed out, shut down
// or isolated by its circuit breaker, and report how each RPC ended to the circuit.
//
//	sel := grpcmw.ByMethod(map[string]*core.Bulkhead{
//		"/shop.v1.Reports/*":     reports, // every method of the service
//		"/shop.v1.Orders/Create": orders,  // one method
//	})
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(sel)),
//		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(sel)),
//	)
//
// # Choosing the bulkhead
//
// A Selector maps an RPC's full method name to the bulkhead that guards it, or to nil for
// none. ByMethod covers the usual table (exact method, whole service, everything else),
// Always guards every RPC with one bulkhead, and any function of the context and method
// will do (a tenant read from metadata, say). Bulkheads are resolved when the Selector is
// built, never looked up by name per call.
//
// # Permits
//
// A server RPC holds its permit from before its handler runs until the handler returns,
// for unary and streaming RPCs alike, also when the handler panics. The interceptor never
// returns while its handler runs: when the bulkhead has a Timeout, the handler gets a
// context with the permit's deadline and is expected to honour it, but a handler that does
// not keeps its permit until it returns, so the bulkhead's limit always holds.
//
// A client unary call holds its permit while the invoker runs. A client stream holds it
// from before the stream is created until the stream is over (see
// StreamClientInterceptor), released exactly once.
//
// # Refusals
//
// An RPC the bulkhead refuses gets a status error, by default:
//
//	core.ErrFull        codes.ResourceExhausted
//	core.ErrCircuitOpen codes.Unavailable
//	core.ErrTimeout     codes.DeadlineExceeded  (it waited in the queue past the Timeout)
//	core.ErrShutdown    codes.Unavailable
//
// with the *core.Error's message, which names the bulkhead. The error also unwraps to the
// *core.Error, so in the same process (a client's own refusals, or server interceptors
// outside this one) errors.Is(err, core.ErrFull) and errors.As work as well as
// status.Code. WithStatus replaces the mapping. When the refusal carries a RetryAfter (an
// open circuit's remaining isolation), a server also sends the standard
// grpc-retry-pushback-ms trailer, which gRPC's built-in retry honours. A caller whose own
// context ended while it waited in the queue gets the code of its context's error
// (Canceled or DeadlineExceeded), as gRPC would report it.
//
// Errors from handlers, invokers and streams are returned unchanged, never re-wrapped.
//
// # The circuit
//
// An admitted RPC ends as a success, a failure or neutral for the bulkhead's statistics
// and circuit breaker. By default the codes Unknown, DeadlineExceeded, Internal,
// Unavailable and DataLoss are failures: the dependency broke or was too slow. Other
// codes (InvalidArgument, NotFound, PermissionDenied, ...) are answers, so a flood of bad
// requests cannot open the circuit. An RPC the caller cancelled is neutral: it says
// nothing about the dependency, so it never moves the circuit (and a half-open circuit
// gets its probe permit back), though the statistics count it among the failed
// executions, since it did not succeed. A panic is a failure.
//
// WithFailureCodes is the one knob: it changes which codes are failures. The neutral and
// panic rules stay, because they keep the circuit honest whatever the codes: a caller
// going away must not judge the dependency, and a panic must not pass for an answer.
//
// On a server, a handler that returns after the bulkhead's Timeout has passed is timed
// out whatever it returned, an OK included (see core.Permit.Release). A client reports a
// passed deadline by its code (DeadlineExceeded: a failure by default).
//
// # Ordering with other interceptors
//
// gRPC runs chained interceptors in the order given, the first outermost
// (grpc.ChainUnaryInterceptor, grpc.ChainStreamInterceptor). Take go-grpc-middleware's
// recommended server chain (metrics, logging, authentication through its selector,
// recovery) and append the bulkhead, innermost:
//
//	grpc.ChainUnaryInterceptor(
//		logging.UnaryServerInterceptor(logger), // outermost
//		selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(authFn), selector.MatchFunc(notHealth)),
//		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandler(toInternal)),
//		grpcmw.UnaryServerInterceptor(sel), // innermost
//	)
//
// and the same with the Stream constructors in grpc.ChainStreamInterceptor. Why:
//
//   - Recovery outside: a panic unwinds through the bulkhead first, whose deferred release
//     gives the permit back and counts the panic as a failure; then recovery turns it into
//     a status (Internal, with the handler above), which the interceptors further out see
//     as an ordinary error. Inside the bulkhead, recovery would hide the panic, and the
//     bulkhead would see only whatever error recovery makes of it.
//   - Logging and metrics outside: refused RPCs are logged and counted with their codes
//     (ResourceExhausted, Unavailable), and the logged duration includes the time spent
//     queueing for a permit. Inside, a refused RPC would never be logged at all. (Outside
//     recovery too, as here, they also log the Internal of a recovered panic.)
//   - Authentication outside: callers that are turned away anyway never occupy a permit
//     or a queue place, so they cannot starve the callers the bulkhead is for.
//   - The bulkhead innermost: a permit is held for the handler's work only, not for the
//     work of other interceptors.
//
// On a client, put a retry interceptor (go-grpc-middleware's retry) outside the bulkhead:
//
//	grpc.WithChainUnaryInterceptor(
//		retry.UnaryClientInterceptor(retry.WithMax(3)),
//		grpcmw.UnaryClientInterceptor(sel),
//	)
//
// Each attempt then takes its own permit, no permit is held while retry waits between
// attempts, and each attempt's outcome reaches the circuit, which can open in the middle
// of a retry loop and stop it. With the order reversed, one permit would be held across
// every attempt and backoff, and the circuit would see only the last attempt. Note that
// retry's default codes, ResourceExhausted and Unavailable, are exactly the codes of this
// package's refusals, the client's own and a server's: with them, retry sends attempts
// straight back into a full bulkhead or an open circuit, so choose its codes and backoff
// knowing that (retry.WithCodes, retry.WithBackoff). gRPC's own retry policy (service
// config) runs below every interceptor, so all its attempts share one permit; it honours
// the pushback trailer a server sends.
//
// To guard only some RPCs with an interceptor configured apart, go-grpc-middleware's
// selector works with these interceptors as with any other, for example
// selector.StreamServerInterceptor(grpcmw.StreamServerInterceptor(grpcmw.Always(b)), m).
//
// A bulkhead cannot guard gRPC's tap handle (grpc.InTapHandle): it has no hook for the end
// of the RPC, so it could not hold a permit for the RPC's lifetime.
package grpcmw
