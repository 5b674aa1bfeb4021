// Package grpcmw guards gRPC servers and clients with bulkheads from package core: four
// interceptors, named as go-grpc-middleware v2 names them, that take a permit for each
// RPC, refuse it with a gRPC status when the bulkhead cannot admit it, and report how each
// RPC ended to the bulkhead's circuit.
//
//	sel := grpcmw.ByMethod(map[string]*core.Bulkhead{
//		"/shop.v1.Reports/*":     reports, // every method of the service
//		"/shop.v1.Orders/Create": orders,  // one method
//	})
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(sel)),
//		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(sel)),
//	)
//	conn, err := grpc.NewClient(target,
//		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.Always(backend))))
//
// A Selector picks an RPC's bulkhead from its full method name (nil: unguarded): ByMethod
// for a table, Always for one bulkhead, or any function of the context and method.
//
// Put the bulkhead innermost on a server, inside recovery, logging and authentication, and
// outside retries on a client, so that each attempt takes its own permit.
//
// A server RPC holds its permit until its handler returns, a client stream until it is
// over. With a bulkhead Timeout the handler's context carries the permit's deadline; a
// handler that returns after it is timed out whatever it returned (see
// core.Permit.Release).
//
// Refusals are status errors that also unwrap to the *core.Error: ErrFull is
// ResourceExhausted, ErrCircuitOpen and ErrShutdown are Unavailable, ErrTimeout (it waited
// in the queue too long) is DeadlineExceeded; WithStatus changes the mapping. Each carries
// an errdetails.ErrorInfo (ErrorDomain, a Reason per kind, the bulkhead's name) and, with a
// RetryAfter, an errdetails.RetryInfo; its message is the same for every refusal of a kind.
// A server refusing with a RetryAfter also sends the grpc-retry-pushback-ms trailer.
//
// Priorities and tenants order a bulkhead's queue (see core.WithPriority). The client
// interceptors send the context's as metadata (PriorityKey, TenantKey); a server takes
// them from its callers only with WithTrustedMetadata, and WithPriorityFunc derives them
// from the RPC itself (its authenticated peer, an API key in its metadata, its method).
//
// For the circuit, the codes Unknown, DeadlineExceeded, Internal, Unavailable and DataLoss
// and a panic are failures, other codes are answers, and an RPC its caller cancelled is
// neutral; WithFailureCodes changes the codes.
//
// The user guide (docs/user-guide.md, "gRPC interceptors") explains each of these rules and
// the order of interceptors.
package grpcmw
