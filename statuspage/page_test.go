package statuspage_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/statuspage"
)

func TestPage(t *testing.T) {
	rec := httptest.NewRecorder()
	statuspage.Page("/bulkheads.json").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Equal(t, strconv.Itoa(rec.Body.Len()), rec.Header().Get("Content-Length"))
	body := rec.Body.String()
	assert.Contains(t, body, `data-stats-url="/bulkheads.json"`)
	for _, external := range []string{`src="http`, `href="http`, "@import", "url("} {
		assert.NotContains(t, body, external, "the page loads nothing")
	}

	// The policy allows the page's own script and style, by hash, and nothing else.
	csp := rec.Header().Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, "connect-src 'self'")
	for _, tag := range []string{"script", "style"} {
		m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(body, -1)
		require.Len(t, m, 1, "one inline %s", tag)
		sum := sha256.Sum256([]byte(m[0][1]))
		assert.Contains(t, csp, tag+"-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	assert.NotContains(t, csp, "unsafe-inline")
}

// TestPageEscapesTheURL: the URL lands in an attribute, escaped, and a javascript: URL is
// neutralised.
func TestPageEscapesTheURL(t *testing.T) {
	for url, want := range map[string]string{
		`/a"><script>alert(1)</script>`: `data-stats-url="/a%22%3e%3cscript%3ealert%281%29%3c/script%3e"`,
		"javascript:alert(1)":           `data-stats-url="#ZgotmplZ"`,
		"stats?x=1&y=2":                 `data-stats-url="stats?x=1&amp;y=2"`,
	} {
		rec := httptest.NewRecorder()
		statuspage.Page(url).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Contains(t, rec.Body.String(), want, url)
	}
}

const chromium = "/usr/bin/chromium"

// TestPageInChromium loads the page in headless Chromium against a real server, after a
// circuit opened, and checks the rendered DOM: the isolated bulkhead's row, the healthy
// ones', the summary, and a rejection rate computed from successive polls (the JSON
// handler refuses one call on the isolated bulkhead per request). The page finds a row
// again by its id at each poll: a name that needs URL-encoding keeps one row too.
func TestPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("BULKMAN_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("BULKMAN_REQUIRE_CHROMIUM is set, but %s is missing (%v): install Debian's chromium package", chromium, err)
		}
		t.Skipf("%s is missing, so the status page is not checked in a browser: install Debian's chromium package "+
			"(apt-get install -y chromium), or set BULKMAN_REQUIRE_CHROMIUM=1 to make this a failure", chromium)
	}
	m := newManager(t)
	pay, _ := m.Get("payments")
	const encoded = `orders "eu"/ü`
	_, err := m.Create(core.DefaultConfig(encoded))
	require.NoError(t, err)
	var polls atomic.Int64
	jsonHandler := statuspage.JSON(m)
	mux := http.NewServeMux()
	mux.Handle("GET /bulkheads.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		_, err := core.Execute(r.Context(), pay, func(context.Context) (int, error) { return 1, nil })
		if !errors.Is(err, core.ErrCircuitOpen) {
			http.Error(w, "the circuit should be open", http.StatusInternalServerError)
			return
		}
		jsonHandler.ServeHTTP(w, r)
	}))
	mux.Handle("GET /status", statuspage.Page("/bulkheads.json"))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", srv.URL+"/status")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium: %s", stderr.String())

	doc, err := html.Parse(strings.NewReader(string(out)))
	require.NoError(t, err)
	rows := map[string]*html.Node{}
	var order []string
	var summary *html.Node
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if name, ok := attr(n, "data-bulkhead"); ok && n.Data == "tr" {
			rows[name] = n
			order = append(order, name)
		}
		if id, _ := attr(n, "id"); id == "summary" {
			summary = n
		}
	})
	require.Contains(t, rows, "payments", "the page rendered the isolated bulkhead's row:\n%s", out)
	require.Contains(t, rows, "search")
	require.Contains(t, rows, encoded)
	assert.Equal(t, []string{encoded, "payments", "search"}, order, "one row per bulkhead, sorted by name")
	id, _ := attr(rows[encoded], "id")
	assert.Equal(t, "bulkhead-orders%20%22eu%22%2F%C3%BC", id)
	assert.Equal(t, encoded, text(field(rows[encoded], "name")))

	pay2 := rows["payments"]
	id, _ = attr(pay2, "id")
	assert.Equal(t, "bulkhead-payments", id)
	state, _ := attr(pay2, "data-state")
	assert.Equal(t, "isolated", state)
	assert.Equal(t, "isolated", text(field(pay2, "state")))
	assert.Equal(t, "OPEN", text(field(pay2, "circuit")))
	assert.Equal(t, "0 / 10", text(field(pay2, "running")))
	assert.Equal(t, "0 / 100", text(field(pay2, "queued")))
	state, _ = attr(rows["search"], "data-state")
	assert.Equal(t, "healthy", state)
	assert.Equal(t, "off", text(field(rows["search"], "circuit")))
	require.NotNil(t, summary)
	assert.Equal(t, "3 bulkheads: 2 healthy, 0 degraded, 1 isolated", text(summary))

	require.GreaterOrEqual(t, polls.Load(), int64(2), "the page refreshes itself")
	rate, ok := attr(field(pay2, "rejection-rate"), "data-value")
	require.True(t, ok, "a rate after two polls")
	perSecond, err := strconv.ParseFloat(rate, 64)
	require.NoError(t, err)
	assert.InDelta(t, 1.0, perSecond, 0.5, "one rejection per one-second poll")
	share, _ := attr(field(pay2, "rejection-share"), "data-value")
	assert.Equal(t, "1.000", share, "every call was rejected")
	rate, _ = attr(field(rows["search"], "rejection-rate"), "data-value")
	assert.Equal(t, "0.000", rate)
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// field returns the row's cell with data-field f.
func field(row *html.Node, f string) *html.Node {
	var found *html.Node
	walk(row, func(n *html.Node) {
		if v, ok := attr(n, "data-field"); ok && v == f && found == nil {
			found = n
		}
	})
	return found
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return strings.TrimSpace(b.String())
}
