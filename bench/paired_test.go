package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bulkman-go/bulkman/grpcmw"
)

// The paired benchmarks measure the rows of BenchmarkGRPCUnary and BenchmarkHTTPHandler
// (unaryCases, handlerCases) once more, interleaved: every op runs a block of calls of each row
// in turn, so that all rows see the same load at the same moment. On this shared machine
// the rows of a plain benchmark run seconds apart, and a burst of load from another
// process lands on some rows and not others; a paired ratio does not move with it. They
// moved here from grpcmw and httpmw (BenchmarkServerInterceptorsPaired and the failsafehttp
// rows of BenchmarkHandler), so that failsafegrpc and failsafehttp stay out of bulkman's
// go.mod.
//
// Each reports, per row, ns/call-<row> (mean time of one call), allocs/call-<row> (its
// allocations per call, measured before the timed loop) and x-failsafe-<row> (the base
// row's time over this row's: how many times faster than failsafe-go with a timeout, a
// breaker and a bulkhead; higher is better). Their allocs/op and B/op are of one op: a
// block of every row.

// pairedBlock is how many calls of one row run back to back before the next row's turn:
// long enough that reading the clock around the block costs nothing, short enough that
// every row samples every moment.
const pairedBlock = 64

// pairedRow is one row of a paired benchmark: run makes pairedBlock calls.
type pairedRow struct {
	name string
	run  func(tb testing.TB)
}

// pairedBase names the row the ratios are against: failsafe-go with a timeout, a breaker
// and a bulkhead.
const pairedBase = "failsafe-timeout+cb+bh"

// pairedAllocRuns is how many blocks of a row testing.AllocsPerRun averages.
const pairedAllocRuns = 10

// runPaired times rows in turn and reports them, with the ratios against pairedBase's.
func runPaired(b *testing.B, rows []pairedRow) { runPairedAgainst(b, rows, pairedBase) }

// runPairedAgainst is runPaired with the ratios against the row named baseName.
func runPairedAgainst(b *testing.B, rows []pairedRow, baseName string) {
	base := slices.IndexFunc(rows, func(r pairedRow) bool { return r.name == baseName })
	if base < 0 {
		b.Fatalf("no %s row", baseName)
	}
	// b.ReportAllocs sums every row of an op; a row's own count is measured apart (b.Loop
	// resets the counters, so these blocks are not in allocs/op).
	allocs := make([]float64, len(rows))
	for i, r := range rows {
		allocs[i] = testing.AllocsPerRun(pairedAllocRuns, func() { r.run(b) }) / pairedBlock
	}
	total := make([]time.Duration, len(rows))
	b.ReportAllocs()
	for b.Loop() {
		for i, r := range rows {
			start := time.Now()
			r.run(b)
			total[i] += time.Since(start)
		}
	}
	calls := float64(b.N * pairedBlock)
	for i, r := range rows {
		b.ReportMetric(float64(total[i].Nanoseconds())/calls, "ns/call-"+r.name)
		b.ReportMetric(allocs[i], "allocs/call-"+r.name)
		if i != base {
			b.ReportMetric(float64(total[base])/float64(total[i]), "x-failsafe-"+r.name)
		}
	}
}

// fakeServerStream is a server stream for calling a stream interceptor directly.
type fakeServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeServerStream) Context() context.Context { return s.ctx }
func (s fakeServerStream) SetTrailer(metadata.MD)   {}

var streamInfo = &grpc.StreamServerInfo{FullMethod: "/bench.Echo/Stream", IsClientStream: true, IsServerStream: true}

func noopStreamHandler(any, grpc.ServerStream) error { return nil }

// grpcPairedRows: the interceptors of unaryCases, then grpcmw's stream server interceptor
// in the three configurations of bulkmanUnaryCases. failsafe-go has no stream interceptor.
func grpcPairedRows(tb testing.TB) []pairedRow {
	ctx := requestContext(tb)
	unary := func(i grpc.UnaryServerInterceptor) func(testing.TB) {
		return func(tb testing.TB) {
			for range pairedBlock {
				if resp, err := i(ctx, nil, unaryInfo, noopUnaryHandler); err != nil || resp != any(unaryReply) {
					tb.Fatalf("interceptor returned (%v, %v)", resp, err)
				}
			}
		}
	}
	var ss grpc.ServerStream = fakeServerStream{ctx: ctx} // boxed once: a row counts the interceptor's allocations only
	stream := func(i grpc.StreamServerInterceptor) func(testing.TB) {
		return func(tb testing.TB) {
			for range pairedBlock {
				if err := i(nil, ss, streamInfo, noopStreamHandler); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	var rows []pairedRow
	for _, uc := range unaryCases() {
		rows = append(rows, pairedRow{uc.name, unary(uc.build(tb))})
	}
	return append(rows,
		pairedRow{"bulkman-grpcmw-stream", stream(grpcmw.StreamServerInterceptor(grpcmw.Always(newBulkman(tb, plain))))},
		pairedRow{"bulkman-grpcmw-stream-cb", stream(grpcmw.StreamServerInterceptor(grpcmw.Always(newBulkman(tb, withBreaker))))},
		pairedRow{"bulkman-grpcmw-stream-timeout+cb", stream(grpcmw.StreamServerInterceptor(grpcmw.Always(newBulkman(tb, timeoutBreaker))))},
	)
}

// BenchmarkGRPCPaired runs grpcPairedRows interleaved. One op is one block of each row.
func BenchmarkGRPCPaired(b *testing.B) { runPaired(b, grpcPairedRows(b)) }

// statusWriter is a ResponseWriter that costs (almost) nothing, so that a row measures the
// middleware and not a recorder; it keeps the status to check it.
type statusWriter struct {
	h    http.Header
	code int
}

func (w *statusWriter) Header() http.Header { return w.h }
func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// noContent answers 204, so that every row's response is explicit.
var noContent = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

// httpPairedRows: the middleware of handlerCases around a handler that answers 204, served
// to a statusWriter.
func httpPairedRows(tb testing.TB) []pairedRow {
	req := httptest.NewRequestWithContext(requestContext(tb), http.MethodGet, "/", nil)
	row := func(h http.Handler) func(testing.TB) {
		w := &statusWriter{h: http.Header{}}
		return func(tb testing.TB) {
			for range pairedBlock {
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != http.StatusNoContent {
					tb.Fatalf("status %d", w.code)
				}
			}
		}
	}
	var rows []pairedRow
	for _, hc := range handlerCases() {
		rows = append(rows, pairedRow{hc.name, row(hc.build(tb, noContent))})
	}
	return rows
}

// BenchmarkHTTPPaired runs httpPairedRows interleaved. One op is one block of each row.
func BenchmarkHTTPPaired(b *testing.B) { runPaired(b, httpPairedRows(b)) }

// TestPairedRowsServe runs every paired row's block once: each call must succeed (the rows
// check their own results).
func TestPairedRowsServe(t *testing.T) {
	for kind, rows := range map[string][]pairedRow{"grpc": grpcPairedRows(t), "http": httpPairedRows(t)} {
		require.NotEmpty(t, rows)
		for _, r := range rows {
			t.Run(kind+"/"+r.name, func(t *testing.T) { r.run(t) })
		}
	}
}
