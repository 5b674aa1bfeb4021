// Package perbulkhead keeps what an adapter builds once per bulkhead, such as the status
// or the response body of its refusals, keyed by the bulkhead's name: built at the first
// refusal, then read without a lock by every later one.
package perbulkhead

import (
	"sync"
	"sync/atomic"
)

// DefaultLimit is the number of names a Cache keeps unless told otherwise.
const DefaultLimit = 1024

// Cache maps a bulkhead's name to a value built from the name. The map is copied on
// write: a Get of a name already there reads it without a lock or an allocation, and a
// new name costs a copy of the map, once. Past Limit names (DefaultLimit when 0), a new
// name's value is built for each Get and not kept, so that a program that makes
// bulkheads without end (one per tenant, say) does not grow the cache without end.
//
// Set New before the first Get and change neither afterwards. A Cache is safe for
// concurrent use; it must not be copied after its first Get. New is called with no lock
// held by the Cache's readers, one name at a time.
type Cache[V any] struct {
	New   func(name string) V
	Limit int

	m  atomic.Pointer[map[string]V]
	mu sync.Mutex // serialises writers
}

// Get returns the value for name, building it with New the first time.
func (c *Cache[V]) Get(name string) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[name]; ok {
			return v
		}
	}
	return c.add(name)
}

func (c *Cache[V]) add(name string) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[name]; ok {
			return v
		}
		n = len(*old)
	}
	v := c.New(name)
	limit := c.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if n >= limit {
		return v
	}
	m := make(map[string]V, n+1)
	if old != nil {
		for k, x := range *old {
			m[k] = x
		}
	}
	m[name] = v
	c.m.Store(&m)
	return v
}

// Len returns the number of names kept.
func (c *Cache[V]) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}
