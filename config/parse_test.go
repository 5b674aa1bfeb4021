package config_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

// cfg returns DefaultConfig(name) changed by mutate.
func cfg(name string, mutate func(*core.Config)) core.Config {
	c := core.DefaultConfig(name)
	if mutate != nil {
		mutate(&c)
	}
	return c
}

// goodFiles parse without error into these bulkheads and routes.
var goodFiles = []struct {
	name      string
	data      string
	bulkheads []core.Config
	grpc      map[string]string
	http      map[string]string
}{
	{
		name: "every key",
		data: `version: 1
defaults:
  max_concurrent_calls: 4
  max_queue_size: 8
  timeout_seconds: 2.5
  failure_threshold: 7
  success_threshold: 2
  isolation_duration: 10s
  circuit_breaker_enabled: true
  health_check_interval: 1
bulkheads:
  - name: orders
    max_concurrent_calls: 20
    max_queue_size: 0
    timeout_seconds: "1.5s"
    failure_threshold: 3
    success_threshold: 1
    isolation_duration: 0.25
    circuit_breaker_enabled: false
    health_check_interval: 2m
  - name: reports
grpc:
  "/shop.v1.Orders/*": orders
  "/shop.v1.Orders/Get": reports
  "/grpc.health.v1.Health/Check": null
  "*": reports
http:
  "POST /orders": orders
  "GET /reports/{id}": reports
  "/static/": orders
  "GET /healthz": ~
`,
		bulkheads: []core.Config{
			{Name: "orders", MaxConcurrentCalls: 20, MaxQueueSize: 0, Timeout: 1500 * time.Millisecond,
				FailureThreshold: 3, SuccessThreshold: 1, IsolationDuration: 250 * time.Millisecond,
				CircuitBreakerEnabled: false, HealthCheckInterval: 2 * time.Minute},
			{Name: "reports", MaxConcurrentCalls: 4, MaxQueueSize: 8, Timeout: 2500 * time.Millisecond,
				FailureThreshold: 7, SuccessThreshold: 2, IsolationDuration: 10 * time.Second,
				CircuitBreakerEnabled: true, HealthCheckInterval: time.Second},
		},
		grpc: map[string]string{"/shop.v1.Orders/*": "orders", "/shop.v1.Orders/Get": "reports", "/grpc.health.v1.Health/Check": "", "*": "reports"},
		http: map[string]string{"POST /orders": "orders", "GET /reports/{id}": "reports", "/static/": "orders", "GET /healthz": ""},
	},
	{
		name:      "absent keys take DefaultConfig's values",
		data:      "bulkheads:\n  - name: a\n",
		bulkheads: []core.Config{core.DefaultConfig("a")},
		grpc:      map[string]string{}, http: map[string]string{},
	},
	{
		name: "JSON, tab-indented",
		data: "{\n\t\"defaults\": {\"timeout_seconds\": 1},\n\t\"bulkheads\": [\n\t\t{\"name\": \"a\", \"max_concurrent_calls\": 3, \"circuit_breaker_enabled\": true}\n\t],\n\t\"grpc\": {\"*\": \"a\"},\n\t\"http\": {\"GET /x\": \"a\", \"/y\": null}\n}\n",
		bulkheads: []core.Config{cfg("a", func(c *core.Config) {
			c.MaxConcurrentCalls, c.Timeout, c.CircuitBreakerEnabled = 3, time.Second, true
		})},
		grpc: map[string]string{"*": "a"},
		http: map[string]string{"GET /x": "a", "/y": ""},
	},
	{
		name:      "empty mapping",
		data:      "{}\n",
		bulkheads: []core.Config{}, grpc: map[string]string{}, http: map[string]string{},
	},
	{
		name:      "empty blocks",
		data:      "defaults:\nbulkheads:\ngrpc:\nhttp:\n",
		bulkheads: []core.Config{}, grpc: map[string]string{}, http: map[string]string{},
	},
	{
		name: "durations: integers, floats, Go strings, zero, YAML number forms",
		data: `bulkheads:
  - {name: a, timeout_seconds: 3, isolation_duration: 0, health_check_interval: "250ms"}
  - {name: b, timeout_seconds: 0.001, isolation_duration: "1h30m", health_check_interval: 1_000}
  - {name: c, timeout_seconds: "0", max_concurrent_calls: 0x10, max_queue_size: 1_000}
`,
		bulkheads: []core.Config{
			cfg("a", func(c *core.Config) {
				c.Timeout, c.IsolationDuration, c.HealthCheckInterval = 3*time.Second, 0, 250*time.Millisecond
			}),
			cfg("b", func(c *core.Config) {
				c.Timeout, c.IsolationDuration, c.HealthCheckInterval = time.Millisecond, 90*time.Minute, 1000*time.Second
			}),
			cfg("c", func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 16, 1000 }),
		},
		grpc: map[string]string{}, http: map[string]string{},
	},
	{
		name: "anchors and aliases",
		data: `bulkheads:
  - name: &n a
    max_concurrent_calls: &limit 5
  - name: b
    max_concurrent_calls: *limit
grpc:
  "/s.S/*": *n
`,
		bulkheads: []core.Config{
			cfg("a", func(c *core.Config) { c.MaxConcurrentCalls = 5 }),
			cfg("b", func(c *core.Config) { c.MaxConcurrentCalls = 5 }),
		},
		grpc: map[string]string{"/s.S/*": "a"}, http: map[string]string{},
	},
	{
		name:      "a breaker's thresholds are not checked while it is off",
		data:      "defaults: {failure_threshold: 0, success_threshold: 0}\nbulkheads: [{name: a}]\n",
		bulkheads: []core.Config{cfg("a", func(c *core.Config) { c.FailureThreshold, c.SuccessThreshold = 0, 0 })},
		grpc:      map[string]string{}, http: map[string]string{},
	},
}

