package httpmw

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// newBulkhead returns a bulkhead called name, DefaultConfig changed by mutate.
func newBulkhead(t testing.TB, name string, mutate ...func(*core.Config)) *core.Bulkhead {
	t.Helper()
	return newBulkheadWith(t, name, mutate)
}

// newBulkheadWith is newBulkhead with core options.
func newBulkheadWith(t testing.TB, name string, mutate []func(*core.Config), opts ...core.Option) *core.Bulkhead {
	t.Helper()
	cfg := core.DefaultConfig(name)
	for _, m := range mutate {
		m(&cfg)
	}
	b, err := core.New(cfg, opts...)
	require.NoError(t, err)
	return b
}

// table builds a ByPattern selector whose bulkheads are named after their patterns.
func table(t *testing.T, patterns ...string) Selector {
	t.Helper()
	routes := make(map[string]*core.Bulkhead, len(patterns))
	for _, p := range patterns {
		routes[p] = newBulkhead(t, p)
	}
	sel, err := ByPattern(routes)
	require.NoError(t, err)
	return sel
}

func selected(sel Selector, r *http.Request) string {
	if b := sel(r); b != nil {
		return b.Name()
	}
	return ""
}

func TestByPatternPrecedence(t *testing.T) {
	sel := table(t,
		"/a/", "/a/b", "/a/b/{$}",
		"GET /x", "/x", "HEAD /h", "GET /h",
		"api.test/x", "api.test/w/{id}",
		"GET /users/{id}", "GET /users/me", "/files/{path...}",
		"/{$}", "POST /users/{id}/orders",
	)
	tests := []struct {
		method, target, host, want string
	}{
		{"GET", "/a/b", "", "/a/b"},
		{"GET", "/a/b/", "", "/a/b/{$}"},
		{"GET", "/a/b/c", "", "/a/"}, // "/a/b" is not a prefix pattern
		{"GET", "/a/c", "", "/a/"},
		{"GET", "/a/", "", "/a/"},
		{"GET", "/a", "", "/a/"}, // ServeMux would redirect to /a/
		{"GET", "/x", "", "GET /x"},
		{"HEAD", "/x", "", "GET /x"}, // GET patterns match HEAD
		{"POST", "/x", "", "/x"},
		{"HEAD", "/h", "", "HEAD /h"},
		{"GET", "/h", "", "GET /h"},
		{"GET", "/x", "api.test", "api.test/x"}, // host patterns first
		{"GET", "/x", "api.test:8080", "api.test/x"},
		{"GET", "/x", "other.com", "GET /x"},
		{"GET", "/w/1", "api.test", "api.test/w/{id}"},
		{"GET", "/w/1", "other.com", ""},
		{"GET", "/users/42", "", "GET /users/{id}"},
		{"GET", "/users/me", "", "GET /users/me"},
		{"DELETE", "/users/42", "", ""},
		{"POST", "/users/42/orders", "", "POST /users/{id}/orders"},
		{"GET", "/users/42/orders", "", ""},
		{"GET", "/files/a/b/c", "", "/files/{path...}"},
		{"GET", "/", "", "/{$}"},
		{"GET", "/nope", "", ""},
		{"GET", "/a/../x", "", "GET /x"}, // cleaned, as ServeMux does
		{"GET", "/a//b", "", "/a/b"},
		{"GET", "/a%2Fb", "", ""}, // one segment "a/b"
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host+tt.target, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = tt.host
			assert.Equal(t, tt.want, selected(sel, r))
		})
	}
}

func TestByPatternPrefersRequestPattern(t *testing.T) {
	sel := table(t, "/a/{x}", "/a/b")
	r := httptest.NewRequest("GET", "/a/b", nil)
	assert.Equal(t, "/a/b", selected(sel, r), "before routing: matched")
	r.Pattern = "/a/{x}" // the app's mux routed it to its "/a/{x}" route
	assert.Equal(t, "/a/{x}", selected(sel, r), "after routing: r.Pattern wins")
	r.Pattern = "/elsewhere/"
	assert.Equal(t, "/a/b", selected(sel, r), "an unknown r.Pattern falls back to matching")
}

