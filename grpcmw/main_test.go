package grpcmw

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/bulkman-go/bulkman/core"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testService implements every RPC kind of grpc_testing.TestService the same way: it runs
// handle first (to block, fail or panic while holding the permit), then exchanges the
// kind's messages.
type testService struct {
	testpb.UnimplementedTestServiceServer
	handle func(ctx context.Context) error // nil: succeed at once
}

func (s *testService) run(ctx context.Context) error {
	if s.handle == nil {
		return nil
	}
	return s.handle(ctx)
}

func (s *testService) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	return &testpb.Empty{}, nil
}

func (s *testService) StreamingOutputCall(_ *testpb.StreamingOutputCallRequest, ss testpb.TestService_StreamingOutputCallServer) error {
	if err := s.run(ss.Context()); err != nil {
		return err
	}
	return ss.Send(&testpb.StreamingOutputCallResponse{})
}

func (s *testService) StreamingInputCall(ss testpb.TestService_StreamingInputCallServer) error {
	if err := s.run(ss.Context()); err != nil {
		return err
	}
	var n int32
	for {
		_, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			return ss.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: n})
		}
		if err != nil {
			return err
		}
		n++
	}
}

func (s *testService) FullDuplexCall(ss testpb.TestService_FullDuplexCallServer) error {
	if err := s.run(ss.Context()); err != nil {
		return err
	}
	for {
		_, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ss.Send(&testpb.StreamingOutputCallResponse{}); err != nil {
			return err
		}
	}
}

// kind is one of the four RPC kinds, with the TestService method that has it.
type kind struct {
	name   string
	method string
}

var (
	unaryRPC        = kind{"unary", "/grpc.testing.TestService/EmptyCall"}
	serverStreamRPC = kind{"server-stream", "/grpc.testing.TestService/StreamingOutputCall"}
	clientStreamRPC = kind{"client-stream", "/grpc.testing.TestService/StreamingInputCall"}
	bidiRPC         = kind{"bidi", "/grpc.testing.TestService/FullDuplexCall"}
	allKinds        = []kind{unaryRPC, serverStreamRPC, clientStreamRPC, bidiRPC}
)

// call makes one whole RPC of kind k and returns its final error and trailer.
func call(ctx context.Context, c testpb.TestServiceClient, k kind) (metadata.MD, error) {
	var tr metadata.MD
	switch k {
	case unaryRPC:
		_, err := c.EmptyCall(ctx, &testpb.Empty{}, grpc.Trailer(&tr))
		return tr, err
	case serverStreamRPC:
		st, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
		if err != nil {
			return nil, err
		}
		for {
			if _, err := st.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				return st.Trailer(), err
			}
		}
	case clientStreamRPC:
		st, err := c.StreamingInputCall(ctx)
		if err != nil {
			return nil, err
		}
		if err := st.Send(&testpb.StreamingInputCallRequest{}); err != nil && !errors.Is(err, io.EOF) {
			return st.Trailer(), err
		}
		_, err = st.CloseAndRecv()
		return st.Trailer(), err
	case bidiRPC:
		st, err := c.FullDuplexCall(ctx)
		if err != nil {
			return nil, err
		}
		if err := st.Send(&testpb.StreamingOutputCallRequest{}); err != nil && !errors.Is(err, io.EOF) {
			return st.Trailer(), err
		}
		if err := st.CloseSend(); err != nil {
			return st.Trailer(), err
		}
		for {
			if _, err := st.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				return st.Trailer(), err
			}
		}
	}
	panic("unknown kind " + k.name)
}

// result is what a background RPC ended with.
type result struct {
	trailer metadata.MD
	err     error
}

// goCall starts call on its own goroutine; the channel delivers its result.
func goCall(ctx context.Context, c testpb.TestServiceClient, k kind) <-chan result {
	ch := make(chan result, 1)
	go func() {
		tr, err := call(ctx, c, k)
		ch <- result{tr, err}
	}()
	return ch
}

// newTestServer serves svc over bufconn and returns a client for it, both closed when the
// test ends.
func newTestServer(t *testing.T, svc testpb.TestServiceServer, srvOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) (testpb.TestServiceClient, *grpc.ClientConn) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(srvOpts...)
	testpb.RegisterTestServiceServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	dialOpts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, dialOpts...)
	cc, err := grpc.NewClient("passthrough:///bufnet", dialOpts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return testpb.NewTestServiceClient(cc), cc
}

// serverOpts installs both server interceptors with sel and opts.
func serverOpts(sel Selector, opts ...Option) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(UnaryServerInterceptor(sel, opts...)),
		grpc.StreamInterceptor(StreamServerInterceptor(sel, opts...)),
	}
}

// newBulkhead returns a bulkhead called "svc" (one permit, no queue unless mutate changes
// it) and a channel of the outcomes of its finished calls.
func newBulkhead(t *testing.T, mutate func(*core.Config)) (*core.Bulkhead, <-chan core.Outcome) {
	t.Helper()
	cfg := core.DefaultConfig("svc")
	cfg.MaxConcurrentCalls = 1
	cfg.MaxQueueSize = 0
	if mutate != nil {
		mutate(&cfg)
	}
	outcomes := make(chan core.Outcome, 1024)
	b, err := core.New(cfg, core.WithEventHook(func(e core.Event) {
		if e.Kind == core.EventFinished {
			select {
			case outcomes <- e.Outcome:
			default: // a test that does not read them (a hammer) must not block the calls
			}
		}
	}))
	require.NoError(t, err)
	return b, outcomes
}

// gate is a handler that signals when it holds the permit and then blocks until released
// (or its context ends).
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gate) handle(ctx context.Context) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// assertIdle checks that b holds no permit and has nobody waiting.
func assertIdle(t *testing.T, b *core.Bulkhead) {
	t.Helper()
	s := b.Stats()
	assert.Zero(t, s.ActiveTasks, "active tasks")
	assert.Zero(t, s.InFlightCount, "in-flight count")
	assert.Zero(t, s.AbandonedTasks, "abandoned tasks")
}

// testTimeout bounds a wait that should end at once; tick is how often Eventually looks.
const (
	testTimeout = 10 * time.Second
	tick        = time.Millisecond
)

// next returns the next outcome, failing the test if none arrives.
func next(t *testing.T, outcomes <-chan core.Outcome) core.Outcome {
	t.Helper()
	select {
	case o := <-outcomes:
		return o
	case <-time.After(testTimeout):
		require.FailNow(t, "no call finished")
		return 0
	}
}

// fakeServerStream is a server stream for calling a stream interceptor directly.
type fakeServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeServerStream) Context() context.Context { return s.ctx }
func (s fakeServerStream) SetTrailer(metadata.MD)   {}
