package core_test

import (
	"context"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// An RFC 9562 UUID, version 8, variant 10xx.
var uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestExecutionIDUnique(t *testing.T) {
	const calls, workers = 100_000, 4
	b1 := newBulkhead(t, func(c *core.Config) { c.Name = "one" })
	b2 := newBulkhead(t, func(c *core.Config) { c.Name = "two" })
	ids := make([][]core.ExecutionID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			b := b1
			if w%2 == 1 {
				b = b2
			}
			for range calls / workers {
				res, err := core.Execute(context.Background(), b, succeed(1))
				if !assert.NoError(t, err) {
					return
				}
				ids[w] = append(ids[w], res.ExecutionID)
			}
		})
	}
	wg.Wait()

	seen := make(map[core.ExecutionID]struct{}, calls)
	for _, list := range ids {
		for _, id := range list {
			seen[id] = struct{}{}
		}
	}
	assert.Len(t, seen, calls, "every admitted call has its own ID, across bulkheads too")
	assert.NotContains(t, seen, core.ExecutionID{})
}

func TestExecutionIDString(t *testing.T) {
	b := newBulkhead(t, nil)
	for range 1000 {
		res, err := core.Execute(context.Background(), b, succeed(1))
		require.NoError(t, err)
		id := res.ExecutionID
		s := id.String()
		require.Regexp(t, uuidV8, s)

		raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
		require.NoError(t, err)
		assert.Equal(t, id[:], raw, "String is the ID's bytes")
		assert.Equal(t, byte(0x80), id[6]&0xf0, "version 8")
		assert.Equal(t, byte(0x80), id[8]&0xc0, "variant 10")

		text, err := id.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, s, string(text))
	}
	var zero core.ExecutionID
	assert.True(t, zero.IsZero())
	assert.Equal(t, "00000000-0000-0000-0000-000000000000", zero.String())
}
