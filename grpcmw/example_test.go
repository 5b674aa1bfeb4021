package grpcmw_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
)

// exampleService answers EmptyCall after holding it until release is closed (when hold is
// set), panics in UnaryCall unless asked for a status, and counts the calls it served.
type exampleService struct {
	testpb.UnimplementedTestServiceServer
	held, release chan struct{}
	hold          bool
	served        int
}

func (s *exampleService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	s.served++
	if s.hold {
		s.hold = false
		close(s.held)
		<-s.release
	}
	return &testpb.Empty{}, nil
}

func (s *exampleService) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.served++
	if st := req.GetResponseStatus(); st != nil {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	panic("the handler has a bug")
}

// Example_ordering chains the bulkhead innermost with go-grpc-middleware's logging, auth
// (applied by its selector to all but the health service) and recovery on the server, and
// behind its retry on the client. See the package documentation for why in this order.
func Example_ordering() {
	// The server's bulkhead: one TestService call at a time, no queue.
	cfg := core.DefaultConfig("testing")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	guarded, err := core.New(cfg)
	if err != nil {
		panic(err)
	}
	guard := grpcmw.ByMethod(map[string]*core.Bulkhead{"/grpc.testing.TestService/*": guarded})

	logger := logging.LoggerFunc(func(_ context.Context, _ logging.Level, _ string, fields ...any) {
		f := map[any]any{}
		for i := 0; i+1 < len(fields); i += 2 {
			f[fields[i]] = fields[i+1]
		}
		fmt.Printf("server log: %s/%s %s\n", f["grpc.service"], f["grpc.method"], f["grpc.code"])
	})
	toInternal := recovery.WithRecoveryHandler(func(p any) error { return status.Errorf(codes.Internal, "panic: %v", p) })
	authn := auth.UnaryServerInterceptor(func(ctx context.Context) (context.Context, error) {
		token, err := auth.AuthFromMD(ctx, "bearer")
		if err != nil || token != "secret" {
			return nil, status.Error(codes.Unauthenticated, "bad token")
		}
		return ctx, nil
	})
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName
	})
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor( // the first is the outermost
			logging.UnaryServerInterceptor(logger, logging.WithLogOnEvents(logging.FinishCall)),
			selector.UnaryServerInterceptor(authn, notHealth),
			recovery.UnaryServerInterceptor(toInternal),
			grpcmw.UnaryServerInterceptor(guard), // innermost
		),
	)
	svc := &exampleService{held: make(chan struct{}), release: make(chan struct{})}
	testpb.RegisterTestServiceServer(srv, svc)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	// The client's bulkhead guards the backend: its circuit opens after 3 failures in a
	// row. Retry is outside it, so every attempt needs a permit of its own.
	cfg = core.DefaultConfig("backend")
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 3
	backend, err := core.New(cfg)
	if err != nil {
		panic(err)
	}
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(
			retry.UnaryClientInterceptor(retry.WithMax(5), retry.WithCodes(codes.Unavailable), retry.WithBackoff(retry.BackoffLinear(time.Millisecond))),
			grpcmw.UnaryClientInterceptor(grpcmw.Always(backend)),
		),
	)
	if err != nil {
		panic(err)
	}
	defer func() { _ = cc.Close() }()
	client := testpb.NewTestServiceClient(cc)
	ctx := context.Background()
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "bearer secret")

	// 1. Authentication comes first: a bad token never takes a permit.
	_, err = client.EmptyCall(ctx, &testpb.Empty{})
	fmt.Println("no token:", status.Code(err), "- admitted by the bulkhead:", guarded.Stats().TotalExecutions)

	// 2. While one call holds the only permit, the next is refused, and logged as such.
	svc.hold = true
	done := make(chan error)
	go func() {
		_, err := client.EmptyCall(authed, &testpb.Empty{})
		done <- err
	}()
	<-svc.held
	_, err = client.EmptyCall(authed, &testpb.Empty{})
	fmt.Println("bulkhead full:", status.Code(err))
	close(svc.release)
	fmt.Println("held call:", status.Code(<-done))

	// 3. The health service is neither authenticated nor guarded.
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println("health:", h.GetStatus(), err)

	// 4. A panic releases the permit on its way to recovery, which answers Internal.
	_, err = client.UnaryCall(authed, &testpb.SimpleRequest{})
	fmt.Println("panic:", status.Code(err), "- permits in use:", guarded.Stats().ActiveTasks)

	// 5. The server answers Unavailable; retry tries again, but the second Unavailable is
	// the client circuit's third failure in a row (after the Internal above): it opens
	// and refuses the next attempt before it leaves the process.
	svc.served = 0
	_, err = client.UnaryCall(authed, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Unavailable), Message: "overloaded"}})
	fmt.Println("retried:", status.Code(err), "- circuit open:", errors.Is(err, core.ErrCircuitOpen), "- attempts served:", svc.served)

	// Output:
	// server log: grpc.testing.TestService/EmptyCall Unauthenticated
	// no token: Unauthenticated - admitted by the bulkhead: 0
	// server log: grpc.testing.TestService/EmptyCall ResourceExhausted
	// bulkhead full: ResourceExhausted
	// server log: grpc.testing.TestService/EmptyCall OK
	// held call: OK
	// server log: grpc.health.v1.Health/Check OK
	// health: SERVING <nil>
	// server log: grpc.testing.TestService/UnaryCall Internal
	// panic: Internal - permits in use: 0
	// server log: grpc.testing.TestService/UnaryCall Unavailable
	// server log: grpc.testing.TestService/UnaryCall Unavailable
	// retried: Unavailable - circuit open: true - attempts served: 2
}
