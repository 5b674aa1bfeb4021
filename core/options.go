package core

import (
	"log/slog"
	"time"
)

// Option configures a Bulkhead or a Manager. Options carry dependencies (a logger, a
// store, event hooks), never data: limits and thresholds belong in Config.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	hooks        []func(Event)
	subscribers  []*subscription // a Manager's, for the bulkheads it creates
	store        CircuitStore
	storeTimeout time.Duration
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.storeTimeout <= 0 {
		o.storeTimeout = defaultStoreTimeout
	}
	return o
}

// WithLogger sends circuit transitions and store trouble to l. OPEN transitions log at
// Warn, others at Info, store errors at Warn. The default discards everything; a nil l
// keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}
