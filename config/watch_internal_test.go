package config

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestWatchRechecks runs the watcher's loop on channels the test owns, in a synctest
// bubble, so that no file event reaches it: what it reloads, it found by re-checking on
// its own, once when it starts and again after fsnotify reports an error (events may
// have been lost).
func TestWatchRechecks(t *testing.T) {
	const debounce = 10 * time.Millisecond
	limit := func(n string) string { return "bulkheads: [{name: a, max_concurrent_calls: " + n + "}]\n" }
	tests := []struct {
		name    string
		atStart bool // the file changes before the loop starts; else while events are lost
	}{
		{"changed between Open and Watch", true},
		{"changed while events were lost", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "b.yaml")
			require.NoError(t, os.WriteFile(path, []byte(limit("1")), 0o600))
			m := core.NewManager()
			defer m.Shutdown(context.Background())
			var reloads []error
			l, err := Open(m, path, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
				WithOnReload(func(err error) { reloads = append(reloads, err) }))
			require.NoError(t, err)
			if tt.atStart {
				require.NoError(t, os.WriteFile(path, []byte(limit("7")), 0o600))
			}

			synctest.Test(t, func(t *testing.T) {
				events, errs := make(chan fsnotify.Event), make(chan error)
				w := &watcher{fsw: &fsnotify.Watcher{Events: events, Errors: errs}, exit: make(chan struct{})}
				go l.watch(w, filepath.Base(path), debounce)
				if !tt.atStart {
					time.Sleep(2 * debounce) // the check at start, on the content Open applied
					synctest.Wait()
					require.NoError(t, os.WriteFile(path, []byte(limit("7")), 0o600))
					errs <- fsnotify.ErrEventOverflow
				}
				time.Sleep(2 * debounce)
				synctest.Wait()
				close(events) // as fsnotify does when closed
				close(errs)
				<-w.exit
			})

			assert.Equal(t, []error{nil}, reloads, "one reload, which succeeded")
			b, _ := m.Get("a")
			assert.Equal(t, 7, b.Config().MaxConcurrentCalls)
		})
	}
}

// TestUnchangedFileNotAppliedAgain: the watcher skips a file whose content is the one
// last applied (an event that changed nothing, or the check at start), and applies it
// again once it has changed.
func TestUnchangedFileNotAppliedAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.yaml")
	require.NoError(t, os.WriteFile(path, []byte("bulkheads: [{name: a, max_concurrent_calls: 1}]\n"), 0o600))
	m := core.NewManager()
	defer m.Shutdown(context.Background())
	var reloads []error
	l, err := Open(m, path, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithOnReload(func(err error) { reloads = append(reloads, err) }))
	require.NoError(t, err)
	applied := l.cur.Load()

	l.mu.Lock()
	reloaded, err := l.reloadLocked(true)
	l.mu.Unlock()
	assert.False(t, reloaded)
	assert.NoError(t, err)
	l.reloadFromWatcher()
	assert.Empty(t, reloads, "WithOnReload is not called")
	assert.Same(t, applied, l.cur.Load(), "the tables are not rebuilt")

	require.NoError(t, os.WriteFile(path, []byte("bulkheads: [{name: a, max_concurrent_calls: 2}]\n"), 0o600))
	l.reloadFromWatcher()
	assert.Equal(t, []error{nil}, reloads)
	assert.NotSame(t, applied, l.cur.Load())
}
