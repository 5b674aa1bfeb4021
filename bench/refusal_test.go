package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/failsafegrpc"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
)

// BenchmarkRefusalPaired measures refusals, the calls a server under overload answers
// most (nine in ten at ten times its capacity), interleaved as the other paired
// benchmarks are:
//
//   - HTTP: httpmw refusing (a full bulkhead, an open circuit) against a bare handler that
//     writes the same status, headers and body (its body made beforehand, as a
//     hand-written load shedder would), and failsafehttp refusing with a full bulkhead.
//     Each writes into a ResponseWriter that costs nothing and starts each response with
//     an empty header map, as net/http's does.
//   - gRPC: the server interceptor (full, open circuit) and the client interceptor (full)
//     called directly, against core's refusal alone (Acquire on the same full bulkhead:
//     the floor of any adapter) and failsafegrpc refusing with a full bulkhead. The server's
//     context holds a stand-in for gRPC's stream, so that the open circuit's pushback
//     trailer is set as on a real server.
//
// It reports per row ns/call- and allocs/call-, and for the httpmw rows over-bare-, the
// row's time over the bare handler's writing the same response (lower is better; the
// target is at most 1.5).
func BenchmarkRefusalPaired(b *testing.B) {
	rows := refusalPairedRows(b)
	total, allocs := timePaired(b, rows)
	calls := float64(b.N * pairedBlock)
	byName := map[string]time.Duration{}
	for i, r := range rows {
		byName[r.name] = total[i]
		b.ReportMetric(float64(total[i].Nanoseconds())/calls, "ns/call-"+r.name)
		b.ReportMetric(allocs[i], "allocs/call-"+r.name)
	}
	for row, bare := range map[string]string{"httpmw-full": "bare-full", "httpmw-open": "bare-open"} {
		b.ReportMetric(float64(byName[row])/float64(byName[bare]), "over-bare-"+row)
	}
}

// refusalFull returns a bulkhead whose only permit is held until tb ends.
func refusalFull(tb testing.TB) *core.Bulkhead {
	cfg := core.DefaultConfig("bench")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	b, err := core.New(cfg)
	require.NoError(tb, err)
	p, err := b.Acquire(context.Background())
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = p.Release(core.Success) })
	return b
}

// refusalOpen returns a bulkhead whose circuit is open for an hour.
func refusalOpen(tb testing.TB) *core.Bulkhead {
	cfg := core.DefaultConfig("bench")
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.IsolationDuration = true, 1, time.Hour
	b, err := core.New(cfg)
	require.NoError(tb, err)
	p, err := b.Acquire(context.Background())
	require.NoError(tb, err)
	require.NoError(tb, p.Release(core.Failure))
	require.Equal(tb, core.Isolated, b.State())
	return b
}

// freshWriter costs nothing and starts every response with an empty header map.
type freshWriter struct {
	h    http.Header
	code int
}

func (w *freshWriter) Header() http.Header         { return w.h }
func (w *freshWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *freshWriter) WriteHeader(code int)        { w.code = code }

// bareRefusal writes the status, headers and body of resp, as a hand-written handler
// would: header values set with Header.Set, the body made beforehand.
func bareRefusal(resp *httptest.ResponseRecorder) http.Handler {
	body := resp.Body.Bytes()
	ct, nosniff, retry := resp.Header().Get("Content-Type"), resp.Header().Get("X-Content-Type-Options"), resp.Header().Get("Retry-After")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("X-Content-Type-Options", nosniff)
		h.Set("Retry-After", retry)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(body)
	})
}

// transportStream stands in for gRPC's server stream in a handler's context.
type transportStream struct{ trailer metadata.MD }

func (*transportStream) Method() string                    { return "/bench.Echo/Call" }
func (*transportStream) SetHeader(metadata.MD) error       { return nil }
func (*transportStream) SendHeader(metadata.MD) error      { return nil }
func (s *transportStream) SetTrailer(md metadata.MD) error { s.trailer = md; return nil }

func noopInvoker(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
	return nil
}

