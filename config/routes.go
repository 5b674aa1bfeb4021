package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
)

// routes reads the route table n (grpc: or http:), whose keys check validates (nil: no
// check here), and reports routes to bulkheads the file does not declare.
func (p *parser) routes(f *File, n *yaml.Node, block string, check func(string) error) []route {
	if !p.mapping(n, block) {
		return nil
	}
	rs := make([]route, 0, len(n.Content)/2)
	p.pairs(n, block, func(k string, kn, v *yaml.Node) {
		path := join(block, k)
		if check != nil {
			if err := check(k); err != nil {
				p.add(posOf(kn), path, err)
				return
			}
		}
		r := route{pattern: k, at: posOf(kn)}
		switch {
		case isNull(v) && v.Value == "":
			p.addf(posOf(v), path, "missing bulkhead name (write null to leave these calls unguarded)")
			return
		case isNull(v):
			// An explicit null: unguarded, an exception to a broader pattern.
		default:
			name, err := decodeName(v)
			if err != nil {
				p.add(posOf(v), path, err)
				return
			}
			if _, ok := p.declared[name]; !ok {
				p.addf(posOf(v), path, "no bulkhead named %q", clip(name))
				return
			}
			r.target = name
		}
		rs = append(rs, r)
	})
	return rs
}

// grpcPatternError checks a grpc: key as grpcmw.ByMethod reads it. ByMethod itself takes
// any string, matching a malformed one literally (so never); a file should say so.
func grpcPatternError(k string) error {
	const want = `want "/pkg.Service/Method", "/pkg.Service/*" or "*"`
	if k == "*" {
		return nil
	}
	if strings.IndexFunc(k, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("a method pattern has no spaces or control characters (%s)", want)
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(k, "/"), "/")
	switch {
	case !strings.HasPrefix(k, "/"):
		return fmt.Errorf("a method pattern starts with a slash (%s)", want)
	case !ok || svc == "" || method == "" || strings.Contains(method, "/"):
		return fmt.Errorf("not a method pattern (%s)", want)
	case strings.Contains(svc, "*") || (method != "*" && strings.Contains(method, "*")):
		return fmt.Errorf(`a wildcard stands for a whole method: "/pkg.Service/*" (%s)`, want)
	}
	return nil
}

// maxPatternErrors bounds the errors checkHTTP reports: each costs a new ServeMux.
const maxPatternErrors = 20

// checkHTTP reports the http: patterns that httpmw.ByPattern refuses: invalid ones and
// conflicting pairs. ByPattern stops at the first problem, so the culprit is taken out
// and the rest tried again; a conflict is reported on the pattern that comes later in
// the file, naming the earlier one.
func (p *parser) checkHTTP(rs []route) {
	if len(rs) == 0 {
		return
	}
	at := make(map[string]pos, len(rs))
	table := make(map[string]*core.Bulkhead, len(rs))
	for _, r := range rs {
		at[r.pattern] = r.at
		table[r.pattern] = nil
	}
	for range maxPatternErrors {
		_, err := httpmw.ByPattern(table)
		if err == nil {
			return
		}
		culprit, other, msg := parsePatternError(err)
		culprit = original(table, culprit, "")
		cat, ok := at[culprit]
		if !ok {
			p.add(pos{}, "http", err) // not in ByPattern's usual words: report it as it is
			return
		}
		if other != "" {
			other = original(table, other, culprit)
		}
		if oat, ok := at[other]; ok && other != "" {
			if oat.line > cat.line || (oat.line == cat.line && oat.col > cat.col) {
				culprit, other, cat, oat = other, culprit, oat, cat
			}
			msg = fmt.Sprintf("conflicts with %s (line %d): %s", join("http", other), oat.line, msg)
		}
		p.add(cat, join("http", culprit), &patternError{msg: msg, err: err})
		delete(table, culprit)
	}
	p.addf(pos{}, "http", "more than %d bad patterns: fix these first", maxPatternErrors)
}

// original returns the key of table that ByPattern's error calls name, other than not.
// The error collapses runs of white space, in the patterns too, so "GET  /x" comes back
// as "GET /x".
func original(table map[string]*core.Bulkhead, name, not string) string {
	if _, ok := table[name]; ok && name != not {
		return name
	}
	var found []string
	for k := range table {
		if k != not && collapse(k) == collapse(name) {
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return name
	}
	return slices.Min(found) // any will do; the smallest is deterministic
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// parsePatternError reads httpmw.ByPattern's error: `httpmw: pattern "X": why` or
// `httpmw: pattern "X" conflicts with pattern "Y": why`.
func parsePatternError(err error) (culprit, other, msg string) {
	rest, ok := strings.CutPrefix(err.Error(), "httpmw: pattern ")
	if !ok {
		return "", "", ""
	}
	culprit, rest, ok = unquotePrefix(rest)
	if !ok {
		return "", "", ""
	}
	if rest, ok := strings.CutPrefix(rest, " conflicts with pattern "); ok {
		other, rest, ok = unquotePrefix(rest)
		if !ok {
			return "", "", ""
		}
		return culprit, other, strings.TrimPrefix(rest, ": ")
	}
	msg = strings.TrimPrefix(rest, ": ")
	// ServeMux repeats the pattern ("parsing "X": at offset 3: ..."); the key names it.
	if r, ok := strings.CutPrefix(msg, "parsing "); ok {
		if _, r, ok := unquotePrefix(r); ok {
			msg = strings.TrimPrefix(r, ": ")
		}
	}
	return culprit, "", msg
}

func unquotePrefix(s string) (unquoted, rest string, ok bool) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	u, err := strconv.Unquote(q)
	return u, s[len(q):], err == nil
}

// patternError is httpmw.ByPattern's error, told about one pattern of the file.
type patternError struct {
	msg string
	err error
}

func (e *patternError) Error() string { return e.msg }
func (e *patternError) Unwrap() error { return e.err }

// selectors builds the route tables of f over the bulkheads bs (by name).
func (f *File) selectors(bs map[string]*core.Bulkhead) (grpcmw.Selector, httpmw.Selector, error) {
	g := make(map[string]*core.Bulkhead, len(f.grpc))
	for _, r := range f.grpc {
		g[r.pattern] = bs[r.target]
	}
	h := make(map[string]*core.Bulkhead, len(f.http))
	for _, r := range f.http {
		h[r.pattern] = bs[r.target]
	}
	hs, err := httpmw.ByPattern(h)
	if err != nil {
		return nil, nil, errors.Join(errors.New("config: http routes refused after validation"), err)
	}
	return grpcmw.ByMethod(g), hs, nil
}
