package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
)

// Live is a configuration applied to a core.Manager: its bulkheads exist in the Manager,
// and its route tables are served by the Selectors that GRPC and HTTP return. Apply,
// Reload and the watcher (see Watch) move it to a new configuration while it serves:
//
//   - A bulkhead new to the file is created in the Manager.
//   - A bulkhead whose settings changed is reconfigured in place with
//     core.Bulkhead.Reconfigure: it keeps its statistics and circuit state, calls in
//     flight are neither dropped nor counted twice, and a lower MaxConcurrentCalls lets
//     running calls finish while new ones start only under the new limit. A changed
//     health_check_interval is recorded but takes effect only for bulkheads created later
//     (core's rule).
//   - A bulkhead dropped from the file is left as it is in the Manager (the Live does not
//     own the Manager, whose bulkheads other code may hold): it keeps running the calls it
//     has, receives no new routes from this Live, and keeps its statistics. If a later
//     file declares it again, it is reconfigured and routed again, with its statistics
//     and circuit state. To be rid of it, take it out with core.Manager.Remove and shut
//     it down.
//   - A change of circuit_breaker_enabled, which Reconfigure refuses, is an error that
//     changes nothing. To turn the breaker on or off while serving, keeping the name,
//     take the old bulkhead out with core.Manager.Remove, then Reload (a new bulkhead is
//     created as the file says and takes the routes), then shut the old one down; in
//     that order, since a bulkhead shut down first refuses its calls until the reload.
//     Or give the bulkhead a new name (a new bulkhead takes the routes; the old one
//     drains).
//   - The route tables swap in one atomic step, after the bulkheads are ready: a lookup
//     sees the old tables or the new ones, never a mix, and a Selector obtained before the
//     change serves the new tables.
//
// Changes are validated against the Manager before any is made, so an invalid file, or
// one that would change circuit_breaker_enabled, changes nothing. Bulkheads are
// reconfigured one after another, not all at once.
//
// A Live is safe for concurrent use; changes are serialized. It does not own the
// Manager: Close stops the watcher and nothing else. The zero Live is not usable: call New
// or Open.
type Live struct {
	m        *core.Manager
	path     string // "" when made by New
	logger   *slog.Logger
	onReload func(error)

	mu      sync.Mutex // serializes changes; guards watcher and lastSum
	watcher *watcher
	lastSum [32]byte // sha256 of the file last applied by Open, Reload or the watcher
	cur     atomic.Pointer[table]

	grpcSel grpcmw.Selector
	httpSel httpmw.Selector
}

// table is one configuration's route tables.
type table struct {
	file       *File
	grpc       grpcmw.Selector
	http       httpmw.Selector
	grpcRoutes map[string]*core.Bulkhead // what grpc was built from
	httpRoutes map[string]*core.Bulkhead
}

// Option configures a Live.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	onReload func(error)
}

// WithLogger sets where the watcher reports reloads: success at Info, failure at Error.
// The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithOnReload sets a function the watcher calls after each reload it attempts, with nil
// or the reason the file was refused (the Live is then unchanged). It runs on the
// watcher's goroutine, one call at a time; it must not call Close, which waits for that
// goroutine. Explicit Apply and Reload calls return their error instead.
func WithOnReload(fn func(error)) Option {
	return func(o *options) { o.onReload = fn }
}

// New applies f to m (see Live for what applying does) and returns the Live that serves
// its routes. It has no file to reload: Reload and Watch return an error; use Apply.
// On error (every problem, as *Error values where they concern the file) m is unchanged.
func New(m *core.Manager, f *File, opts ...Option) (*Live, error) {
	if m == nil || f == nil {
		return nil, errors.New("config: New: nil Manager or File")
	}
	l := newLive(m, "", opts)
	if err := l.Apply(f); err != nil {
		return nil, err
	}
	return l, nil
}

