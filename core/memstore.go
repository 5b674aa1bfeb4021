package core

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is a CircuitStore in memory. Bulkheads that share one MemoryStore share
// their circuit state the way replicas share a database, which makes it useful in tests
// and for several bulkheads of one process guarding one dependency. It keeps the guarded
// write rules of CircuitStore and notifies subscribers synchronously, in order.
//
// A MemoryStore is safe for concurrent use. The zero MemoryStore is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]CircuitRecord
	subs    map[*func(CircuitRecord)]struct{}

	deliver sync.Mutex // keeps notifications in order
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return new(MemoryStore) }

// Load returns the record of name. It fails only if ctx is done.
func (m *MemoryStore) Load(ctx context.Context, name string) (CircuitRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return CircuitRecord{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.records[name]
	return rec, ok, nil
}

// Save writes rec unless a live OPEN is stored, then notifies subscribers of a write. It
// fails only if ctx is done.
func (m *MemoryStore) Save(ctx context.Context, rec CircuitRecord) (CircuitRecord, error) {
	if err := ctx.Err(); err != nil {
		return CircuitRecord{}, err
	}
	m.deliver.Lock()
	defer m.deliver.Unlock()
	m.mu.Lock()
	if cur, ok := m.records[rec.Name]; ok && cur.live(time.Now()) {
		m.mu.Unlock()
		return cur, nil
	}
	if m.records == nil {
		m.records = make(map[string]CircuitRecord)
	}
	m.records[rec.Name] = rec
	subs := make([]func(CircuitRecord), 0, len(m.subs))
	for f := range m.subs {
		subs = append(subs, *f)
	}
	m.mu.Unlock()
	for _, f := range subs {
		f(rec)
	}
	return rec, nil
}

// Subscribe calls fn after every write, on the writer's goroutine. cancel waits for a
// delivery in progress, so fn must not call it.
func (m *MemoryStore) Subscribe(fn func(CircuitRecord)) (cancel func()) {
	key := &fn
	m.mu.Lock()
	if m.subs == nil {
		m.subs = make(map[*func(CircuitRecord)]struct{})
	}
	m.subs[key] = struct{}{}
	m.mu.Unlock()
	return func() {
		// Save takes its list of subscribers before it delivers: waiting for the
		// delivery in progress keeps CircuitStore's promise that fn is not called once
		// cancel has returned.
		m.deliver.Lock()
		defer m.deliver.Unlock()
		m.mu.Lock()
		delete(m.subs, key)
		m.mu.Unlock()
	}
}
