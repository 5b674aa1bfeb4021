package grpchealth_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpchealth"
)

func ExampleReporter() {
	hs := health.NewServer() // register it on your grpc.Server with healthpb.RegisterHealthServer
	r, err := grpchealth.New(hs, grpchealth.Config{
		Services: map[string][]string{"shop.Orders": {"postgres"}},
	})
	if err != nil {
		panic(err)
	}
	m := core.NewManager()
	cfg := core.DefaultConfig("postgres")
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 1
	db, _ := m.Create(cfg)

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, m) }() // one step: Run follows m's events and Stats

	status := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
		resp, _ := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		return resp.GetStatus()
	}
	waitFor := func(svc string, want healthpb.HealthCheckResponse_ServingStatus) {
		for deadline := time.Now().Add(5 * time.Second); status(svc) != want && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}

	waitFor("shop.Orders", healthpb.HealthCheckResponse_SERVING)
	fmt.Println("shop.Orders:", status("shop.Orders"))

	_, _ = core.Execute(context.Background(), db, func(context.Context) (int, error) {
		return 0, errors.New("connection refused") // the circuit opens
	})
	waitFor("shop.Orders", healthpb.HealthCheckResponse_NOT_SERVING)
	fmt.Println("shop.Orders:", status("shop.Orders"))
	fmt.Println(`overall "":`, status(""))

	stop()
	<-done
	// Output:
	// shop.Orders: SERVING
	// shop.Orders: NOT_SERVING
	// overall "": SERVING
}