func TestParseGood(t *testing.T) {
	for _, tc := range goodFiles {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("good.yaml", []byte(tc.data))
			require.NoError(t, err)
			assert.Equal(t, "good.yaml", f.Name())
			assert.Equal(t, tc.bulkheads, f.Bulkheads())
			assert.Equal(t, tc.grpc, f.GRPCRoutes())
			assert.Equal(t, tc.http, f.HTTPRoutes())
		})
	}
}

// want is one expected problem: its line, column (0: not checked), key, and a part of
// its message.
type want struct {
	line, col int
	key, msg  string
}

var badFiles = []struct {
	name string
	data string
	want []want
}{
	{"syntax", "bulkheads: [\n", []want{{1, 0, "", "invalid YAML: did not find expected node content"}}},
	{"syntax on a later line", "bulkheads: []\ngrpc: {}\nhttp\nversion: 1\n", []want{{3, 0, "", "invalid YAML: could not find expected ':'"}}},
	{"empty", "", []want{{0, 0, "", "the file is empty"}}},
	{"only comments", "# nothing\n", []want{{0, 0, "", "the file is empty"}}},
	{"null document", "---\n...\n", []want{{2, 1, "", "the file is empty"}}},
	{"top level is a list", "- a\n", []want{{1, 1, "", "want a mapping of version, defaults, bulkheads, grpc or http, got a list"}}},
	{"two documents", "bulkheads: []\n---\nhttp: {}\n", []want{{2, 0, "", "a second YAML document"}}},
	{"unknown top-level key", "bulkhead:\n  - name: a\n", []want{{1, 1, "bulkhead", "unknown key (want version, defaults, bulkheads, grpc or http)"}}},
	{"version", "version: 2\n", []want{{1, 10, "version", "unsupported version 2"}}},
	{"duplicate top-level key", "grpc: {}\nhttp: {}\ngrpc: {}\n", []want{{3, 1, "grpc", "duplicate key (first at line 1)"}}},
	{"non-scalar key", "? [a]\n: 1\n", []want{{1, 3, "", "a key must be a plain value, got a list"}}},
	{"merge key", "defaults: &d {timeout_seconds: 1}\nbulkheads:\n  - <<: *d\n    name: a\n", []want{{3, 5, "bulkheads[0].<<", "merge keys are not supported"}}},
	{"unknown bulkhead key", "bulkheads:\n  - name: a\n    max_concurrent: 3\n", []want{{3, 5, "bulkheads[0].max_concurrent", "unknown key (want name, max_concurrent_calls, "}}},
	{"unknown defaults key", "defaults:\n  timeout: 3\n", []want{{2, 3, "defaults.timeout", "unknown key (want max_concurrent_calls, "}}},
	{"name in defaults", "defaults:\n  name: x\n", []want{{2, 3, "defaults.name", "a name belongs to each bulkhead"}}},
	{"defaults not a mapping", "defaults: [1]\n", []want{{1, 11, "defaults", "want a mapping, got a list"}}},
	{"bulkheads not a list", "bulkheads: {name: a}\n", []want{{1, 12, "bulkheads", "want a list of bulkheads, got a mapping"}}},
	{"bulkhead not a mapping", "bulkheads:\n  - a\n", []want{{2, 5, "bulkheads[0]", `want a mapping with a name, got "a"`}}},
	{"missing name", "bulkheads:\n  - max_queue_size: 1\n", []want{{2, 5, "bulkheads[0]", "name is required"}}},
	{"name not a string", "bulkheads:\n  - name: 42\n", []want{{2, 11, "bulkheads[0].name", "must be a string, got 42 (quote it)"}}},
	{"name refused by Validate", "bulkheads:\n  - name: \" padded \"\n", []want{{2, 11, "bulkheads[0].name", "must not start or end with white space"}}},
	{"duplicate name", "bulkheads:\n  - name: a\n  - name: b\n  - name: a\n", []want{{4, 11, "bulkheads[2].name", `duplicate bulkhead name "a" (first at line 2)`}}},
	{"duplicate key in a bulkhead", "bulkheads:\n  - name: a\n    max_queue_size: 1\n    max_queue_size: 2\n", []want{{4, 5, "bulkheads[0].max_queue_size", "duplicate key (first at line 3)"}}},
	{"integer: a string", "bulkheads:\n  - name: a\n    max_concurrent_calls: ten\n", []want{{3, 27, "bulkheads[0].max_concurrent_calls", `must be an integer, got "ten"`}}},
	{"integer: a float", "bulkheads:\n  - name: a\n    max_queue_size: 2.5\n", []want{{3, 21, "bulkheads[0].max_queue_size", "must be an integer, got 2.5"}}},
	{"integer: a quoted number", "bulkheads:\n  - name: a\n    max_queue_size: \"2\"\n", []want{{3, 21, "bulkheads[0].max_queue_size", `must be an integer, got "2"`}}},
	{"integer out of range", "bulkheads:\n  - name: a\n    max_queue_size: 99999999999999999999\n", []want{{3, 21, "bulkheads[0].max_queue_size", "must be an integer"}}},
	{"boolean: yes", "bulkheads:\n  - name: a\n    circuit_breaker_enabled: yes\n", []want{{3, 30, "bulkheads[0].circuit_breaker_enabled", `must be true or false, got "yes"`}}},
	{"duration: no unit", "bulkheads:\n  - name: a\n    timeout_seconds: \"2\"\n", []want{{3, 22, "bulkheads[0].timeout_seconds", `must be seconds (a number) or a Go duration ("1.5s", "250ms"), got "2"`}}},
	{"duration: a list", "defaults:\n  isolation_duration: [1]\n", []want{{2, 23, "defaults.isolation_duration", "got a list"}}},
	{"duration: NaN", "defaults:\n  timeout_seconds: .nan\n", []want{{2, 20, "defaults.timeout_seconds", "must be seconds"}}},
	{"duration out of range", "defaults:\n  timeout_seconds: 1e300\n", []want{{2, 20, "defaults.timeout_seconds", "duration out of range: 1e300 seconds"}}},
	{"invalid limit", "bulkheads:\n  - name: a\n    max_concurrent_calls: 0\n", []want{{3, 27, "bulkheads[0].max_concurrent_calls", "must be between 1 and 16777216, got 0"}}},
	{"negative duration", "bulkheads:\n  - name: a\n    timeout_seconds: -1\n", []want{{3, 22, "bulkheads[0].timeout_seconds", "must not be negative, got -1s"}}},
	{"threshold with the breaker on", "bulkheads:\n  - name: a\n    circuit_breaker_enabled: true\n    failure_threshold: 0\n", []want{{4, 24, "bulkheads[0].failure_threshold", "when the circuit breaker is enabled, got 0"}}},
	{"invalid defaults reported once", "defaults:\n  max_queue_size: -1\nbulkheads:\n  - name: a\n  - name: b\n", []want{{2, 19, "defaults.max_queue_size", "must be between 0 and 16777216, got -1"}}},
	{"defaults invalid only for one bulkhead", "defaults:\n  success_threshold: 0\nbulkheads:\n  - name: a\n  - name: b\n    circuit_breaker_enabled: true\n", []want{{2, 22, "defaults.success_threshold", `when the circuit breaker is enabled, got 0 (for bulkhead "b" at line 5)`}}},
	{"gRPC route to no bulkhead", "bulkheads: [{name: a}]\ngrpc:\n  \"/s.S/*\": b\n", []want{{3, 13, `grpc["/s.S/*"]`, `no bulkhead named "b"`}}},
	{"HTTP route to no bulkhead", "bulkheads: [{name: a}]\nhttp:\n  \"GET /x\": b\n", []want{{3, 13, `http["GET /x"]`, `no bulkhead named "b"`}}},
	{"route without a name", "bulkheads: [{name: a}]\nhttp:\n  \"GET /x\":\n", []want{{3, 12, `http["GET /x"]`, "missing bulkhead name (write null"}}},
	{"route to a number", "bulkheads: [{name: a}]\ngrpc:\n  \"*\": 1\n", []want{{3, 8, `grpc["*"]`, "must be a string, got 1"}}},
	{"duplicate route", "bulkheads: [{name: a}]\ngrpc:\n  \"/s.S/M\": a\n  \"/s.S/M\": a\n", []want{{4, 3, `grpc["/s.S/M"]`, "duplicate key (first at line 3)"}}},
	{"bad gRPC patterns", "bulkheads: [{name: a}]\ngrpc:\n  s.S/M: a\n  /s.S/: a\n  /s.S/Get*: a\n  /s.S/M N: a\n  /s.S/M/x: a\n", []want{
		{3, 3, `grpc["s.S/M"]`, "starts with a slash"},
		{4, 3, `grpc["/s.S/"]`, "not a method pattern"},
		{5, 3, `grpc["/s.S/Get*"]`, "a wildcard stands for a whole method"},
		{6, 3, `grpc["/s.S/M N"]`, "no spaces"},
		{7, 3, `grpc["/s.S/M/x"]`, "not a method pattern"},
	}},
	{"bad HTTP patterns", "bulkheads: [{name: a}]\nhttp:\n  \"GET /a/{x}\": a\n  \"GET /c/{\": a\n  \"GET /{y}/b\": a\n  \"GET x\": a\n", []want{
		{4, 3, `http["GET /c/{"]`, "bad wildcard segment"},
		{5, 3, `http["GET /{y}/b"]`, `conflicts with http["GET /a/{x}"] (line 3)`},
		{6, 3, `http["GET x"]`, "host/path missing /"},
	}},
	{"HTTP patterns of other routers", "bulkheads: [{name: a}]\nhttp:\n  \"/static/*\": a\n  \"GET /u/{id:[0-9]+}\": a\n  \"/u/:id\": a\n", []want{
		{3, 3, `http["/static/*"]`, `"*" is a literal asterisk in a ServeMux pattern`},
		{4, 3, `http["GET /u/{id:[0-9]+}"]`, "has a regular expression (chi's syntax)"},
		{5, 3, `http["/u/:id"]`, `write "{id}"`},
	}},
	{"duplicate HTTP route after cleaning", "bulkheads: [{name: a}]\nhttp:\n  \"GET /x\": a\n  \"GET  /x\": a\n", []want{{4, 3, `http["GET  /x"]`, `conflicts with http["GET /x"] (line 3)`}}},
	{"routes block not a mapping", "grpc: [a]\n", []want{{1, 7, "grpc", "want a mapping, got a list"}}},
	{"many problems at once", "bulkheads:\n  - name: a\n    max_concurrent_calls: 0\n  - name: b\n    timeout_seconds: x\nhttp:\n  \"GET /x\": c\n", []want{
		{3, 27, "bulkheads[0].max_concurrent_calls", "must be between 1"},
		{5, 22, "bulkheads[1].timeout_seconds", "must be seconds"},
		{7, 13, `http["GET /x"]`, `no bulkhead named "c"`},
	}},
}

