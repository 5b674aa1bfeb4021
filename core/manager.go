package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// Manager owns a set of named bulkheads (Python: BulkheadManager). Bulkheads are
// independent: a full or open one never delays another.
//
// A Manager is safe for concurrent use. The zero Manager is an empty Manager without
// options, ready to use; NewManager gives it options. A nil *Manager follows the rule of a
// nil *Bulkhead: what reports answers as for an empty Manager, and Create, GetOrCreate and
// Shutdown return an error wrapping ErrInvalidArgument (as ExecuteIn does). Once Shutdown
// has been called, Create and GetOrCreate refuse with ErrShutdown.
type Manager struct {
	opts []Option

	mu        sync.RWMutex
	bulkheads map[string]*Bulkhead // nil until the first bulkhead (the zero Manager)
	closed    bool                 // Shutdown was called
	subs      []*subscription      // Subscribe's, in order; replaced on change, never changed in place
}

// NewManager returns an empty Manager. opts apply to every bulkhead it creates.
func NewManager(opts ...Option) *Manager {
	return &Manager{opts: slices.Clone(opts), bulkheads: make(map[string]*Bulkhead)}
}

// Create adds a bulkhead for cfg (Python: create_bulkhead). It returns the errors of New for
// an invalid cfg, and a *Error wrapping ErrExists if the name is taken.
func (m *Manager) Create(cfg Config) (*Bulkhead, error) {
	if m == nil {
		return nil, invalidArg("Manager.Create: nil Manager")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, taken, err := m.add(cfg)
	if taken != nil {
		return nil, &Error{Bulkhead: cfg.Name, Err: ErrExists}
	}
	return b, err
}

// Get returns the bulkhead called name (Python: get_bulkhead).
func (m *Manager) Get(name string) (*Bulkhead, bool) {
	if m == nil {
		return nil, false
	}
	m.mu.RLock()
	b, ok := m.bulkheads[name]
	m.mu.RUnlock()
	return b, ok
}

// GetOrCreate returns the bulkhead called cfg.Name, creating it from cfg if there is
// none. An existing bulkhead wins: cfg is then ignored, even if it differs.
func (m *Manager) GetOrCreate(cfg Config) (*Bulkhead, error) {
	if m == nil {
		return nil, invalidArg("Manager.GetOrCreate: nil Manager")
	}
	b, taken, err := m.add(cfg)
	if taken != nil {
		return taken, nil
	}
	return b, err
}

// add makes a bulkhead for cfg and registers it, unless cfg.Name is taken: then it
// returns the bulkhead that has the name (taken) and registers nothing. The bulkhead is
// made outside the lock, since New may wait for a CircuitStore; one that loses a race
// for its name is shut down at once (nothing runs in it: that stops its store
// subscription and goroutine).
func (m *Manager) add(cfg Config) (b, taken *Bulkhead, err error) {
	m.mu.RLock()
	taken, ok := m.bulkheads[cfg.Name]
	subs, closed := m.subs, m.closed
	m.mu.RUnlock()
	if closed {
		return nil, nil, m.shutDown(cfg.Name)
	}
	if ok {
		return nil, taken, nil
	}
	b, err = New(cfg, append(slices.Clip(m.opts), withSubscribers(subs))...)
	if err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	if m.closed { // Shutdown ran meanwhile, and did not see b
		m.mu.Unlock()
		_ = b.Shutdown(context.Background())
		return nil, nil, m.shutDown(cfg.Name)
	}
	taken, ok = m.bulkheads[cfg.Name]
	if !ok {
		if m.bulkheads == nil {
			m.bulkheads = make(map[string]*Bulkhead)
		}
		m.bulkheads[cfg.Name] = b
		if len(m.subs)+len(subs) > 0 { // Subscribe may have run meanwhile
			b.setSubscribers(m.subs)
		}
	}
	m.mu.Unlock()
	if ok {
		_ = b.Shutdown(context.Background())
		return nil, taken, nil
	}
	return b, nil, nil
}

// shutDown is the refusal of Create and GetOrCreate once m is shut down.
func (m *Manager) shutDown(name string) error {
	return &Error{Bulkhead: name, Err: ErrShutdown, detail: "the Manager is shut down"}
}

// Remove takes the bulkhead called name out of m and returns it; false if m has none.
// From then on m's Get, Names, Stats, Health, Shutdown and ExecuteIn no longer see it, and
// Create may use the name again for a new bulkhead (with new statistics; a circuit in a
// CircuitStore is keyed by name, so the new bulkhead shares the old one's).
//
// The bulkhead itself is not changed: calls in flight and callers that hold it go on as
// before. To refuse its new calls and wait for the running ones, shut it down:
//
//	if b, ok := m.Remove("tenant-42"); ok {
//		err := b.Shutdown(ctx)
//	}
func (m *Manager) Remove(name string) (*Bulkhead, bool) {
	if m == nil {
		return nil, false
	}
	m.mu.Lock()
	b, ok := m.bulkheads[name]
	if ok {
		delete(m.bulkheads, name)
		b.setSubscribers(nil)
	}
	m.mu.Unlock()
	return b, ok
}

// Subscribe calls h for every Event of every bulkhead in m: the ones it holds now and the
// ones it creates later, until the returned function is called. This is how an exporter
// attaches to a Manager in one step, at any time; prommetrics, otelmetrics, grpchealth and
// statuspage call it for you.
//
// h runs synchronously on the goroutine of the call (or of the transition), after the
// hooks given with WithEventHook and after the functions subscribed before it, so it must
// be quick, must not block or call back into the same bulkhead, and must be safe for
// concurrent use. A bulkhead that Remove takes out of m stops calling it.
//
// unsubscribe is idempotent and safe for concurrent use. Once it returns, no event that
// a bulkhead starts delivering reaches h; an event being delivered at that moment may
// still reach it. A nil h subscribes nothing (unsubscribe does nothing).
//
// Subscribing and unsubscribing take m's lock and replace each bulkhead's list of hooks;
// a bulkhead reads that list with one atomic load, without a lock or an allocation, and
// without subscribers or hooks events cost nothing.
func (m *Manager) Subscribe(h func(Event)) (unsubscribe func()) {
	if h == nil || m == nil {
		return func() {}
	}
	s := &subscription{h: h}
	m.mu.Lock()
	m.subs = append(slices.Clip(m.subs), s)
	m.resubscribeLocked()
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			m.subs = slices.DeleteFunc(slices.Clone(m.subs), func(x *subscription) bool { return x == s })
			m.resubscribeLocked()
			m.mu.Unlock()
		})
	}
}

