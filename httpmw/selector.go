package httpmw

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/bulkman-go/bulkman/core"
)

// Selector picks the bulkhead that guards r. A nil result lets r through unguarded.
//
// A Selector is called once per request, on the request's goroutine, and may be called
// concurrently for different requests; it must not modify r.
type Selector func(r *http.Request) *core.Bulkhead

// ByPattern returns a Selector that maps requests to bulkheads by http.ServeMux
// patterns, such as "GET /users/{id}", "/static/", "POST example.com/x" or "/{$}", with
// the precedence ServeMux itself uses: host patterns first, then the most specific
// method and path. Requests that match no pattern are unguarded.
//
// It works wherever the middleware sits:
//   - Around a whole mux (before routing), it matches r against the patterns itself,
//     exactly as a ServeMux holding only these patterns would route r.
//   - On one route (after routing, when r.Pattern is set, as ServeMux does, and chi from
//     v5.2.3), a key equal to r.Pattern wins; otherwise r is matched as above. A prefix pattern
//     (its path ends in "/" or "...}") never wins this way: prefix routes are where
//     sub-routers are mounted, so under outer.Handle("/api/", mw(apiMux)) r.Pattern is
//     "/api/" for every request, and r is matched as above to find its own route.
//
// ByPattern copies routes. A nil bulkhead in routes makes its pattern an explicit
// exception: requests it matches are unguarded even where a more general pattern would
// guard them. It returns an error naming the pattern when a key is not a valid ServeMux
// pattern or is written in another router's syntax (see ValidatePattern), or conflicts
// with another key (two patterns that match the same requests without one being more
// specific, as ServeMux.Handle would panic).
//
// The Selector is safe for concurrent use. Selecting by a pattern without wildcards
// allocates nothing; a wildcard or prefix match may allocate, as ServeMux does.
func ByPattern(routes map[string]*core.Bulkhead) (Selector, error) {
	t := &patternTable{
		byPattern: make(map[string]*core.Bulkhead, len(routes)),
		byRoute:   make(map[string]*core.Bulkhead, len(routes)),
		mux:       http.NewServeMux(),
		exact:     make(map[exactKey]*core.Bulkhead),
		firstSegs: make(map[string]struct{}),
		prefilter: true,
	}
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors
	for _, pat := range keys {
		if err := register(t.mux, pat); err != nil {
			return nil, err
		}
		b := routes[pat]
		t.byPattern[pat] = b
		if !strings.HasSuffix(pat, "/") && !strings.HasSuffix(pat, "...}") {
			t.byRoute[pat] = b
		}
		t.index(pat, b)
	}
	return t.selectBulkhead, nil
}

// ValidatePattern reports whether pattern is a ByPattern key that can match a request: a
// valid http.ServeMux pattern, without the syntax of other routers that ServeMux would
// take as literal text, and so match no request anyone sends. It returns an error that
// names the pattern and says what is wrong, in the form
//
//	httpmw: pattern "/static/*": "*" is a literal asterisk in a ServeMux pattern, ...
//
// for a pattern ServeMux refuses (ServeMux's reason), and for these, which ServeMux
// accepts:
//
//   - a "*" in a path segment, as in chi's "/static/*" or a glob's "/files/*.txt" (write
//     "/static/" or "/static/{path...}" for everything under a path, "{name}" for one
//     segment, %2A for an asterisk);
//   - a wildcard with a regular expression, as chi's "/users/{id:[0-9]+}" (ServeMux
//     refuses it as a bad wildcard name; write "{id}" and check the value in the handler);
//   - a segment ":name", the parameter of httprouter, gin and echo (write "{name}", or %3A
//     for a colon);
//   - a host with a "*", as "*.example.com" (ServeMux matches a host exactly).
//
// ByPattern checks every key this way (and also that no two keys conflict), and package
// config checks the keys of a file's http: table with ByPattern. ValidatePattern is safe
// for concurrent use.
func ValidatePattern(pattern string) error {
	return register(http.NewServeMux(), pattern)
}

