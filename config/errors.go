package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bulkman-go/bulkman/core"
)

// Error is one problem found in a configuration file, at a position in it. Parse, Load,
// New, Open, Apply and Reload return every problem they find as an errors.Join of
// *Error, sorted by position; use errors.As to read the fields of the first, or the
// Unwrap() []error of the joined error to walk them all.
//
// Its message reads "file:line:col: key: message", the form editors and compilers use, for
// example:
//
//	bulkheads.yaml:12:27: bulkheads[1].max_concurrent_calls: must be between 1 and 16777216, got 0
//
// An Error is a plain value, safe to share once returned.
type Error struct {
	File   string // the name given to Parse, or the path given to Load
	Line   int    // 1-based; 0 when the problem concerns the whole file
	Column int    // 1-based; 0 when unknown
	// Key is the path of the key at fault: "defaults.timeout_seconds",
	// "bulkheads[2].name", `grpc["/shop.v1.Orders/*"]`, `http["GET /users/{id}"]`; empty
	// for a syntax error.
	Key string
	// Err says what is wrong. It wraps the *core.ConfigError of an invalid value and the
	// httpmw.ByPattern error of a bad pattern, for errors.As.
	Err error
}

// Error returns "file:line:col: key: message", leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// valueError is a *core.ConfigError told in the file's terms: the key is named by the
// *Error around it, so only the reason and the value remain.
type valueError struct {
	ce   *core.ConfigError
	note string // where the value came from, when not from the key itself
}

func (e *valueError) Error() string {
	return fmt.Sprintf("%s, got %v%s", e.ce.Reason, e.ce.Value, e.note)
}

func (e *valueError) Unwrap() error { return e.ce }

// pos is a position in the file; the zero pos means the whole file.
type pos struct{ line, col int }

// problems collects the errors of one file.
type problems struct {
	file string
	errs []*Error
}

func (p *problems) add(at pos, key string, err error) {
	p.errs = append(p.errs, &Error{File: p.file, Line: at.line, Column: at.col, Key: key, Err: err})
}

func (p *problems) addf(at pos, key, format string, args ...any) {
	p.add(at, key, fmt.Errorf(format, args...))
}

// err returns the problems sorted by position, joined, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// yamlLine reads the line number out of a go.yaml.in/yaml/v3 syntax error ("yaml: line
// 3: did not find expected key"), which has no structured form.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns a YAML parser error into an *Error at its line.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	e := &Error{File: file}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	e.Err = &reworded{msg: "invalid YAML: " + msg, err: err}
	return e
}

// reworded is err told in the file's terms (a YAML parser's error without its line,
// httpmw.ByPattern's about one pattern of the file): msg replaces err's message, and
// errors.Is and errors.As still reach err.
type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }
