package core

import "log/slog"

// Option configures a Bulkhead or a Manager. Options carry dependencies (a logger, a
// store), never data: limits and thresholds belong in Config.
type Option func(*options)

type options struct {
	logger *slog.Logger
	hooks  []func(Event)
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
	return o
}

// WithLogger sends circuit transitions (and store trouble, when a store is attached) to l.
// OPEN transitions log at Warn, others at Info. The default discards everything; a nil l
// keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}
