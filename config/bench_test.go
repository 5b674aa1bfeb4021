package config_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
	"github.com/bulkman-go/bulkman/internal/cputime"
)

// The baselines (grpcmw.ByMethod and httpmw.ByPattern over the same tables) sit beside
// what they measure, so one run gives the ratios (docs/performance.md):
//
//	go test -run '^$' -bench . -benchmem -count 10 ./config/ | tee config.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /sel -filter '.name:/Selector/' config.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -filter '.name:Reload1000' config.txt

// routeFile is a file of n bulkheads, each guarding five gRPC routes and five HTTP
// routes (10n routes). limit sets every bulkhead's max_concurrent_calls, so that a file
// of another limit reconfigures every bulkhead; shift moves every route to another
// bulkhead; prefix names the HTTP paths, so that another prefix changes every pattern.
// One service in ten has a trailing-slash (prefix) pattern, unless prefixes says all do:
// ServeMux compares each prefix pattern with every other when it registers them.
type routeFile struct {
	n, limit, shift int
	prefix          string
	prefixes        bool
}

func (rf routeFile) String() string {
	var b strings.Builder
	b.WriteString("defaults:\n  max_queue_size: 10\n  timeout_seconds: 2\nbulkheads:\n")
	for i := range rf.n {
		fmt.Fprintf(&b, "  - name: s%d\n    max_concurrent_calls: %d\n", i, rf.limit+i%5)
		if i%10 == 0 {
			b.WriteString("    circuit_breaker_enabled: true\n")
		}
	}
	target := func(i int) int { return (i + rf.shift) % rf.n }
	b.WriteString("grpc:\n")
	for i := range rf.n {
		fmt.Fprintf(&b, "  \"/shop.v1.S%d/*\": s%d\n", i, target(i))
		for j := range 4 {
			fmt.Fprintf(&b, "  \"/shop.v1.S%d/M%d\": s%d\n", i, j, target(i+j))
		}
	}
	b.WriteString("http:\n")
	for i := range rf.n {
		p, t := rf.prefix, target(i)
		fmt.Fprintf(&b, "  \"GET /%s%d/items/{id}\": s%d\n", p, i, t)
		fmt.Fprintf(&b, "  \"POST /%s%d/items\": s%d\n", p, i, t)
		fmt.Fprintf(&b, "  \"GET /%s%d/items\": s%d\n", p, i, t)
		fmt.Fprintf(&b, "  \"DELETE /%s%d/items/{id}\": s%d\n", p, i, t)
		if rf.prefixes || i%10 == 0 {
			fmt.Fprintf(&b, "  \"/%s%d/static/\": s%d\n", p, i, t)
		} else {
			fmt.Fprintf(&b, "  \"PUT /%s%d/items/{id}\": s%d\n", p, i, t)
		}
	}
	return b.String()
}

// benchLive opens rf and returns the Live, its path and Manager.
func benchLive(b *testing.B, rf routeFile) (*config.Live, *core.Manager, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bulkheads.yaml")
	if err := os.WriteFile(path, []byte(rf.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	m := core.NewManager()
	l, err := config.Open(m, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		l.Close()
		m.Shutdown(context.Background())
	})
	return l, m, path
}

// reloadTo rewrites path with rf and reloads l.
func reloadTo(b *testing.B, l *config.Live, path string, rf routeFile) {
	b.Helper()
	if err := os.WriteFile(path, []byte(rf.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := l.Reload(); err != nil {
		b.Fatal(err)
	}
}

// byName returns the Manager's bulkheads behind the routes of f, for the baselines.
func baselines(m *core.Manager, f *config.File) (grpcmw.Selector, httpmw.Selector) {
	resolve := func(routes map[string]string) map[string]*core.Bulkhead {
		out := make(map[string]*core.Bulkhead, len(routes))
		for k, name := range routes {
			out[k], _ = m.Get(name)
		}
		return out
	}
	h, err := httpmw.ByPattern(resolve(f.HTTPRoutes()))
	if err != nil {
		panic(err)
	}
	return grpcmw.ByMethod(resolve(f.GRPCRoutes())), h
}

// The lookups, spread over a table of 100 services so that no one map slot decides the
// result: 32 exact methods and 32 service wildcards; 32 exact paths and 32 wildcard
// paths. A sub-benchmark's op is the whole batch of 64.
var (
	benchMethods  []string
	benchRequests []*http.Request
)

func init() {
	for i := range 32 {
		benchMethods = append(benchMethods,
			fmt.Sprintf("/shop.v1.S%d/M%d", i*3, i%4),
			fmt.Sprintf("/shop.v1.S%d/Other", i*3+1))
		benchRequests = append(benchRequests,
			httptest.NewRequest("POST", fmt.Sprintf("/s%d/items", i*3), nil),
			httptest.NewRequest("GET", fmt.Sprintf("/s%d/items/%d", i*3+1, i), nil))
	}
}

func BenchmarkSelector(b *testing.B) {
	rf := routeFile{n: 100, limit: 4, prefix: "s"}
	l, m, path := benchLive(b, rf)
	grpcBase, httpBase := baselines(m, l.File())
	liveBefore := struct {
		grpc grpcmw.Selector
		http httpmw.Selector
	}{l.GRPC(), l.HTTP()}
	ctx := context.Background()
	benchGRPC := func(b *testing.B, sel grpcmw.Selector) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			for _, method := range benchMethods {
				if sel(ctx, method) == nil {
					b.Fatal("no bulkhead")
				}
			}
		}
		cpu.reportNs(b)
	}
	benchHTTP := func(b *testing.B, sel httpmw.Selector) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			for _, r := range benchRequests {
				if sel(r) == nil {
					b.Fatal("no bulkhead")
				}
			}
		}
		cpu.reportNs(b)
	}
	b.Run("proto=grpc/sel=baseline", func(b *testing.B) { benchGRPC(b, grpcBase) })
	b.Run("proto=grpc/sel=live-before-reload", func(b *testing.B) { benchGRPC(b, liveBefore.grpc) })
	b.Run("proto=http/sel=baseline", func(b *testing.B) { benchHTTP(b, httpBase) })
	b.Run("proto=http/sel=live-before-reload", func(b *testing.B) { benchHTTP(b, liveBefore.http) })
	rf.limit, rf.shift = 9, 1 // new limits, every route to another bulkhead: new tables
	reloadTo(b, l, path, rf)
	b.Run("proto=grpc/sel=live-after-reload", func(b *testing.B) { benchGRPC(b, liveBefore.grpc) })
	b.Run("proto=http/sel=live-after-reload", func(b *testing.B) { benchHTTP(b, liveBefore.http) })
}

