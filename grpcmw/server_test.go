package grpcmw

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

func TestServerRejectsWhenFull(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			b, outcomes := newBulkhead(t, nil)
			g := newGate()
			c, _ := newTestServer(t, &testService{handle: g.handle}, serverOpts(Always(b)))

			first := goCall(t.Context(), c, k)
			<-g.entered
			assert.Equal(t, 1, b.Stats().ActiveTasks, "the handler holds the permit")

			tr, err := call(t.Context(), c, k)
			assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), `bulkhead "svc" is at capacity`)
			assert.Empty(t, tr.Get(pushbackKey), "no pushback without a RetryAfter")

			close(g.release)
			require.NoError(t, (<-first).err)
			assert.Equal(t, core.Success, next(t, outcomes))
			assertIdle(t, b)
			s := b.Stats()
			assert.EqualValues(t, 1, s.RejectedExecutions)
			assert.EqualValues(t, 1, s.SuccessfulExecutions)
		})
	}
}

func TestServerPushbackWhenCircuitOpen(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, outcomes := newBulkhead(t, func(c *core.Config) {
					c.CircuitBreakerEnabled = true
					c.FailureThreshold = 1
					c.IsolationDuration = time.Minute
				})
				fail := status.Error(codes.Unavailable, "backend down")
				c, _ := newTestServer(t, &testService{handle: func(context.Context) error { return fail }}, serverOpts(Always(b)))

				_, err := call(t.Context(), c, k)
				assert.Equal(t, codes.Unavailable, status.Code(err))
				assert.Equal(t, "backend down", status.Convert(err).Message(), "the handler's status, untouched")
				assert.Equal(t, core.Failure, next(t, outcomes))
				require.Equal(t, core.Isolated, b.State())

				time.Sleep(15 * time.Second) // fake time: 45s of isolation left
				tr, err := call(t.Context(), c, k)
				assert.Equal(t, codes.Unavailable, status.Code(err))
				assert.Contains(t, status.Convert(err).Message(), `bulkhead "svc": circuit is open`)
				assert.Equal(t, []string{"45000"}, tr.Get(pushbackKey))
				assertIdle(t, b)
			})
		})
	}
}

func TestServerTimeout(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const timeout = 2 * time.Second
				b, outcomes := newBulkhead(t, func(c *core.Config) {
					c.MaxQueueSize = 1
					c.Timeout = timeout
				})
				deadlines := make(chan time.Time, 1)
				release := make(chan struct{})
				handle := func(ctx context.Context) error {
					d, _ := ctx.Deadline()
					deadlines <- d
					<-release // a handler that ignores its context keeps its permit
					return nil
				}
				c, _ := newTestServer(t, &testService{handle: handle}, serverOpts(Always(b)))

				start := time.Now()
				first := goCall(t.Context(), c, k)
				assert.Equal(t, start.Add(timeout), <-deadlines, "the handler's deadline is the permit's")

				// The second call waits in the queue until the Timeout passes.
				_, err := call(t.Context(), c, k)
				assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
				assert.Contains(t, status.Convert(err).Message(), `bulkhead "svc": timed out`)
				assert.Equal(t, timeout, time.Since(start))
				assert.Equal(t, 1, b.Stats().ActiveTasks, "the first handler still holds its permit")

				// The first handler returns after its deadline: its caller gets its
				// answer, and the bulkhead counts it timed out, a failure for the circuit.
				close(release)
				require.NoError(t, (<-first).err)
				assert.Equal(t, core.Failure, next(t, outcomes))
				assertIdle(t, b)
				assert.EqualValues(t, 1, b.Stats().RejectedExecutions)
				assert.EqualValues(t, 1, b.Stats().TimedOutExecutions, "ran past the permit's deadline")
			})
		})
	}
}

// TestServerLateReturn checks the rule for a handler that returns after the permit's
// deadline: timed out whatever it returned, unless its caller went away first.
func TestServerLateReturn(t *testing.T) {
	endings := []struct {
		name     string
		err      error
		cancel   bool // the caller cancels before the deadline
		timedOut bool
		outcome  core.Outcome // as the event hook sees it: TimedOut shows as Failure
	}{
		{name: "ok", timedOut: true, outcome: core.Failure},
		{name: "Internal", err: status.Error(codes.Internal, "x"), timedOut: true, outcome: core.Failure},
		{name: "NotFound", err: status.Error(codes.NotFound, "x"), timedOut: true, outcome: core.Failure},
		{name: "caller cancelled", err: status.Error(codes.Internal, "x"), cancel: true, outcome: core.Neutral},
	}
	for _, stream := range []bool{false, true} {
		for _, e := range endings {
			name := "unary/" + e.name
			if stream {
				name = "stream/" + e.name
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b, outcomes := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					handle := func(hctx context.Context) error {
						if e.cancel {
							cancel()
						}
						time.Sleep(2 * time.Second) // ignores hctx, which ends at the deadline
						return e.err
					}
					var err error
					if stream {
						err = StreamServerInterceptor(Always(b))(nil, fakeServerStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: bidiRPC.method},
							func(_ any, ss grpc.ServerStream) error { return handle(ss.Context()) })
					} else {
						_, err = UnaryServerInterceptor(Always(b))(ctx, nil, &grpc.UnaryServerInfo{FullMethod: unaryRPC.method},
							func(hctx context.Context, _ any) (any, error) { return nil, handle(hctx) })
					}
					assert.Equal(t, e.err, err, "the handler's own")
					assert.Equal(t, e.outcome, next(t, outcomes))
					s := b.Stats()
					assert.Equal(t, e.timedOut, s.TimedOutExecutions == 1, "timed out")
					assert.EqualValues(t, 1, s.FailedExecutions)
				})
			})
		}
	}
}

