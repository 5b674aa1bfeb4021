package grpcmw

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/bulkman-go/bulkman/core"
)

// The baselines live next to what they measure, so that one run gives the ratios. On a
// quiet machine:
//
//	go test -run '^$' -bench . -benchmem -count 10 ./grpcmw/ | tee grpcmw.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl grpcmw.txt
//
// Each benchmark's cases are named impl=..., so that benchstat puts them side by side.
// On a busy one, where the load changes between cases that run seconds apart, read
// BenchmarkUnaryRPCPaired, which interleaves the cases and reports the ratios itself.
// The comparison with failsafe-go's failsafegrpc interceptor lives in the nested module
// bench/ (BenchmarkGRPCUnary, BenchmarkGRPCPaired), so that failsafegrpc stays out of
// bulkman's go.mod; docs/performance.md has the commands.

// benchBulkhead never fills: the benchmarks measure the admitted path.
func benchBulkhead(b *testing.B, breaker bool, timeout time.Duration) *core.Bulkhead {
	cfg := core.DefaultConfig("bench")
	cfg.MaxConcurrentCalls = 1024
	cfg.CircuitBreakerEnabled = breaker
	cfg.Timeout = timeout
	bh, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return bh
}

var sink any

//go:noinline
func noopUnary(_ context.Context, req any) (any, error) { sink = req; return req, nil }

//go:noinline
func noopStream(srv any, _ grpc.ServerStream) error { sink = srv; return nil }