// TestByPatternMountedSubrouter wraps a sub-router mounted under a prefix route of
// another mux, where r.Pattern is the outer mux's prefix for every request.
func TestByPatternMountedSubrouter(t *testing.T) {
	sel := table(t, "/api/", "POST /api/reports", "/files/{rest...}", "GET /files/big/{name}")
	for _, tc := range []struct{ method, target, pattern, want string }{
		{"POST", "/api/reports", "/api/", "POST /api/reports"},
		{"GET", "/api/users", "/api/", "/api/"},
		{"POST", "/api/reports", "POST /api/reports", "POST /api/reports"},
		{"GET", "/files/big/x", "/files/{rest...}", "GET /files/big/{name}"},
		{"GET", "/files/small/x", "/files/{rest...}", "/files/{rest...}"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		r.Pattern = tc.pattern
		assert.Equal(t, tc.want, selected(sel, r), "%s %s under %q", tc.method, tc.target, tc.pattern)
	}

	// The same through real muxes: the middleware wraps the sub-router, mounted under
	// "/api/". A wrong bulkhead deadlocks, which synctest reports.
	synctest.Test(t, func(t *testing.T) {
		general, reports := newBulkhead(t, "general"), newBulkhead(t, "reports", single)
		sel, err := ByPattern(map[string]*core.Bulkhead{"/api/": general, "POST /api/reports": reports})
		require.NoError(t, err)
		entered, release := make(chan struct{}, 2), make(chan struct{})
		api := http.NewServeMux()
		api.HandleFunc("POST /api/reports", func(http.ResponseWriter, *http.Request) { entered <- struct{}{}; <-release })
		api.Handle("/api/", text("api"))
		outer := http.NewServeMux()
		outer.Handle("/api/", Middleware(sel)(api))

		done := make(chan struct{})
		go func() { defer close(done); serve(outer, httptest.NewRequest("POST", "/api/reports", nil)) }()
		<-entered
		assert.Equal(t, 1, reports.Stats().ActiveTasks, "reports guards POST /api/reports")
		assert.Zero(t, general.Stats().ActiveTasks)
		assert.Equal(t, http.StatusServiceUnavailable, serve(outer, httptest.NewRequest("POST", "/api/reports", nil)).Code, "reports is full")
		assert.Equal(t, "api", serve(outer, get("/api/users")).Body.String(), "general still serves")
		close(release)
		<-done
	})
}

func TestByPatternNilBulkheadIsAnException(t *testing.T) {
	api := newBulkhead(t, "api")
	sel, err := ByPattern(map[string]*core.Bulkhead{"/api/": api, "/api/health": nil})
	require.NoError(t, err)
	assert.Same(t, api, sel(httptest.NewRequest("GET", "/api/users", nil)))
	assert.Nil(t, sel(httptest.NewRequest("GET", "/api/health", nil)))
}

func TestByPatternBadPatterns(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		culprit  string
	}{
		{"empty", []string{""}, `""`},
		{"no slash", []string{"GET"}, `"GET"`},
		{"unclosed wildcard", []string{"/a/{x"}, `"/a/{x"`},
		{"duplicate wildcard", []string{"/{x}/{x}"}, `"/{x}/{x}"`},
		{"bad method", []string{"G@T /x"}, `"G@T /x"`},
		{"conflict", []string{"GET /a/{x}", "/a/b"}, `"GET /a/{x}" conflicts with pattern "/a/b": GET /a/{x} matches fewer methods`},
		{"same requests", []string{"/{x...}", "/"}, `"/{x...}" conflicts with pattern "/": /{x...} matches the same requests as /`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes := map[string]*core.Bulkhead{}
			for _, p := range tt.patterns {
				routes[p] = nil
			}
			sel, err := ByPattern(routes)
			require.Error(t, err)
			assert.Nil(t, sel)
			assert.Contains(t, err.Error(), "httpmw: pattern "+tt.culprit)
			assert.NotContains(t, err.Error(), "registered at")
		})
	}
}

