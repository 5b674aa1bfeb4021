package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bulkman-go/bulkman/core"
)

// File is a configuration file that Parse or Load has read and validated: every
// bulkhead's Config passes core.Config.Validate, names are unique, and every route names a
// bulkhead of the file and has a valid pattern. Apply it with New or Live.Apply.
//
// A File is immutable and safe for concurrent use. The zero File is an empty
// configuration: no bulkheads, no routes.
type File struct {
	name      string
	bulkheads []bulkhead     // in file order
	defaults  map[string]pos // keys set under defaults: → value position
	grpc      []route        // in file order
	http      []route
}

// bulkhead is one entry of bulkheads:, with where its values came from.
type bulkhead struct {
	cfg  core.Config
	path string         // "bulkheads[2]"
	at   pos            // the list item
	set  map[string]pos // keys the entry sets → value position
}

// route is one entry of grpc: or http:.
type route struct {
	pattern string
	target  string // a bulkhead's name; "" leaves the calls unguarded
	at      pos    // the key
}

// Load reads the file at path and parses it as Parse does, naming it path in errors. A
// file that cannot be read gives an *Error without a line that wraps the *fs.PathError.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: &readError{err: err}}
	}
	return Parse(path, data)
}

type readError struct{ err error }

func (e *readError) Error() string {
	var pe *os.PathError
	if errors.As(e.err, &pe) {
		return "cannot read: " + pe.Err.Error()
	}
	return "cannot read: " + e.err.Error()
}

func (e *readError) Unwrap() error { return e.err }

// Parse reads a configuration from data (YAML, or JSON, which is YAML's subset); name is
// the file's name for error messages. See docs/configuration.md for the format.
//
// It reports every problem it finds at once, as an errors.Join of *Error sorted by
// position ("file:line:col: key: message"): YAML syntax, unknown and duplicate keys,
// values of the wrong type, values that core.Config.Validate refuses (named by their key,
// or by the defaults: key they came from), missing and duplicate bulkhead names, route
// patterns that grpcmw.ByMethod or httpmw.ByPattern would not accept, and routes that name
// a bulkhead the file does not declare. Parse never panics, whatever data holds.
func Parse(name string, data []byte) (*File, error) {
	return parse(name, data, nil)
}