func TestParseBad(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("bad.yaml", []byte(tc.data))
			assert.Nil(t, f)
			got := problems(t, err)
			require.Len(t, got, len(tc.want), "%v", err)
			for i, w := range tc.want {
				e := got[i]
				assert.Equal(t, "bad.yaml", e.File)
				assert.Equal(t, w.line, e.Line, "line of %q", e)
				if w.col != 0 {
					assert.Equal(t, w.col, e.Column, "column of %q", e)
				}
				assert.Equal(t, w.key, e.Key, "key of %q", e)
				assert.Contains(t, e.Err.Error(), w.msg)
				// The message leads with the position and the key, as compilers do.
				prefix := "bad.yaml:"
				if w.line > 0 {
					prefix += fmt.Sprintf("%d:", w.line)
				}
				assert.True(t, strings.HasPrefix(e.Error(), prefix), "%q starts with %q", e.Error(), prefix)
				if w.key != "" {
					assert.Contains(t, e.Error(), " "+w.key+": ")
				}
			}
			assert.Equal(t, len(tc.want), strings.Count(err.Error(), "\n")+1, "one line per problem: %v", err)
		})
	}
}

func TestParseErrorsUnwrap(t *testing.T) {
	_, err := config.Parse("x.yaml", []byte("bulkheads:\n  - name: a\n    max_concurrent_calls: 0\n"))
	var ce *core.ConfigError
	require.ErrorAs(t, err, &ce, "an invalid value wraps core's *ConfigError")
	assert.Equal(t, "MaxConcurrentCalls", ce.Field)
	assert.Equal(t, "a", ce.Bulkhead)
	assert.Equal(t, "x.yaml:3:27: bulkheads[0].max_concurrent_calls: must be between 1 and 16777216, got 0", err.Error())
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.yaml")
	require.NoError(t, os.WriteFile(path, []byte("bulkheads: [{name: a}]\n"), 0o600))
	f, err := config.Load(path)
	require.NoError(t, err)
	assert.Equal(t, path, f.Name())
	assert.Equal(t, []core.Config{core.DefaultConfig("a")}, f.Bulkheads())

	require.NoError(t, os.WriteFile(path, []byte("bulkheads: [{name: a, max_queue_size: x}]\n"), 0o600))
	_, err = config.Load(path)
	assert.ErrorContains(t, err, path+":1:39: bulkheads[0].max_queue_size: must be an integer")

	missing := filepath.Join(dir, "missing.yaml")
	_, err = config.Load(missing)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.EqualError(t, err, missing+": cannot read: no such file or directory")
}

func TestZeroFile(t *testing.T) {
	var f config.File
	assert.Empty(t, f.Bulkheads())
	assert.Empty(t, f.GRPCRoutes())
	assert.Empty(t, f.HTTPRoutes())
}
