package statuspage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/statuspage"
)

var errBoom = errors.New("boom")

// statsKeys are the keys of the Python library's get_stats(), and the ones the Go port adds.
var statsKeys = []string{
	"name", "state", "total_executions", "successful_executions", "failed_executions",
	"rejected_executions", "active_tasks", "max_concurrent_calls", "max_queue_size",
	"circuit_breaker_enabled", "circuit_status",
	"timed_out_executions", "abandoned_tasks", "queued_tasks", "in_flight_count",
	"concurrency_limit", "open_until",
	"status", "recent", // the page's
}

// newManager returns a Manager with "payments" (isolated after one failure) and "search"
// (healthy, breaker off, one success).
func newManager(t *testing.T) *core.Manager {
	t.Helper()
	m := core.NewManager()
	cfg := core.DefaultConfig("payments")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold, cfg.IsolationDuration = 1, time.Hour
	pay, err := m.Create(cfg)
	require.NoError(t, err)
	search, err := m.Create(core.DefaultConfig("search"))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = core.Execute(ctx, pay, func(context.Context) (int, error) { return 0, errBoom })
	require.NoError(t, err)
	require.Equal(t, core.Isolated, pay.State())
	_, err = core.Execute(ctx, search, func(context.Context) (int, error) { return 1, nil })
	require.NoError(t, err)
	return m
}

func serve(h http.Handler, method string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/bulkheads.json", nil))
	return rec
}

func TestJSONKeys(t *testing.T) {
	m := newManager(t)
	h := statuspage.JSON(m)
	search, _ := m.Get("search")
	_, err := core.Execute(context.Background(), search, func(context.Context) (int, error) { return 1, nil })
	require.NoError(t, err)
	rec := serve(h, http.MethodGet)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))

	var body map[string]map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.ElementsMatch(t, []string{"payments", "search"}, slices.Collect(maps.Keys(body)))
	for name, stats := range body {
		want := statsKeys
		if name == "search" { // circuit_status and open_until are omitted when the breaker is off
			want = slices.DeleteFunc(slices.Clone(statsKeys), func(k string) bool { return k == "circuit_status" || k == "open_until" })
		}
		assert.ElementsMatch(t, want, slices.Collect(maps.Keys(stats)), name)
		assert.Equal(t, name, stats["name"])
	}
	assert.Equal(t, "isolated", body["payments"]["state"])
	assert.Equal(t, "OPEN", body["payments"]["circuit_status"])
	assert.NotEmpty(t, body["payments"]["open_until"], "an OPEN circuit says when its isolation ends")
	assert.Equal(t, true, body["payments"]["circuit_breaker_enabled"])
	assert.Equal(t, 1.0, body["payments"]["failed_executions"])
	assert.Equal(t, "healthy", body["search"]["state"])
	assert.Equal(t, 2.0, body["search"]["successful_executions"])
	assert.Equal(t, "isolated", body["payments"]["status"])
	assert.Equal(t, "healthy", body["search"]["status"])
	recent, ok := body["search"]["recent"].(map[string]any)
	require.True(t, ok)
	assert.ElementsMatch(t, []string{"at_unix_ms", "step_seconds", "end_unix_ms", "calls_per_second", "refusals_per_second",
		"queue_wait_p99_seconds", "concurrency_limit", "window_seconds", "window_calls", "window_refusals",
		"window_refusal_share", "refused_by_priority"}, slices.Collect(maps.Keys(recent)))
	assert.Len(t, recent["calls_per_second"], statuspage.HistorySteps)
	assert.Equal(t, 1.0, recent["window_calls"], "the call made after JSON attached (the one before it is not in the history)")
}

// TestJSONIsStable: names sorted, keys in a fixed order, the same bytes for the same
// state (but for the time of the snapshot, at_unix_ms).
func TestJSONIsStable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := statuspage.JSON(newManager(t))
		at := regexp.MustCompile(`"at_unix_ms":[0-9]+`)
		first := serve(h, http.MethodGet).Body.String()
		time.Sleep(time.Millisecond)
		second := serve(h, http.MethodGet).Body.String()
		assert.NotEqual(t, first, second, "the time of the snapshot moved")
		assert.True(t, at.ReplaceAllString(first, "") == at.ReplaceAllString(second, ""), "the same bytes but for at_unix_ms")
		checkOrder(t, first)
	})
}

func checkOrder(t *testing.T, first string) {
	assert.Less(t, strings.Index(first, `"payments"`), strings.Index(first, `"search"`))
	obj := first[strings.Index(first, `"search":{`):]
	last := -1
	for _, k := range []string{"name", "state", "total_executions", "successful_executions", "failed_executions",
		"rejected_executions", "timed_out_executions", "active_tasks", "abandoned_tasks", "queued_tasks",
		"in_flight_count", "max_concurrent_calls", "max_queue_size", "circuit_breaker_enabled", "concurrency_limit",
		"status", "recent"} {
		i := strings.Index(obj, `"`+k+`":`)
		require.Greater(t, i, last, "key %s in order", k)
		last = i
	}
	assert.True(t, strings.HasSuffix(first, "}\n"))
}

func TestJSONEmpty(t *testing.T) {
	for name, m := range map[string]*core.Manager{"nil": nil, "empty": core.NewManager()} {
		rec := serve(statuspage.JSON(m), http.MethodGet)
		assert.Equal(t, http.StatusOK, rec.Code, name)
		assert.Equal(t, "{}\n", rec.Body.String(), name)
	}
}

func TestReadOnly(t *testing.T) {
	handlers := map[string]http.Handler{"json": statuspage.JSON(core.NewManager()), "page": statuspage.Page("/x.json")}
	for name, h := range handlers {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			rec := serve(h, method)
			assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, "%s %s", name, method)
			assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"), "%s %s", name, method)
		}
	}
	// HEAD over a real server: the headers of a GET, no body.
	srv := httptest.NewServer(handlers["json"])
	defer srv.Close()
	resp, err := http.Head(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "3", resp.Header.Get("Content-Length"))
	assert.Empty(t, body)
}
