package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
)

// routes reads the route table n (grpc: or http:), whose keys check validates (nil: no
// check here), and reports routes to bulkheads the file does not declare.
func (p *parser) routes(n *yaml.Node, block string, check func(string) error) []route {
	if !p.mapping(n, block) {
		return nil
	}
	rs := make([]route, 0, len(n.Content)/2)
	p.pairs(n, block, func(k string, kn, v *yaml.Node) {
		path := func() string { return join(block, k) } // only for errors: this loop is hot
		if check != nil {
			if err := check(k); err != nil {
				p.add(posOf(kn), path(), err)
				return
			}
		}
		r := route{pattern: k, at: posOf(kn)}
		switch {
		case isNull(v) && v.Value == "":
			p.addf(posOf(v), path(), "missing bulkhead name (write null to leave these calls unguarded)")
			return
		case isNull(v):
			// An explicit null: unguarded, an exception to a broader pattern.
		default:
			name, err := decodeName(v)
			if err != nil {
				p.add(posOf(v), path(), err)
				return
			}
			if _, ok := p.declared[name]; !ok {
				p.addf(posOf(v), path(), "no bulkhead named %q", clip(name))
				return
			}
			r.target = name
		}
		rs = append(rs, r)
	})
	return rs
}

// grpcPatternError checks a grpc: key with grpcmw.ValidateMethod, the check grpcmw.ByMethod
// makes (it panics on a key that fails it). The error leaves out what the file's error
// says already: the key.
func grpcPatternError(k string) error {
	err := grpcmw.ValidateMethod(k)
	if err == nil {
		return nil
	}
	return &reworded{msg: strings.TrimPrefix(err.Error(), "grpcmw: method pattern "+strconv.Quote(k)+": "), err: err}
}

// maxPatternErrors bounds the errors checkHTTP reports: each costs a new ServeMux.
const maxPatternErrors = 20

// maxShared bounds the patterns that checkHTTP adds to every group (see there); past it,
// one ServeMux takes them all.
const maxShared = 64

// checkHTTP reports the http: patterns that httpmw.ByPattern refuses: invalid ones and
// conflicting pairs.
//
// ServeMux compares every new pattern with every prefix pattern it holds, so one
// ServeMux of thousands of patterns takes a while. Two patterns can only conflict when
// they have the same host and can match the same first path segment, so patterns whose
// first segment is a plain literal are checked in groups by host and first segment, each
// with the patterns that could match anything (a wildcard or an escape up front, "/",
// "/{$}", or a form this split does not read), which are checked alone first.
func (p *parser) checkHTTP(rs []route) {
	if len(rs) == 0 {
		return
	}
	at := make(map[string]pos, len(rs))
	groups := make(map[patternGroup][]string)
	var shared []string
	for _, r := range rs {
		at[r.pattern] = r.at
		if g, ok := groupOf(r.pattern); ok {
			groups[g] = append(groups[g], r.pattern)
		} else {
			shared = append(shared, r.pattern)
		}
	}
	budget := maxPatternErrors
	if len(shared) > maxShared || len(groups) <= 1 {
		p.checkPatterns(slices.Collect(maps.Keys(at)), at, &budget)
		return
	}
	shared = p.checkPatterns(shared, at, &budget)
	for _, g := range slices.SortedFunc(maps.Keys(groups), comparePatternGroups) {
		p.checkPatterns(append(groups[g], shared...), at, &budget)
	}
}

// patternGroup is the host and the literal first path segment of an HTTP pattern.
type patternGroup struct{ host, first string }

func comparePatternGroups(a, b patternGroup) int {
	if c := strings.Compare(a.host, b.host); c != 0 {
		return c
	}
	return strings.Compare(a.first, b.first)
}

// groupOf reads pat's host and first path segment as ServeMux does, when that segment
// is a plain literal; ok is false when pat could match any first segment, or when it
// is not in a form this reads.
func groupOf(pat string) (g patternGroup, ok bool) {
	rest := pat
	if i := strings.IndexAny(pat, " \t"); i >= 0 {
		rest = strings.TrimLeft(pat[i+1:], " \t")
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return g, false
	}
	host, path := rest[:i], rest[i:]
	first, _, _ := strings.Cut(path[1:], "/")
	if first == "" || strings.ContainsAny(first, "{}%") || strings.ContainsAny(host, "{}") {
		return g, false
	}
	return patternGroup{host, first}, true
}

// checkPatterns runs httpmw.ByPattern over patterns, reporting each problem on the
// pattern at fault and trying again without it, at most *budget times in all. It
// returns the patterns left. A conflict is reported on the pattern that comes later in
// the file, naming the earlier one.
func (p *parser) checkPatterns(patterns []string, at map[string]pos, budget *int) []string {
	table := make(map[string]*core.Bulkhead, len(patterns))
	for _, pat := range patterns {
		table[pat] = nil
	}
	for {
		_, err := httpmw.ByPattern(table)
		if err == nil {
			return slices.Collect(maps.Keys(table))
		}
		if *budget == 0 {
			p.addf(pos{}, "http", "more than %d bad patterns: fix these first", maxPatternErrors)
			*budget = -1
		}
		if *budget < 0 {
			return nil
		}
		*budget--
		culprit, other, msg := parsePatternError(err)
		culprit = original(table, culprit, "")
		cat, ok := at[culprit]
		if !ok {
			p.add(pos{}, "http", err) // not in ByPattern's usual words: report it as it is
			return nil
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
		p.add(cat, join("http", culprit), &reworded{msg: msg, err: err})
		delete(table, culprit)
	}
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

// resolve returns f's route tables over the bulkheads bs (by name); an unguarded route
// maps to nil.
func (f *File) resolve(bs map[string]*core.Bulkhead) (grpc, http map[string]*core.Bulkhead) {
	grpc = make(map[string]*core.Bulkhead, len(f.grpc))
	for _, r := range f.grpc {
		grpc[r.pattern] = bs[r.target]
	}
	http = make(map[string]*core.Bulkhead, len(f.http))
	for _, r := range f.http {
		http[r.pattern] = bs[r.target]
	}
	return grpc, http
}

// samePatterns reports whether rs and known hold the same patterns, so that what
// checkHTTP found for known holds for rs.
func samePatterns(rs, known []route) bool {
	if len(rs) != len(known) {
		return false
	}
	set := make(map[string]struct{}, len(known))
	for _, r := range known {
		set[r.pattern] = struct{}{}
	}
	for _, r := range rs {
		if _, ok := set[r.pattern]; !ok {
			return false
		}
	}
	return true
}
