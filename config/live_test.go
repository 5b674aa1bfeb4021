package config_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

// writeFile replaces the file at path with data the way editors save: a new file renamed
// over the old one.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// open writes data to a new file and opens it over a new Manager.
func open(t *testing.T, data string, opts ...config.Option) (*config.Live, *core.Manager, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bulkheads.yaml")
	writeFile(t, path, data)
	m := core.NewManager()
	l, err := config.Open(m, path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		l.Close()
		m.Shutdown(context.Background())
	})
	return l, m, path
}

func get(t *testing.T, m *core.Manager, name string) *core.Bulkhead {
	t.Helper()
	b, ok := m.Get(name)
	require.True(t, ok, "bulkhead %q exists", name)
	return b
}

// grpcRoute and httpRoute return the name of the bulkhead the Live picks, "" for none.
func grpcRoute(l *config.Live, method string) string {
	if b := l.GRPC()(context.Background(), method); b != nil {
		return b.Name()
	}
	return ""
}

func httpRoute(l *config.Live, method, target string) string {
	if b := l.HTTP()(httptest.NewRequest(method, target, nil)); b != nil {
		return b.Name()
	}
	return ""
}

const shop = `bulkheads:
  - name: orders
    max_concurrent_calls: 4
  - name: reports
    max_concurrent_calls: 2
    circuit_breaker_enabled: true
    failure_threshold: 1
    isolation_duration: 1h
grpc:
  "/shop.v1.Orders/*": orders
  "/shop.v1.Reports/*": reports
  "/shop.v1.Reports/Ping": null
http:
  "POST /orders": orders
  "GET /reports/{id}": reports
  "GET /healthz": null
`

