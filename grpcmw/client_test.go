package grpcmw

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

// clientOpts installs both client interceptors with sel and opts.
func clientOpts(sel Selector, opts ...Option) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithUnaryInterceptor(UnaryClientInterceptor(sel, opts...)),
		grpc.WithStreamInterceptor(StreamClientInterceptor(sel, opts...)),
	}
}

func TestClientRejectsWhenFull(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			b, outcomes := newBulkhead(t, nil)
			g := newGate()
			c, _ := newTestServer(t, &testService{handle: g.handle}, nil, clientOpts(Always(b))...)

			first := goCall(t.Context(), c, k)
			<-g.entered
			assert.Equal(t, 1, b.Stats().ActiveTasks, "the open call holds the permit")

			_, err := call(t.Context(), c, k)
			assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
			assert.ErrorIs(t, err, core.ErrFull, "a local refusal unwraps to the core error")
			var ce *core.Error
			if assert.ErrorAs(t, err, &ce) {
				assert.Equal(t, "svc", ce.Bulkhead)
			}

			close(g.release)
			require.NoError(t, (<-first).err)
			assert.Equal(t, core.Success, next(t, outcomes))
			assertIdle(t, b)
		})
	}
}

func TestClientCircuitOpen(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			b, outcomes := newBulkhead(t, func(c *core.Config) {
				c.CircuitBreakerEnabled = true
				c.FailureThreshold = 1
				c.IsolationDuration = time.Minute
			})
			fail := func(context.Context) error { return status.Error(codes.Unavailable, "backend down") }
			c, _ := newTestServer(t, &testService{handle: fail}, nil, clientOpts(Always(b))...)

			_, err := call(t.Context(), c, k)
			assert.Equal(t, "backend down", status.Convert(err).Message())
			assert.Equal(t, core.Failure, next(t, outcomes))

			_, err = call(t.Context(), c, k)
			assert.Equal(t, codes.Unavailable, status.Code(err))
			assert.ErrorIs(t, err, core.ErrCircuitOpen)
			var ce *core.Error
			if assert.ErrorAs(t, err, &ce) {
				assert.Positive(t, ce.RetryAfter)
			}
			assertIdle(t, b)
		})
	}
}

