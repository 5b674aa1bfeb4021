package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulkman-go/bulkman/core"
)

// kind is the type of a bulkhead key's value.
type kind int

const (
	kindInt      kind = iota // a YAML integer
	kindDuration             // seconds (an integer or a float) or a Go duration string
	kindBool                 // true or false
)

// keyDef is one bulkhead key of the file and the core.Config field it sets.
type keyDef struct {
	name  string // the key in the file: Python bulkman's name
	field string // the field as core.ConfigError names it
	kind  kind
	i     func(*core.Config) *int
	d     func(*core.Config) *time.Duration
	b     func(*core.Config) *bool
}

// keys are the bulkhead keys other than name, in the order the documentation gives them.
var keys = []keyDef{
	{name: "max_concurrent_calls", field: "MaxConcurrentCalls", kind: kindInt, i: func(c *core.Config) *int { return &c.MaxConcurrentCalls }},
	{name: "max_queue_size", field: "MaxQueueSize", kind: kindInt, i: func(c *core.Config) *int { return &c.MaxQueueSize }},
	{name: "timeout_seconds", field: "Timeout", kind: kindDuration, d: func(c *core.Config) *time.Duration { return &c.Timeout }},
	{name: "failure_threshold", field: "FailureThreshold", kind: kindInt, i: func(c *core.Config) *int { return &c.FailureThreshold }},
	{name: "failure_rate_threshold", field: "FailureRateThreshold", kind: kindInt, i: func(c *core.Config) *int { return &c.FailureRateThreshold }},
	{name: "failure_rate_window", field: "FailureRateWindow", kind: kindDuration, d: func(c *core.Config) *time.Duration { return &c.FailureRateWindow }},
	{name: "minimum_calls", field: "MinimumCalls", kind: kindInt, i: func(c *core.Config) *int { return &c.MinimumCalls }},
	{name: "success_threshold", field: "SuccessThreshold", kind: kindInt, i: func(c *core.Config) *int { return &c.SuccessThreshold }},
	{name: "isolation_duration", field: "IsolationDuration", kind: kindDuration, d: func(c *core.Config) *time.Duration { return &c.IsolationDuration }},
	{name: "circuit_breaker_enabled", field: "CircuitBreakerEnabled", kind: kindBool, b: func(c *core.Config) *bool { return &c.CircuitBreakerEnabled }},
	{name: "health_check_interval", field: "HealthCheckInterval", kind: kindDuration, d: func(c *core.Config) *time.Duration { return &c.HealthCheckInterval }},
}

const nameKey = "name"

// keyByName finds a bulkhead key by its name in the file; keyByField finds the name in
// the file of a core.Config field.
var keyByName, keyByField = func() (map[string]*keyDef, map[string]string) {
	byName := make(map[string]*keyDef, len(keys))
	byField := map[string]string{"Name": nameKey}
	for i := range keys {
		k := &keys[i]
		byName[k.name] = k
		byField[k.field] = k.name
	}
	return byName, byField
}()

// set decodes n into k's field of c.
func (k *keyDef) set(c *core.Config, n *yaml.Node) error {
	switch k.kind {
	case kindInt:
		v, err := decodeInt(n)
		if err == nil {
			*k.i(c) = v
		}
		return err
	case kindDuration:
		v, err := decodeDuration(n)
		if err == nil {
			*k.d(c) = v
		}
		return err
	default:
		v, err := decodeBool(n)
		if err == nil {
			*k.b(c) = v
		}
		return err
	}
}

func decodeInt(n *yaml.Node) (int, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, fmt.Errorf("must be an integer, got %s", describe(n))
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < math.MinInt || v > math.MaxInt {
		return 0, fmt.Errorf("integer out of range: %s", n.Value)
	}
	return int(v), nil
}

var errDuration = errors.New(`must be seconds (a number) or a Go duration ("1.5s", "250ms")`)

// maxSeconds is the largest number of seconds a time.Duration holds (about 292 years).
const maxSeconds = float64(math.MaxInt64) / float64(time.Second)

func decodeDuration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("%w, got %s", errDuration, describe(n))
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		var s float64
		if err := n.Decode(&s); err != nil || math.IsNaN(s) {
			return 0, fmt.Errorf("%w, got %s", errDuration, describe(n))
		}
		if math.Abs(s) >= maxSeconds {
			return 0, fmt.Errorf("duration out of range: %s seconds", n.Value)
		}
		return time.Duration(math.Round(s * float64(time.Second))), nil
	case "!!str":
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return 0, fmt.Errorf("%w, got %s", errDuration, describe(n))
		}
		return d, nil
	}
	return 0, fmt.Errorf("%w, got %s", errDuration, describe(n))
}

func decodeBool(n *yaml.Node) (bool, error) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		return false, fmt.Errorf("must be true or false, got %s", describe(n))
	}
	return v, nil
}

// decodeName reads a bulkhead's name: a YAML string.
func decodeName(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = " (quote it)"
		}
		return "", fmt.Errorf("must be a string, got %s%s", describe(n), hint)
	}
	return n.Value, nil
}

// describe names what n is, for error messages: `"ten"`, `2.5`, `a list`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return strconv.Quote(clip(n.Value))
		case "!!null":
			return "null"
		}
		return clip(n.Value)
	}
	return "nothing"
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}
