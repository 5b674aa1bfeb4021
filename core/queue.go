package core

// waitQueue is the bulkhead's queue of waiters: higher priorities first; within a
// priority, the tenants with waiters in turn (round-robin); each tenant's waiters in the
// order they came. Calls without a priority or a tenant are all in one tenant ("") of
// one priority (normal), where the queue is a plain FIFO.
//
// When the bulkhead is full, victim names the waiter an arriving call may take the place
// of: the newest waiter of the tenant with the most waiters at the lowest priority below
// the arriving call's, or else, at the arriving call's own priority, the newest waiter of
// the tenant with the most waiters if the arriving call's tenant has fewer.
//
// Every operation is O(1) but a tenant's first waiter, which costs a map lookup. A
// tenant's record is kept in a free list when its last waiter leaves and reused, so that
// in steady state the queue allocates nothing. Not safe for concurrent use: the ledger's
// mutex guards it. The zero waitQueue is an empty queue.
type waitQueue struct {
	n      int
	levels [numPriorities]queueLevel
	free   *tenantQueue // records of tenants without waiters, linked by next
}

// queueLevel is one priority's waiters.
type queueLevel struct {
	n       int
	next    *tenantQueue            // the tenant served next; its ring holds every tenant with waiters
	only    *tenantQueue            // the tenant with waiters when there is just one, else nil
	tenants map[string]*tenantQueue // the tenants with waiters when there are several

	// byCount[c] lists the tenants with c waiters, so that the tenant with the most is at
	// hand: counts change by one at a time, so most never has to search. A tenant whose
	// count grows goes to the front of its new list and one whose count shrinks to the
	// back, so that among tenants with as many waiters the first is the one that added a
	// waiter last: the one still sending, rather than one whose backlog is draining.
	byCount []countList
	most    int
}

// countList is a list of tenants with as many waiters, linked by cprev and cnext.
type countList struct{ first, last *tenantQueue }

// tenantQueue is one tenant's waiters at one priority.
type tenantQueue struct {
	name         string
	n            int
	head, tail   *waiter
	prev, next   *tenantQueue // the ring of the level's tenants (next: the free list too)
	cprev, cnext *tenantQueue // the level's byCount[n] list
}

// len returns the number of waiters.
func (q *waitQueue) len() int { return q.n }

// urgent reports whether calls above PriorityNormal wait.
func (q *waitQueue) urgent() bool {
	return q.levels[PriorityHigh.index()].n+q.levels[PriorityCritical.index()].n > 0
}

// push adds w, of priority p and tenant, at the end of its tenant's line.
func (q *waitQueue) push(w *waiter, p Priority, tenant string) {
	lv := &q.levels[p.index()]
	t := lv.find(tenant)
	if t == nil {
		t = q.newTenant(tenant)
		lv.add(t)
	}
	w.prio, w.tenant = p, t
	w.prev, w.next = t.tail, nil
	if t.tail != nil {
		t.tail.next = w
	} else {
		t.head = w
	}
	t.tail = w
	lv.recount(t, t.n+1)
	lv.n++
	q.n++
}

// pop removes and returns the waiter to serve next, or nil when the queue is empty.
func (q *waitQueue) pop() *waiter {
	if q.n == 0 {
		return nil
	}
	for i := numPriorities - 1; i >= 0; i-- {
		lv := &q.levels[i]
		if lv.n == 0 {
			continue
		}
		t := lv.next
		w := t.head
		lv.next = t.next // the next tenant's turn, even if t stays
		q.remove(w)
		return w
	}
	panic("bulkman: waitQueue count out of step") // unreachable: q.n > 0 means a level has waiters
}

// peek returns the waiter pop would return, without removing it.
func (q *waitQueue) peek() *waiter {
	for i := numPriorities - 1; i >= 0 && q.n > 0; i-- {
		if lv := &q.levels[i]; lv.n > 0 {
			return lv.next.head
		}
	}
	return nil
}

// remove takes w out of the queue, wherever it is.
func (q *waitQueue) remove(w *waiter) {
	t := w.tenant
	lv := &q.levels[w.prio.index()]
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		t.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		t.tail = w.prev
	}
	w.prev, w.next, w.tenant = nil, nil, nil
	lv.recount(t, t.n-1)
	lv.n--
	q.n--
	if t.n == 0 {
		lv.drop(t)
		t.name = ""
		t.next, q.free = q.free, t
	}
}

// victim returns the waiter a call of priority p and tenant arriving at a full bulkhead
// displaces, or nil when it must be refused.
func (q *waitQueue) victim(p Priority, tenant string) *waiter {
	if q.n == 0 {
		return nil
	}
	for i := range p.index() {
		if lv := &q.levels[i]; lv.n > 0 {
			return lv.byCount[lv.most].first.tail
		}
	}
	lv := &q.levels[p.index()]
	if lv.n == 0 {
		return nil
	}
	mine := 0
	if t := lv.find(tenant); t != nil {
		mine = t.n
	}
	if mine < lv.most {
		return lv.byCount[lv.most].first.tail
	}
	return nil
}

