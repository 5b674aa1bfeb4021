package bench

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
)

// bulkman's own rows, configured like the peers: MaxConcurrentCalls capacity, MaxQueueSize
// 0, and, where the row name says so, the circuit breaker (failureThreshold,
// successThreshold, openDelay) and the Timeout callTimeout. Each benchmark and each sanity
// test appends these rows after the peers'.

// guard names which of bulkman's optional mechanisms a row turns on.
type guard struct {
	breaker bool
	timeout time.Duration
}

var (
	plain          = guard{}
	withBreaker    = guard{breaker: true}
	timeoutBreaker = guard{breaker: true, timeout: callTimeout}
)

// newBulkman returns a bulkhead configured like the peers' guards, with opts. It is shut
// down when tb ends.
func newBulkman(tb testing.TB, g guard, opts ...core.Option) *core.Bulkhead {
	tb.Helper()
	cfg := core.DefaultConfig("bench")
	cfg.MaxConcurrentCalls = capacity
	cfg.MaxQueueSize = 0
	cfg.Timeout = g.timeout
	cfg.CircuitBreakerEnabled = g.breaker
	cfg.FailureThreshold = failureThreshold
	cfg.SuccessThreshold = successThreshold
	cfg.IsolationDuration = openDelay
	b, err := core.New(cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			tb.Error(err)
		}
	})
	return b
}

// requestContext stands for a request's context: cancellable, as the peers' rows use
// (with context.Background, deriving a deadline or merging contexts is cheaper than in
// production).
func requestContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return ctx
}

// bulkmanPeerCases returns bulkman's rows for BenchmarkPeers.
func bulkmanPeerCases() []peerCase {
	return []peerCase{
		{"bulkman-execute", wrapExecute(plain)},
		{"bulkman-execute-cb", wrapExecute(withBreaker)},
		{"bulkman-execute-timeout+cb", wrapExecute(timeoutBreaker)},
		{"bulkman-wrap-cb", wrapWrap},
		{"bulkman-acquire-cb", wrapAcquire},
	}
}

// wrapExecute: core.Execute with the guard g and opts. fn's error comes back in the Result,
// the bulkhead's as Execute's error; the row returns whichever there is, like the peers.
func wrapExecute(g guard, opts ...core.Option) func(tb testing.TB, fn call) call {
	return func(tb testing.TB, fn call) call {
		b := newBulkman(tb, g, opts...)
		ctx := requestContext(tb)
		f := func(context.Context) (uint64, error) { return fn() }
		return func() (uint64, error) {
			r, err := core.Execute(ctx, b, f)
			if err != nil {
				return 0, err
			}
			return r.Value, r.Err
		}
	}
}

// wrapWrap: core.Wrap with the breaker on, no timeout, the wrapped function built once.
func wrapWrap(tb testing.TB, fn call) call {
	b := newBulkman(tb, withBreaker)
	ctx := requestContext(tb)
	wrapped := core.Wrap(b, func(context.Context) (uint64, error) { return fn() })
	return func() (uint64, error) { return wrapped(ctx) }
}

// wrapAcquire: Bulkhead.Acquire, fn, Permit.Release with fn's verdict, the breaker on (the
// two-step admission the middleware uses).
func wrapAcquire(tb testing.TB, fn call) call {
	b := newBulkman(tb, withBreaker)
	ctx := requestContext(tb)
	return func() (uint64, error) {
		p, err := b.Acquire(ctx)
		if err != nil {
			return 0, err
		}
		v, err := fn()
		o := core.Success
		if err != nil {
			o = core.Failure
		}
		if rerr := p.Release(o); rerr != nil {
			return 0, rerr
		}
		return v, err
	}
}

// bulkmanUnaryCases returns bulkman's rows for BenchmarkGRPCUnary.
func bulkmanUnaryCases() []unaryCase {
	interceptor := func(g guard) func(tb testing.TB) grpc.UnaryServerInterceptor {
		return func(tb testing.TB) grpc.UnaryServerInterceptor {
			return grpcmw.UnaryServerInterceptor(grpcmw.Always(newBulkman(tb, g)))
		}
	}
	return []unaryCase{
		{"bulkman-grpcmw", interceptor(plain)},
		{"bulkman-grpcmw-cb", interceptor(withBreaker)},
		{"bulkman-grpcmw-timeout+cb", interceptor(timeoutBreaker)},
	}
}

// bulkmanHandlerCases returns bulkman's rows for BenchmarkHTTPHandler.
func bulkmanHandlerCases() []handlerCase {
	handler := func(g guard) func(tb testing.TB, next http.Handler) http.Handler {
		return func(tb testing.TB, next http.Handler) http.Handler {
			return httpmw.Handler(next, newBulkman(tb, g))
		}
	}
	return []handlerCase{
		{"bulkman-httpmw", handler(plain)},
		{"bulkman-httpmw-cb", handler(withBreaker)},
		{"bulkman-httpmw-timeout+cb", handler(timeoutBreaker)},
		{"bulkman-httpmw-prompt-timeout+cb", func(tb testing.TB, next http.Handler) http.Handler {
			return httpmw.Handler(next, newBulkman(tb, timeoutBreaker), httpmw.WithPromptTimeout())
		}},
	}
}