// parse is Parse, told that the http: patterns of known are valid: a file with the same
// patterns (a reload that changes limits or targets) skips their check, which builds a
// ServeMux and is by far the slowest step for a large table.
func parse(name string, data []byte, known *File) (*File, error) {
	p := &parser{problems: problems{file: name}, known: known}
	f := p.parse(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// Name returns the name the file was parsed under.
func (f *File) Name() string { return f.name }

// Bulkheads returns the file's bulkhead configurations, in file order, with the defaults
// applied.
func (f *File) Bulkheads() []core.Config {
	out := make([]core.Config, len(f.bulkheads))
	for i, b := range f.bulkheads {
		out[i] = b.cfg
	}
	return out
}

// GRPCRoutes returns the grpc: table, method pattern → bulkhead name; an empty name
// leaves the calls unguarded (null in the file). The caller owns the map.
func (f *File) GRPCRoutes() map[string]string { return routeMap(f.grpc) }

// HTTPRoutes returns the http: table, ServeMux pattern → bulkhead name; an empty name
// leaves the requests unguarded (null in the file). The caller owns the map.
func (f *File) HTTPRoutes() map[string]string { return routeMap(f.http) }

func routeMap(rs []route) map[string]string {
	m := make(map[string]string, len(rs))
	for _, r := range rs {
		m[r.pattern] = r.target
	}
	return m
}

// parser walks the YAML tree of one file, collecting problems.
type parser struct {
	problems
	base        core.Config     // DefaultConfig with defaults: applied
	defaultsBad map[string]bool // fields whose defaults: value was already reported
	declared    map[string]pos  // every bulkhead name seen, valid or not → its position
	known       *File           // a valid File whose http: patterns need no check; may be nil
}

const topKeys = "version, defaults, bulkheads, grpc or http"

func (p *parser) parse(data []byte) *File {
	f := &File{name: p.file, defaults: make(map[string]pos)}
	p.base = core.DefaultConfig("")
	p.defaultsBad = make(map[string]bool)
	p.declared = make(map[string]pos)

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf(pos{}, "", "the file is empty: want a mapping of %s", topKeys)
		} else {
			p.errs = append(p.errs, syntaxError(p.file, err))
		}
		return f
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.addf(pos{extra.Line, 0}, "", "a second YAML document: the file must hold one")
	case !errors.Is(err, io.EOF):
		p.errs = append(p.errs, syntaxError(p.file, err))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = resolve(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		if isNull(root) {
			p.addf(posOf(root), "", "the file is empty: want a mapping of %s", topKeys)
		} else {
			p.addf(posOf(root), "", "want a mapping of %s, got %s", topKeys, describe(root))
		}
		return f
	}

	var bulkheads, grpc, http *yaml.Node
	var defaults *yaml.Node
	p.pairs(root, "", func(k string, kn, v *yaml.Node) {
		switch k {
		case "version":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Value != "1" {
				p.addf(posOf(v), k, "unsupported version %s: this release reads version 1", describe(v))
			}
		case "defaults":
			defaults = v
		case "bulkheads":
			bulkheads = v
		case "grpc":
			grpc = v
		case "http":
			http = v
		default:
			p.unknown(kn, k, topKeys)
		}
	})
	if defaults != nil {
		p.defaults(f, defaults)
	}
	if bulkheads != nil {
		p.bulkheads(f, bulkheads)
	}
	if grpc != nil {
		f.grpc = p.routes(grpc, "grpc", grpcPatternError)
	}
	if http != nil {
		f.http = p.routes(http, "http", nil)
		if p.known == nil || !samePatterns(f.http, p.known.http) {
			p.checkHTTP(f.http)
		}
	}
	return f
}

// pairs calls fn for each key of the mapping m in order, with aliases resolved. It
// reports keys that are not scalars, merge keys and duplicate keys, and skips them.
// path is m's own key path, for messages.
func (p *parser) pairs(m *yaml.Node, path string, fn func(key string, kn, v *yaml.Node)) {
	seen := make(map[string]pos, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			p.addf(posOf(kn), path, "a key must be a plain value, got %s", describe(kn))
			continue
		}
		if kn.ShortTag() == "!!merge" {
			p.addf(posOf(kn), join(path, kn.Value), "merge keys are not supported (use defaults: for shared values)")
			continue
		}
		if first, dup := seen[kn.Value]; dup {
			p.addf(posOf(kn), join(path, kn.Value), "duplicate key (first at line %d)", first.line)
			continue
		}
		seen[kn.Value] = posOf(kn)
		fn(kn.Value, kn, v)
	}
}

// join returns the path of key inside path: "defaults.timeout_seconds", or
// `http["GET /x"]` inside a route table.
func join(path, key string) string {
	switch path {
	case "":
		return key
	case "grpc", "http":
		return fmt.Sprintf("%s[%q]", path, key)
	}
	return path + "." + key
}

func (p *parser) unknown(kn *yaml.Node, path, want string) {
	p.addf(posOf(kn), path, "unknown key (want %s)", want)
}

// mapping checks that n is a mapping, or null (an empty block); it reports anything else.
func (p *parser) mapping(n *yaml.Node, path string) bool {
	if n.Kind == yaml.MappingNode {
		return true
	}
	if !isNull(n) {
		p.addf(posOf(n), path, "want a mapping, got %s", describe(n))
	}
	return false
}

var bulkheadKeyList = func() string {
	names := []string{nameKey}
	for _, k := range keys {
		names = append(names, k.name)
	}
	names = append(names, adaptiveKey)
	return strings.Join(names, ", ")
}()

