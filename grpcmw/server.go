package grpcmw

import (
	"context"

	"google.golang.org/grpc"

	"github.com/bulkman-go/bulkman/core"
)

// UnaryServerInterceptor returns an interceptor that runs each unary handler under a
// permit of the bulkhead sel picks for the RPC (none: the handler runs unguarded; a nil sel
// guards nothing).
//
// The permit is taken before the handler runs and given back when it returns, also when
// it panics; the panic counts as a failure and goes on up the chain (put a recovery
// interceptor outside this one). The interceptor never returns while the handler runs.
// When the bulkhead has a Timeout, the handler's context has the permit's deadline
// (admission plus Timeout) unless the caller's deadline is earlier; a handler that ignores
// it still keeps its permit until it returns.
//
// An RPC the bulkhead refuses gets a status error (see WithStatus for the mapping) that
// still unwraps to a copy of the *core.Error, and the handler is not called. The status's
// message names the bulkhead and the kind only, the same text for every refusal of the
// kind, and its details are an errdetails.ErrorInfo (Domain ErrorDomain, Reason one of
// ReasonFull, ReasonCircuitOpen, ReasonTimeout and ReasonShutdown, Metadata["bulkhead"] the
// bulkhead's name) and, when the refusal has a RetryAfter (an open circuit's remaining
// isolation), an errdetails.RetryInfo with it; the grpc-retry-pushback-ms trailer then
// carries it too, in milliseconds. A full bulkhead gives no retry hint (the user guide says
// why). The handler's own errors are returned unchanged, and classified for the circuit as
// WithFailureCodes describes; one that returns after the permit's deadline is timed out
// whatever it returned (see core.Permit.Release).
//
// With WithTrustedMetadata, the RPC's priority and tenant come from its metadata (see
// PriorityKey), and with WithPriorityFunc from the function, which has the last word;
// otherwise the bulkhead sees the context's, normally none.
//
// The interceptor is safe for concurrent use.
func UnaryServerInterceptor(sel Selector, opts ...Option) grpc.UnaryServerInterceptor {
	o := buildOptions(opts)
	if sel == nil {
		sel = Always(nil)
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = o.inbound(ctx, info.FullMethod)
		b := sel(ctx, info.FullMethod)
		if b == nil {
			return handler(ctx, req)
		}
		p, err := b.Acquire(ctx)
		if err != nil {
			rej, ms := o.refuse(err)
			if ms != "" {
				setPushback(ctx, ms)
			}
			return nil, rej
		}
		hctx := p.Context(ctx) // ends at the permit's deadline, or when it is released
		returned := false
		defer func() {
			if !returned { // the handler panicked; the panic goes on after this
				_ = p.Release(core.Failure)
			}
		}()
		resp, err := handler(hctx, req)
		returned = true
		_ = p.Release(o.outcome(ctx, err))
		return resp, err
	}
}

// StreamServerInterceptor returns an interceptor that runs each streaming handler under a
// permit of the bulkhead sel picks for the RPC (none: the handler runs unguarded; a nil sel
// guards nothing). The permit covers the whole stream: it is taken before the handler runs
// and given back when the handler returns (the stream is then over), also on a panic.
// Everything else is as for UnaryServerInterceptor; the handler sees the permit's deadline
// through its stream's Context.
//
// The interceptor is safe for concurrent use.
func StreamServerInterceptor(sel Selector, opts ...Option) grpc.StreamServerInterceptor {
	o := buildOptions(opts)
	if sel == nil {
		sel = Always(nil)
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := o.inbound(ss.Context(), info.FullMethod)
		if ctx != ss.Context() {
			ss = &serverStream{ServerStream: ss, ctx: ctx}
		}
		b := sel(ctx, info.FullMethod)
		if b == nil {
			return handler(srv, ss)
		}
		p, err := b.Acquire(ctx)
		if err != nil {
			rej, ms := o.refuse(err)
			if ms != "" {
				ss.SetTrailer(pushback(ms))
			}
			return rej
		}
		hctx := p.Context(ctx) // ends at the permit's deadline, or when it is released
		if hctx != ctx {
			if s, ok := ss.(*serverStream); ok {
				s.ctx = hctx
			} else {
				ss = &serverStream{ServerStream: ss, ctx: hctx}
			}
		}
		returned := false
		defer func() {
			if !returned { // the handler panicked; the panic goes on after this
				_ = p.Release(core.Failure)
			}
		}()
		err = handler(srv, ss)
		returned = true
		_ = p.Release(o.outcome(ctx, err))
		return err
	}
}

// serverStream gives a streaming handler the permit's context.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

var _ grpc.ServerStream = (*serverStream)(nil)

func (s *serverStream) Context() context.Context { return s.ctx }
