package statuspage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

//go:embed page.html
var pageSource string

var pageTemplate = template.Must(template.New("page.html").Parse(pageSource))

// Page returns a handler that serves the status page. The page fetches statsURL (where
// the JSON handler is mounted, e.g. "/bulkheads.json"; a relative URL resolves against
// the page's own) every second and shows, for every bulkhead: its status (healthy,
// shedding, degraded or isolated; see Status), the circuit's, and while the circuit is
// open a countdown to the end of the isolation; small charts of the last five minutes
// (calls per second, refusals per second stacked by reason, the queue wait's 99th
// percentile, and the concurrency limit when it has moved from MaxConcurrentCalls);
// the refusals per second and their share over the shedding window; running calls
// against the limit in force, queued callers against MaxQueueSize, abandoned calls; the
// refused calls by priority; and the totals. The summary line counts the bulkheads in
// each status, and the tab's title names the isolated and shedding ones. statsURL must
// have the page's origin: the page's Content-Security-Policy lets it connect nowhere
// else. If statsURL cannot be fetched or is not the JSON handler, the page says so and
// keeps trying.
//
// Every row has stable attributes for scripts and tests: id "bulkhead-" followed by the
// URL-encoded name, data-bulkhead (the name) and data-state (the status); elements with
// data-field (name, state, circuit, isolation, calls-rate, rejection-rate,
// rejection-share, queue-wait, limit, running, queued, abandoned, priorities, calls) and,
// for numbers, data-value.
//
// The page is rendered once, here; the handler is safe for concurrent use.
func Page(statsURL string) http.Handler {
	var buf bytes.Buffer
	// The template and its only value are under our control: Execute cannot fail.
	_ = pageTemplate.Execute(&buf, struct{ StatsURL string }{statsURL})
	body := buf.Bytes()
	csp := "default-src 'none'; " +
		"script-src " + inlineHash(body, "script") + "; " +
		"style-src " + inlineHash(body, "style") + "; " +
		"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	length := strconv.Itoa(len(body))
	return readOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", length)
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(body)
	}))
}

// inlineHash returns the CSP source ('sha256-...') of the content of the page's one
// <tag> element, so that the policy allows exactly the page's own inline script and
// style, and nothing injected.
func inlineHash(page []byte, tag string) string {
	s := string(page)
	start := strings.Index(s, "<"+tag+">") + len(tag) + 2
	end := strings.Index(s, "</"+tag+">")
	sum := sha256.Sum256([]byte(s[start:end]))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
