// Package docs_test keeps the documentation honest: every Go code block of the guide is
// (an excerpt of) a runnable Example function or of an examples/ program, so that what a
// reader copies has been compiled and run by `go test ./...`.
//
// A Go code block must follow a marker line (blank lines between are allowed):
//
//	<!-- example: core.ExampleWrap -->          an Example function in core/*_test.go
//	<!-- example: internal/pgtest.ExampleX -->  the package directory, then the name
//	<!-- program: examples/grpc -->             a program under examples/
//
// The block's code, with white space normalised, must appear in the named Example's body
// (which must have an "// Output:" comment, so that it runs) or in one of the program's
// files. The README's test command (go test ./...) runs this test and those Examples.
package docs_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// checkedDocs are the pages whose Go code blocks must all be marked. Paths are relative to
// the module root.
var checkedDocs = []string{
	"docs/user-guide.md",
	"docs/design.md",
	"docs/migrating-from-bulkman.md",
}

// sketchDocs are pages that may also show Go sketches (a block without a marker); the
// blocks they do mark are checked like those of checkedDocs.
var sketchDocs = []string{
	"docs/configuration.md",
	"docs/observability.md",
}

// linkedDocs are the pages whose relative links must lead somewhere.
var linkedDocs = slices.Concat(checkedDocs, sketchDocs, []string{"README.md", "docs/performance.md"})

// pythonGuideSections are the sections of the Python library's user guide that the Go
// guide ports one by one; each must stay a heading of docs/user-guide.md.
var pythonGuideSections = []string{
	"Installation",
	"Quick Start",
	"Using Decorators",
	"Managing Multiple Bulkheads",
	"Configuration",
	"Circuit Breaker Integration",
	"Monitoring and Metrics",
	"Error Handling",
}

// root is the module root, one level above this package.
const root = ".."

var markerRE = regexp.MustCompile(`^<!--\s*(example|program):\s*(\S+)\s*-->$`)

// block is one fenced code block of a Markdown page.
type block struct {
	line   int    // of the opening fence, 1-based
	lang   string // first word of the info string
	code   string
	marker *marker // the marker line before it, if any
}

type marker struct {
	line   int
	kind   string // "example" or "program"
	target string
}

// page is a Markdown page split into code blocks, markers, headings and links.
type page struct {
	path     string
	blocks   []block
	dangling []marker // markers not followed by a code block
	headings []string // outside code blocks
	links    []link   // outside code blocks
	text     string   // outside code blocks
}

type link struct {
	line   int
	target string
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)
var inlineCodeRE = regexp.MustCompile("`[^`]*`")

func readPage(t *testing.T, path string) *page {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p := &page{path: path}
	var (
		in      bool   // inside a fenced block
		fence   string // its fence
		cur     block
		code    []string
		pending *marker
		text    strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if in {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				cur.code = strings.Join(code, "\n")
				p.blocks = append(p.blocks, cur)
				in = false
				continue
			}
			code = append(code, line)
			continue
		}
		if f := fenceOf(trimmed); f != "" {
			in, fence, code = true, f, nil
			info := strings.Fields(strings.TrimLeft(trimmed, f[:1]))
			cur = block{line: n}
			if len(info) > 0 {
				cur.lang = info[0]
			}
			cur.marker, pending = pending, nil
			continue
		}
		if m := markerRE.FindStringSubmatch(trimmed); m != nil {
			if pending != nil {
				p.dangling = append(p.dangling, *pending)
			}
			pending = &marker{line: n, kind: m[1], target: m[2]}
			continue
		}
		if trimmed != "" && pending != nil {
			p.dangling = append(p.dangling, *pending)
			pending = nil
		}
		if h, ok := strings.CutPrefix(trimmed, "#"); ok {
			p.headings = append(p.headings, strings.TrimSpace(strings.TrimLeft(h, "#")))
		}
		for _, m := range linkRE.FindAllStringSubmatch(inlineCodeRE.ReplaceAllString(line, ""), -1) {
			p.links = append(p.links, link{line: n, target: m[1]})
		}
		text.WriteString(line)
		text.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if in {
		t.Errorf("%s:%d: code block never closed", path, cur.line)
	}
	if pending != nil {
		p.dangling = append(p.dangling, *pending)
	}
	p.text = text.String()
	return p
}

// fenceOf returns the fence that opens a code block on this line, or "".
func fenceOf(trimmed string) string {
	for _, c := range []string{"`", "~"} {
		n := 0
		for n < len(trimmed) && trimmed[n] == c[0] {
			n++
		}
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// normalize collapses every run of white space to one space, so that indentation and
// line breaks do not matter when a block is compared with its source.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// exampleFunc is an Example function found in a package's test files.
type exampleFunc struct {
	body      string // source between the braces, comments included
	hasOutput bool
}

// examples returns the Example functions of the package in dir, by name.
func examples(t *testing.T, dir string) (map[string]exampleFunc, error) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *_test.go files in %s", dir)
	}
	out := make(map[string]exampleFunc)
	fset := token.NewFileSet()
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Body == nil || !strings.HasPrefix(fd.Name.Name, "Example") {
				continue
			}
			start := fset.Position(fd.Body.Lbrace).Offset + 1
			end := fset.Position(fd.Body.Rbrace).Offset
			out[fd.Name.Name] = exampleFunc{body: string(src[start:end]), hasOutput: hasOutput(f, fd)}
		}
	}
	return out, nil
}

// hasOutput reports whether fd's last comment is an output comment, as go test requires
// for an Example to run.
func hasOutput(f *ast.File, fd *ast.FuncDecl) bool {
	var last *ast.CommentGroup
	for _, cg := range f.Comments {
		if cg.Pos() > fd.Body.Lbrace && cg.End() < fd.Body.Rbrace {
			last = cg
		}
	}
	if last == nil {
		return false
	}
	text := last.Text()
	return strings.HasPrefix(text, "Output:") || strings.HasPrefix(text, "Unordered output:")
}