// BenchmarkUnaryServerInterceptor calls each interceptor directly with a no-op handler.
func BenchmarkUnaryServerInterceptor(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}
	for _, bc := range []struct {
		name string
		new  func(b *testing.B) grpc.UnaryServerInterceptor
	}{
		{"impl=none", func(*testing.B) grpc.UnaryServerInterceptor {
			return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				return h(ctx, req)
			}
		}},
		{"impl=grpcmw", func(b *testing.B) grpc.UnaryServerInterceptor {
			return UnaryServerInterceptor(Always(benchBulkhead(b, false, 0)))
		}},
		{"impl=grpcmw-breaker", func(b *testing.B) grpc.UnaryServerInterceptor {
			return UnaryServerInterceptor(Always(benchBulkhead(b, true, 0)))
		}},
		{"impl=grpcmw-breaker-timeout", func(b *testing.B) grpc.UnaryServerInterceptor {
			return UnaryServerInterceptor(Always(benchBulkhead(b, true, time.Second)))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			interceptor := bc.new(b)
			ctx := b.Context() // can end, as every context gRPC gives a handler can
			b.ReportAllocs()
			for b.Loop() {
				if _, err := interceptor(ctx, info, info, noopUnary); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamServerInterceptor calls the stream interceptor directly with a no-op
// handler.
func BenchmarkStreamServerInterceptor(b *testing.B) {
	info := &grpc.StreamServerInfo{FullMethod: "/grpc.testing.TestService/FullDuplexCall", IsClientStream: true, IsServerStream: true}
	var ss grpc.ServerStream = fakeServerStream{ctx: b.Context()} // can end, as gRPC's can
	for _, bc := range []struct {
		name string
		new  func(b *testing.B) grpc.StreamServerInterceptor
	}{
		{"impl=none", func(*testing.B) grpc.StreamServerInterceptor {
			return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				return h(srv, ss)
			}
		}},
		{"impl=grpcmw", func(b *testing.B) grpc.StreamServerInterceptor {
			return StreamServerInterceptor(Always(benchBulkhead(b, false, 0)))
		}},
		{"impl=grpcmw-breaker", func(b *testing.B) grpc.StreamServerInterceptor {
			return StreamServerInterceptor(Always(benchBulkhead(b, true, 0)))
		}},
		{"impl=grpcmw-breaker-timeout", func(b *testing.B) grpc.StreamServerInterceptor {
			return StreamServerInterceptor(Always(benchBulkhead(b, true, time.Second)))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			interceptor := bc.new(b)
			b.ReportAllocs()
			for b.Loop() {
				if err := interceptor(info, ss, info, noopStream); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkByMethod measures a lookup in a table of a few routes (impl=bymethod) against
// the floor of any table: one read of a map keyed by the full method name (impl=map),
// holding the methods looked up.
func BenchmarkByMethod(b *testing.B) {
	bh := benchBulkhead(b, false, 0)
	sel := ByMethod(map[string]*core.Bulkhead{
		"/grpc.testing.TestService/EmptyCall": bh,
		"/grpc.testing.TestService/*":         bh,
		"/grpc.health.v1.Health/Check":        nil,
		"*":                                   bh,
	})
	methods := []string{"/grpc.testing.TestService/EmptyCall", "/grpc.testing.TestService/UnaryCall", "/other.Service/Method"}
	plain := map[string]*core.Bulkhead{"/grpc.health.v1.Health/Check": nil}
	for _, m := range methods {
		plain[m] = bh
	}
	impls := []struct {
		name string
		sel  Selector
	}{
		{"impl=bymethod", sel},
		{"impl=map", func(_ context.Context, m string) *core.Bulkhead { return plain[m] }},
	}
	for _, m := range methods {
		for _, impl := range impls {
			b.Run("method="+m[1:]+"/"+impl.name, func(b *testing.B) {
				ctx := b.Context()
				b.ReportAllocs()
				for b.Loop() {
					if impl.sel(ctx, m) == nil {
						b.Fatal("no bulkhead")
					}
				}
			})
		}
	}
}

// rpcClient serves a fresh TestService over loopback TCP, with the server and dial options
// given, and returns a connected client. Everything is closed when b ends.
func rpcClient(b *testing.B, srvOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) testpb.TestServiceClient {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(srvOpts...)
	testpb.RegisterTestServiceServer(srv, &testService{})
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	dialOpts = append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), dialOpts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	c := testpb.NewTestServiceClient(cc)
	if _, err := c.EmptyCall(context.Background(), &testpb.Empty{}); err != nil { // connect outside the timing
		b.Fatal(err)
	}
	return c
}

// rpcConfigs are the setups the RPC benchmarks compare: no interceptor at all, a
// do-nothing interceptor (gRPC's own cost of having one), the grpcmw server interceptor,
// and grpcmw on both sides. The bulkheads have their breaker on and never fill.
var rpcConfigs = []struct {
	name string
	new  func(b *testing.B) testpb.TestServiceClient
}{
	{"impl=none", func(b *testing.B) testpb.TestServiceClient { return rpcClient(b, nil) }},
	{"impl=noop-interceptor", func(b *testing.B) testpb.TestServiceClient {
		noop := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return h(ctx, req)
		}
		return rpcClient(b, []grpc.ServerOption{grpc.UnaryInterceptor(noop)})
	}},
	{"impl=grpcmw-server", func(b *testing.B) testpb.TestServiceClient {
		return rpcClient(b, []grpc.ServerOption{grpc.UnaryInterceptor(UnaryServerInterceptor(Always(benchBulkhead(b, true, 0))))})
	}},
	{"impl=grpcmw-server-client", func(b *testing.B) testpb.TestServiceClient {
		return rpcClient(b, []grpc.ServerOption{grpc.UnaryInterceptor(UnaryServerInterceptor(Always(benchBulkhead(b, true, 0))))},
			grpc.WithUnaryInterceptor(UnaryClientInterceptor(Always(benchBulkhead(b, true, 0)))))
	}},
}

// BenchmarkUnaryRPC measures whole EmptyCall RPCs over a loopback TCP connection, 4 per
// CPU at a time, for each of rpcConfigs. On a busy machine, run it several times in turn
// (see docs/performance.md) or read BenchmarkUnaryRPCPaired, since the cases run
// one after the other and the load may change between them.
func BenchmarkUnaryRPC(b *testing.B) {
	for _, rc := range rpcConfigs {
		b.Run(rc.name, func(b *testing.B) {
			c := rc.new(b)
			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx, in := context.Background(), &testpb.Empty{}
				for pb.Next() {
					if _, err := c.EmptyCall(ctx, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkUnaryRPCPaired runs the RPCs of all rpcConfigs interleaved, each goroutine
// taking them in turn, so that every configuration sees the same load at the same moment;
// it reports each one's mean time per RPC and its throughput relative to impl=none
// ("x-none", higher is better). One op is one round of len(rpcConfigs) RPCs.
func BenchmarkUnaryRPCPaired(b *testing.B) {
	clients := make([]testpb.TestServiceClient, len(rpcConfigs))
	for i, rc := range rpcConfigs {
		clients[i] = rc.new(b)
	}
	var mu sync.Mutex
	total := make([]time.Duration, len(rpcConfigs))
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, in := context.Background(), &testpb.Empty{}
		mine := make([]time.Duration, len(clients))
		for turn := 0; pb.Next(); turn++ {
			// Rotate the order too, so that no configuration always goes first.
			for j := range clients {
				i := (turn + j) % len(clients)
				start := time.Now()
				if _, err := clients[i].EmptyCall(ctx, in); err != nil {
					b.Error(err)
					return
				}
				mine[i] += time.Since(start)
			}
		}
		mu.Lock()
		for i, d := range mine {
			total[i] += d
		}
		mu.Unlock()
	})
	b.StopTimer()
	for i, rc := range rpcConfigs {
		name := strings.TrimPrefix(rc.name, "impl=")
		b.ReportMetric(float64(total[i].Nanoseconds())/float64(b.N), "ns/rpc-"+name)
		if i > 0 {
			b.ReportMetric(float64(total[0])/float64(total[i]), "x-none-"+name)
		}
	}
}
