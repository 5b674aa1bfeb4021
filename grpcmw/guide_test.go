package grpcmw_test

// The Examples of docs/user-guide.md's gRPC section; docs/docs_test.go checks that the
// guide's code is in these bodies.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
)

// guideService answers UnaryCall with the status the request asks for.
type guideService struct {
	testpb.UnimplementedTestServiceServer
}

func (guideService) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{}, nil
}

// serveGuide serves srv over an in-memory listener and returns a connection to it (with
// the client options given) and a function that stops both.
func serveGuide(srv *grpc.Server, opts ...grpc.DialOption) (*grpc.ClientConn, func()) {
	testpb.RegisterTestServiceServer(srv, guideService{})
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	opts = append(opts,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("passthrough:///bufnet", opts...)
	if err != nil {
		panic(err)
	}
	return cc, func() { _ = cc.Close(); srv.Stop() }
}

func ExampleByMethod() {
	newBulkhead := func(name string) *core.Bulkhead {
		b, err := core.New(core.DefaultConfig(name))
		if err != nil {
			panic(err)
		}
		return b
	}
	sel := grpcmw.ByMethod(map[string]*core.Bulkhead{
		"/shop.v1.Orders/*":            newBulkhead("orders"),  // every method of the service
		"/shop.v1.Orders/Export":       newBulkhead("exports"), // one method: more specific
		"*":                            newBulkhead("other"),   // every other method
		"/grpc.health.v1.Health/Check": nil,                    // unguarded
	})
	for _, method := range []string{"/shop.v1.Orders/Get", "/shop.v1.Orders/Export", "/shop.v1.Users/Get", "/grpc.health.v1.Health/Check"} {
		name := "unguarded"
		if b := sel(context.Background(), method); b != nil {
			name = b.Name()
		}
		fmt.Println(method, "->", name)
	}
	// Output:
	// /shop.v1.Orders/Get -> orders
	// /shop.v1.Orders/Export -> exports
	// /shop.v1.Users/Get -> other
	// /grpc.health.v1.Health/Check -> unguarded
}

// A server's refusals are gRPC statuses; an open circuit also sends the retry pushback
// trailer (its remaining isolation, in milliseconds).
func ExampleUnaryServerInterceptor() {
	cfg := core.DefaultConfig("testing")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 1
	b, err := core.New(cfg)
	if err != nil {
		panic(err)
	}
	sel := grpcmw.ByMethod(map[string]*core.Bulkhead{"/grpc.testing.TestService/*": b})
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(sel)),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(sel)),
	)
	cc, stop := serveGuide(srv)
	defer stop()
	client := testpb.NewTestServiceClient(cc)
	ctx := context.Background()

	// The handler fails with Internal, one of the failure codes: the circuit opens.
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Internal)}})
	fmt.Println(status.Code(err), b.State())

	// The next call is refused before the handler runs. The message names the bulkhead and
	// the kind only; the details say it is a refusal, of which kind, and when to retry.
	var trailer metadata.MD
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	st := status.Convert(err)
	fmt.Println(st.Code(), st.Message())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			fmt.Println(d.GetDomain(), d.GetReason(), d.GetMetadata()["bulkhead"])
		case *errdetails.RetryInfo:
			fmt.Println("retry within the isolation:", d.GetRetryDelay().AsDuration() <= cfg.IsolationDuration)
		}
	}
	ms, _ := strconv.Atoi(trailer.Get("grpc-retry-pushback-ms")[0])
	fmt.Println("pushback within the isolation:", ms > 0 && ms <= int(cfg.IsolationDuration.Milliseconds()))
	// Output:
	// Internal isolated
	// Unavailable bulkhead "testing": circuit is open
	// bulkman CIRCUIT_OPEN testing
	// retry within the isolation: true
	// pushback within the isolation: true
}

// A client's own bulkhead refuses a call before it is sent: the error is a gRPC status
// and, in the same process, the *core.Error.
func ExampleUnaryClientInterceptor() {
	cfg := core.DefaultConfig("backend")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	backend, err := core.New(cfg)
	if err != nil {
		panic(err)
	}
	cc, stop := serveGuide(grpc.NewServer(),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.Always(backend))),
		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor(grpcmw.Always(backend))),
	)
	defer stop()
	client := testpb.NewTestServiceClient(cc)
	ctx := context.Background()

	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{})
	fmt.Println("sent:", err)

	p, _ := backend.Acquire(ctx) // someone holds the only permit
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{})
	fmt.Println(status.Code(err), errors.Is(err, core.ErrFull))
	_ = p.Release(core.Success)
	// Output:
	// sent: <nil>
	// ResourceExhausted true
}

// Keys that could never match an RPC are refused, naming the key: ByMethod panics on
// them (a table written in the program is wrong from its start), and ValidateMethod
// checks keys that come from input first.
func ExampleValidateMethod() {
	for _, key := range []string{"/shop.v1.Orders/*", "shop.v1.Orders/Get", "/shop.v1.Orders/Get*"} {
		if err := grpcmw.ValidateMethod(key); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(key, "ok")
	}
	// Output:
	// /shop.v1.Orders/* ok
	// grpcmw: method pattern "shop.v1.Orders/Get": a method pattern starts with a slash (want "/pkg.Service/Method", "/pkg.Service/*" or "*")
	// grpcmw: method pattern "/shop.v1.Orders/Get*": a wildcard stands for a whole method: "/pkg.Service/*" (want "/pkg.Service/Method", "/pkg.Service/*" or "*")
}
