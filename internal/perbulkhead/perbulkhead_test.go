package perbulkhead_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/internal/perbulkhead"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type entry struct{ name string }

func TestCacheKeepsOneValuePerName(t *testing.T) {
	var built atomic.Int32
	c := perbulkhead.Cache[*entry]{New: func(name string) *entry { built.Add(1); return &entry{name} }}
	a := c.Get("a")
	assert.Equal(t, "a", a.name)
	assert.Same(t, a, c.Get("a"))
	b := c.Get("b")
	assert.Equal(t, "b", b.name)
	assert.Same(t, a, c.Get("a"), "an earlier name survives a later one")
	assert.EqualValues(t, 2, built.Load())
	assert.Equal(t, 2, c.Len())
}

func TestCacheLimit(t *testing.T) {
	c := perbulkhead.Cache[*entry]{New: func(name string) *entry { return &entry{name} }, Limit: 3}
	kept := c.Get("0")
	c.Get("1")
	c.Get("2")
	x, y := c.Get("3"), c.Get("3")
	assert.NotSame(t, x, y, "past the limit, built each time")
	assert.Equal(t, "3", x.name)
	assert.Equal(t, 3, c.Len())
	assert.Same(t, kept, c.Get("0"))
}

func TestCacheDefaultLimit(t *testing.T) {
	c := perbulkhead.Cache[int]{New: func(string) int { return 1 }}
	for i := range perbulkhead.DefaultLimit + 10 {
		c.Get(strconv.Itoa(i))
	}
	assert.Equal(t, perbulkhead.DefaultLimit, c.Len())
}

func TestCacheConcurrent(t *testing.T) {
	c := perbulkhead.Cache[*entry]{New: func(name string) *entry { return &entry{name} }}
	var wg sync.WaitGroup
	firsts := make([]*entry, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				name := strconv.Itoa((g + i) % 50)
				assert.Equal(t, name, c.Get(name).name)
			}
			firsts[g] = c.Get("0")
		})
	}
	wg.Wait()
	for _, e := range firsts {
		assert.Same(t, firsts[0], e, "one value per name once kept")
	}
	assert.Equal(t, 50, c.Len())
}

func TestCacheGetDoesNotAllocate(t *testing.T) {
	c := perbulkhead.Cache[*entry]{New: func(name string) *entry { return &entry{name} }}
	c.Get("api")
	assert.Zero(t, testing.AllocsPerRun(100, func() { c.Get("api") }))
}