func (p *parser) defaults(f *File, n *yaml.Node) {
	if !p.mapping(n, "defaults") {
		return
	}
	p.pairs(n, "defaults", func(k string, kn, v *yaml.Node) {
		path := join("defaults", k)
		if k == adaptiveKey {
			p.adaptive(&p.base, v, "defaults", f.defaults)
			return
		}
		kd := keyByName[k]
		if kd == nil {
			if k == nameKey {
				p.addf(posOf(kn), path, "a name belongs to each bulkhead, not to defaults")
			} else {
				p.unknown(kn, path, strings.TrimPrefix(bulkheadKeyList, nameKey+", "))
			}
			return
		}
		if err := kd.set(&p.base, v); err != nil {
			p.add(posOf(v), path, err)
			return
		}
		f.defaults[k] = posOf(v)
	})
	cfg := p.base
	cfg.Name = "defaults"
	for _, ce := range configErrors(cfg.Validate()) {
		k := keyByField[ce.Field]
		if at, ok := f.defaults[k]; ok {
			p.add(at, join("defaults", k), &valueError{ce: ce})
			p.defaultsBad[ce.Field] = true
		}
	}
}

func (p *parser) bulkheads(f *File, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		if !isNull(n) {
			p.addf(posOf(n), "bulkheads", "want a list of bulkheads, got %s", describe(n))
		}
		return
	}
	for i, item := range n.Content {
		p.bulkhead(f, resolve(item), fmt.Sprintf("bulkheads[%d]", i))
	}
}

func (p *parser) bulkhead(f *File, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		p.addf(posOf(n), path, "want a mapping with a name, got %s", describe(n))
		return
	}
	b := bulkhead{cfg: p.base, path: path, at: posOf(n), set: make(map[string]pos)}
	cloneAdaptive(&b.cfg)
	named, badName := false, false
	p.pairs(n, path, func(k string, kn, v *yaml.Node) {
		kpath := func() string { return join(path, k) } // only for errors: this loop is hot
		if k == nameKey {
			name, err := decodeName(v)
			if err != nil {
				p.add(posOf(v), kpath(), err)
				badName = true
				return
			}
			b.cfg.Name, named = name, true
			b.set[k] = posOf(v)
			return
		}
		if k == adaptiveKey {
			p.adaptive(&b.cfg, v, path, b.set)
			return
		}
		kd := keyByName[k]
		if kd == nil {
			p.unknown(kn, kpath(), bulkheadKeyList)
			return
		}
		if err := kd.set(&b.cfg, v); err != nil {
			p.add(posOf(v), kpath(), err)
			return
		}
		b.set[k] = posOf(v)
	})
	if !named && !badName {
		p.addf(b.at, path, "name is required")
	}
	valid := named
	for _, ce := range configErrors(b.cfg.Validate()) {
		if ce.Field == "Name" && !named {
			continue // reported above
		}
		valid = false
		k := keyByField[ce.Field]
		if at, ok := b.set[k]; ok {
			p.add(at, join(path, k), &valueError{ce: ce})
			continue
		}
		if p.defaultsBad[ce.Field] {
			continue // reported once, on defaults:
		}
		if at, ok := f.defaults[k]; ok {
			p.add(at, join("defaults", k), &valueError{ce: ce,
				note: fmt.Sprintf(" (for bulkhead %q at line %d)", b.cfg.Name, b.at.line)})
			continue
		}
		p.add(b.at, join(path, k), &valueError{ce: ce, note: " (the built-in default)"})
	}
	if !named {
		return
	}
	name := b.cfg.Name
	if first, dup := p.declared[name]; dup {
		p.addf(b.set[nameKey], join(path, nameKey), "duplicate bulkhead name %q (first at line %d)", name, first.line)
		return
	}
	p.declared[name] = b.set[nameKey]
	if valid {
		f.bulkheads = append(f.bulkheads, b)
	}
}

// configErrors returns the *core.ConfigError values in err, Validate's result.
func configErrors(err error) []*core.ConfigError {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []*core.ConfigError
	for _, e := range errs {
		var ce *core.ConfigError
		if errors.As(e, &ce) {
			out = append(out, ce)
		}
	}
	return out
}

func posOf(n *yaml.Node) pos { return pos{n.Line, n.Column} }

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}