func TestOpen(t *testing.T) {
	l, m, path := open(t, shop)
	assert.Equal(t, []string{"orders", "reports"}, m.Names())
	assert.Equal(t, 4, get(t, m, "orders").Config().MaxConcurrentCalls)
	assert.True(t, get(t, m, "reports").Config().CircuitBreakerEnabled)
	assert.Equal(t, path, l.File().Name())

	assert.Equal(t, "orders", grpcRoute(l, "/shop.v1.Orders/Create"))
	assert.Equal(t, "reports", grpcRoute(l, "/shop.v1.Reports/Get"))
	assert.Equal(t, "", grpcRoute(l, "/shop.v1.Reports/Ping"), "null exempts a method")
	assert.Equal(t, "", grpcRoute(l, "/other.Service/M"))
	assert.Equal(t, "orders", httpRoute(l, "POST", "/orders"))
	assert.Equal(t, "reports", httpRoute(l, "GET", "/reports/7"))
	assert.Equal(t, "", httpRoute(l, "GET", "/healthz"))
	assert.Equal(t, "", httpRoute(l, "GET", "/orders"))
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	m := core.NewManager()
	_, err := config.Open(m, filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	path := filepath.Join(dir, "bad.yaml")
	writeFile(t, path, "bulkheads:\n  - name: a\n  - name: b\n    max_queue_size: -1\n")
	_, err = config.Open(m, path)
	assert.EqualError(t, err, path+":4:21: bulkheads[1].max_queue_size: must be between 0 and 16777216, got -1")
	assert.Empty(t, m.Names(), "nothing is half-applied")

	_, err = config.Open(nil, path)
	assert.Error(t, err)
	_, err = config.New(m, nil)
	assert.Error(t, err)
}

func TestNew(t *testing.T) {
	f, err := config.Parse("embedded.yaml", []byte(shop))
	require.NoError(t, err)
	m := core.NewManager()
	l, err := config.New(m, f)
	require.NoError(t, err)
	defer l.Close()
	assert.Equal(t, "orders", grpcRoute(l, "/shop.v1.Orders/Create"))
	assert.ErrorContains(t, l.Reload(), "from no file")
	assert.ErrorContains(t, l.Watch(0), "from no file")
}

// TestReloadKeepsState: a changed bulkhead is the same bulkhead, reconfigured, with its
// statistics and its circuit state.
func TestReloadKeepsState(t *testing.T) {
	l, m, path := open(t, shop)
	orders, reports := get(t, m, "orders"), get(t, m, "reports")
	ctx := context.Background()
	for range 3 {
		_, err := core.Execute(ctx, l.GRPC()(ctx, "/shop.v1.Orders/Create"), func(context.Context) (int, error) { return 1, nil })
		require.NoError(t, err)
	}
	res, err := core.Execute(ctx, l.HTTP()(httptest.NewRequest("GET", "/reports/1", nil)), func(context.Context) (int, error) { return 0, errors.New("down") })
	require.NoError(t, err)
	require.False(t, res.Success)
	require.Equal(t, core.Isolated, reports.State(), "one failure opens the circuit")

	writeFile(t, path, `bulkheads:
  - name: orders
    max_concurrent_calls: 9
    max_queue_size: 3
    timeout_seconds: 2
  - name: reports
    max_concurrent_calls: 5
    circuit_breaker_enabled: true
    failure_threshold: 2
    isolation_duration: 1h
grpc:
  "/shop.v1.Orders/*": orders
http:
  "GET /reports/{id}": reports
`)
	require.NoError(t, l.Reload())

	assert.Same(t, orders, get(t, m, "orders"))
	assert.Same(t, reports, get(t, m, "reports"))
	oc := orders.Config()
	assert.Equal(t, 9, oc.MaxConcurrentCalls)
	assert.Equal(t, 3, oc.MaxQueueSize)
	assert.Equal(t, "2s", oc.Timeout.String())
	s := orders.Stats()
	assert.Equal(t, int64(3), s.TotalExecutions, "stats survive the reload")
	assert.Equal(t, int64(3), s.SuccessfulExecutions)
	assert.Equal(t, 9, s.MaxConcurrentCalls)
	assert.Equal(t, 5, reports.Config().MaxConcurrentCalls)
	assert.Equal(t, core.Isolated, reports.State(), "the circuit stays open")
	assert.Equal(t, int64(1), reports.Stats().FailedExecutions)
	assert.Equal(t, "", grpcRoute(l, "/shop.v1.Reports/Get"), "a dropped route")
}

// TestReloadAddsAndDropsBulkheads: a new bulkhead is created and routed; a dropped one
// stays in the Manager, unrouted, and comes back as itself.
func TestReloadAddsAndDropsBulkheads(t *testing.T) {
	l, m, path := open(t, shop)
	reports := get(t, m, "reports")
	grpcSel, httpSel := l.GRPC(), l.HTTP() // obtained before the reload

	writeFile(t, path, `bulkheads:
  - name: orders
  - name: search
    max_concurrent_calls: 7
grpc:
  "/shop.v1.Reports/*": search
  "*": orders
http:
  "GET /reports/{id}": search
`)
	require.NoError(t, l.Reload())
	assert.Equal(t, []string{"orders", "reports", "search"}, m.Names())
	assert.Equal(t, 7, get(t, m, "search").Config().MaxConcurrentCalls)
	ctx := context.Background()
	assert.Equal(t, "search", grpcSel(ctx, "/shop.v1.Reports/Get").Name(), "selectors obtained before the reload follow it")
	assert.Equal(t, "orders", grpcSel(ctx, "/any.Service/M").Name())
	assert.Equal(t, "search", httpSel(httptest.NewRequest("GET", "/reports/1", nil)).Name())
	assert.Equal(t, 2, reports.Config().MaxConcurrentCalls, "a dropped bulkhead is left as it was")
	_, err := core.Execute(ctx, reports, func(context.Context) (int, error) { return 1, nil })
	assert.NoError(t, err, "a dropped bulkhead still serves code that holds it")
	assert.Equal(t, int64(1), reports.Stats().TotalExecutions)

	writeFile(t, path, shop)
	require.NoError(t, l.Reload())
	assert.Same(t, reports, get(t, m, "reports"), "declared again: the same bulkhead")
	assert.Equal(t, int64(1), reports.Stats().TotalExecutions, "with its statistics")
	assert.Equal(t, "reports", grpcRoute(l, "/shop.v1.Reports/Get"))
}

// TestReloadRefusedChangesNothing: an invalid file, or one that would turn a running
// bulkhead's circuit breaker on or off, changes nothing at all.
func TestReloadRefusedChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"invalid", "bulkheads:\n  - name: orders\n    max_concurrent_calls: 1\n  - name: new\ngrpc:\n  \"*\": gone\n",
			`:6:8: grpc["*"]: no bulkhead named "gone"`},
		{"breaker turned off", "bulkheads:\n  - name: orders\n    max_concurrent_calls: 1\n  - name: new\n  - name: reports\n    circuit_breaker_enabled: false\n",
			`:6:30: bulkheads[2].circuit_breaker_enabled: bulkhead "reports" is running with circuit_breaker_enabled: true`},
		{"breaker turned on by defaults", "defaults:\n  circuit_breaker_enabled: true\nbulkheads:\n  - name: orders\n    max_concurrent_calls: 1\n  - name: new\n  - name: reports\n",
			`:2:28: defaults.circuit_breaker_enabled: bulkhead "orders" is running with circuit_breaker_enabled: false`},
		{"unreadable", "", ": cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, m, path := open(t, shop)
			before := l.File()
			if tc.data == "" {
				require.NoError(t, os.Remove(path))
			} else {
				writeFile(t, path, tc.data)
			}
			err := l.Reload()
			require.Error(t, err)
			assert.Contains(t, err.Error(), path+tc.want)
			assert.Equal(t, []string{"orders", "reports"}, m.Names(), "no bulkhead created")
			assert.Equal(t, 4, get(t, m, "orders").Config().MaxConcurrentCalls, "no bulkhead changed")
			assert.Same(t, before, l.File())
			assert.Equal(t, "orders", grpcRoute(l, "/shop.v1.Orders/Create"), "routes unchanged")
		})
	}
}

