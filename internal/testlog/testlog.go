// Package testlog captures what the code under test logs, for the module's own tests: a
// slog.Handler that keeps messages, and a buffer that a log.Logger or a slog text handler
// can write to from other goroutines while the test reads it.
package testlog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Sink is a slog.Handler that keeps the message of every record at MinLevel or above, as
// "LEVEL message" (attributes are dropped). The zero Sink keeps Info and above. It is
// safe for concurrent use.
type Sink struct {
	MinLevel slog.Level

	mu   sync.Mutex
	msgs []string
}

// Enabled reports whether l is at MinLevel or above.
func (h *Sink) Enabled(_ context.Context, l slog.Level) bool { return l >= h.MinLevel }

// Handle keeps r's level and message.
func (h *Sink) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	return nil
}

// WithAttrs returns h: attributes are not kept.
func (h *Sink) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup returns h: groups are not kept.
func (h *Sink) WithGroup(string) slog.Handler { return h }

// Count returns how many kept messages contain substr.
func (h *Sink) Count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// Buffer is a bytes.Buffer whose Write and String are safe for concurrent use. The zero
// Buffer is empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
