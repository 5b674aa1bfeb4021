package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// Manager owns a set of named bulkheads (seed: BulkheadManager). Bulkheads are
// independent: a full or open one never delays another.
//
// A Manager is safe for concurrent use. The zero Manager is not usable: call NewManager.
type Manager struct {
	opts []Option

	mu        sync.RWMutex
	bulkheads map[string]*Bulkhead
}

// NewManager returns an empty Manager. opts apply to every bulkhead it creates.
func NewManager(opts ...Option) *Manager {
	return &Manager{opts: slices.Clone(opts), bulkheads: make(map[string]*Bulkhead)}
}

// Create adds a bulkhead for cfg (seed: create_bulkhead). It returns the errors of New for
// an invalid cfg, and a *Error wrapping ErrExists if the name is taken.
func (m *Manager) Create(cfg Config) (*Bulkhead, error) {
	b, err := New(cfg, m.opts...)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.bulkheads[cfg.Name]; ok {
		return nil, &Error{Bulkhead: cfg.Name, Err: ErrExists}
	}
	m.bulkheads[cfg.Name] = b
	return b, nil
}

// Get returns the bulkhead called name (seed: get_bulkhead).
func (m *Manager) Get(name string) (*Bulkhead, bool) {
	m.mu.RLock()
	b, ok := m.bulkheads[name]
	m.mu.RUnlock()
	return b, ok
}

// GetOrCreate returns the bulkhead called cfg.Name, creating it from cfg if there is
// none. An existing bulkhead wins: cfg is then ignored, even if it differs.
func (m *Manager) GetOrCreate(cfg Config) (*Bulkhead, error) {
	if b, ok := m.Get(cfg.Name); ok {
		return b, nil
	}
	b, err := m.Create(cfg)
	if errors.Is(err, ErrExists) {
		if b, ok := m.Get(cfg.Name); ok { // created by a concurrent caller
			return b, nil
		}
	}
	return b, err
}

// Names returns the bulkheads' names, sorted.
func (m *Manager) Names() []string {
	m.mu.RLock()
	names := make([]string, 0, len(m.bulkheads))
	for n := range m.bulkheads {
		names = append(names, n)
	}
	m.mu.RUnlock()
	slices.Sort(names)
	return names
}

// all returns the bulkheads, sorted by name.
func (m *Manager) all() []*Bulkhead {
	m.mu.RLock()
	bs := make([]*Bulkhead, 0, len(m.bulkheads))
	for _, b := range m.bulkheads {
		bs = append(bs, b)
	}
	m.mu.RUnlock()
	slices.SortFunc(bs, func(a, b *Bulkhead) int { return strings.Compare(a.name, b.name) })
	return bs
}

// Stats returns every bulkhead's Stats by name (seed: get_all_stats). Each snapshot is
// consistent on its own; they are taken one after another.
func (m *Manager) Stats() map[string]Stats {
	out := make(map[string]Stats)
	for _, b := range m.all() {
		out[b.name] = b.Stats()
	}
	return out
}

// Health returns IsHealthy for every bulkhead by name (seed: get_health_status).
func (m *Manager) Health() map[string]bool {
	out := make(map[string]bool)
	for _, b := range m.all() {
		out[b.name] = b.IsHealthy()
	}
	return out
}

// Shutdown shuts every bulkhead down at once (see Bulkhead.Shutdown) and waits for all of
// them, or until ctx ends. It returns ctx's error in that case.
func (m *Manager) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return invalidArg("Manager.Shutdown: nil context")
	}
	bs := m.all()
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() { errs[i] = b.Shutdown(ctx) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}