// TestAdoptsExistingBulkhead: a bulkhead the Manager already has is reconfigured, not
// duplicated; one with the other breaker setting is refused.
func TestAdoptsExistingBulkhead(t *testing.T) {
	m := core.NewManager()
	pre, err := m.Create(core.DefaultConfig("orders"))
	require.NoError(t, err)
	f, err := config.Parse("f.yaml", []byte("bulkheads:\n  - name: orders\n    max_concurrent_calls: 3\n"))
	require.NoError(t, err)
	l, err := config.New(m, f)
	require.NoError(t, err)
	defer l.Close()
	assert.Same(t, pre, get(t, m, "orders"))
	assert.Equal(t, 3, pre.Config().MaxConcurrentCalls)

	f2, err := config.Parse("f2.yaml", []byte("bulkheads:\n  - name: orders\n    circuit_breaker_enabled: true\n"))
	require.NoError(t, err)
	err = l.Apply(f2)
	assert.EqualError(t, err, `f2.yaml:3:30: bulkheads[0].circuit_breaker_enabled: bulkhead "orders" is running with circuit_breaker_enabled: false, which cannot change while it runs (take it out with Manager.Remove and reload, or rename it)`)
	assert.Error(t, l.Apply(nil))
}

// TestBreakerToggleKeepingName follows the guide's way to turn a bulkhead's breaker on
// while serving, keeping its name: Manager.Remove, Reload, then the old one's Shutdown.
// Between Remove and Reload the routes still reach the old bulkhead, which still admits.
func TestBreakerToggleKeepingName(t *testing.T) {
	l, m, path := open(t, shop)
	old := get(t, m, "orders")
	require.False(t, old.Config().CircuitBreakerEnabled)
	writeFile(t, path, strings.Replace(shop, "max_concurrent_calls: 4\n", "max_concurrent_calls: 4\n    circuit_breaker_enabled: true\n", 1))
	require.ErrorContains(t, l.Reload(), "take it out with Manager.Remove and reload")

	removed, ok := m.Remove("orders")
	require.True(t, ok)
	require.Same(t, old, removed)
	b := l.HTTP()(httptest.NewRequest("POST", "/orders", nil))
	assert.Same(t, old, b, "until the reload, the routes reach the old bulkhead")
	_, err := core.Execute(context.Background(), b, func(context.Context) (int, error) { return 1, nil })
	assert.NoError(t, err, "which still admits calls")

	require.NoError(t, l.Reload())
	orders := get(t, m, "orders")
	assert.NotSame(t, old, orders)
	assert.True(t, orders.Config().CircuitBreakerEnabled)
	assert.Same(t, orders, l.HTTP()(httptest.NewRequest("POST", "/orders", nil)))
	assert.Equal(t, "orders", grpcRoute(l, "/shop.v1.Orders/Get"))
	assert.Zero(t, orders.Stats().TotalExecutions, "a new bulkhead, with new statistics")

	require.NoError(t, old.Shutdown(context.Background()))
	assert.Equal(t, int64(1), old.Stats().SuccessfulExecutions)
	_, err = core.Execute(context.Background(), l.HTTP()(httptest.NewRequest("POST", "/orders", nil)),
		func(context.Context) (int, error) { return 1, nil })
	assert.NoError(t, err, "the routes do not reach the bulkhead shut down")
}

func TestWatchTwiceAndClose(t *testing.T) {
	l, _, _ := open(t, shop)
	require.NoError(t, l.Watch(0))
	assert.ErrorContains(t, l.Watch(0), "already watching")
	assert.NoError(t, l.Close())
	assert.NoError(t, l.Close(), "idempotent")
	require.NoError(t, l.Watch(0), "watching again after Close")
}
