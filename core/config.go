package core

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Config describes one named bulkhead. It is Python bulkman's BulkheadConfig. Start from
// DefaultConfig and change what you need; New validates it.
//
// Config is a plain value: copy it freely. A Bulkhead keeps its own copy.
type Config struct {
	// Name identifies the bulkhead: required, unique within a Manager, and the key of its
	// circuit in a CircuitStore.
	Name string
	// MaxConcurrentCalls is how many functions may run at once (>= 1). Functions whose
	// caller gave up at the Timeout still count until they return.
	MaxConcurrentCalls int
	// MaxQueueSize is how many callers may wait for a permit (>= 0), in FIFO order.
	// 0 means fail fast with ErrFull when every permit is taken.
	MaxQueueSize int
	// Timeout bounds queue wait plus run, measured from admission (>= 0; 0 means none).
	// A Timeout longer than 146 years (math.MaxInt64 as "no end", say) counts as 146
	// years, as IsolationDuration does, so that a deadline cannot overflow into the past;
	// Config keeps the value given.
	Timeout time.Duration
	// FailureThreshold is the number of consecutive failures that open the circuit
	// (>= 1 when CircuitBreakerEnabled and FailureRateThreshold is 0).
	FailureThreshold int
	// FailureRateThreshold switches the circuit to the failure-rate rule (0, the
	// default, keeps the consecutive rule of FailureThreshold; 1 to 100 when set): the
	// circuit opens when at least MinimumCalls calls ended within the last
	// FailureRateWindow and at least this percentage of them failed. Failures are
	// counted as for FailureThreshold (timeouts included); calls the caller cancelled
	// and the bulkhead's own refusals do not count at all. Half-open probing and closing
	// work as for the consecutive rule.
	FailureRateThreshold int
	// FailureRateWindow is how far back the failure-rate rule looks (> 0 when
	// FailureRateThreshold is set). It moves in tenths: a call counts for between 9/10
	// of the window and the whole window after it ended.
	FailureRateWindow time.Duration
	// MinimumCalls is how many calls must have ended within FailureRateWindow before
	// the failure-rate rule may open the circuit (>= 1 when FailureRateThreshold is set),
	// so that a handful of calls cannot open it.
	MinimumCalls int
	// SuccessThreshold is the number of consecutive half-open successes that close the
	// circuit, and the most probes admitted at once while half-open (>= 1 when
	// CircuitBreakerEnabled).
	SuccessThreshold int
	// IsolationDuration is how long the circuit stays open before it admits probes
	// (>= 0; 0 means the next call is already a probe).
	IsolationDuration time.Duration
	// CircuitBreakerEnabled turns the circuit breaker on. It is off by default.
	CircuitBreakerEnabled bool
	// HealthCheckInterval is how often a bulkhead with a CircuitStore re-reads shared state
	// it may have missed (>= 0; 0 turns the poll off). It is never a per-call cost.
	HealthCheckInterval time.Duration

	// Adaptive, when non-nil, lets the bulkhead find its own concurrency limit between
	// Adaptive.MinConcurrentCalls and MaxConcurrentCalls (then a ceiling), from the latency
	// and throughput it measures; Stats.ConcurrencyLimit shows it. nil: the static limit
	// MaxConcurrentCalls (the Python library's behaviour). DefaultConfig leaves it nil.
	Adaptive *AdaptiveConfig
}

// DefaultConfig returns Python bulkman's defaults for a bulkhead called name: 10 concurrent
// calls, a queue of 100, no timeout, and a disabled circuit breaker that would open after
// 5 consecutive failures, stay open 30s, and close after 3 consecutive successes.
func DefaultConfig(name string) Config {
	return Config{
		Name:                name,
		MaxConcurrentCalls:  10,
		MaxQueueSize:        100,
		FailureThreshold:    5,
		SuccessThreshold:    3,
		IsolationDuration:   30 * time.Second,
		HealthCheckInterval: 5 * time.Second,
	}
}

// maxTimeout caps the Timeout in force (not the Config's), so that admission plus Timeout,
// an offset on the bulkhead's clock, cannot overflow: see maxIsolation.
const maxTimeout = maxIsolation