// refusalPairedRows: the rows of BenchmarkRefusalPaired. Each checks that its calls are
// refused as it expects.
func refusalPairedRows(tb testing.TB) []pairedRow {
	req := httptest.NewRequestWithContext(requestContext(tb), http.MethodGet, "/", nil)
	httpRow := func(h http.Handler, want int) func(testing.TB) {
		w := &freshWriter{h: http.Header{}}
		return func(tb testing.TB) {
			for range pairedBlock {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != want {
					tb.Fatalf("status %d, want %d", w.code, want)
				}
			}
		}
	}
	sample := func(h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	fullMW := httpmw.Handler(noopHandler, refusalFull(tb))
	openMW := httpmw.Handler(noopHandler, refusalOpen(tb))
	fsBulkhead := bulkhead.New[*http.Response](1)
	require.True(tb, fsBulkhead.TryAcquirePermit())
	tb.Cleanup(fsBulkhead.ReleasePermit)
	fsFull := failsafehttp.NewHandler(noopHandler, fsBulkhead)

	ctx := grpc.NewContextWithServerTransportStream(requestContext(tb), &transportStream{})
	grpcRow := func(call func(ctx context.Context) error, want codes.Code) func(testing.TB) {
		return func(tb testing.TB) {
			for range pairedBlock {
				if err := call(ctx); status.Code(err) != want {
					tb.Fatalf("got %v, want %v", err, want)
				}
			}
		}
	}
	coreFull := refusalFull(tb)
	coreRow := func(tb testing.TB) {
		for range pairedBlock {
			if _, err := coreFull.Acquire(ctx); !errors.Is(err, core.ErrFull) {
				tb.Fatalf("got %v, want ErrFull", err)
			}
		}
	}
	server := func(i grpc.UnaryServerInterceptor) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := i(ctx, nil, unaryInfo, noopUnaryHandler)
			return err
		}
	}
	fsGRPCBulkhead := bulkhead.New[any](1)
	require.True(tb, fsGRPCBulkhead.TryAcquirePermit())
	tb.Cleanup(fsGRPCBulkhead.ReleasePermit)
	clientFull := grpcmw.UnaryClientInterceptor(grpcmw.Always(refusalFull(tb)))

	return []pairedRow{
		{"bare-full", httpRow(bareRefusal(sample(fullMW)), http.StatusServiceUnavailable)},
		{"httpmw-full", httpRow(fullMW, http.StatusServiceUnavailable)},
		{"bare-open", httpRow(bareRefusal(sample(openMW)), http.StatusServiceUnavailable)},
		{"httpmw-open", httpRow(openMW, http.StatusServiceUnavailable)},
		{"failsafehttp-full", httpRow(fsFull, http.StatusTooManyRequests)},
		{"core-full", coreRow},
		{"grpcmw-full", grpcRow(server(grpcmw.UnaryServerInterceptor(grpcmw.Always(refusalFull(tb)))), codes.ResourceExhausted)},
		{"grpcmw-open", grpcRow(server(grpcmw.UnaryServerInterceptor(grpcmw.Always(refusalOpen(tb)))), codes.Unavailable)},
		{"grpcmw-client-full", grpcRow(func(ctx context.Context) error {
			return clientFull(ctx, unaryInfo.FullMethod, nil, nil, nil, noopInvoker)
		}, codes.ResourceExhausted)},
		// failsafegrpc returns the bulkhead's error as it is: Unknown on the wire.
		{"failsafegrpc-full", grpcRow(server(failsafegrpc.NewUnaryServerInterceptor[any](fsGRPCBulkhead)), codes.Unknown)},
	}
}

// TestRefusalRowsRefuse runs every row's block once (each checks its own refusals), and
// checks that the bare rows write what the middleware writes.
func TestRefusalRowsRefuse(t *testing.T) {
	for _, r := range refusalPairedRows(t) {
		t.Run(r.name, func(t *testing.T) { r.run(t) })
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	mw := httptest.NewRecorder()
	httpmw.Handler(noopHandler, refusalFull(t)).ServeHTTP(mw, req)
	bare := httptest.NewRecorder()
	bareRefusal(mw).ServeHTTP(bare, req)
	assert.Equal(t, mw.Code, bare.Code)
	assert.Equal(t, mw.Header(), bare.Header())
	assert.Equal(t, mw.Body.String(), bare.Body.String())
}