// foreignSyntax returns an error for a pattern that ServeMux would take literally but
// that was written for another router; nil for anything else (ServeMux judges the rest).
func foreignSyntax(pat string) error {
	rest := pat
	if i := strings.IndexAny(pat, " \t"); i >= 0 {
		rest = strings.TrimLeft(pat[i+1:], " \t")
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return nil
	}
	host, p := rest[:i], rest[i:]
	bad := func(format string, args ...any) error {
		return fmt.Errorf("httpmw: pattern %q: "+format, append([]any{pat}, args...)...)
	}
	if strings.Contains(host, "*") {
		return bad("a ServeMux pattern matches its host exactly, so host %q matches no request (for every host, leave it out and check r.Host in a Selector)", host)
	}
	start := 1
	for start <= len(p) {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		seg := p[start:end]
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && strings.Contains(seg, ":"):
			name, _, _ := strings.Cut(seg[1:], ":")
			return bad("segment %q has a regular expression (chi's syntax), and a ServeMux wildcard has none: write %q and check the value in the handler", seg, "{"+name+"}")
		case strings.Contains(seg, "*"):
			under := p[:start]
			return bad(`"*" is a literal asterisk in a ServeMux pattern, not a wildcard (as in chi or a glob): write %q or %q for everything under %s, "{name}" for one segment, or %%2A for an asterisk`, under, under+"{path...}", under)
		case len(seg) > 1 && seg[0] == ':' && isIdent(seg[1:]):
			return bad("segment %q is literal text in a ServeMux pattern, not a parameter (httprouter's, gin's and echo's syntax): write %q, or %%3A for a colon", seg, "{"+seg[1:]+"}")
		}
		start = end + 1
	}
	return nil
}

// isIdent reports whether s is a Go identifier, as ServeMux wants a wildcard's name.
func isIdent(s string) bool {
	for i, r := range s {
		if !unicode.IsLetter(r) && r != '_' && (i == 0 || !unicode.IsDigit(r)) {
			return false
		}
	}
	return s != ""
}

// register adds pat to mux, turning ServeMux's panic on a bad or conflicting pattern
// into an error, after checking it for another router's syntax.
func register(mux *http.ServeMux, pat string) (err error) {
	if err := foreignSyntax(pat); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			// ServeMux's message points at this file ("registered at ..."), which would
			// only confuse; the patterns themselves say it all.
			msg := registeredAt.ReplaceAllString(fmt.Sprint(p), "")
			msg = strings.Join(strings.Fields(msg), " ")
			if strings.HasPrefix(msg, "pattern ") {
				err = errors.New("httpmw: " + msg)
			} else {
				err = fmt.Errorf("httpmw: pattern %q: %s", pat, msg)
			}
		}
	}()
	mux.Handle(pat, marker{})
	return nil
}

var registeredAt = regexp.MustCompile(` \(registered at [^)]*\)`)

// marker is the handler registered in the private mux; only the matched pattern matters.
type marker struct{}

func (marker) ServeHTTP(http.ResponseWriter, *http.Request) {}

// patternTable answers "which pattern would ServeMux pick" with the mux itself, behind
// two shortcuts that allocate nothing and provably give the mux's answer:
//   - exact: patterns without wildcards, trailing-slash prefixes or escapes. An exact
//     match for the request's method (or GET for HEAD, or no method) wins over every
//     other pattern of the same host class, because ServeMux refuses to register any
//     pattern that would beat it (see TestByPatternAgreesWithServeMux).
//   - firstSegs: when no pattern has a wildcard or a prefix match in its first path
//     segment, a request whose first segment starts no pattern matches nothing.
type patternTable struct {
	byPattern map[string]*core.Bulkhead // every key
	byRoute   map[string]*core.Bulkhead // the keys that may win as r.Pattern: not prefixes
	mux       *http.ServeMux
	exact     map[exactKey]*core.Bulkhead
	hosts     map[string]struct{} // hosts named by any pattern; nil if none
	firstSegs map[string]struct{}
	prefilter bool
}