// BenchmarkSelectorParallel is BenchmarkSelector's lookups from every P at once, over
// the Live's selectors (after a reload) and the baselines over the same tables.
func BenchmarkSelectorParallel(b *testing.B) {
	rf := routeFile{n: 100, limit: 4, prefix: "s"}
	l, m, path := benchLive(b, rf)
	rf.limit, rf.shift = 9, 1
	reloadTo(b, l, path, rf)
	grpcBase, httpBase := baselines(m, l.File())
	ctx := context.Background()
	run := func(b *testing.B, g grpcmw.Selector, h httpmw.Selector) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if g(ctx, benchMethods[0]) == nil || h(benchRequests[0]) == nil {
					b.Fatal("no bulkhead")
				}
			}
		})
	}
	b.Run("sel=baseline", func(b *testing.B) { run(b, grpcBase, httpBase) })
	b.Run("sel=live-after-reload", func(b *testing.B) { run(b, l.GRPC(), l.HTTP()) })
}

// BenchmarkReload1000 reloads a file of 1,000 bulkheads and 10,000 routes (5,000 gRPC,
// 5,000 HTTP), alternating between two files that differ by
//
//   - change=limits: every bulkhead's limit (the route tables stay as they are);
//   - change=routes: every limit, and every route's bulkhead (new tables, same patterns);
//   - change=patterns: every limit, every route's bulkhead and every HTTP pattern;
//
// with file=mixed (one service in ten has a prefix pattern) or file=prefixes (all do,
// ServeMux's slowest case). A reload reads the file, parses and validates it,
// reconfigures every bulkhead, and builds and swaps the tables. step=parse is Parse alone
// on the same file, step=bypattern httpmw.ByPattern alone on its http: table.
func BenchmarkReload1000(b *testing.B) {
	for _, prefixes := range []bool{false, true} {
		file := "mixed"
		if prefixes {
			file = "prefixes"
		}
		base := routeFile{n: 1000, limit: 4, prefix: "s", prefixes: prefixes}
		for _, change := range []string{"limits", "routes", "patterns"} {
			next := base
			next.limit = 9
			if change != "limits" {
				next.shift = 1
			}
			if change == "patterns" {
				next.prefix = "t"
			}
			b.Run("file="+file+"/change="+change, func(b *testing.B) {
				l, _, path := benchLive(b, base)
				files := [2][]byte{[]byte(base.String()), []byte(next.String())}
				b.ReportAllocs()
				cpu := startCPU()
				i := 0
				for b.Loop() {
					i++
					b.StopTimer()
					if err := os.WriteFile(path, files[i%2], 0o600); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if err := l.Reload(); err != nil {
						b.Fatal(err)
					}
				}
				cpu.report(b)
			})
		}
		b.Run("file="+file+"/step=bypattern", func(b *testing.B) {
			// The floor of a reload that changes the http: table: httpmw.ByPattern over its
			// 5,000 patterns, which Live must call to build the new table.
			f, err := config.Parse("bulkheads.yaml", []byte(base.String()))
			if err != nil {
				b.Fatal(err)
			}
			table := make(map[string]*core.Bulkhead)
			for p := range f.HTTPRoutes() {
				table[p] = nil
			}
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				if _, err := httpmw.ByPattern(table); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
		b.Run("file="+file+"/step=parse", func(b *testing.B) {
			data := []byte(base.String())
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				if _, err := config.Parse("bulkheads.yaml", data); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// cpuClock measures the CPU time the process spends (user + system, every thread,
// the garbage collector's included), which, unlike sec/op, another tenant of a shared
// machine does not inflate.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{processCPU()} }

// processCPU is the process's CPU time; 0 where it is not measured (cpu-ms/op reads 0).
func processCPU() time.Duration {
	d, _ := cputime.Process()
	return d
}

// reportNs adds cpu-ns/op to the benchmark's results.
func (c cpuClock) reportNs(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

// report adds cpu-ms/op to the benchmark's results.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
