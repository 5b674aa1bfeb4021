package statuspage_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
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

// chromiumOrSkip returns the path of Chromium, or skips the test when it is missing
// (fails instead when BULKMAN_REQUIRE_CHROMIUM is set, as .ci/run does).
func chromiumOrSkip(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("BULKMAN_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("BULKMAN_REQUIRE_CHROMIUM is set, but %s is missing (%v): install Debian's chromium package", chromium, err)
		}
		t.Skipf("%s is missing, so the status page is not checked in a browser: install Debian's chromium package "+
			"(apt-get install -y chromium), or set BULKMAN_REQUIRE_CHROMIUM=1 to make this a failure", chromium)
	}
	return chromium
}

// headless runs Chromium on url with args, and returns its standard output.
func headless(t *testing.T, ctx context.Context, url string, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--hide-scrollbars",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--force-device-scale-factor=1", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium, append(append(base, args...), url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium: %s", stderr.String())
	return out
}

// traffic runs load on m's bulkheads until stop is closed: "payments" (2 permits, a queue
// of 2) gets eight callers of 20ms calls, far more than it can take, so it refuses most
// of them (the low-priority ones and the others alike); "inventory" gets a call every
// 20ms, which it always takes.
func traffic(m *core.Manager, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	pay, _ := m.Get("payments")
	inv, _ := m.Get("inventory")
	sleepy := func(d time.Duration) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { time.Sleep(d); return 1, nil }
	}
	loop := func(b *core.Bulkhead, ctx context.Context, call, pause time.Duration) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = core.Execute(ctx, b, sleepy(call))
			time.Sleep(pause)
		}
	}
	for i := range 8 {
		ctx := context.Background()
		if i < 6 {
			ctx = core.WithPriority(ctx, core.PriorityLow)
		}
		wg.Go(func() { loop(pay, ctx, 20*time.Millisecond, 2*time.Millisecond) })
	}
	wg.Go(func() { loop(inv, context.Background(), 2*time.Millisecond, 18*time.Millisecond) })
	return wg.Wait
}

// fourStates returns a Manager with a bulkhead in each state the page shows: "inventory"
// healthy, "payments" shedding (under traffic), "search" degraded (half-open after a
// successful probe, waiting for a second), "orders" isolated for ten minutes; and one
// whose name needs URL-encoding.
func fourStates(t *testing.T) *core.Manager {
	t.Helper()
	m := core.NewManager()
	create := func(name string, mutate func(*core.Config)) *core.Bulkhead {
		cfg := core.DefaultConfig(name)
		mutate(&cfg)
		b, err := m.Create(cfg)
		require.NoError(t, err)
		return b
	}
	create("inventory", func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 8, 16 })
	create("payments", func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 2, 2 })
	create(encodedName, func(*core.Config) {})
	breaker := func(c *core.Config, isolation time.Duration) {
		c.CircuitBreakerEnabled, c.FailureThreshold, c.SuccessThreshold, c.IsolationDuration = true, 1, 2, isolation
	}
	search := create("search", func(c *core.Config) { breaker(c, 50*time.Millisecond) })
	orders := create("orders", func(c *core.Config) { breaker(c, 10*time.Minute) })
	ctx := context.Background()
	fail := func(context.Context) (int, error) { return 0, errBoom }
	for _, b := range []*core.Bulkhead{search, orders} {
		_, err := core.Execute(ctx, b, fail)
		require.NoError(t, err)
	}
	time.Sleep(60 * time.Millisecond)
	_, err := core.Execute(ctx, search, func(context.Context) (int, error) { return 1, nil })
	require.NoError(t, err)
	require.Equal(t, core.Degraded, search.State())
	require.Equal(t, core.Isolated, orders.State())
	return m
}

const encodedName = `orders "eu"/ü`