// maxLimit bounds MaxConcurrentCalls and MaxQueueSize so that their sum cannot overflow
// and a typo (an extra zero or three) is caught rather than allocating a huge table.
const maxLimit = 1 << 24

// ConfigError reports one invalid field of a Config. Validate joins one ConfigError per
// bad field with errors.Join; use errors.As to inspect them.
type ConfigError struct {
	Bulkhead string // the Config's Name, possibly empty
	Field    string // the Go field name, e.g. "MaxConcurrentCalls"
	Value    any    // the rejected value
	Reason   string // what the value must be, e.g. "must be at least 1"
}

// Error names the bulkhead, the field, the rule and the rejected value, e.g.
// `bulkhead "api": MaxConcurrentCalls must be between 1 and 16777216, got 0`.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("bulkhead %q: %s %s, got %v", e.Bulkhead, e.Field, e.Reason, e.Value)
}

// Validate reports every invalid field at once: the result is nil or an errors.Join of
// one *ConfigError per bad field. Thresholds are checked only when the circuit breaker is
// enabled, and only those of the rule in use (FailureThreshold for the consecutive rule;
// FailureRateWindow and MinimumCalls for the failure-rate rule), since the others are
// unused.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &ConfigError{Bulkhead: c.Name, Field: field, Value: value, Reason: reason})
	}
	switch {
	case c.Name == "":
		bad("Name", `""`, "must not be empty")
	case strings.TrimSpace(c.Name) != c.Name:
		bad("Name", fmt.Sprintf("%q", c.Name), "must not start or end with white space")
	case strings.IndexFunc(c.Name, unicode.IsControl) >= 0:
		bad("Name", fmt.Sprintf("%q", c.Name), "must not contain control characters")
	case len(c.Name) > 200:
		bad("Name", len(c.Name), "must be at most 200 bytes long")
	}
	if c.MaxConcurrentCalls < 1 || c.MaxConcurrentCalls > maxLimit {
		bad("MaxConcurrentCalls", c.MaxConcurrentCalls, fmt.Sprintf("must be between 1 and %d", maxLimit))
	}
	if c.MaxQueueSize < 0 || c.MaxQueueSize > maxLimit {
		bad("MaxQueueSize", c.MaxQueueSize, fmt.Sprintf("must be between 0 and %d", maxLimit))
	}
	if c.Timeout < 0 {
		bad("Timeout", c.Timeout, "must not be negative")
	}
	if c.IsolationDuration < 0 {
		bad("IsolationDuration", c.IsolationDuration, "must not be negative")
	}
	if c.HealthCheckInterval < 0 {
		bad("HealthCheckInterval", c.HealthCheckInterval, "must not be negative")
	}
	if c.Adaptive != nil {
		c.Adaptive.validate(bad, c.MaxConcurrentCalls)
	}
	if c.CircuitBreakerEnabled {
		switch {
		case c.FailureRateThreshold < 0 || c.FailureRateThreshold > 100:
			bad("FailureRateThreshold", c.FailureRateThreshold, "must be between 0 (off) and 100 percent")
		case c.FailureRateThreshold > 0:
			if c.FailureRateWindow <= 0 {
				bad("FailureRateWindow", c.FailureRateWindow, "must be positive when FailureRateThreshold is set")
			}
			if c.MinimumCalls < 1 || c.MinimumCalls > maxLimit {
				bad("MinimumCalls", c.MinimumCalls, fmt.Sprintf("must be between 1 and %d when FailureRateThreshold is set", maxLimit))
			}
		case c.FailureThreshold < 1 || c.FailureThreshold > maxLimit:
			bad("FailureThreshold", c.FailureThreshold, fmt.Sprintf("must be between 1 and %d when the circuit breaker is enabled", maxLimit))
		}
		if c.SuccessThreshold < 1 || c.SuccessThreshold > maxLimit {
			bad("SuccessThreshold", c.SuccessThreshold, fmt.Sprintf("must be between 1 and %d when the circuit breaker is enabled", maxLimit))
		}
	}
	return errors.Join(errs...)
}