// resubscribeLocked gives every bulkhead of m the current subscribers.
func (m *Manager) resubscribeLocked() {
	for _, b := range m.bulkheads {
		b.setSubscribers(m.subs)
	}
}

// Names returns the bulkheads' names, sorted.
func (m *Manager) Names() []string {
	if m == nil {
		return []string{}
	}
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
	if m == nil {
		return nil
	}
	m.mu.RLock()
	bs := make([]*Bulkhead, 0, len(m.bulkheads))
	for _, b := range m.bulkheads {
		bs = append(bs, b)
	}
	m.mu.RUnlock()
	slices.SortFunc(bs, func(a, b *Bulkhead) int { return strings.Compare(a.name, b.name) })
	return bs
}

// Stats returns every bulkhead's Stats by name (Python: get_all_stats). Each snapshot is
// consistent on its own; they are taken one after another.
func (m *Manager) Stats() map[string]Stats {
	out := make(map[string]Stats)
	for _, b := range m.all() {
		out[b.name] = b.Stats()
	}
	return out
}

// Health returns IsHealthy for every bulkhead by name (Python: get_health_status).
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
	if m == nil || ctx == nil {
		return invalidArg("Manager.Shutdown: nil Manager or context")
	}
	m.mu.Lock()
	m.closed = true // from now on add refuses, so bs below is every bulkhead there will be
	m.mu.Unlock()
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
