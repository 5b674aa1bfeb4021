package config

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestApplyCreateFailsKeepsTables: when the Manager refuses to create a bulkhead, Apply
// returns its error and keeps the tables, rather than serve that bulkhead's routes
// unguarded. Parse never yields a Config that core.New refuses, so the test breaks one.
func TestApplyCreateFailsKeepsTables(t *testing.T) {
	m := core.NewManager()
	defer m.Shutdown(context.Background())
	f, err := Parse("a.yaml", []byte("bulkheads: [{name: a, max_concurrent_calls: 1}]\nhttp: {\"GET /a\": a}\ngrpc: {\"/s.A/*\": a}\n"))
	require.NoError(t, err)
	l, err := New(m, f)
	require.NoError(t, err)
	before := l.cur.Load()

	f, err = Parse("b.yaml", []byte("bulkheads: [{name: a, max_concurrent_calls: 2}, {name: b, max_concurrent_calls: 1}]\nhttp: {\"GET /a\": b}\ngrpc: {\"/s.A/*\": b}\n"))
	require.NoError(t, err)
	f.bulkheads[1].cfg.MaxConcurrentCalls = 0 // core.New refuses it

	err = l.Apply(f)
	var ce *core.ConfigError
	assert.ErrorAs(t, err, &ce)
	assert.Same(t, before, l.cur.Load(), "the tables are kept")
	a, _ := m.Get("a")
	assert.Same(t, a, l.HTTP()(httptest.NewRequest("GET", "/a", nil)))
	assert.Same(t, a, l.GRPC()(context.Background(), "/s.A/M"))
	assert.Equal(t, 1, a.Config().MaxConcurrentCalls, "no bulkhead is changed")
}
