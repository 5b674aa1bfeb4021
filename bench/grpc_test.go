package bench

import (
	"context"
	"testing"

	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/failsafegrpc"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// The interceptor benchmarks call a grpc.UnaryServerInterceptor directly, as grpc-go's server
// does once it has decoded a request: no network, no codec, so the row is the interceptor's
// own cost around a handler that does nothing.

// unaryInfo is the fixed method every call claims to be.
var unaryInfo = &grpc.UnaryServerInfo{FullMethod: "/bench.Echo/Call"}

// unaryReply is the handler's response: a package-level pointer, so that returning it as
// any allocates nothing.
var unaryReply = &struct{ ok bool }{ok: true}

func noopUnaryHandler(context.Context, any) (any, error) { return unaryReply, nil }

// unaryCase is one row of BenchmarkGRPCUnary: build returns the interceptor under test.
type unaryCase struct {
	name  string
	build func(tb testing.TB) grpc.UnaryServerInterceptor
}

// unaryCases lists the rows, the pass-through baseline first. bulkman's rows come from
// bulkmanUnaryCases (bulkman_test.go).
func unaryCases() []unaryCase {
	cases := []unaryCase{
		{"bare", func(testing.TB) grpc.UnaryServerInterceptor { return passThroughInterceptor }},
		{"failsafe-bh", func(testing.TB) grpc.UnaryServerInterceptor {
			return failsafegrpc.NewUnaryServerInterceptor[any](bulkhead.New[any](capacity))
		}},
		{"failsafe-timeout+cb+bh", func(testing.TB) grpc.UnaryServerInterceptor {
			return failsafegrpc.NewUnaryServerInterceptor[any](
				timeout.New[any](callTimeout),
				newFailsafeBreaker[any](),
				bulkhead.New[any](capacity),
			)
		}},
	}
	return append(cases, bulkmanUnaryCases()...)
}

// passThroughInterceptor is the baseline: an interceptor that only calls the handler.
func passThroughInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(ctx, req)
}

// unaryCall adapts an interceptor to the peers' call shape. ctx stands for the request
// context grpc-go hands a server interceptor, which is always cancellable: with
// context.Background instead, failsafegrpc's context merge short-circuits and the row would
// flatter it.
func unaryCall(tb testing.TB, i grpc.UnaryServerInterceptor) call {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return func() (uint64, error) {
		resp, err := i(ctx, nil, unaryInfo, noopUnaryHandler)
		if err != nil {
			return 0, err
		}
		if resp != any(unaryReply) {
			return 0, errUnexpectedReply
		}
		return 1, nil
	}
}

// BenchmarkGRPCUnary runs each interceptor around the no-op handler, alone and under
// b.RunParallel. Names read GRPCUnary/<interceptor>/<serial|parallel>.
func BenchmarkGRPCUnary(b *testing.B) {
	for _, uc := range unaryCases() {
		b.Run(uc.name, func(b *testing.B) {
			b.Run("serial", func(b *testing.B) {
				runSerial(b, unaryCall(b, uc.build(b)))
			})
			b.Run("parallel", func(b *testing.B) {
				runParallel(b, unaryCall(b, uc.build(b)))
			})
		})
	}
}

func TestUnaryInterceptorsReturnReply(t *testing.T) {
	for _, uc := range unaryCases() {
		t.Run(uc.name, func(t *testing.T) {
			i := uc.build(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range 3 {
				resp, err := i(ctx, "req", unaryInfo, func(_ context.Context, req any) (any, error) {
					return req, nil
				})
				require.NoError(t, err)
				assert.Equal(t, "req", resp)
			}
			got, err := unaryCall(t, i)()
			require.NoError(t, err)
			assert.Equal(t, uint64(1), got)
		})
	}
}
