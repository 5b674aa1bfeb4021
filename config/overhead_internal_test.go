package config

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/cputime"
)

// BenchmarkLiveOverhead isolates what a Live's selector adds to a lookup (an atomic load
// and a call): sel=table calls the current table's grpcmw.ByMethod / httpmw.ByPattern
// selector directly, sel=live the same table through Live.GRPC / Live.HTTP; the same map
// instances, so that only the wrapper differs. reload=after repeats it on the table a
// reload built.
func BenchmarkLiveOverhead(b *testing.B) {
	file := func(limit, shift int) *File {
		var data string
		data += "bulkheads:\n"
		for i := range 100 {
			data += fmt.Sprintf("  - {name: s%d, max_concurrent_calls: %d}\n", i, limit)
		}
		data += "grpc:\n"
		for i := range 100 {
			data += fmt.Sprintf("  \"/shop.v1.S%d/*\": s%d\n  \"/shop.v1.S%d/M\": s%d\n", i, (i+shift)%100, i, (i+shift+1)%100)
		}
		data += "http:\n"
		for i := range 100 {
			data += fmt.Sprintf("  \"GET /s%d/items/{id}\": s%d\n  \"POST /s%d/items\": s%d\n", i, (i+shift)%100, i, (i+shift+1)%100)
		}
		f, err := Parse("f.yaml", []byte(data))
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
	var methods []string
	var reqs []*http.Request
	for i := range 32 {
		methods = append(methods, fmt.Sprintf("/shop.v1.S%d/M", i*3), fmt.Sprintf("/shop.v1.S%d/Other", i*3+1))
		reqs = append(reqs, httptest.NewRequest("POST", fmt.Sprintf("/s%d/items", i*3), nil),
			httptest.NewRequest("GET", fmt.Sprintf("/s%d/items/%d", i*3+1, i), nil))
	}
	m := core.NewManager()
	defer m.Shutdown(context.Background())
	l, err := New(m, file(4, 0))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	grpcLookups := func(sel func(context.Context, string) *core.Bulkhead) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				for _, method := range methods {
					if sel(ctx, method) == nil {
						b.Fatal("no bulkhead")
					}
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
	httpLookups := func(sel func(*http.Request) *core.Bulkhead) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				for _, r := range reqs {
					if sel(r) == nil {
						b.Fatal("no bulkhead")
					}
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
	for _, phase := range []string{"before", "after"} {
		if phase == "after" {
			if err := l.Apply(file(9, 1)); err != nil {
				b.Fatal(err)
			}
		}
		t := l.cur.Load()
		b.Run("reload="+phase+"/proto=grpc/sel=table", grpcLookups(t.grpc))
		b.Run("reload="+phase+"/proto=grpc/sel=live", grpcLookups(l.GRPC()))
		b.Run("reload="+phase+"/proto=http/sel=table", httpLookups(t.http))
		b.Run("reload="+phase+"/proto=http/sel=live", httpLookups(l.HTTP()))
	}
}

// cpuTime is the process's CPU time (see cpuClock in bench_test.go); 0 where unknown.
func cpuTime() time.Duration {
	d, _ := cputime.Process()
	return d
}
