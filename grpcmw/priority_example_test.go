package grpcmw_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
)

// Services of one system pass priorities and tenants along: the client interceptor sends
// the context's as metadata, and a server that trusts its callers takes them.
func ExampleWithTrustedMetadata() {
	b, err := core.New(core.DefaultConfig("orders"))
	if err != nil {
		panic(err)
	}
	show := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		fmt.Println("server sees:", core.PriorityFrom(ctx), core.TenantFrom(ctx))
		return next(ctx, req)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(
		grpcmw.UnaryServerInterceptor(grpcmw.Always(b), grpcmw.WithTrustedMetadata()),
		show,
	))
	cc, stop := serveGuide(srv, grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(nil)))
	defer stop()
	client := testpb.NewTestServiceClient(cc)

	ctx := core.WithTenant(core.WithPriority(context.Background(), core.PriorityHigh), "acme")
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{})
	fmt.Println(err)
	// Output:
	// server sees: high acme
	// <nil>
}