// Open loads the file at path (see Load) and applies it to m, as New does; Reload and
// Watch read the same path again.
func Open(m *core.Manager, path string, opts ...Option) (*Live, error) {
	if m == nil || path == "" {
		return nil, errors.New("config: Open: nil Manager or empty path")
	}
	l := newLive(m, path, opts)
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

func newLive(m *core.Manager, path string, opts []Option) *Live {
	o := options{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	l := &Live{m: m, path: path, logger: o.logger, onReload: o.onReload}
	l.grpcSel = func(ctx context.Context, fullMethod string) *core.Bulkhead {
		return l.cur.Load().grpc(ctx, fullMethod)
	}
	l.httpSel = func(r *http.Request) *core.Bulkhead {
		return l.cur.Load().http(r)
	}
	return l
}

// GRPC returns a grpcmw.Selector over the current grpc: table, for the grpcmw
// interceptors. It is the same function on every call, safe for concurrent use, and
// follows every later change of the configuration.
func (l *Live) GRPC() grpcmw.Selector { return l.grpcSel }

// HTTP returns an httpmw.Selector over the current http: table, for httpmw.Middleware and
// httpmw.Transport. It is the same function on every call, safe for concurrent use, and
// follows every later change of the configuration.
func (l *Live) HTTP() httpmw.Selector { return l.httpSel }

// File returns the configuration being served.
func (l *Live) File() *File { return l.cur.Load().file }

// Apply moves l to f: see Live for what changes and what does not. It returns every
// problem at once, and changes nothing when there is one: a bulkhead whose
// circuit_breaker_enabled differs from the running one's is an *Error on that key.
// (The only exception is a Manager changed concurrently by other code between the check
// and the change; Apply then reports what it could not do.)
func (l *Live) Apply(f *File) error {
	if f == nil {
		return errors.New("config: Apply: nil File")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastSum = [32]byte{}
	return l.applyLocked(f)
}

func (l *Live) applyLocked(f *File) error {
	type change struct {
		b   *core.Bulkhead
		cfg core.Config
	}
	byName := make(map[string]*core.Bulkhead, len(f.bulkheads))
	var creates []core.Config
	var changes []change
	p := problems{file: f.name}
	for _, s := range f.bulkheads {
		b, ok := l.m.Get(s.cfg.Name)
		if !ok {
			creates = append(creates, s.cfg)
			continue
		}
		old := b.Config()
		if old.CircuitBreakerEnabled != s.cfg.CircuitBreakerEnabled {
			at, key := f.source(s, "circuit_breaker_enabled")
			p.addf(at, key, "bulkhead %q is running with circuit_breaker_enabled: %t, which cannot change while it runs (take it out with Manager.Remove and reload, or rename it)",
				s.cfg.Name, old.CircuitBreakerEnabled)
			continue
		}
		byName[s.cfg.Name] = b
		if !sameConfig(old, s.cfg) {
			changes = append(changes, change{b, s.cfg})
		}
	}
	if err := p.err(); err != nil {
		return err
	}

	var errs []error
	for _, cfg := range creates {
		b, err := l.m.GetOrCreate(cfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byName[cfg.Name] = b
		if !sameConfig(b.Config(), cfg) { // created by other code since the check
			changes = append(changes, change{b, cfg})
		}
	}
	if len(errs) > 0 {
		// A bulkhead missing from byName would leave its routes unguarded (nil): keep
		// the tables, and change no bulkhead, rather than serve that.
		return errors.Join(errs...)
	}
	next := &table{file: f}
	next.grpcRoutes, next.httpRoutes = f.resolve(byName)
	// A reload that changes limits only keeps the same tables: reuse them rather than
	// build them again (a large http: table takes a while, see checkHTTP).
	prev := l.cur.Load()
	if prev != nil && maps.Equal(prev.grpcRoutes, next.grpcRoutes) {
		next.grpc = prev.grpc
	} else {
		next.grpc = grpcmw.ByMethod(next.grpcRoutes)
	}
	if prev != nil && maps.Equal(prev.httpRoutes, next.httpRoutes) {
		next.http = prev.http
	} else {
		sel, err := httpmw.ByPattern(next.httpRoutes)
		if err != nil { // cannot happen: Parse checked the patterns
			return fmt.Errorf("config: http routes: %w", err)
		}
		next.http = sel
	}
	for _, c := range changes {
		if err := c.b.Reconfigure(c.cfg); err != nil {
			errs = append(errs, fmt.Errorf("config: bulkhead %q: %w", c.cfg.Name, err))
		}
	}
	l.cur.Store(next)
	return errors.Join(errs...)
}

// source returns where bulkhead s's key got its value: the key itself, the defaults: key,
// or the bulkhead's entry.
func (f *File) source(s bulkhead, key string) (pos, string) {
	if at, ok := s.set[key]; ok {
		return at, join(s.path, key)
	}
	if at, ok := f.defaults[key]; ok {
		return at, join("defaults", key)
	}
	return s.at, s.path
}

// Reload reads l's file again and applies it (see Apply). An unreadable or invalid file
// changes nothing; the error says why. It returns an error when l was made by New.
func (l *Live) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.reloadLocked(false)
	return err
}

// reloadLocked loads and applies l's file. With ifChanged, a file whose content is the
// one last applied is skipped (reloaded false).
func (l *Live) reloadLocked(ifChanged bool) (reloaded bool, err error) {
	if l.path == "" {
		return false, errors.New("config: Reload: the Live was made by New, from no file")
	}
	data, sum, err := readFile(l.path)
	if err != nil {
		return true, &Error{File: l.path, Err: &readError{err: err}}
	}
	if ifChanged && sum == l.lastSum {
		return false, nil
	}
	var known *File
	if cur := l.cur.Load(); cur != nil {
		known = cur.file
	}
	f, err := parse(l.path, data, known)
	if err != nil {
		return true, err
	}
	if err := l.applyLocked(f); err != nil {
		return true, err
	}
	l.lastSum = sum
	return true, nil
}

// Close stops the watcher, if any, and waits for its goroutine to end. The Selectors
// keep serving the last configuration, and Apply and Reload keep working; the Manager
// and its bulkheads are the caller's to shut down. Close is idempotent and always
// returns nil.
func (l *Live) Close() error {
	l.mu.Lock()
	w := l.watcher
	l.watcher = nil
	l.mu.Unlock()
	if w != nil {
		w.stop()
	}
	return nil
}
