package grpcmw

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/cputime"
)

// transportStream stands in for gRPC's server stream in a handler's context, so that a
// refusal with a pushback sets its trailer as on a real server. It keeps the last trailer
// and nothing else: gRPC's own merging of trailers is not the interceptor's cost.
type transportStream struct{ trailer metadata.MD }

func (*transportStream) Method() string                    { return "/grpc.testing.TestService/EmptyCall" }
func (*transportStream) SetHeader(metadata.MD) error       { return nil }
func (*transportStream) SendHeader(metadata.MD) error      { return nil }
func (s *transportStream) SetTrailer(md metadata.MD) error { s.trailer = md; return nil }

// fullBulkhead returns a bulkhead whose only permit is held until b ends: every call is
// refused with core.ErrFull.
func fullBulkhead(tb testing.TB) *core.Bulkhead {
	tb.Helper()
	cfg := core.DefaultConfig("bench")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	bh, err := core.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := bh.Acquire(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Release(core.Success) })
	return bh
}

// openBulkhead returns a bulkhead whose circuit is open for an hour: every call is refused
// with core.ErrCircuitOpen and a RetryAfter.
func openBulkhead(tb testing.TB) *core.Bulkhead {
	tb.Helper()
	cfg := core.DefaultConfig("bench")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 1
	cfg.IsolationDuration = time.Hour
	bh, err := core.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := bh.Acquire(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	_ = p.Release(core.Failure)
	if bh.State() != core.Isolated {
		tb.Fatal("the circuit did not open")
	}
	return bh
}

// BenchmarkRefusal measures a refused unary RPC through the server and client
// interceptors called directly, against a handler that returns a status error it made
// beforehand (impl=status-error: the floor of any refusal). The server's context holds a
// stand-in for gRPC's stream, so that a circuit-open refusal sets its pushback trailer as
// on a real server.
func BenchmarkRefusal(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}
	prebuilt := status.Error(codes.ResourceExhausted, `bulkhead "bench" is at capacity`)
	for _, bc := range []struct {
		name string
		call func(b *testing.B) func(ctx context.Context) error
	}{
		{"kind=full/impl=status-error", func(*testing.B) func(context.Context) error {
			return func(context.Context) error { return prebuilt }
		}},
		{"kind=full/impl=grpcmw-server", func(b *testing.B) func(context.Context) error {
			i := UnaryServerInterceptor(Always(fullBulkhead(b)))
			return func(ctx context.Context) error { _, err := i(ctx, nil, info, noopUnary); return err }
		}},
		{"kind=full/impl=grpcmw-client", func(b *testing.B) func(context.Context) error {
			i := UnaryClientInterceptor(Always(fullBulkhead(b)))
			return func(ctx context.Context) error { return i(ctx, info.FullMethod, nil, nil, nil, noopInvoker) }
		}},
		{"kind=circuit-open/impl=grpcmw-server", func(b *testing.B) func(context.Context) error {
			i := UnaryServerInterceptor(Always(openBulkhead(b)))
			return func(ctx context.Context) error { _, err := i(ctx, nil, info, noopUnary); return err }
		}},
		{"kind=circuit-open/impl=grpcmw-client", func(b *testing.B) func(context.Context) error {
			i := UnaryClientInterceptor(Always(openBulkhead(b)))
			return func(ctx context.Context) error { return i(ctx, info.FullMethod, nil, nil, nil, noopInvoker) }
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			call := bc.call(b)
			ctx := grpc.NewContextWithServerTransportStream(b.Context(), &transportStream{})
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if err := call(ctx); status.Code(err) == codes.OK {
					b.Fatal("not refused")
				}
			}
		})
	}
}

// reportCPU, deferred with an extra (), reports the process's CPU time per operation as
// cpu-ns/op: on a shared machine, far steadier than wall time, which counts the moments
// another tenant has the CPU.
func reportCPU(b *testing.B) func() {
	start, ok := cputime.Process()
	return func() {
		if end, ok2 := cputime.Process(); ok && ok2 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

//go:noinline
func noopInvoker(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
	return nil
}
