package core

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// MemoryStore is a CircuitStore in memory. Bulkheads that share one MemoryStore share
// their circuit state the way replicas share a database, which makes it useful in tests
// and for several bulkheads of one process guarding one dependency. It keeps the guarded
// write rules of CircuitStore and notifies subscribers synchronously, in order.
//
// Each MemoryStore value is one replica, as each pgstore.Store is: Replica returns
// another replica over the same records, with a quorum of its own, so that tests can run
// a fleet with a quorum without a database. With a quorum of n, a replica's OPEN is a
// vote: the shared record turns OPEN only when n distinct replicas voted within one
// isolation (each vote lasts until the end of its voter's isolation); until then Save
// keeps the vote and returns the shared record unchanged, and subscribers hear nothing. A
// quorum of 1 (NewMemoryStore's, and the zero value's) lets the first opener decide for
// everyone.
//
// A MemoryStore is safe for concurrent use. The zero MemoryStore is ready to use: one
// replica with a quorum of 1.
type MemoryStore struct {
	once   sync.Once
	shared *memoryRecords // nil until init, for the zero value
	id     string
	quorum int
}

// memoryRecords is what the replicas of one MemoryStore share.
type memoryRecords struct {
	mu       sync.Mutex
	records  map[string]*memoryRecord
	subs     map[*func(CircuitRecord)]struct{}
	replicas int // replicas made so far, for their identities

	deliver sync.Mutex // keeps notifications in order
}

// memoryRecord is one circuit: the shared record, if any, and the live votes.
type memoryRecord struct {
	rec   CircuitRecord
	ok    bool                 // rec has been written
	votes map[string]time.Time // replica → end of its isolation
}

// NewMemoryStore returns an empty MemoryStore: one replica, with a quorum of 1.
func NewMemoryStore() *MemoryStore {
	m := new(MemoryStore)
	m.init()
	return m
}

func (m *MemoryStore) init() {
	m.once.Do(func() {
		if m.shared == nil {
			m.shared = &memoryRecords{records: make(map[string]*memoryRecord), subs: make(map[*func(CircuitRecord)]struct{})}
		}
		m.shared.mu.Lock()
		m.shared.replicas++
		m.id = "memory-" + strconv.Itoa(m.shared.replicas)
		m.shared.mu.Unlock()
		if m.quorum < 1 {
			m.quorum = 1
		}
	})
}

// Replica returns another replica over m's records: a MemoryStore that shares m's
// circuits and subscribers, as another process's store over the same database would,
// with an identity of its own and the given quorum (see MemoryStore). It returns an error
// for a quorum below 1.
func (m *MemoryStore) Replica(quorum int) (*MemoryStore, error) {
	if quorum < 1 {
		return nil, fmt.Errorf("core: MemoryStore.Replica: quorum must be at least 1, got %d", quorum)
	}
	m.init()
	r := &MemoryStore{shared: m.shared, quorum: quorum}
	r.init()
	return r, nil
}

// ReplicaID returns the replica's identity: "memory-1" for the first, "memory-2" for the
// next Replica, and so on.
func (m *MemoryStore) ReplicaID() string {
	m.init()
	return m.id
}

// Quorum returns the number of replicas whose votes turn the shared record OPEN.
func (m *MemoryStore) Quorum() int {
	m.init()
	return m.quorum
}

// Load returns the record of name. It fails only if ctx is done.
func (m *MemoryStore) Load(ctx context.Context, name string) (CircuitRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return CircuitRecord{}, false, err
	}
	m.init()
	s := m.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.records[name]; r != nil && r.ok {
		return r.rec, true, nil
	}
	return CircuitRecord{}, false, nil
}

// Save writes rec unless a live OPEN is stored, then notifies subscribers of the write.
// With a quorum above 1, an OPEN is this replica's vote instead, written as the shared
// record (and notified) only when it completes the quorum; otherwise Save returns the
// shared record as it is (CLOSED when there is none). A HALF_OPEN or CLOSED withdraws the
// replica's vote. Save fails only if ctx is done.
func (m *MemoryStore) Save(ctx context.Context, rec CircuitRecord) (CircuitRecord, error) {
	if err := ctx.Err(); err != nil {
		return CircuitRecord{}, err
	}
	m.init()
	s := m.shared
	s.deliver.Lock()
	defer s.deliver.Unlock()
	s.mu.Lock()
	now := time.Now()
	r := s.records[rec.Name]
	if r == nil {
		r = &memoryRecord{votes: make(map[string]time.Time)}
		s.records[rec.Name] = r
	}
	if r.ok && r.rec.live(now) {
		s.mu.Unlock()
		return r.rec, nil
	}
	for id, until := range r.votes {
		if !until.After(now) {
			delete(r.votes, id) // its isolation is over
		}
	}
	if rec.Status == StatusOpen {
		r.votes[m.id] = rec.OpenUntil
		if len(r.votes) < m.quorum {
			cur := r.rec
			if !r.ok {
				cur = CircuitRecord{Name: rec.Name, Status: StatusClosed}
			}
			s.mu.Unlock()
			return cur, nil
		}
		clear(r.votes) // the next fleet-wide OPEN needs votes of its own
	} else {
		delete(r.votes, m.id)
	}
	r.rec, r.ok = rec, true
	subs := make([]func(CircuitRecord), 0, len(s.subs))
	for f := range s.subs {
		subs = append(subs, *f)
	}
	s.mu.Unlock()
	for _, f := range subs {
		f(rec)
	}
	return rec, nil
}

// Subscribe calls fn after every write, by any replica, on the writer's goroutine. cancel
// waits for a delivery in progress, so fn must not call it.
func (m *MemoryStore) Subscribe(fn func(CircuitRecord)) (cancel func()) {
	m.init()
	s := m.shared
	key := &fn
	s.mu.Lock()
	s.subs[key] = struct{}{}
	s.mu.Unlock()
	return func() {
		// Save takes its list of subscribers before it delivers: waiting for the
		// delivery in progress keeps CircuitStore's promise that fn is not called once
		// cancel has returned.
		s.deliver.Lock()
		defer s.deliver.Unlock()
		s.mu.Lock()
		delete(s.subs, key)
		s.mu.Unlock()
	}
}
