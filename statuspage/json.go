// Package statuspage serves what a core.Manager's bulkheads are doing to people: JSON
// returns an http.Handler with every bulkhead's Stats and its last five minutes, and Page
// one with a small live page that polls it every second and shows, at a glance, which
// bulkheads are healthy, shedding load, degraded or isolated, with charts of their recent
// traffic.
//
// # Shedding
//
// A bulkhead whose circuit is closed (or that has no breaker) but that refuses calls is
// "shedding": within the last SheddingWindow (10 seconds) it refused at least
// SheddingMinRefusals (5) calls and at least SheddingShare (5%) of the calls that reached
// it, refused / (ended + refused), whatever the reason. An open circuit is "isolated" and
// a half-open one "degraded", whatever the refusals.
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
	"time"

	"github.com/bulkman-go/bulkman/core"
)

// JSON returns a handler that serves every bulkhead of m as one JSON object: each name
// maps to the bulkhead's Stats, with Python bulkman's keys (name, state,
// total_executions, ...), and two more keys:
//
//   - "status": what the status page shows, "healthy", "shedding", "degraded" or
//     "isolated" (see Status for the rule);
//   - "recent": the last five minutes in two-second steps, from the bulkhead's events
//     (calls and refusals per second, refusals by reason and priority, the queue wait's
//     99th percentile, the concurrency limit), and the inputs of the shedding rule (see
//     Recent).
//
// JSON attaches to m in this one step: it subscribes to m's events (core.Manager.Subscribe)
// at once, so the history covers the time before the first request, for every bulkhead m
// has or creates later. Its cost on the path of a call is a few atomic operations and a
// map lookup per event, without a lock, an allocation or a clock reading; it keeps about
// 20 kB per bulkhead, and forgets the bulkheads m no longer has.
//
// Names are sorted, and the keys come in a fixed order, so that two responses for the
// same state within one step differ only in recent.at_unix_ms. The response is never
// cached. A nil m serves an empty object.
//
// The handler is safe for concurrent use.
func JSON(m *core.Manager) http.Handler {
	var h *history
	if m != nil {
		h = newHistory(m)
	}
	return readOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]bulkhead{}
		if h != nil {
			now := time.Now()
			stats := m.Stats()
			h.prune(stats)
			for name, s := range stats {
				rec := h.recent(name, s, now)
				out[name] = bulkhead{Stats: s, Status: Status(s, rec), Recent: rec}
			}
		}
		body, err := json.Marshal(out) // encoding/json sorts map keys
		if err != nil {
			http.Error(w, "statuspage: "+err.Error(), http.StatusInternalServerError)
			return
		}
		body = append(body, '\n')
		hdr := w.Header()
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	}))
}

// bulkhead is one entry of the JSON: the Stats keys first, then the page's.
type bulkhead struct {
	core.Stats
	Status string  `json:"status"`
	Recent *Recent `json:"recent"`
}

func appendFloat(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'f', -1, 64) }

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
