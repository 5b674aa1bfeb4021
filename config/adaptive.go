package config

import (
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/bulkman-go/bulkman/core"
)

// adaptiveKey is the bulkhead key that makes the limit adaptive (core.Config.Adaptive):
// true (every setting at its default), false or null (a static limit), or a mapping of
// adaptiveKeys. max_concurrent_calls is then the ceiling.
const adaptiveKey = "adaptive"

// adaptiveKeyDef is one key of the adaptive: mapping.
type adaptiveKeyDef struct {
	name  string // in the file
	field string // as core.ConfigError names it
	i     func(*core.AdaptiveConfig) *int
	f     func(*core.AdaptiveConfig) *float64
}

var adaptiveKeys = []adaptiveKeyDef{
	{name: "min_concurrent_calls", field: "Adaptive.MinConcurrentCalls", i: func(a *core.AdaptiveConfig) *int { return &a.MinConcurrentCalls }},
	{name: "initial_concurrent_calls", field: "Adaptive.InitialConcurrentCalls", i: func(a *core.AdaptiveConfig) *int { return &a.InitialConcurrentCalls }},
	{name: "queue_per_limit", field: "Adaptive.QueuePerLimit", f: func(a *core.AdaptiveConfig) *float64 { return &a.QueuePerLimit }},
	{name: "tolerance", field: "Adaptive.Tolerance", f: func(a *core.AdaptiveConfig) *float64 { return &a.Tolerance }},
}

var adaptiveKeyList = func() string {
	s := ""
	for i, k := range adaptiveKeys {
		if i > 0 {
			s += ", "
		}
		s += k.name
	}
	return s
}()

// The path of each adaptive key inside a bulkhead ("adaptive.tolerance"), by field, for
// Validate's errors.
func init() {
	for _, k := range adaptiveKeys {
		keyByField[k.field] = adaptiveKey + "." + k.name
	}
}

// adaptive reads the adaptive: value n of the bulkhead at path into c, recording where
// each key was set in set (by its path inside the bulkhead). min_concurrent_calls is 1
// when not given.
func (p *parser) adaptive(c *core.Config, n *yaml.Node, path string, set map[string]pos) {
	apath := join(path, adaptiveKey)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" || isNull(n) {
		on := false
		if !isNull(n) {
			var err error
			if on, err = decodeBool(n); err != nil {
				p.add(posOf(n), apath, err)
				return
			}
		}
		c.Adaptive = nil
		if on {
			c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1}
		}
		set[adaptiveKey] = posOf(n)
		return
	}
	if n.Kind != yaml.MappingNode {
		p.addf(posOf(n), apath, "want true, false or a mapping of %s, got %s", adaptiveKeyList, describe(n))
		return
	}
	a := core.AdaptiveConfig{MinConcurrentCalls: 1}
	if c.Adaptive != nil {
		a = *c.Adaptive // from defaults:
	}
	set[adaptiveKey] = posOf(n)
	p.pairs(n, apath, func(k string, kn, v *yaml.Node) {
		var kd *adaptiveKeyDef
		for i := range adaptiveKeys {
			if adaptiveKeys[i].name == k {
				kd = &adaptiveKeys[i]
			}
		}
		if kd == nil {
			p.unknown(kn, join(apath, k), adaptiveKeyList)
			return
		}
		if kd.i != nil {
			x, err := decodeInt(v)
			if err != nil {
				p.add(posOf(v), join(apath, k), err)
				return
			}
			*kd.i(&a) = x
		} else {
			x, err := decodeFloat(v)
			if err != nil {
				p.add(posOf(v), join(apath, k), err)
				return
			}
			*kd.f(&a) = x
		}
		set[adaptiveKey+"."+k] = posOf(v)
	})
	c.Adaptive = &a
}

func decodeFloat(n *yaml.Node) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		return 0, fmt.Errorf("must be a number, got %s", describe(n))
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("must be a number, got %s", describe(n))
	}
	return v, nil
}

// cloneAdaptive gives c its own copy of its AdaptiveConfig, so that bulkheads that took
// it from defaults: share nothing.
func cloneAdaptive(c *core.Config) {
	if c.Adaptive != nil {
		a := *c.Adaptive
		c.Adaptive = &a
	}
}

// sameConfig reports whether a and b configure a bulkhead alike (Adaptive compared by
// value).
func sameConfig(a, b core.Config) bool {
	aa, ba := a.Adaptive, b.Adaptive
	a.Adaptive, b.Adaptive = nil, nil
	if a != b || (aa == nil) != (ba == nil) {
		return false
	}
	return aa == nil || *aa == *ba
}