// TestByPatternAgreesWithServeMux checks the shortcuts against ServeMux itself, over
// random pattern tables and requests.
func TestByPatternAgreesWithServeMux(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	methods := []string{"", "", "GET ", "HEAD ", "POST "}
	hosts := []string{"", "", "", "", "", "a.com", "b.com"}
	literals := []string{"a", "b", "c"}
	wild := []string{"{x}", "{y...}", "{$}"}
	randPattern := func() string {
		var sb strings.Builder
		sb.WriteString(methods[rng.IntN(len(methods))])
		sb.WriteString(hosts[rng.IntN(len(hosts))])
		n := 1 + rng.IntN(3)
		if rng.IntN(20) == 0 {
			n = 0
		}
		for i := range n {
			s := literals[rng.IntN(len(literals))]
			if (i > 0 || rng.IntN(6) == 0) && rng.IntN(3) == 0 {
				s = wild[rng.IntN(len(wild))]
			}
			switch {
			case (s == "{y...}" || s == "{$}") && i != n-1:
				s = "a"
			case s == "{$}":
				s = ""
			}
			sb.WriteString("/" + s)
		}
		if n == 0 || rng.IntN(6) == 0 {
			sb.WriteString("/")
		}
		return sb.String()
	}
	reqSegs := []string{"a", "b", "c", "d", "a", "b", "c", "d", "", ".", ".."}
	randRequest := func() *http.Request {
		var sb strings.Builder
		for range 1 + rng.IntN(3) {
			sb.WriteString("/" + reqSegs[rng.IntN(len(reqSegs))])
		}
		if rng.IntN(5) == 0 {
			sb.WriteString("/")
		}
		r := httptest.NewRequest([]string{"GET", "HEAD", "POST", "PUT"}[rng.IntN(4)], "/", nil)
		r.URL.Path = sb.String()
		r.Host = []string{"a.com", "b.com:80", "c.com", "c.com", "c.com", ""}[rng.IntN(6)]
		return r
	}

	tables, checks := 0, 0
	for tables < 1000 {
		mux := http.NewServeMux()
		routes := map[string]*core.Bulkhead{}
		for range 1 + rng.IntN(6) {
			p := randPattern()
			if _, dup := routes[p]; dup || register(mux, p) != nil {
				continue
			}
			routes[p] = newBulkhead(t, fmt.Sprintf("b%d", len(routes)))
		}
		sel, err := ByPattern(routes)
		require.NoError(t, err)
		tables++
		var paths []string // requests for the patterns' own paths hit the shortcuts
		for p := range routes {
			p = p[strings.IndexByte(p, '/'):]
			p = strings.NewReplacer("{x}", "d", "{y...}", "a/b", "{$}", "").Replace(p)
			paths = append(paths, p)
		}
		for i := range 50 {
			r := randRequest()
			if i%2 == 0 && len(paths) > 0 {
				r.URL.Path = paths[rng.IntN(len(paths))]
			}
			_, pat := mux.Handler(r)
			want := routes[pat]
			if !assert.Same(t, want, sel(r), "routes %v, request %s %s%s: ServeMux picked %q", keys(routes), r.Method, r.Host, r.URL.Path, pat) {
				return
			}
			checks++
		}
	}
	t.Logf("%d tables, %d requests agreed", tables, checks)
}

func keys(m map[string]*core.Bulkhead) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestByPatternStaticLookupDoesNotAllocate(t *testing.T) {
	sel := table(t, "GET /users/{id}", "/static/", "GET /health", "/api/v1/orders", "api.test/x", "/{$}")
	for _, target := range []string{"/health", "/api/v1/orders", "/", "/unknown/path"} {
		r := httptest.NewRequest("GET", target, nil)
		allocs := testing.AllocsPerRun(100, func() { sel(r) })
		assert.Zero(t, allocs, target)
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Host = "api.test"
	assert.Zero(t, testing.AllocsPerRun(100, func() { sel(r) }), "host pattern")
}

// Keys in another router's syntax, which ServeMux would read as literal text (or refuse
// with a message that does not say why): an error naming the key, from ValidatePattern
// and ByPattern alike.
func TestValidatePattern(t *testing.T) {
	for _, pat := range []string{
		"/", "/static/", "GET /users/{id}", "/files/{path...}", "/{$}", "POST api.test/jobs",
		"/a%2Ab", "/time/12:30", "/v1/books:batchGet", "/users/{id}/x", "GET /:", "/a:b/c",
	} {
		assert.NoError(t, ValidatePattern(pat), pat)
		_, err := ByPattern(map[string]*core.Bulkhead{pat: nil})
		assert.NoError(t, err, pat)
	}
	for _, tc := range []struct{ pat, why string }{
		{"/static/*", `"*" is a literal asterisk in a ServeMux pattern, not a wildcard (as in chi or a glob): write "/static/" or "/static/{path...}" for everything under /static/`},
		{"GET /*", `write "/" or "/{path...}" for everything under /`},
		{"/files/*.txt", `"*" is a literal asterisk`},
		{"/users/Get*", `"*" is a literal asterisk`},
		{"/users/{id:[0-9]+}", `segment "{id:[0-9]+}" has a regular expression (chi's syntax), and a ServeMux wildcard has none: write "{id}"`},
		{"GET /users/{id:[0-9]+}/orders", `write "{id}"`},
		{"/users/:id", `segment ":id" is literal text in a ServeMux pattern, not a parameter (httprouter's, gin's and echo's syntax): write "{id}", or %3A for a colon`},
		{"*.example.com/x", `a ServeMux pattern matches its host exactly, so host "*.example.com" matches no request`},
		{"GET /a/{x", "bad wildcard segment"}, // ServeMux's own reason
		{"", "invalid pattern"},
	} {
		err := ValidatePattern(tc.pat)
		if assert.Error(t, err, tc.pat) {
			assert.Contains(t, err.Error(), fmt.Sprintf("httpmw: pattern %q: ", tc.pat))
			assert.Contains(t, err.Error(), tc.why)
			_, err2 := ByPattern(map[string]*core.Bulkhead{"/ok": nil, tc.pat: nil})
			assert.EqualError(t, err2, err.Error(), "ByPattern says the same")
		}
	}
}