// TestServerLateReturnBeforeTimer has handlers return a moment after the deadline, when
// the bulkhead's timer, which ends their context, may not have run yet: each is timed out
// all the same, by the bulkhead's clock. Real time, because synctest's timers are never
// late.
func TestServerLateReturnBeforeTimer(t *testing.T) {
	const rounds = 20
	b, _ := newBulkhead(t, func(c *core.Config) { c.Timeout = 2 * time.Millisecond })
	ctx, cancel := context.WithCancel(t.Context()) // as gRPC gives: a context that can end
	defer cancel()
	info := &grpc.UnaryServerInfo{FullMethod: unaryRPC.method}
	fail := status.Error(codes.Internal, "late")
	late := func(hctx context.Context, _ any) (any, error) {
		d, _ := hctx.Deadline()
		time.Sleep(time.Until(d) + 50*time.Microsecond)
		return nil, fail
	}
	for range rounds {
		_, err := UnaryServerInterceptor(Always(b))(ctx, nil, info, late)
		assert.Same(t, fail, err)
	}
	s := b.Stats()
	assert.EqualValues(t, rounds, s.TimedOutExecutions)
	assert.EqualValues(t, rounds, s.FailedExecutions)
}

func TestServerTimeoutKeepsEarlierCallerDeadline(t *testing.T) {
	b, _ := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Hour })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	want, _ := ctx.Deadline()
	var got context.Context
	_, err := UnaryServerInterceptor(Always(b))(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/s/m"},
		func(ctx context.Context, _ any) (any, error) { got = ctx; return nil, nil })
	require.NoError(t, err)
	d, ok := got.Deadline()
	assert.True(t, ok)
	assert.Equal(t, want, d)
	assert.Same(t, ctx, got, "no new context when the caller's deadline is earlier")
}

func TestServerShutdown(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			b, _ := newBulkhead(t, nil)
			require.NoError(t, b.Shutdown(t.Context()))
			c, _ := newTestServer(t, &testService{}, serverOpts(Always(b)))
			_, err := call(t.Context(), c, k)
			assert.Equal(t, codes.Unavailable, status.Code(err))
			assert.Contains(t, status.Convert(err).Message(), `bulkhead "svc" is shut down`)
		})
	}
}

func TestServerUnguarded(t *testing.T) {
	b, _ := newBulkhead(t, nil)
	for name, sel := range map[string]Selector{
		"nil selector":         nil,
		"selector returns nil": ByMethod(map[string]*core.Bulkhead{"/other.Service/*": b}),
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := newTestServer(t, &testService{}, serverOpts(sel))
			for _, k := range allKinds {
				_, err := call(t.Context(), c, k)
				assert.NoError(t, err, k.name)
			}
			assert.Zero(t, b.Stats().TotalExecutions)
		})
	}
}

func TestServerHandlerErrorsPassThrough(t *testing.T) {
	st, err := status.New(codes.NotFound, "no such thing").WithDetails(&testpb.Empty{})
	require.NoError(t, err)
	herr := st.Err()
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			b, outcomes := newBulkhead(t, nil)
			c, _ := newTestServer(t, &testService{handle: func(context.Context) error { return herr }}, serverOpts(Always(b)))
			_, err := call(t.Context(), c, k)
			got := status.Convert(err)
			assert.Equal(t, codes.NotFound, got.Code())
			assert.Equal(t, "no such thing", got.Message())
			assert.Len(t, got.Details(), 1, "details survive")
			assert.Equal(t, core.Success, next(t, outcomes), "NotFound is an answer, not a failure")
		})
	}

	t.Run("same value", func(t *testing.T) {
		b, _ := newBulkhead(t, nil)
		info := &grpc.UnaryServerInfo{FullMethod: unaryRPC.method}
		_, err := UnaryServerInterceptor(Always(b))(t.Context(), nil, info, func(context.Context, any) (any, error) { return nil, herr })
		assert.Same(t, herr, err)
		plain := errors.New("plain")
		_, err = UnaryServerInterceptor(Always(b))(t.Context(), nil, info, func(context.Context, any) (any, error) { return nil, plain })
		assert.Same(t, plain, err)
		err = StreamServerInterceptor(Always(b))(nil, fakeServerStream{ctx: t.Context()}, &grpc.StreamServerInfo{FullMethod: bidiRPC.method},
			func(any, grpc.ServerStream) error { return herr })
		assert.Same(t, herr, err)
	})
}

