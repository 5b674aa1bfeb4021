package core

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refQueue is the queue's rules written the plain way, to check waitQueue against: per
// priority, the tenants with waiters in the order of their turns (the first is served
// next and then goes to the back), and each tenant's waiters in order.
type refQueue struct {
	levels [numPriorities]struct {
		turns []string
		lines map[string][]*waiter
	}
	n int
}

func (r *refQueue) push(w *waiter, p Priority, tenant string) {
	lv := &r.levels[p.index()]
	if lv.lines == nil {
		lv.lines = map[string][]*waiter{}
	}
	if len(lv.lines[tenant]) == 0 {
		lv.turns = append(lv.turns, tenant)
	}
	lv.lines[tenant] = append(lv.lines[tenant], w)
	r.n++
}

func (r *refQueue) pop() *waiter {
	for i := numPriorities - 1; i >= 0; i-- {
		lv := &r.levels[i]
		if len(lv.turns) == 0 {
			continue
		}
		t := lv.turns[0]
		w := lv.lines[t][0]
		lv.turns = append(lv.turns[1:], t)
		r.remove(w, i, t)
		return w
	}
	return nil
}

func (r *refQueue) remove(w *waiter, level int, tenant string) {
	lv := &r.levels[level]
	line := lv.lines[tenant]
	i := slices.Index(line, w)
	lv.lines[tenant] = slices.Delete(line, i, i+1)
	if len(lv.lines[tenant]) == 0 {
		lv.turns = slices.DeleteFunc(lv.turns, func(s string) bool { return s == tenant })
	}
	r.n--
}

// victims returns the waiters victim may name: the newest of each tenant with the most
// waiters at the level the rules pick (the choice among tied tenants is free).
func (r *refQueue) victims(p Priority, tenant string) (level int, ws []*waiter) {
	most := func(lv int) (int, []*waiter) {
		m := 0
		for _, line := range r.levels[lv].lines {
			m = max(m, len(line))
		}
		var out []*waiter
		for _, line := range r.levels[lv].lines {
			if len(line) == m && m > 0 {
				out = append(out, line[m-1])
			}
		}
		return m, out
	}
	for i := range p.index() {
		if m, ws := most(i); m > 0 {
			return i, ws
		}
	}
	m, ws := most(p.index())
	if len(r.levels[p.index()].lines[tenant]) < m {
		return p.index(), ws
	}
	return -1, nil
}

// FuzzWaitQueue runs a sequence of queue operations decoded from the input against
// waitQueue and refQueue, and requires the same answers from both.
func FuzzWaitQueue(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 2, 1, 4, 4})
	f.Add([]byte{0, 3, 1, 0, 3, 2, 0, 0, 1, 3, 3, 1, 2, 4, 4, 4})
	f.Add([]byte{0, 1, 0, 0, 1, 1, 0, 1, 2, 2, 0, 3, 0, 4, 1, 1})
	tenants := []string{"", "a", "b", "c"}
	f.Fuzz(func(t *testing.T, ops []byte) {
		var q waitQueue
		var ref refQueue
		where := map[*waiter]string{}
		var live []*waiter
		next := func() byte {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return b
		}
		for len(ops) > 0 {
			switch op := next() % 5; op {
			case 0, 3: // push; 3: an arrival at a full bulkhead, which displaces or is refused
				p := Priority(int(next()%byte(numPriorities))) + PriorityLow
				tenant := tenants[next()%byte(len(tenants))]
				w := &waiter{}
				if op == 3 {
					got := q.victim(p, tenant)
					level, want := ref.victims(p, tenant)
					if got == nil {
						if want != nil {
							t.Fatalf("victim(%v, %q) = nil, want one of %d", p, tenant, len(want))
						}
						continue
					}
					if !slices.Contains(want, got) {
						t.Fatalf("victim(%v, %q) is not the newest of a tenant with the most", p, tenant)
					}
					if got.prio.index() != level {
						t.Fatalf("victim at %v, want level %d", got.prio, level)
					}
					ref.remove(got, got.prio.index(), where[got])
					q.remove(got)
					live = slices.DeleteFunc(live, func(x *waiter) bool { return x == got })
				}
				q.push(w, p, tenant)
				ref.push(w, p, tenant)
				where[w] = tenant
				live = append(live, w)
			case 1:
				got, want := q.pop(), ref.pop()
				if got != want {
					t.Fatalf("pop: got another waiter than the reference")
				}
				live = slices.DeleteFunc(live, func(x *waiter) bool { return x == got })
			case 2, 4: // a waiter leaves (cancelled, timed out)
				if len(live) == 0 {
					continue
				}
				w := live[int(next())%len(live)]
				ref.remove(w, w.prio.index(), where[w])
				q.remove(w)
				live = slices.DeleteFunc(live, func(x *waiter) bool { return x == w })
			}
			if q.len() != ref.n || len(live) != ref.n {
				t.Fatalf("len = %d, reference %d", q.len(), ref.n)
			}
			if q.peek() != nil && q.n == 0 || q.n > 0 && q.peek() == nil {
				t.Fatal("peek disagrees with len")
			}
			checkCounts(t, &q)
		}
		for ref.n > 0 {
			if got, want := q.pop(), ref.pop(); got != want {
				t.Fatal("drain: got another waiter than the reference")
			}
		}
		if q.pop() != nil || q.len() != 0 {
			t.Fatal("queue not empty after draining")
		}
	})
}