// TestClientStreamEndings opens a stream, ends it one way, and checks the permit came
// back once with the right outcome.
func TestClientStreamEndings(t *testing.T) {
	type ending struct {
		name    string
		handle  func(ctx context.Context) error // the server's handler; nil: block until the call ends
		end     func(t *testing.T, st grpc.ClientStream, cancel context.CancelFunc, cc *grpc.ClientConn, entered <-chan struct{})
		outcome core.Outcome
	}
	recvAll := func(t *testing.T, st grpc.ClientStream) error {
		for {
			if err := st.RecvMsg(&testpb.StreamingOutputCallResponse{}); err != nil {
				return err
			}
		}
	}
	for _, k := range []kind{serverStreamRPC, clientStreamRPC, bidiRPC} {
		desc := &grpc.StreamDesc{ServerStreams: k != clientStreamRPC, ClientStreams: k != serverStreamRPC}
		endings := []ending{
			{
				name:   "eof",
				handle: func(context.Context) error { return nil },
				end: func(t *testing.T, st grpc.ClientStream, _ context.CancelFunc, _ *grpc.ClientConn, _ <-chan struct{}) {
					require.NoError(t, st.CloseSend())
					if k == clientStreamRPC {
						// The one response of a unary-response RPC ends it.
						require.NoError(t, st.RecvMsg(&testpb.StreamingInputCallResponse{}))
						return
					}
					require.ErrorIs(t, recvAll(t, st), io.EOF)
				},
				outcome: core.Success,
			},
			{
				name:   "server error",
				handle: func(context.Context) error { return status.Error(codes.Internal, "broken") },
				end: func(t *testing.T, st grpc.ClientStream, _ context.CancelFunc, _ *grpc.ClientConn, _ <-chan struct{}) {
					_ = st.CloseSend()
					assert.Equal(t, codes.Internal, status.Code(recvAll(t, st)))
				},
				outcome: core.Failure,
			},
			{
				name:   "server answers InvalidArgument",
				handle: func(context.Context) error { return status.Error(codes.InvalidArgument, "bad") },
				end: func(t *testing.T, st grpc.ClientStream, _ context.CancelFunc, _ *grpc.ClientConn, _ <-chan struct{}) {
					_ = st.CloseSend()
					assert.Equal(t, codes.InvalidArgument, status.Code(recvAll(t, st)))
				},
				outcome: core.Success,
			},
			{
				name: "cancel without reading",
				end: func(t *testing.T, _ grpc.ClientStream, cancel context.CancelFunc, _ *grpc.ClientConn, entered <-chan struct{}) {
					<-entered
					cancel()
				},
				outcome: core.Neutral,
			},
			{
				name: "client conn closed without reading",
				end: func(t *testing.T, _ grpc.ClientStream, _ context.CancelFunc, cc *grpc.ClientConn, entered <-chan struct{}) {
					<-entered
					require.NoError(t, cc.Close())
				},
				outcome: core.Neutral,
			},
			{
				name:   "send fails",
				handle: func(context.Context) error { return nil },
				end: func(t *testing.T, st grpc.ClientStream, _ context.CancelFunc, _ *grpc.ClientConn, _ <-chan struct{}) {
					err := st.SendMsg("not a proto message")
					assert.Equal(t, codes.Internal, status.Code(err), "%v", err)
				},
				outcome: core.Failure,
			},
		}
		for _, e := range endings {
			t.Run(k.name+"/"+e.name, func(t *testing.T) {
				b, outcomes := newBulkhead(t, nil)
				entered := make(chan struct{})
				handle := e.handle
				if handle == nil {
					handle = func(ctx context.Context) error {
						close(entered)
						<-ctx.Done()
						return ctx.Err()
					}
				}
				_, cc := newTestServer(t, &testService{handle: handle}, nil, clientOpts(Always(b))...)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				st, err := cc.NewStream(ctx, desc, k.method)
				require.NoError(t, err)
				assert.Equal(t, 1, b.Stats().ActiveTasks)
				if k == serverStreamRPC {
					// The server's handler runs once it has the request (as the generated
					// client sends it).
					require.NoError(t, st.SendMsg(&testpb.StreamingOutputCallRequest{}))
				}

				e.end(t, st, cancel, cc, entered)
				assert.Equal(t, e.outcome, next(t, outcomes))
				assertIdle(t, b)

				// Later endings change nothing: the permit came back exactly once.
				cancel()
				_ = st.RecvMsg(&testpb.StreamingOutputCallResponse{})
				s := b.Stats()
				assert.EqualValues(t, 1, s.TotalExecutions)
				assert.EqualValues(t, 1, s.SuccessfulExecutions+s.FailedExecutions)
				select {
				case o := <-outcomes:
					assert.Fail(t, "a second release", "outcome %v", o)
				default:
				}
			})
		}
	}
}

// TestClientStreamEndsSynchronously checks that a stream read to its end has given its
// permit back by the time RecvMsg returns, so a caller can open the next one at once.
func TestClientStreamEndsSynchronously(t *testing.T) {
	for _, k := range []kind{serverStreamRPC, clientStreamRPC, bidiRPC} {
		t.Run(k.name, func(t *testing.T) {
			b, _ := newBulkhead(t, nil)
			c, _ := newTestServer(t, &testService{}, nil, clientOpts(Always(b))...)
			for range 20 {
				_, err := call(t.Context(), c, k)
				require.NoError(t, err)
				assertIdle(t, b)
			}
		})
	}
}

func TestClientStreamTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		b, outcomes := newBulkhead(t, func(c *core.Config) { c.Timeout = timeout })
		deadlines := make(chan time.Time, 1)
		handle := func(ctx context.Context) error {
			d, _ := ctx.Deadline()
			deadlines <- d
			<-ctx.Done()
			return ctx.Err()
		}
		_, cc := newTestServer(t, &testService{handle: handle}, nil, clientOpts(Always(b))...)
		start := time.Now()
		_, err := cc.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, bidiRPC.method)
		require.NoError(t, err)
		// The server sees the permit's deadline, sent as the call's grpc-timeout.
		assert.WithinDuration(t, start.Add(timeout), <-deadlines, time.Millisecond)
		// Nobody reads the stream: the deadline ends it and the permit comes back.
		assert.Equal(t, core.Failure, next(t, outcomes), "a deadline is a failure by default")
		assert.Equal(t, timeout, time.Since(start))
		assertIdle(t, b)
	})
}

func TestClientUnaryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, outcomes := newBulkhead(t, func(c *core.Config) { c.Timeout = time.Second })
		c, _ := newTestServer(t, &testService{handle: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}, nil, clientOpts(Always(b))...)
		start := time.Now()
		_, err := c.EmptyCall(t.Context(), &testpb.Empty{})
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, core.Failure, next(t, outcomes))
		assertIdle(t, b)
	})
}

func TestClientCancelIsNeutral(t *testing.T) {
	b, outcomes := newBulkhead(t, func(c *core.Config) {
		c.CircuitBreakerEnabled = true
		c.FailureThreshold = 1
	})
	g := newGate()
	c, _ := newTestServer(t, &testService{handle: g.handle}, nil, clientOpts(Always(b))...)
	ctx, cancel := context.WithCancel(t.Context())
	res := goCall(ctx, c, unaryRPC)
	<-g.entered
	cancel()
	assert.Equal(t, codes.Canceled, status.Code((<-res).err))
	assert.Equal(t, core.Neutral, next(t, outcomes))
	assert.Equal(t, core.Healthy, b.State())
	assertIdle(t, b)
}

// TestClientChainRetry puts go-grpc-middleware's retry outside the client bulkhead: each
// attempt takes its own permit and reports its own outcome, and none is held while retry
// waits.
func TestClientChainRetry(t *testing.T) {
	b, outcomes := newBulkhead(t, func(c *core.Config) { c.CircuitBreakerEnabled = true })
	attempts := 0
	handle := func(context.Context) error {
		attempts++
		if attempts < 3 {
			return status.Error(codes.Unavailable, "try again")
		}
		return nil
	}
	backoffs := 0
	c, _ := newTestServer(t, &testService{handle: handle}, nil,
		grpc.WithChainUnaryInterceptor(
			retry.UnaryClientInterceptor(retry.WithMax(3), retry.WithCodes(codes.Unavailable),
				retry.WithBackoff(func(context.Context, uint) time.Duration {
					backoffs++
					assert.Zero(t, b.Stats().ActiveTasks, "no permit is held between attempts")
					return 0
				})),
			UnaryClientInterceptor(Always(b)),
		))
	_, err := c.EmptyCall(t.Context(), &testpb.Empty{})
	require.NoError(t, err)
	assert.Equal(t, 3, attempts)
	assert.Equal(t, []core.Outcome{core.Failure, core.Failure, core.Success}, []core.Outcome{next(t, outcomes), next(t, outcomes), next(t, outcomes)})
	assert.Positive(t, backoffs)
	assert.EqualValues(t, 3, b.Stats().TotalExecutions)
	assertIdle(t, b)
}

func TestClientPanic(t *testing.T) {
	b, outcomes := newBulkhead(t, nil)
	assert.PanicsWithValue(t, "boom", func() {
		_ = UnaryClientInterceptor(Always(b))(t.Context(), unaryRPC.method, nil, nil, nil,
			func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { panic("boom") })
	})
	assert.Equal(t, core.Failure, next(t, outcomes))
	assertIdle(t, b)

	assert.PanicsWithValue(t, "boom", func() {
		_, _ = StreamClientInterceptor(Always(b))(t.Context(), &grpc.StreamDesc{ServerStreams: true}, nil, bidiRPC.method,
			func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
				panic("boom")
			})
	})
	assert.Equal(t, core.Failure, next(t, outcomes))
	assertIdle(t, b)
}

// fakeClientStream lets a test script what a stream below the interceptor returns, for the
// endings gRPC's own stream never produces (Header never fails there).
type fakeClientStream struct {
	grpc.ClientStream
	header, send, recv error
}

func (s *fakeClientStream) Header() (metadata.MD, error) { return nil, s.header }
func (s *fakeClientStream) SendMsg(any) error            { return s.send }
func (s *fakeClientStream) RecvMsg(any) error            { return s.recv }
func (s *fakeClientStream) CloseSend() error             { return nil }