func TestServerPanic(t *testing.T) {
	b, outcomes := newBulkhead(t, nil)
	info := &grpc.UnaryServerInfo{FullMethod: unaryRPC.method}
	assert.PanicsWithValue(t, "boom", func() {
		_, _ = UnaryServerInterceptor(Always(b))(t.Context(), nil, info, func(context.Context, any) (any, error) { panic("boom") })
	})
	assert.Equal(t, core.Failure, next(t, outcomes))
	assertIdle(t, b)

	assert.PanicsWithValue(t, "boom", func() {
		_ = StreamServerInterceptor(Always(b))(nil, fakeServerStream{ctx: t.Context()}, &grpc.StreamServerInfo{FullMethod: bidiRPC.method},
			func(any, grpc.ServerStream) error { panic("boom") })
	})
	assert.Equal(t, core.Failure, next(t, outcomes))
	assertIdle(t, b)
	assert.EqualValues(t, 2, b.Stats().FailedExecutions)
}

// TestServerChainRecovery chains go-grpc-middleware's recovery outside the bulkhead: the
// bulkhead's deferred release runs while the panic unwinds, before recovery turns it into
// an Internal status.
func TestServerChainRecovery(t *testing.T) {
	toInternal := recovery.WithRecoveryHandler(func(p any) error { return status.Errorf(codes.Internal, "panic: %v", p) })
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			b, outcomes := newBulkhead(t, func(c *core.Config) {
				c.CircuitBreakerEnabled = true
				c.FailureThreshold = 1
			})
			srv := []grpc.ServerOption{
				grpc.ChainUnaryInterceptor(recovery.UnaryServerInterceptor(toInternal), UnaryServerInterceptor(Always(b))),
				grpc.ChainStreamInterceptor(recovery.StreamServerInterceptor(toInternal), StreamServerInterceptor(Always(b))),
			}
			c, _ := newTestServer(t, &testService{handle: func(context.Context) error { panic("boom") }}, srv)
			_, err := call(t.Context(), c, k)
			assert.Equal(t, codes.Internal, status.Code(err))
			assert.Equal(t, "panic: boom", status.Convert(err).Message())
			assert.Equal(t, core.Failure, next(t, outcomes))
			assertIdle(t, b)
			assert.Equal(t, core.Isolated, b.State(), "the panic counted against the circuit")
		})
	}
}

// TestServerStreamEndings checks that a server stream's permit is held while the handler
// runs and comes back however the stream ends.
func TestServerStreamEndings(t *testing.T) {
	toInternal := recovery.WithRecoveryHandler(func(p any) error { return status.Errorf(codes.Internal, "panic: %v", p) })
	endings := []struct {
		name    string
		end     func(ctx context.Context) error // the handler's ending, after the gate
		cancel  bool                            // the client cancels instead
		code    codes.Code
		outcome core.Outcome
	}{
		{name: "ok", end: func(context.Context) error { return nil }, code: codes.OK, outcome: core.Success},
		{name: "error", end: func(context.Context) error { return status.Error(codes.Internal, "x") }, code: codes.Internal, outcome: core.Failure},
		{name: "client cancel", cancel: true, code: codes.Canceled, outcome: core.Neutral},
		{name: "panic", end: func(context.Context) error { panic("boom") }, code: codes.Internal, outcome: core.Failure},
	}
	for _, k := range []kind{serverStreamRPC, clientStreamRPC, bidiRPC} {
		for _, e := range endings {
			t.Run(k.name+"/"+e.name, func(t *testing.T) {
				b, outcomes := newBulkhead(t, nil)
				entered, proceed := make(chan struct{}), make(chan struct{})
				handle := func(ctx context.Context) error {
					close(entered)
					select {
					case <-proceed:
						return e.end(ctx)
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				srv := []grpc.ServerOption{grpc.ChainStreamInterceptor(recovery.StreamServerInterceptor(toInternal), StreamServerInterceptor(Always(b)))}
				c, _ := newTestServer(t, &testService{handle: handle}, srv)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				res := goCall(ctx, c, k)
				<-entered
				assert.Equal(t, 1, b.Stats().ActiveTasks)
				if e.cancel {
					cancel()
				} else {
					close(proceed)
				}
				assert.Equal(t, e.code, status.Code((<-res).err))
				assert.Equal(t, e.outcome, next(t, outcomes))
				assertIdle(t, b)
			})
		}
	}
}

func TestServerRejectionOfDepartedCaller(t *testing.T) {
	b, _ := newBulkhead(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := UnaryServerInterceptor(Always(b))(ctx, nil, &grpc.UnaryServerInfo{FullMethod: unaryRPC.method},
		func(context.Context, any) (any, error) { panic("not reached") })
	assert.Equal(t, codes.Canceled, status.Code(err))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, b.Stats().RejectedExecutions)
}

func TestServerPushbackTrailerValue(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Millisecond, "1"},
		{10 * time.Millisecond, "10"},
		{1500 * time.Microsecond, "2"},
		{time.Nanosecond, "1"},
		{30 * time.Second, "30000"},
	} {
		assert.Equal(t, []string{tc.want}, []string{pushbackValue(tc.d)}, "%v", tc.d)
	}
}
