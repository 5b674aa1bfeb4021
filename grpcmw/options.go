package grpcmw

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

// Option configures an interceptor: WithStatus (what a refused caller gets),
// WithFailureCodes (what counts against the circuit), WithTrustedMetadata (whether a
// server takes priorities and tenants from its callers) and WithPriorityFunc (how a server
// derives them from the RPC). Options are applied once, when the
// interceptor is built, so they cost nothing per call; later options override earlier ones,
// and a nil Option is ignored. The same options may be given to the server and the client
// constructors, and an Option may be reused.
type Option func(*options)

type options struct {
	// status maps a bulkhead's refusal to the status returned; nil means the default.
	status func(err error) *status.Status
	// statuses are the default statuses of the refusals seen so far.
	statuses *statusCache
	// failures has bit c set when code c counts against the circuit.
	failures uint32
	// trustMetadata: servers read the priority and tenant from incoming metadata.
	trustMetadata bool
	// priorityFunc, when set, gives servers each RPC's priority and tenant.
	priorityFunc func(ctx context.Context, fullMethod string) (core.Priority, string)
}

// defaultFailureCodes are the codes that say the dependency itself is failing or too slow,
// as opposed to the caller having asked for something wrong (InvalidArgument, NotFound,
// PermissionDenied, ...) or having gone away (Canceled).
var defaultFailureCodes = []codes.Code{codes.Unknown, codes.DeadlineExceeded, codes.Internal, codes.Unavailable, codes.DataLoss}

func buildOptions(opts []Option) *options {
	o := &options{failures: codeSet(defaultFailureCodes), statuses: newStatusCache()}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// WithStatus replaces the status returned when a bulkhead refuses an RPC. f gets the
// refusal, a *core.Error wrapping core.ErrFull, core.ErrCircuitOpen, core.ErrTimeout or
// core.ErrShutdown (test it with errors.Is, inspect it with errors.As), and returns the
// status for the caller. If f returns nil or an OK status, the default mapping applies:
//
//	core.ErrFull        codes.ResourceExhausted
//	core.ErrCircuitOpen codes.Unavailable
//	core.ErrTimeout     codes.DeadlineExceeded
//	core.ErrShutdown    codes.Unavailable
//
// with the details UnaryServerInterceptor describes. A status f returns is sent as it is
// (add details with status.Status.WithDetails). Whatever f returns, the error the
// interceptor returns still unwraps to the refusal (errors.Is(err, core.ErrFull) holds in
// process), and a server still sends the grpc-retry-pushback-ms trailer when the refusal
// has a RetryAfter. f gets a copy of the refusal of its own, which it may keep or change. A caller whose context ended while it waited for a permit always gets
// status.FromContextError of its context's error; f is not called for it.
//
// f is called on the RPC's goroutine and must be safe for concurrent use. A nil f keeps
// the default.
func WithStatus(f func(err error) *status.Status) Option {
	return func(o *options) {
		if f != nil {
			o.status = f
		}
	}
}

// WithFailureCodes sets the status codes that count against the bulkhead's circuit when a
// handler (server) or an invoker or stream (client) ends with them, replacing the default
// Unknown, DeadlineExceeded, Internal, Unavailable and DataLoss. Each call replaces the
// previous set; WithFailureCodes() with no codes leaves only panics counting as failures.
//
// The code of an error is its gRPC status (status.Code); a bare context error counts as
// Canceled or DeadlineExceeded, as gRPC sends it; any other error is Unknown. An RPC that
// ends with a code not in the set counts as a success (the dependency answered), except:
//
//   - an RPC whose caller cancelled it (its context ended with context.Canceled), and an
//     RPC ending with Canceled not in the set, are neutral: they say nothing about the
//     dependency, and a half-open circuit's probe permit comes back unused;
//   - a panic always counts as a failure;
//   - on a server, a handler that returns after the bulkhead's Timeout has passed counts as
//     timed out (core.TimedOut, a failure), whatever its code, unless its caller went away
//     first (see core.Permit.Release).
//
// The codes gRPC defines (OK to Unauthenticated) can be listed; OK and any other code are
// ignored.
func WithFailureCodes(cs ...codes.Code) Option {
	return func(o *options) { o.failures = codeSet(cs) }
}

func codeSet(cs []codes.Code) uint32 {
	var set uint32
	for _, c := range cs {
		if c > codes.OK && c <= codes.Unauthenticated {
			set |= 1 << c
		}
	}
	return set
}

// outcome classifies how an admitted RPC ended, for the statistics and the circuit. ctx is
// the caller's context as the interceptor received it.
func (o *options) outcome(ctx context.Context, err error) core.Outcome {
	if err == nil {
		return core.Success
	}
	if ctx.Err() == context.Canceled {
		// The caller went away; whatever followed is no verdict on the dependency.
		return core.Neutral
	}
	c := codeOf(err)
	switch {
	case c <= codes.Unauthenticated && o.failures&(1<<c) != 0:
		return core.Failure
	case c == codes.Canceled:
		return core.Neutral
	}
	return core.Success
}

// statusError is an error that carries a gRPC status, as status.FromError looks for.
type statusError interface {
	error
	GRPCStatus() *status.Status
}

// codeOf returns the code gRPC sends for err: its status if it has one anywhere in its
// chain, the matching code for a bare context error, Unknown otherwise. Unlike
// status.Code, it allocates nothing for errors without a status.
func codeOf(err error) codes.Code {
	if se, ok := errors.AsType[statusError](err); ok {
		if st := se.GRPCStatus(); st != nil {
			return st.Code()
		}
		return codes.Unknown
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}
