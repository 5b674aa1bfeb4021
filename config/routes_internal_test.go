package config

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

// TestCheckHTTPGroupsAgreeWithByPattern: checking patterns in groups by host and first
// segment finds a problem exactly when one httpmw.ByPattern over them all does.
func TestCheckHTTPGroupsAgreeWithByPattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	segment := func() string {
		if rng.IntN(20) == 0 {
			return pick("a%62", "..", "", "{x}")
		}
		return pick("a", "b", "c", "d", "e", "{y}")
	}
	pattern := func() string {
		var b strings.Builder
		b.WriteString(pick("", "", "GET ", "POST ", "GET  ", "HEAD "))
		b.WriteString(pick("", "", "", "h.com", "x.org", "{h}"))
		for range 1 + rng.IntN(3) {
			b.WriteString("/" + segment())
		}
		b.WriteString(pick("", "", "/", "/{rest...}", "/{$}"))
		return b.String()
	}
	agreed, refused := 0, 0
	for range 10000 {
		table := make(map[string]*core.Bulkhead)
		var rs []route
		for i := range 2 + rng.IntN(5) {
			pat := pattern()
			if _, dup := table[pat]; dup {
				continue
			}
			table[pat] = nil
			rs = append(rs, route{pattern: pat, at: pos{i + 1, 3}})
		}
		_, err := httpmw.ByPattern(table)
		p := &parser{problems: problems{file: "f"}}
		p.checkHTTP(rs)
		if (err != nil) != (len(p.errs) > 0) {
			t.Fatalf("patterns %q: ByPattern says %v; the groups found %v", slices.Collect(maps.Keys(table)), err, p.err())
		}
		agreed++
		if err != nil {
			refused++
		}
	}
	t.Logf("%d sets agreed, %d of them refused", agreed, refused)
	if refused == 0 || refused == agreed {
		t.Fatalf("the generator should make both good and bad sets")
	}
}
