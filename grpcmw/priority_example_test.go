package grpcmw_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

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

// The server ranks RPCs by what it has authenticated, here an API key in the metadata:
// the tenant is the key's owner, and the owner's method that pays is critical.
func ExampleWithPriorityFunc() {
	owners := map[string]string{"k-123": "checkout", "k-456": "reports"}
	classify := func(ctx context.Context, fullMethod string) (core.Priority, string) {
		keys := metadata.ValueFromIncomingContext(ctx, "x-api-key")
		if len(keys) == 0 || owners[keys[0]] == "" {
			return core.PriorityLow, "" // unknown callers are shed first
		}
		owner := owners[keys[0]]
		if owner == "checkout" && fullMethod == "/grpc.testing.TestService/UnaryCall" {
			return core.PriorityCritical, owner
		}
		return core.PriorityNormal, owner
	}
	b, err := core.New(core.DefaultConfig("api"))
	if err != nil {
		panic(err)
	}
	show := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		fmt.Printf("server sees: %s %q\n", core.PriorityFrom(ctx), core.TenantFrom(ctx))
		return next(ctx, req)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(grpcmw.Always(b), grpcmw.WithPriorityFunc(classify)), show),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(grpcmw.Always(b), grpcmw.WithPriorityFunc(classify))),
	)
	cc, stop := serveGuide(srv)
	defer stop()
	client := testpb.NewTestServiceClient(cc)

	for _, key := range []string{"k-123", "k-456", "nope"} {
		ctx := metadata.AppendToOutgoingContext(context.Background(),
			"x-api-key", key,
			grpcmw.PriorityKey, "critical") // not trusted: ignored
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		fmt.Println(err)
	}
	// Output:
	// server sees: critical "checkout"
	// <nil>
	// server sees: normal "reports"
	// <nil>
	// server sees: low ""
	// <nil>
}