func TestClientStreamRulesWithFakeStream(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "gone")
	for _, tc := range []struct {
		name          string
		fake          fakeClientStream
		serverStreams bool
		do            func(grpc.ClientStream) error
		released      bool
		outcome       core.Outcome
	}{
		{"header fails", fakeClientStream{header: unavailable}, true, func(s grpc.ClientStream) error { _, err := s.Header(); return err }, true, core.Failure},
		{"header eof", fakeClientStream{header: io.EOF}, true, func(s grpc.ClientStream) error { _, err := s.Header(); return err }, false, 0},
		{"header ok", fakeClientStream{}, true, func(s grpc.ClientStream) error { _, err := s.Header(); return err }, false, 0},
		{"send fails", fakeClientStream{send: unavailable}, true, func(s grpc.ClientStream) error { return s.SendMsg(nil) }, true, core.Failure},
		{"send eof", fakeClientStream{send: io.EOF}, true, func(s grpc.ClientStream) error { return s.SendMsg(nil) }, false, 0},
		{"close send", fakeClientStream{}, true, func(s grpc.ClientStream) error { return s.CloseSend() }, false, 0},
		{"recv message, server streams", fakeClientStream{}, true, func(s grpc.ClientStream) error { return s.RecvMsg(nil) }, false, 0},
		{"recv message, unary response", fakeClientStream{}, false, func(s grpc.ClientStream) error { return s.RecvMsg(nil) }, true, core.Success},
		{"recv eof", fakeClientStream{recv: io.EOF}, true, func(s grpc.ClientStream) error { return s.RecvMsg(nil) }, true, core.Success},
		{"recv error", fakeClientStream{recv: unavailable}, true, func(s grpc.ClientStream) error { return s.RecvMsg(nil) }, true, core.Failure},
		{"recv not found", fakeClientStream{recv: status.Error(codes.NotFound, "")}, true, func(s grpc.ClientStream) error { return s.RecvMsg(nil) }, true, core.Success},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, outcomes := newBulkhead(t, nil)
			fake := tc.fake
			st, err := StreamClientInterceptor(Always(b))(t.Context(), &grpc.StreamDesc{ServerStreams: tc.serverStreams, ClientStreams: true}, nil, bidiRPC.method,
				func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
					return &fake, nil
				})
			require.NoError(t, err)
			_ = tc.do(st)
			if !tc.released {
				assert.Equal(t, 1, b.Stats().ActiveTasks, "still held")
				return // t.Context's end releases it (neutral) before the test's bulkhead goes away
			}
			assert.Equal(t, tc.outcome, next(t, outcomes))
			assertIdle(t, b)
		})
	}
}

func TestClientStreamerError(t *testing.T) {
	b, outcomes := newBulkhead(t, nil)
	want := status.Error(codes.Unavailable, "no connection")
	_, err := StreamClientInterceptor(Always(b))(t.Context(), &grpc.StreamDesc{ServerStreams: true}, nil, bidiRPC.method,
		func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
			return nil, want
		})
	assert.Same(t, want, err)
	assert.Equal(t, core.Failure, next(t, outcomes))
	assertIdle(t, b)
}

func TestClientStreamContextAlreadyEndedAfterStreamer(t *testing.T) {
	// The caller's context ends while the streamer runs: the watch fires at once.
	b, outcomes := newBulkhead(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := StreamClientInterceptor(Always(b))(ctx, &grpc.StreamDesc{ServerStreams: true}, nil, bidiRPC.method,
		func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
			cancel()
			return &fakeClientStream{}, nil
		})
	require.NoError(t, err)
	assert.Equal(t, core.Neutral, next(t, outcomes))
	assertIdle(t, b)
}

func TestClientUnguarded(t *testing.T) {
	b, _ := newBulkhead(t, nil)
	for name, sel := range map[string]Selector{
		"nil selector":         nil,
		"selector returns nil": ByMethod(map[string]*core.Bulkhead{"/other.Service/*": b}),
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := newTestServer(t, &testService{}, nil, clientOpts(sel)...)
			for _, k := range allKinds {
				_, err := call(t.Context(), c, k)
				assert.NoError(t, err, k.name)
			}
			assert.Zero(t, b.Stats().TotalExecutions)
		})
	}
}
