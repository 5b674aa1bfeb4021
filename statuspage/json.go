// Package statuspage serves what a core.Manager's bulkheads are doing to people: JSON
// returns an http.Handler with every bulkhead's Stats, and Page one with a small live
// page that polls it every second and shows each bulkhead's state, running and queued
// calls against their limits, and its rejection rate.
//
// # Mounting
//
// Both handlers are read-only (GET and HEAD; anything else gets 405) and are mounted only
// where the caller mounts them; the package registers nothing. They show operational
// details (bulkhead names, limits, traffic), so mount them where the rest of your
// internal endpoints live, behind the same access control:
//
//	mux.Handle("GET /bulkheads.json", statuspage.JSON(m))
//	mux.Handle("GET /status", statuspage.Page("/bulkheads.json"))
//
// The page is one HTML file with its CSS and script inline, embedded in the binary; it
// loads nothing else, and its Content-Security-Policy allows nothing else.
package statuspage

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/bulkman-go/bulkman/core"
)

// JSON returns a handler that serves m.Stats() as one JSON object: each bulkhead's name
// maps to its Stats, with Python bulkman's keys (name, state, total_executions, ...).
// Names are sorted, and the keys of each Stats come in a fixed order, so that two responses for the
// same state are byte for byte the same. The response is never cached. A nil m serves an
// empty object.
//
// The handler is safe for concurrent use.
func JSON(m *core.Manager) http.Handler {
	return readOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stats := map[string]core.Stats{}
		if m != nil {
			stats = m.Stats()
		}
		body, err := json.Marshal(stats) // encoding/json sorts map keys
		if err != nil {
			http.Error(w, "statuspage: "+err.Error(), http.StatusInternalServerError)
			return
		}
		body = append(body, '\n')
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	}))
}

// readOnly answers methods other than GET and HEAD with 405 Method Not Allowed.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: this endpoint is read-only", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}