type exactKey struct{ method, host, path string }

func (t *patternTable) selectBulkhead(r *http.Request) *core.Bulkhead {
	if r.Pattern != "" {
		if b, ok := t.byRoute[r.Pattern]; ok {
			return b
		}
	}
	if r.URL == nil {
		return nil
	}
	if r.Method == http.MethodConnect {
		return t.viaMux(r) // ServeMux treats CONNECT paths and hosts differently
	}
	p := r.URL.EscapedPath()
	host := stripHostPort(r.Host)
	if _, ok := t.hosts[host]; ok && host != "" {
		if b, ok := t.lookupExact(r.Method, host, p); ok {
			return b
		}
		return t.viaMux(r)
	}
	if b, ok := t.lookupExact(r.Method, "", p); ok {
		return b
	}
	// The prefilter reads the first segment as ServeMux would: only for a clean path,
	// since cleaning ("/a/../b") may change it.
	if t.prefilter && len(p) > 1 && p[0] == '/' &&
		!strings.Contains(p, "/.") && !strings.Contains(p, "//") && strings.IndexByte(p, '%') < 0 {
		seg, _, _ := strings.Cut(p[1:], "/")
		if _, ok := t.firstSegs[seg]; !ok {
			return nil
		}
	}
	return t.viaMux(r)
}

func (t *patternTable) lookupExact(method, host, p string) (*core.Bulkhead, bool) {
	if len(t.exact) == 0 {
		return nil, false
	}
	if b, ok := t.exact[exactKey{method, host, p}]; ok {
		return b, true
	}
	if method == http.MethodHead {
		if b, ok := t.exact[exactKey{http.MethodGet, host, p}]; ok {
			return b, true
		}
	}
	b, ok := t.exact[exactKey{"", host, p}]
	return b, ok
}

func (t *patternTable) viaMux(r *http.Request) *core.Bulkhead {
	_, pat := t.mux.Handler(r)
	return t.byPattern[pat]
}

// index records what the shortcuts need to know about pat, already accepted by the mux.
func (t *patternTable) index(pat string, b *core.Bulkhead) {
	method, rest := "", pat
	if i := strings.IndexAny(pat, " \t"); i >= 0 {
		method, rest = pat[:i], strings.TrimLeft(pat[i+1:], " \t")
	}
	i := strings.IndexByte(rest, '/')
	host, p := rest[:i], rest[i:]
	if host != "" {
		if t.hosts == nil {
			t.hosts = make(map[string]struct{})
		}
		t.hosts[host] = struct{}{}
	}

	// The first segment, for the prefilter.
	first, _, _ := strings.Cut(p[1:], "/")
	switch {
	case p == "/{$}":
		// Matches only "/", which the prefilter never filters.
	case first == "" || strings.ContainsAny(first, "{}%"):
		t.prefilter = false // "/", a wildcard or an escape up front: cannot tell
	default:
		t.firstSegs[first] = struct{}{}
	}

	// Exact patterns: no wildcard but a final {$}, no escapes, clean.
	exactPath, ok := strings.CutSuffix(p, "{$}")
	if strings.ContainsAny(exactPath, "{}%") {
		return
	}
	if !ok && strings.HasSuffix(p, "/") {
		return // a prefix pattern
	}
	clean := path.Clean(exactPath)
	if ok && clean != "/" {
		clean += "/"
	}
	if clean != exactPath || (&url.URL{Path: exactPath}).EscapedPath() != exactPath {
		return
	}
	t.exact[exactKey{method, host, exactPath}] = b
}

// stripHostPort is ServeMux's: r.Host without a port, or unchanged if it has none.
func stripHostPort(h string) string {
	if strings.IndexByte(h, ':') < 0 {
		return h
	}
	host, _, err := net.SplitHostPort(h)
	if err != nil {
		return h
	}
	return host
}