// programSources returns the Go files of the program in dir, which must be a main package
// under examples/.
func programSources(dir string) ([]string, error) {
	if !strings.HasPrefix(dir, "examples/") || strings.Contains(dir, "..") {
		return nil, fmt.Errorf("%s is not a directory under examples/", dir)
	}
	files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var srcs []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, src, parser.PackageClauseOnly)
		if err != nil {
			return nil, err
		}
		if f.Name.Name != "main" {
			return nil, fmt.Errorf("%s is package %s, not a program", name, f.Name.Name)
		}
		srcs = append(srcs, string(src))
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no program in %s", dir)
	}
	return srcs, nil
}

// TestDocsCodeBlocks checks every marked Go code block of the checked and sketch pages
// against the Example function or program its marker names.
func TestDocsCodeBlocks(t *testing.T) {
	cache := make(map[string]map[string]exampleFunc)
	for _, path := range slices.Concat(checkedDocs, sketchDocs) {
		sketches := slices.Contains(sketchDocs, path)
		p := readPage(t, path)
		for _, m := range p.dangling {
			t.Errorf("%s:%d: marker %s: %s is not followed by a code block", path, m.line, m.kind, m.target)
		}
		for _, b := range p.blocks {
			isGo := b.lang == "go" || b.lang == "golang"
			if b.marker == nil {
				if isGo && !sketches {
					t.Errorf("%s:%d: Go code block without a marker (<!-- example: pkg.ExampleName --> or <!-- program: examples/name -->)", path, b.line)
				}
				continue
			}
			if !isGo {
				t.Errorf("%s:%d: marker on a %q block: only Go blocks are checked", path, b.marker.line, b.lang)
				continue
			}
			code := normalize(b.code)
			if code == "" {
				t.Errorf("%s:%d: empty Go code block", path, b.line)
				continue
			}
			switch b.marker.kind {
			case "example":
				i := strings.LastIndexByte(b.marker.target, '.')
				if i <= 0 {
					t.Errorf("%s:%d: example marker %q: want dir.ExampleName", path, b.marker.line, b.marker.target)
					continue
				}
				dir, name := b.marker.target[:i], b.marker.target[i+1:]
				exs, ok := cache[dir]
				if !ok {
					var err error
					if exs, err = examples(t, dir); err != nil {
						t.Errorf("%s:%d: %v", path, b.marker.line, err)
					}
					cache[dir] = exs
				}
				ex, ok := exs[name]
				switch {
				case !ok:
					t.Errorf("%s:%d: no Example function %s in %s/*_test.go", path, b.marker.line, name, dir)
				case !ex.hasOutput:
					t.Errorf("%s:%d: %s.%s has no // Output: comment, so go test never runs it", path, b.marker.line, dir, name)
				case !strings.Contains(normalize(ex.body), code):
					t.Errorf("%s:%d: the code block is not in the body of %s.%s (update one from the other):\n%s", path, b.line, dir, name, b.code)
				}
			case "program":
				srcs, err := programSources(b.marker.target)
				if err != nil {
					t.Errorf("%s:%d: %v", path, b.marker.line, err)
					continue
				}
				if !slices.ContainsFunc(srcs, func(s string) bool { return strings.Contains(normalize(s), code) }) {
					t.Errorf("%s:%d: the code block is not in %s (update one from the other):\n%s", path, b.line, b.marker.target, b.code)
				}
			}
		}
	}
}

// TestDocsLinks checks that the relative links of linkedDocs lead to files that
// exist, and that their #anchors name headings of the page linked to.
func TestDocsLinks(t *testing.T) {
	for _, path := range linkedDocs {
		p := readPage(t, path)
		for _, l := range p.links {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(l.target, "#")
			target := path
			if file != "" {
				target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(path), file)))
			}
			if _, err := os.Stat(filepath.Join(root, target)); err != nil {
				t.Errorf("%s:%d: broken link %q: %v", path, l.line, l.target, err)
				continue
			}
			if anchor == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			linked := p
			if target != path {
				linked = readPage(t, target)
			}
			if !slices.Contains(anchors(linked.headings), anchor) {
				t.Errorf("%s:%d: link %q: %s has no heading with the anchor #%s", path, l.line, l.target, target, anchor)
			}
		}
	}
}

// anchors returns the GitHub anchors of headings: lower case, punctuation dropped, spaces
// as hyphens, and -1, -2, ... for repeats.
func anchors(headings []string) []string {
	seen := make(map[string]int)
	var out []string
	for _, h := range headings {
		h = inlineCodeRE.ReplaceAllStringFunc(h, func(s string) string { return strings.Trim(s, "`") })
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", a, n))
		} else {
			out = append(out, a)
		}
		seen[a]++
	}
	return out
}

// TestUserGuideCoverage checks that the guide keeps the sections of Python bulkman's guide
// and mentions every program under examples/, so that a reader finds each of them.
func TestUserGuideCoverage(t *testing.T) {
	p := readPage(t, "docs/user-guide.md")
	for _, s := range pythonGuideSections {
		if !slices.ContainsFunc(p.headings, func(h string) bool { return strings.HasPrefix(h, s) }) {
			t.Errorf("docs/user-guide.md: no heading for Python bulkman's section %q", s)
		}
	}
	dirs, err := filepath.Glob(filepath.Join(root, "examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		name := "examples/" + filepath.Base(d)
		if !strings.Contains(p.text, name) {
			t.Errorf("docs/user-guide.md does not mention %s", name)
		}
	}
}
