package prommetrics

import (
	"context"
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestFastPathAfterRecreate: a bulkhead removed from the Manager and created again
// under the same name, built at run time (so at a new address), gets the address fast
// path back at the next scrape, and the old address is dropped.
func TestFastPathAfterRecreate(t *testing.T) {
	m := core.NewManager()
	c := New(m)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	name := func() string { return strings.Repeat("tenant-", 2) } // a new string each time
	run := func(b *core.Bulkhead) {
		t.Helper()
		_, err := core.Execute(context.Background(), b, func(context.Context) (int, error) { return 0, nil })
		require.NoError(t, err)
	}
	fast := func(b *core.Bulkhead) bool {
		_, ok := (*c.byAddr.Load())[unsafe.StringData(b.Name())]
		return ok
	}

	first, err := m.Create(core.DefaultConfig(name()))
	require.NoError(t, err)
	other, err := m.Create(core.DefaultConfig("other"))
	require.NoError(t, err)
	run(first)
	_, err = reg.Gather()
	require.NoError(t, err)
	require.True(t, fast(first))

	_, ok := m.Remove(first.Name())
	require.True(t, ok)
	again, err := m.Create(core.DefaultConfig(name()))
	require.NoError(t, err)
	require.NotSame(t, unsafe.StringData(first.Name()), unsafe.StringData(again.Name()))
	run(again)
	_, err = reg.Gather()
	require.NoError(t, err)

	assert.True(t, fast(again), "the re-created bulkhead is on the fast path")
	assert.True(t, fast(other))
	assert.False(t, fast(first), "the removed bulkhead's address is dropped")
	assert.Len(t, *c.byAddr.Load(), 2, "one address per live bulkhead")
	assert.Same(t, c.lookup(again.Name()), c.lookup(first.Name()), "one series per name")

	before := c.byAddr.Load()
	_, err = reg.Gather()
	require.NoError(t, err)
	assert.Same(t, before, c.byAddr.Load(), "no rebuild while the bulkheads stay the same")
}
