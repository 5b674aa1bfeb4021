package grpcmw

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bulkman-go/bulkman/core"
)

// UnaryClientInterceptor returns an interceptor that runs each unary call under a permit
// of the bulkhead sel picks for the method (none: the call goes out unguarded; a nil sel
// guards nothing). The permit is held from before the invoker runs until it returns (also
// when it panics: a failure, and the panic goes on). When the bulkhead has a Timeout, the
// call's context has the permit's deadline unless the caller's is earlier, so the server
// learns it too.
//
// A call the bulkhead refuses is not sent; the caller gets a status error (see
// WithStatus) that also unwraps to the *core.Error, so both status.Code(err) and
// errors.Is(err, core.ErrFull) work. The invoker's errors are returned unchanged and
// classified for the circuit as WithFailureCodes describes.
//
// The call's priority and tenant (core.WithPriority, core.WithTenant) rank it in the
// bulkhead's queue and go to the server as metadata (PriorityKey, TenantKey), whether or
// not the method has a bulkhead; a call without them sends none.
//
// The interceptor is safe for concurrent use.
func UnaryClientInterceptor(sel Selector, opts ...Option) grpc.UnaryClientInterceptor {
	o := buildOptions(opts)
	if sel == nil {
		sel = Always(nil)
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		ctx = outbound(ctx)
		b := sel(ctx, method)
		if b == nil {
			return invoker(ctx, method, req, reply, cc, callOpts...)
		}
		p, err := b.Acquire(ctx)
		if err != nil {
			rej, _ := o.refuse(err)
			return rej
		}
		cctx := p.Context(ctx) // ends at the permit's deadline, or when it is released
		returned := false
		defer func() {
			if !returned { // the invoker panicked; the panic goes on after this
				_ = p.Release(core.Failure)
			}
		}()
		err = invoker(cctx, method, req, reply, cc, callOpts...)
		returned = true
		_ = p.Release(o.outcome(ctx, err))
		return err
	}
}

// StreamClientInterceptor returns an interceptor that holds a permit of the bulkhead sel
// picks for the method (none: the stream is unguarded; a nil sel guards nothing) for the
// whole life of each client stream: from before the stream is created until it is really
// over, which is the first of
//
//   - RecvMsg returning an error: io.EOF (success) or the RPC's status;
//   - RecvMsg returning the response of an RPC that is not server-streaming;
//   - SendMsg or Header returning an error other than io.EOF;
//   - the stream's context ending (the caller cancelled, or a deadline passed);
//   - gRPC finishing the call by itself, for example when the ClientConn closes.
//
// The permit is given back exactly once. As gRPC itself requires, a caller must do one of
// these things for every stream, or the permit (and gRPC's goroutine) is held until the
// context ends. When the bulkhead has a Timeout, the stream's context has the permit's
// deadline unless the caller's is earlier: the Timeout bounds the whole stream.
//
// A stream the bulkhead refuses is not opened; the caller gets the same error as from
// UnaryClientInterceptor. The stream's errors are returned unchanged. The priority and
// tenant go to the server as for UnaryClientInterceptor.
//
// The interceptor is safe for concurrent use; the streams it returns may be used as gRPC
// allows (one goroutine sending while another receives).
func StreamClientInterceptor(sel Selector, opts ...Option) grpc.StreamClientInterceptor {
	o := buildOptions(opts)
	if sel == nil {
		sel = Always(nil)
	}
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		ctx = outbound(ctx)
		b := sel(ctx, method)
		if b == nil {
			return streamer(ctx, desc, cc, method, callOpts...)
		}
		p, err := b.Acquire(ctx)
		if err != nil {
			rej, _ := o.refuse(err)
			return nil, rej
		}
		sctx := p.Context(ctx) // ends at the permit's deadline, or when it is released
		s := &clientStream{o: o, ctx: ctx, permit: p, serverStreams: desc.ServerStreams}
		// gRPC calls OnFinish when it ends the call, with the call's status, whatever ended
		// it: the only way to learn of a ClientConn closing under an idle stream. (Not
		// ClientStream.Context: calling it before Header or RecvMsg commits the attempt,
		// which turns gRPC's own retries off.) The full slice expression keeps the caller's
		// backing array untouched.
		callOpts = append(callOpts[:len(callOpts):len(callOpts)], grpc.OnFinish(s.finished))
		returned := false
		defer func() {
			if !returned { // the streamer panicked; the panic goes on after this
				s.end(core.Failure)
			}
		}()
		cs, err := streamer(sctx, desc, cc, method, callOpts...)
		returned = true
		if err != nil {
			s.end(o.outcome(ctx, err))
			return nil, err
		}
		s.ClientStream = cs
		// OnFinish covers a context that ends too, but only for gRPC's own streams: an
		// interceptor between this one and gRPC may drop the option.
		stop := context.AfterFunc(sctx, func() { s.end(o.outcome(ctx, sctx.Err())) })
		s.mu.Lock()
		ended := s.ended
		if !ended {
			s.stop = stop
		}
		s.mu.Unlock()
		if ended {
			stop()
		}
		return s, nil
	}
}

// clientStream holds a permit until the stream is over; see StreamClientInterceptor.
type clientStream struct {
	grpc.ClientStream
	o             *options
	ctx           context.Context // the caller's, for classifying the end
	permit        core.Permit
	serverStreams bool

	mu    sync.Mutex
	ended bool
	stop  func() bool // unregisters the context watch
}

var _ grpc.ClientStream = (*clientStream)(nil)

// end gives the permit back with outcome o, the first time it is called.
func (s *clientStream) end(o core.Outcome) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	_ = s.permit.Release(o) // which also ends the stream's context if it has the permit's deadline
}

// finished is the grpc.OnFinish callback.
func (s *clientStream) finished(err error) { s.end(s.o.outcome(s.ctx, err)) }

func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case errors.Is(err, io.EOF):
		s.end(core.Success)
	case err != nil:
		s.end(s.o.outcome(s.ctx, err))
	case !s.serverStreams:
		// The single response of a unary-response RPC: gRPC has read its status too.
		s.end(core.Success)
	}
	return err
}

func (s *clientStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	// io.EOF means the server ended the stream; its status comes from RecvMsg.
	if err != nil && !errors.Is(err, io.EOF) {
		s.end(s.o.outcome(s.ctx, err))
	}
	return err
}

func (s *clientStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil && !errors.Is(err, io.EOF) {
		s.end(s.o.outcome(s.ctx, err))
	}
	return md, err
}
