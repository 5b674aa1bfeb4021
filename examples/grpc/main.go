// Command grpc serves two gRPC services over a loopback TCP listener, each guarded by its
// own bulkhead, and drives one of them into rejection while the other keeps answering:
// first by filling its bulkhead and its queue, then by opening its circuit (the server then sends the
// grpc-retry-pushback-ms trailer), and finally lets the circuit close again. It prints
// what the client got and exits by itself after a few seconds.
//
//	go run ./examples/grpc
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// testService is the guarded dependency: EmptyCall is slow (it waits until release is
// closed), and UnaryCall answers with the status the request asks for.
type testService struct {
	testpb.UnimplementedTestServiceServer
	entered chan struct{}
	release chan struct{}
}

func (s *testService) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	s.entered <- struct{}{}
	select {
	case <-s.release:
		return &testpb.Empty{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *testService) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{}, nil
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Two bulkheads, one per service. "testing" admits two calls at a time and lets two
	// more wait (a burst of four is served; see docs/user-guide.md, "Choosing limits"), and
	// isolates the service for two seconds after three failures in a row.
	m := core.NewManager()
	cfg := core.DefaultConfig("testing")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 2, 2
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold, cfg.SuccessThreshold = 3, 1
	cfg.IsolationDuration = 2 * time.Second
	testing, err := m.Create(cfg)
	if err != nil {
		return err
	}
	checks, err := m.Create(core.DefaultConfig("health"))
	if err != nil {
		return err
	}
	sel := grpcmw.ByMethod(map[string]*core.Bulkhead{
		"/grpc.testing.TestService/*": testing,
		"/grpc.health.v1.Health/*":    checks,
	})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(sel)),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(sel)),
	)
	svc := &testService{entered: make(chan struct{}, 4), release: make(chan struct{})}
	testpb.RegisterTestServiceServer(srv, svc)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.GracefulStop()
		<-served
	}()
	fmt.Println("serving on", lis.Addr())

	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = cc.Close() }()
	client := testpb.NewTestServiceClient(cc)
	healthClient := healthpb.NewHealthClient(cc)
	checkHealth := func() {
		resp, err := healthClient.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			fmt.Println("  health check:", status.Code(err), status.Convert(err).Message())
			return
		}
		fmt.Println("  health check (the other bulkhead) meanwhile:", resp.GetStatus())
	}

	fmt.Println("1. two slow calls take both permits of \"testing\", two more wait in its queue; a fifth is refused")
	held := cfg.MaxConcurrentCalls + cfg.MaxQueueSize
	slow := make(chan error, held)
	for range held {
		go func() {
			_, err := client.EmptyCall(ctx, &testpb.Empty{})
			slow <- err
		}()
	}
	<-svc.entered
	<-svc.entered
	for testing.Stats().QueuedTasks < cfg.MaxQueueSize {
		time.Sleep(time.Millisecond) // the other two are on their way into the queue
	}
	fmt.Println("  " + statsLine(testing))
	_, err = client.EmptyCall(ctx, &testpb.Empty{})
	report("fifth call", err, nil)
	checkHealth()
	close(svc.release)
	for range held {
		if err := <-slow; err != nil {
			return fmt.Errorf("slow call: %w", err)
		}
	}
	fmt.Println("  the slow calls finished, the queued ones too:", statsLine(testing))

	fmt.Println("2. the service fails three times in a row; its circuit opens")
	down := &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Unavailable), Message: "backend down"}}
	for i := 1; i <= 3; i++ {
		_, err := client.UnaryCall(ctx, down)
		report(fmt.Sprintf("failing call %d", i), err, nil)
	}
	var trailer metadata.MD
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	report("next call", err, trailer)
	checkHealth()
	fmt.Println("  " + statsLine(testing))

	fmt.Println("3. after the isolation, a probe succeeds and the circuit closes")
	time.Sleep(cfg.IsolationDuration + 100*time.Millisecond)
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{})
	report("probe", err, nil)
	fmt.Println("  " + statsLine(testing))
	fmt.Println("  " + statsLine(checks))
	return nil
}

// report prints what a call got: its code, message, the details of a refusal and any
// pushback trailer.
func report(what string, err error, trailer metadata.MD) {
	st := status.Convert(err)
	line := fmt.Sprintf("  %s: %s", what, st.Code())
	if st.Message() != "" {
		line += fmt.Sprintf(" %q", st.Message())
	}
	for _, d := range st.Details() { // a bulkhead's refusal says so, and when to retry
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			line += fmt.Sprintf(", %s/%s", d.GetDomain(), d.GetReason())
		case *errdetails.RetryInfo:
			line += fmt.Sprintf(", retry in %v", d.GetRetryDelay().AsDuration())
		}
	}
	if v := trailer.Get("grpc-retry-pushback-ms"); len(v) > 0 {
		line += ", trailer grpc-retry-pushback-ms=" + v[0]
	}
	fmt.Println(line)
}

func statsLine(b *core.Bulkhead) string {
	s := b.Stats()
	return fmt.Sprintf("%s: state=%s total=%d ok=%d failed=%d rejected=%d active=%d queued=%d",
		s.Name, s.State, s.TotalExecutions, s.SuccessfulExecutions, s.FailedExecutions, s.RejectedExecutions, s.ActiveTasks, s.QueuedTasks)
}
