package core_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// deafStore is a MemoryStore whose notifications never arrive, and which counts reads:
// only the HealthCheckInterval poll can tell a bulkhead what a peer wrote.
type deafStore struct {
	*core.MemoryStore
	loads atomic.Int32
}

func (s *deafStore) Load(ctx context.Context, name string) (core.CircuitRecord, bool, error) {
	s.loads.Add(1)
	return s.MemoryStore.Load(ctx, name)
}

func (s *deafStore) Subscribe(func(core.CircuitRecord)) (cancel func()) { return func() {} }

// HealthCheckInterval is how often a bulkhead with a CircuitStore re-reads shared state
// it missed; 0 turns the poll off. It is never a per-call cost.
func TestHealthCheckInterval(t *testing.T) {
	for _, interval := range []time.Duration{0, 5 * time.Second} {
		t.Run(fmt.Sprintf("HealthCheckInterval=%v", interval), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &deafStore{MemoryStore: core.NewMemoryStore()}
				b := newCircuit(t, 1, 1, func(c *core.Config) { c.HealthCheckInterval = interval }, core.WithCircuitStore(store))
				synctest.Wait()
				require.Equal(t, int32(1), store.loads.Load(), "the stored state is read once at start")

				// A peer opens the circuit; the notification is lost.
				_, err := store.Save(context.Background(), core.CircuitRecord{
					Name: "test", Status: core.StatusOpen,
					OpenUntil: time.Now().Add(time.Minute), UpdatedAt: time.Now(),
				})
				require.NoError(t, err)
				synctest.Wait()
				assert.Equal(t, core.Healthy, b.State(), "not heard of yet")

				for range 1000 {
					_, err := core.Execute(context.Background(), b, succeed(1))
					require.NoError(t, err)
				}
				assert.Equal(t, int32(1), store.loads.Load(), "calls never read the store")

				time.Sleep(5 * time.Second)
				synctest.Wait()
				if interval == 0 {
					time.Sleep(time.Hour)
					assert.Equal(t, int32(1), store.loads.Load(), "no poll")
					assert.Equal(t, core.Healthy, b.State())
				} else {
					assert.Equal(t, int32(2), store.loads.Load(), "one poll per interval")
					assert.Equal(t, core.Isolated, b.State(), "the poll adopted the peer's OPEN")
					_, err := core.Execute(context.Background(), b, succeed(1))
					e := assertRefusal(t, err, core.ErrCircuitOpen, "test")
					assert.Equal(t, 55*time.Second, e.RetryAfter, "with the peer's end time")
				}
				require.NoError(t, b.Shutdown(context.Background()))
			})
		})
	}
}