// checkCounts checks the queue's bookkeeping: level counts, the tenant with the most.
func checkCounts(t *testing.T, q *waitQueue) {
	t.Helper()
	total := 0
	for i := range q.levels {
		lv := &q.levels[i]
		n, most := 0, 0
		if lv.next != nil {
			tq := lv.next
			for {
				c := 0
				for w := tq.head; w != nil; w = w.next {
					c++
				}
				if c != tq.n || c == 0 {
					t.Fatalf("level %d tenant %q: n = %d, counted %d", i, tq.name, tq.n, c)
				}
				n += c
				most = max(most, c)
				if tq = tq.next; tq == lv.next {
					break
				}
			}
		}
		if n != lv.n || most != lv.most {
			t.Fatalf("level %d: n = %d most = %d, counted %d and %d", i, lv.n, lv.most, n, most)
		}
		total += n
	}
	if total != q.n {
		t.Fatalf("n = %d, counted %d", q.n, total)
	}
}

func TestWaitQueueFIFOWithoutPriorities(t *testing.T) {
	var q waitQueue
	ws := make([]*waiter, 10)
	for i := range ws {
		ws[i] = &waiter{}
		q.push(ws[i], PriorityNormal, "")
	}
	assert.Nil(t, q.victim(PriorityNormal, ""), "a call without priority or tenant displaces nobody")
	q.remove(ws[3])
	for i, w := range ws {
		if i == 3 {
			continue
		}
		require.Same(t, w, q.pop(), "waiter %d", i)
	}
	assert.Nil(t, q.pop())
}

func TestWaitQueueOrder(t *testing.T) {
	type push struct {
		p      Priority
		tenant string
	}
	tests := []struct {
		name   string
		pushes []push
		want   []int // the indexes of pushes, in the order pop returns them
	}{
		{"priorities first", []push{{PriorityLow, ""}, {PriorityNormal, ""}, {PriorityCritical, ""}, {PriorityHigh, ""}}, []int{2, 3, 1, 0}},
		{"tenants in turn", []push{{0, "a"}, {0, "a"}, {0, "a"}, {0, "b"}, {0, "c"}, {0, "b"}}, []int{0, 3, 4, 1, 5, 2}},
		{"a new tenant waits its turn", []push{{0, "a"}, {0, "b"}, {0, "a"}, {0, "b"}, {0, "c"}}, []int{0, 1, 4, 2, 3}},
		{"tenants per priority", []push{{0, "a"}, {0, "a"}, {1, "b"}, {0, "b"}}, []int{2, 0, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q waitQueue
			ws := make([]*waiter, len(tt.pushes))
			for i, p := range tt.pushes {
				ws[i] = &waiter{}
				q.push(ws[i], p.p, p.tenant)
			}
			var got []int
			for w := q.pop(); w != nil; w = q.pop() {
				got = append(got, slices.Index(ws, w))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWaitQueueVictim(t *testing.T) {
	type push struct {
		p      Priority
		tenant string
	}
	tests := []struct {
		name   string
		pushes []push
		arrive push
		want   int // index of the displaced waiter, -1: refuse
	}{
		{"same priority, same tenant: refuse", []push{{0, ""}, {0, ""}}, push{0, ""}, -1},
		{"lower priority: its newest", []push{{-1, ""}, {-1, ""}, {0, ""}}, push{0, ""}, 1},
		{"the lowest priority first", []push{{0, ""}, {-1, ""}, {1, ""}}, push{2, ""}, 1},
		{"higher priority: refuse", []push{{1, ""}, {2, ""}}, push{0, "x"}, -1},
		{"the tenant with the most", []push{{0, "a"}, {0, "b"}, {0, "b"}, {0, "a"}, {0, "b"}}, push{0, "c"}, 4},
		{"a tenant with fewer", []push{{0, "a"}, {0, "b"}, {0, "b"}}, push{0, "a"}, 2},
		{"a tenant with as many: refuse", []push{{0, "a"}, {0, "b"}}, push{0, "a"}, -1},
		{"the flooding tenant, at the lower priority", []push{{-1, "a"}, {-1, "b"}, {-1, "b"}, {-1, "a"}, {-1, "b"}}, push{0, "a"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q waitQueue
			ws := make([]*waiter, len(tt.pushes))
			for i, p := range tt.pushes {
				ws[i] = &waiter{}
				q.push(ws[i], p.p, p.tenant)
			}
			got := slices.Index(ws, q.victim(tt.arrive.p, tt.arrive.tenant))
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestWaitQueueAllocs checks that the queue allocates nothing in steady state, tenants and
// priorities coming and going included.
func TestWaitQueueAllocs(t *testing.T) {
	var q waitQueue
	ws := make([]*waiter, 64)
	for i := range ws {
		ws[i] = &waiter{}
	}
	tenants := []string{"", "a", "b", "c", "d"}
	round := func() {
		for i, w := range ws {
			q.push(w, Priority(i%numPriorities)+PriorityLow, tenants[i%len(tenants)])
		}
		for i := 0; i < len(ws); i += 3 {
			if v := q.victim(PriorityCritical, "e"); v != nil {
				q.remove(v)
			}
		}
		for q.pop() != nil {
		}
	}
	round()
	assert.Zero(t, testing.AllocsPerRun(100, round))
}

func BenchmarkWaitQueue(b *testing.B) {
	tenants := []string{"", "a", "b", "c"}
	for _, bc := range []struct {
		name    string
		tenants []string
		prios   int
	}{{"fifo", tenants[:1], 1}, {"tenants", tenants, 1}, {"priorities+tenants", tenants, numPriorities}} {
		b.Run(bc.name, func(b *testing.B) {
			var q waitQueue
			ws := make([]*waiter, 16)
			for i := range ws {
				ws[i] = &waiter{}
			}
			b.ReportAllocs()
			for b.Loop() {
				for i, w := range ws {
					q.push(w, Priority(i%bc.prios)+PriorityLow, bc.tenants[i%len(bc.tenants)])
				}
				for q.pop() != nil {
				}
			}
		})
	}
}