// TestPageInChromium loads the page in headless Chromium against a real server while
// traffic runs, and checks the rendered DOM for each state: healthy, shedding (with its
// refusal share, charts and refused priorities), degraded, and isolated with the
// countdown to the end of its isolation; the summary counts each state. Then it takes a
// screenshot of the page, kept as a CI artifact in $BULKMAN_ARTIFACTS (default
// /tmp/bulkman-artifacts) as statuspage-shedding.png; BULKMAN_SCREENSHOT_WARMUP (a
// duration, default 6s) is how long traffic runs first, so that the charts have history.
func TestPageInChromium(t *testing.T) {
	chromiumOrSkip(t)
	warmup := 6 * time.Second
	if v := os.Getenv("BULKMAN_SCREENSHOT_WARMUP"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "BULKMAN_SCREENSHOT_WARMUP")
		warmup = d
	}
	m := fourStates(t)
	h := statuspage.JSON(m)
	var polls atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("GET /bulkheads.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		h.ServeHTTP(w, r)
	}))
	mux.Handle("GET /status", statuspage.Page("/bulkheads.json"))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	stop := make(chan struct{})
	wait := traffic(m, stop)
	defer func() { close(stop); wait() }()
	// The page samples the limit at each poll; poll during the warm-up as the page would.
	for end := time.Now().Add(warmup); time.Now().Before(end); time.Sleep(time.Second) {
		serve(h, http.MethodGet)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := headless(t, ctx, srv.URL+"/status", "--virtual-time-budget=3000", "--dump-dom")
	doc, err := html.Parse(strings.NewReader(string(out)))
	require.NoError(t, err)
	rows := map[string]*html.Node{}
	var order []string
	var summary, title *html.Node
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
		if n.Data == "title" && title == nil { // the document's, not an SVG's
			title = n
		}
	})
	require.Contains(t, rows, "payments", "the page rendered the rows:\n%s", out)
	assert.Equal(t, []string{"inventory", "orders", encodedName, "payments", "search"}, order, "one row per bulkhead, sorted by name")
	id, _ := attr(rows[encodedName], "id")
	assert.Equal(t, "bulkhead-orders%20%22eu%22%2F%C3%BC", id)
	assert.Equal(t, encodedName, text(field(rows[encodedName], "name")))
	for name, want := range map[string]string{"inventory": "healthy", "payments": "shedding", "search": "degraded", "orders": "isolated", encodedName: "healthy"} {
		state, _ := attr(rows[name], "data-state")
		assert.Equal(t, want, state, name)
		assert.Equal(t, want, text(field(rows[name], "state").FirstChild), "%s: the badge says it", name)
	}
	require.NotNil(t, summary)
	assert.Equal(t, "5 bulkheads: 2 healthy, 1 shedding, 1 degraded, 1 isolated", text(summary))
	shedding, _ := attr(summary, "data-shedding")
	assert.Equal(t, "1", shedding)
	assert.Equal(t, "(1 isolated, 1 shedding) Bulkheads", text(title))

	// Shedding: the share of refusals, the charts, the priorities refused.
	pay := rows["payments"]
	share, err := strconv.ParseFloat(dataValue(t, field(pay, "rejection-share")), 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, share, statuspage.SheddingShare)
	assert.Contains(t, text(field(pay, "rejection-share")), "%")
	perSecond, err := strconv.ParseFloat(dataValue(t, field(pay, "rejection-rate")), 64)
	require.NoError(t, err)
	assert.Greater(t, perSecond, 10.0, "eight callers, two permits")
	for _, f := range []string{"calls-rate", "rejection-rate", "queue-wait"} {
		assert.NotEmpty(t, paths(field(pay, f)), "%s: a chart with data", f)
	}
	assert.NotEmpty(t, text(field(pay, "priorities")))
	assert.NotEqual(t, "none", text(field(pay, "priorities")), "the refused priorities are listed")
	var hot []string
	walk(field(pay, "priorities"), func(n *html.Node) {
		if c, _ := attr(n, "class"); c == "chip hot" {
			p, _ := attr(n, "data-priority")
			hot = append(hot, p)
		}
	})
	assert.Equal(t, []string{"low"}, hot, "six of the eight callers are of low priority: the most refused")
	assert.Equal(t, "none", text(field(rows["inventory"], "priorities")))
	assert.Equal(t, "2 / 2", text(field(pay, "limit")))

	// Degraded and isolated: the circuit, and the countdown to the end of the isolation.
	assert.Equal(t, "circuit HALF_OPEN", text(field(rows["search"], "circuit")))
	assert.Equal(t, "circuit OPEN", text(field(rows["orders"], "circuit")))
	left, err := strconv.Atoi(dataValue(t, field(rows["orders"], "isolation")))
	require.NoError(t, err)
	assert.InDelta(t, 600-warmup.Seconds()-5, left, 30, "seconds left of a ten-minute isolation")
	assert.Regexp(t, `^probes in [0-9]+:[0-5][0-9]$`, text(field(rows["orders"], "isolation")))
	assert.True(t, strings.HasPrefix(text(field(rows["orders"], "isolation")), "probes in "+strconv.Itoa(left/60)+":") ||
		strings.HasPrefix(text(field(rows["orders"], "isolation")), "probes in "+strconv.Itoa((left+1)/60)+":"), "minutes:seconds")
	assert.Nil(t, field(rows["inventory"], "isolation"), "no countdown without an isolation")
	assert.Equal(t, "no breaker", text(field(rows["inventory"], "circuit")))
	require.GreaterOrEqual(t, polls.Load(), int64(2), "the page refreshes itself")

	// The screenshot, for people: CI keeps it.
	dir := os.Getenv("BULKMAN_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "bulkman-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	shot := filepath.Join(dir, "statuspage-shedding.png")
	headless(t, ctx, srv.URL+"/status", "--virtual-time-budget=3000", "--window-size=1700,560", "--screenshot="+shot)
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, "a PNG")
	assert.Equal(t, 1700, img.Bounds().Dx())
	t.Logf("screenshot of the status page with a shedding bulkhead: %s", shot)
}

// dataValue returns n's data-value, failing the test if it has none.
func dataValue(t *testing.T, n *html.Node) string {
	t.Helper()
	v, ok := attr(n, "data-value")
	require.True(t, ok, "no data-value")
	return v
}

// paths returns the d attributes of the non-empty SVG paths under n.
func paths(n *html.Node) []string {
	var out []string
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && c.Data == "path" {
			if d, _ := attr(c, "d"); d != "" {
				out = append(out, d)
			}
		}
	})
	return out
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