// tenantLine returns how many waiters tenant has at priority p, and how many tenants have
// waiters at p.
func (q *waitQueue) tenantLine(p Priority, tenant string) (mine, tenants int) {
	lv := &q.levels[p.index()]
	if t := lv.find(tenant); t != nil {
		mine = t.n
	}
	if lv.only != nil {
		return mine, 1
	}
	return mine, len(lv.tenants)
}

// shed reports whether a call of priority p that has to wait is refused at once rather
// than queued, in a queue of size places: when a waiter of a higher priority is queued
// and the queue is at least as full as p's share of it (low 1/4, normal 1/2, high 3/4;
// critical calls are never shed). The places above a priority's share are kept for the
// higher priorities that are queued; without them every call may use every place, so
// that a bulkhead whose calls carry no priority is a plain FIFO one.
func (q *waitQueue) shed(p Priority, places int) bool {
	i := p.index()
	if i == numPriorities-1 || q.n*(numPriorities) < places*(i+1) {
		return false
	}
	for j := i + 1; j < numPriorities; j++ {
		if q.levels[j].n > 0 {
			return true
		}
	}
	return false
}

func (q *waitQueue) newTenant(name string) *tenantQueue {
	t := q.free
	if t == nil {
		return &tenantQueue{name: name}
	}
	q.free = t.next
	t.next = nil
	t.name = name
	return t
}

// find returns the level's record of tenant, or nil if the tenant has no waiters here.
func (lv *queueLevel) find(tenant string) *tenantQueue {
	if lv.only != nil {
		if lv.only.name == tenant {
			return lv.only
		}
		return nil
	}
	return lv.tenants[tenant] // a nil map while the level is empty: nil
}

// add puts t, a tenant without waiters so far, in the ring just before the tenant served
// next, so that it takes its turn after every tenant already waiting.
func (lv *queueLevel) add(t *tenantQueue) {
	switch {
	case lv.next == nil:
		t.prev, t.next = t, t
		lv.next = t
		lv.only = t
		return
	case lv.tenants == nil:
		// A second tenant: from now on tenants are looked up by name. The map stays (and
		// keeps its buckets) once made, so that this allocates once per level.
		lv.tenants = make(map[string]*tenantQueue)
		fallthrough
	default:
		if lv.only != nil {
			lv.tenants[lv.only.name] = lv.only
			lv.only = nil
		}
		lv.tenants[t.name] = t
	}
	t.next, t.prev = lv.next, lv.next.prev
	t.prev.next, t.next.prev = t, t
}

// drop takes t, whose last waiter left, out of the ring.
func (lv *queueLevel) drop(t *tenantQueue) {
	if t.next == t {
		lv.next = nil
	} else {
		t.prev.next, t.next.prev = t.next, t.prev
		if lv.next == t {
			lv.next = t.next
		}
	}
	t.prev, t.next = nil, nil
	if lv.only == t {
		lv.only = nil
	} else if lv.tenants != nil {
		delete(lv.tenants, t.name)
		if len(lv.tenants) == 1 { // back to one tenant: skip the map until a second comes
			for _, o := range lv.tenants {
				lv.only = o
			}
			clear(lv.tenants)
		}
	}
}

// recount moves t from the list of tenants with t.n waiters to the list of those with n.
func (lv *queueLevel) recount(t *tenantQueue, n int) {
	old := t.n
	if old > 0 {
		l := &lv.byCount[old]
		if t.cprev != nil {
			t.cprev.cnext = t.cnext
		} else {
			l.first = t.cnext
		}
		if t.cnext != nil {
			t.cnext.cprev = t.cprev
		} else {
			l.last = t.cprev
		}
		t.cprev, t.cnext = nil, nil
	}
	t.n = n
	if n > 0 {
		for len(lv.byCount) <= n {
			lv.byCount = append(lv.byCount, countList{})
		}
		l := &lv.byCount[n]
		if n > old { // to the front
			t.cnext = l.first
			if l.first != nil {
				l.first.cprev = t
			} else {
				l.last = t
			}
			l.first = t
		} else { // to the back
			t.cprev = l.last
			if l.last != nil {
				l.last.cnext = t
			} else {
				l.first = t
			}
			l.last = t
		}
	}
	switch {
	case n > lv.most:
		lv.most = n
	case old == lv.most && lv.byCount[old].first == nil:
		lv.most = n // counts move by one: nobody has more than n now
	}
}
