package config_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/testlog"
)

// reload is what the WithOnReload function saw: the error, and the limit of "orders"
// right after the reload.
type reload struct {
	err   error
	limit int
}

// watched opens shop's file with a watcher whose reloads arrive on the returned channel.
func watched(t *testing.T) (*config.Live, *core.Manager, string, <-chan reload, *testlog.Buffer) {
	t.Helper()
	reloads := make(chan reload, 16)
	var m *core.Manager
	logs := &testlog.Buffer{}
	l, m, path := open(t, shop,
		config.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		config.WithOnReload(func(err error) {
			b, _ := m.Get("orders")
			reloads <- reload{err, b.Config().MaxConcurrentCalls}
		}))
	require.NoError(t, l.Watch(10*time.Millisecond))
	return l, m, path, reloads, logs
}

// next waits for the watcher's next reload, for a bounded time.
func next(t *testing.T, reloads <-chan reload) reload {
	t.Helper()
	select {
	case r := <-reloads:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s of the change")
		return reload{}
	}
}

// withLimit returns shop with the limit of "orders" set to n.
func withLimit(n int) string {
	return strings.Replace(shop, "max_concurrent_calls: 4", "max_concurrent_calls: "+string(rune('0'+n)), 1)
}

func TestWatch(t *testing.T) {
	_, m, path, reloads, logs := watched(t)
	orders := get(t, m, "orders")

	// An editor's save: a new file renamed over the old one.
	writeFile(t, path, withLimit(6))
	r := next(t, reloads)
	require.NoError(t, r.err)
	assert.Equal(t, 6, r.limit)
	assert.Same(t, orders, get(t, m, "orders"))

	// An invalid file is refused, logged, and reported; nothing changes.
	writeFile(t, path, "bulkheads:\n  - name: orders\n    max_concurrent_calls: 0\n")
	r = next(t, reloads)
	assert.ErrorContains(t, r.err, path+":3:27: bulkheads[0].max_concurrent_calls: must be between 1")
	assert.Equal(t, 6, r.limit)
	assert.Contains(t, logs.String(), "reload refused")

	// A write in place (truncate, then write): the watcher settles on the final content.
	require.NoError(t, os.WriteFile(path, []byte(withLimit(8)), 0o600))
	for r = next(t, reloads); r.err != nil; r = next(t, reloads) {
		// A debounce that fell between the truncation and the write saw a partial file.
	}
	assert.Equal(t, 8, r.limit)
	assert.Contains(t, logs.String(), "config: reloaded")
}

// TestWatchSymlinkSwap follows a Kubernetes ConfigMap volume: the file is a symlink
// through "..data", which is swapped atomically for a new directory.
func TestWatchSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, data string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "bulkheads.yaml"), []byte(data), 0o600))
		require.NoError(t, os.Symlink(name, filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	}
	version("..v1", shop)
	path := filepath.Join(dir, "bulkheads.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "bulkheads.yaml"), path))

	reloads := make(chan error, 16)
	m := core.NewManager()
	l, err := config.Open(m, path, config.WithOnReload(func(err error) { reloads <- err }))
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, l.Watch(10*time.Millisecond))

	version("..v2", withLimit(7))
	select {
	case err := <-reloads:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s of the swap")
	}
	assert.Equal(t, 7, get(t, m, "orders").Config().MaxConcurrentCalls)
}

// TestWatchSeesChangeBeforeWatch changes the file between Open and Watch, as a ConfigMap
// update may: Watch's first check applies it, with no event to prompt it.
func TestWatchSeesChangeBeforeWatch(t *testing.T) {
	reloads := make(chan error, 16)
	l, m, path := open(t, shop, config.WithOnReload(func(err error) { reloads <- err }))
	writeFile(t, path, withLimit(7))
	require.NoError(t, l.Watch(10*time.Millisecond))
	select {
	case err := <-reloads:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s of Watch")
	}
	assert.Equal(t, 7, get(t, m, "orders").Config().MaxConcurrentCalls)
}
