package config

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is the quiet time Watch waits for when given 0: long enough for an
// editor's write-rename-chmod burst, short enough to feel immediate.
const DefaultDebounce = 100 * time.Millisecond

// watcher is Watch's goroutine and what it needs.
type watcher struct {
	fsw  *fsnotify.Watcher
	exit chan struct{} // closed when the goroutine has returned
}

// Watch reloads l (see Reload) whenever its file changes, until Close. It watches the
// file's directory rather than the file, so that editors that save by writing a new file
// and renaming it over the old one, and Kubernetes ConfigMap volumes that swap a
// symlink, are followed. Events are debounced: the file is read once no event has arrived
// for debounce (0 means DefaultDebounce), and a file whose content has not changed since
// it was last applied is not applied again. The file is also checked once when Watch
// starts, for a change made since it was opened, and again whenever fsnotify reports an
// error, after which events may have been lost. After Apply, which forgets the file's
// content, the first check applies the file again.
//
// Each reload is logged (see WithLogger) and reported to the WithOnReload function; a
// refused file leaves l unchanged, and the next change is tried afresh.
//
// Watch returns an error, and watches nothing, when l was made by New, when it already
// watches, or when the directory cannot be watched. It is safe for concurrent use.
func (l *Live) Watch(debounce time.Duration) error {
	if l.path == "" {
		return errors.New("config: Watch: the Live was made by New, from no file")
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watcher != nil {
		return errors.New("config: Watch: already watching " + l.path)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := filepath.Dir(l.path)
	if err := fsw.Add(dir); err != nil {
		fsw.Close()
		return err
	}
	w := &watcher{fsw: fsw, exit: make(chan struct{})}
	l.watcher = w
	go l.watch(w, filepath.Base(l.path), debounce)
	return nil
}

func (l *Live) watch(w *watcher, base string, debounce time.Duration) {
	defer close(w.exit)
	// Armed: the file may have changed between Open and Watch.
	timer := time.NewTimer(debounce)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-w.fsw.Events: // closed by w.fsw.Close
			if !ok {
				return
			}
			if relevant(ev, base) {
				timer.Reset(debounce)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// fsnotify.ErrEventOverflow and the like: a change may have gone unseen.
			l.logger.Error("config: watching the file", "file", l.path, "err", err)
			timer.Reset(debounce)
		case <-timer.C:
			l.reloadFromWatcher()
		}
	}
}

// relevant reports whether ev may have changed the file called base: an event on it, or
// on a hidden entry such as Kubernetes' "..data" symlink that points at it. A change of
// mode alone is not.
func relevant(ev fsnotify.Event, base string) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Base(ev.Name)
	return name == base || strings.HasPrefix(name, "..")
}

func (l *Live) reloadFromWatcher() {
	l.mu.Lock()
	reloaded, err := l.reloadLocked(true)
	l.mu.Unlock()
	if !reloaded {
		return
	}
	if err != nil {
		l.logger.Error("config: reload refused; configuration unchanged", "file", l.path, "err", err)
	} else {
		l.logger.Info("config: reloaded", "file", l.path)
	}
	if l.onReload != nil {
		l.onReload(err)
	}
}

// stop ends the goroutine and waits for it: closing fsw ends fsnotify's reader, which
// closes Events and Errors, on which the goroutine returns.
func (w *watcher) stop() {
	w.fsw.Close()
	<-w.exit
}

// readFile reads path and returns its content and checksum.
func readFile(path string) ([]byte, [32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return data, sha256.Sum256(data), nil
}
