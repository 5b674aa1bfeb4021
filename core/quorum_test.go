package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// fleet returns n replicas of bulkhead "api", each over its own replica of one
// MemoryStore with the given quorum (see replica: 3 failures open it for isolation).
func fleet(t *testing.T, n, quorum int) (*core.MemoryStore, []*core.Bulkhead) {
	t.Helper()
	mem := core.NewMemoryStore()
	bs := make([]*core.Bulkhead, n)
	for i := range bs {
		r, err := mem.Replica(quorum)
		require.NoError(t, err)
		bs[i] = replica(t, r, 0)
	}
	return mem, bs
}

// states is the fleet's states as letters: H healthy, D degraded, I isolated.
func states(bs []*core.Bulkhead) string {
	var sb strings.Builder
	for _, b := range bs {
		sb.WriteByte(stateLetters[b.State()])
	}
	return sb.String()
}

func TestQuorumOneReplicaAloneStaysLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem, bs := fleet(t, 5, 3)
		trip(t, bs[0])
		synctest.Wait()
		assert.Equal(t, "IHHHH", states(bs), "the others keep serving")
		for _, b := range bs[1:] {
			ran, err := runs(b, succeed(1))
			require.NoError(t, err)
			assert.True(t, ran)
		}
		ran, err := runs(bs[0], succeed(1))
		assert.False(t, ran, "the lone replica keeps its breaker's verdict")
		assertRefusal(t, err, core.ErrCircuitOpen, "api")
		_, ok, err := mem.Load(context.Background(), "api")
		require.NoError(t, err)
		assert.False(t, ok, "no fleet-wide record")

		time.Sleep(isolation)
		assert.Equal(t, "DHHHH", states(bs))
		ran, err = runs(bs[0], succeed(1))
		require.NoError(t, err)
		assert.True(t, ran, "its own probe")
		synctest.Wait()
		assert.Equal(t, "HHHHH", states(bs))
	})
}

func TestQuorumOpensTheFleetAtTheNthVote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem, bs := fleet(t, 5, 3)
		trip(t, bs[0])
		time.Sleep(time.Second)
		trip(t, bs[1])
		synctest.Wait()
		assert.Equal(t, "IIHHH", states(bs), "two votes of three")

		time.Sleep(time.Second)
		trip(t, bs[2])
		synctest.Wait()
		assert.Equal(t, "IIIII", states(bs), "the third vote opens the fleet")
		rec := stored(t, mem)
		assert.Equal(t, core.StatusOpen, rec.Status)
		want := bs[2].Stats().OpenUntil
		assert.True(t, want.Equal(rec.OpenUntil), "the fleet's isolation starts at the quorum: %v", rec.OpenUntil)
		for i, b := range bs {
			assert.True(t, want.Equal(b.Stats().OpenUntil), "replica %d ends with the fleet: %v", i, b.Stats().OpenUntil)
		}

		time.Sleep(time.Until(want))
		assert.Equal(t, "DDDDD", states(bs))
		ran, err := runs(bs[4], succeed(1))
		require.NoError(t, err)
		require.True(t, ran)
		synctest.Wait()
		assert.Equal(t, "HHHHH", states(bs), "one probe closes it for everyone, as with a quorum of 1")
	})
}

// TestQuorumVotesExpire: a vote lasts as long as its voter's isolation; votes that do
// not overlap never make a quorum.
func TestQuorumVotesExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, bs := fleet(t, 4, 2)
		trip(t, bs[0])
		time.Sleep(isolation) // bs[0]'s vote ends with its isolation
		trip(t, bs[1])
		synctest.Wait()
		assert.Equal(t, "DIHH", states(bs), "the first vote expired: one live vote of two")

		time.Sleep(isolation / 2)
		trip(t, bs[2])
		synctest.Wait()
		assert.Equal(t, "IIII", states(bs), "two live votes")
	})
}

// TestQuorumOneIsFirstOpenerWins: Replica(1) keeps the rule of a quorum of 1.
func TestQuorumOneIsFirstOpenerWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, bs := fleet(t, 3, 1)
		trip(t, bs[1])
		synctest.Wait()
		assert.Equal(t, "III", states(bs))
	})
}

func TestMemoryStoreQuorum(t *testing.T) {
	ctx := context.Background()
	open := func(until time.Time) core.CircuitRecord {
		return core.CircuitRecord{Name: "api", Status: core.StatusOpen, OpenUntil: until, UpdatedAt: time.Now()}
	}
	t.Run("votes", func(t *testing.T) {
		mem := core.NewMemoryStore()
		var heard []string
		var mu sync.Mutex
		cancel := mem.Subscribe(func(r core.CircuitRecord) { mu.Lock(); heard = append(heard, r.Status); mu.Unlock() })
		defer cancel()
		a, err := mem.Replica(3)
		require.NoError(t, err)
		b, _ := mem.Replica(3)
		c, _ := mem.Replica(3)
		assert.Equal(t, 3, a.Quorum())
		assert.Equal(t, 1, mem.Quorum())
		assert.NotEqual(t, a.ReplicaID(), b.ReplicaID())

		later := time.Now().Add(time.Hour)
		got, err := a.Save(ctx, open(later))
		require.NoError(t, err)
		assert.Equal(t, core.CircuitRecord{Name: "api", Status: core.StatusClosed}, got, "a vote: the record as it is")
		got, err = a.Save(ctx, open(later.Add(time.Second)))
		require.NoError(t, err)
		assert.Equal(t, core.StatusClosed, got.Status, "the same replica votes once")
		got, err = b.Save(ctx, open(later))
		require.NoError(t, err)
		assert.Equal(t, core.StatusClosed, got.Status)
		_, ok, _ := c.Load(ctx, "api")
		assert.False(t, ok)
		assert.Empty(t, heard, "votes are not notified")

		third := open(later.Add(2 * time.Second))
		got, err = c.Save(ctx, third)
		require.NoError(t, err)
		assert.Equal(t, third, got, "the quorum: written")
		assert.Equal(t, []string{core.StatusOpen}, heard)
		rec, ok, _ := a.Load(ctx, "api")
		assert.True(t, ok)
		assert.Equal(t, third, rec)
	})
	t.Run("a replica that recovers withdraws its vote", func(t *testing.T) {
		mem := core.NewMemoryStore()
		a, _ := mem.Replica(2)
		b, _ := mem.Replica(2)
		later := time.Now().Add(time.Hour)
		_, err := a.Save(ctx, open(later))
		require.NoError(t, err)
		_, err = a.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed, UpdatedAt: time.Now()})
		require.NoError(t, err)
		got, err := b.Save(ctx, open(later))
		require.NoError(t, err)
		assert.Equal(t, core.StatusClosed, got.Status, "a's vote is gone: one of two")
	})
	t.Run("a live OPEN still guards", func(t *testing.T) {
		mem := core.NewMemoryStore()
		a, _ := mem.Replica(2)
		live := open(time.Now().Add(time.Hour))
		_, err := mem.Save(ctx, live) // quorum 1: written
		require.NoError(t, err)
		got, err := a.Save(ctx, open(time.Now().Add(2*time.Hour)))
		require.NoError(t, err)
		assert.Equal(t, live, got)
		got, err = a.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed})
		require.NoError(t, err)
		assert.Equal(t, live, got)
	})
	t.Run("bad quorum", func(t *testing.T) {
		for _, n := range []int{0, -1} {
			_, err := core.NewMemoryStore().Replica(n)
			assert.ErrorContains(t, err, "quorum must be at least 1")
		}
	})
	t.Run("zero value", func(t *testing.T) {
		var mem core.MemoryStore
		assert.Equal(t, 1, mem.Quorum())
		assert.Equal(t, "memory-1", mem.ReplicaID())
		r, err := mem.Replica(2)
		require.NoError(t, err)
		assert.Equal(t, "memory-2", r.ReplicaID())
		_, err = mem.Save(ctx, open(time.Now().Add(time.Hour)))
		require.NoError(t, err)
		rec, ok, err := r.Load(ctx, "api")
		require.NoError(t, err)
		assert.True(t, ok, "replicas share the records")
		assert.Equal(t, core.StatusOpen, rec.Status)
	})
}

// TestQuorumLoneOpenerProbesForItself: the shared record stays CLOSED while a replica
// opens alone; once its isolation is over, neither the poll nor a peer's notification of
// that old CLOSED closes it: it probes for itself, and one failed probe opens it again.
func TestQuorumLoneOpenerProbesForItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := core.NewMemoryStore()
		var bs []*core.Bulkhead
		var rs []*core.MemoryStore
		for range 3 {
			r, err := mem.Replica(3)
			require.NoError(t, err)
			rs = append(rs, r)
			bs = append(bs, replica(t, r, time.Second))
		}
		// An earlier fleet-wide cycle left a CLOSED record.
		_, err := rs[1].Save(context.Background(), core.CircuitRecord{Name: "api", Status: core.StatusClosed, UpdatedAt: time.Now()})
		require.NoError(t, err)
		time.Sleep(time.Minute)

		trip(t, bs[0])
		time.Sleep(isolation + 3*time.Second) // three polls read the old CLOSED
		synctest.Wait()
		assert.Equal(t, "DHH", states(bs), "still half-open: waiting for its own probe")

		ran, err := runs(bs[0], fail)
		require.NoError(t, err)
		assert.True(t, ran, "the probe")
		assert.Equal(t, "IHH", states(bs), "one failed probe re-opens it")
	})
}

// Three replicas over one MemoryStore, as three processes over one database, with a
// quorum of two: the first replica to open stays alone; the second opens the fleet.
func ExampleMemoryStore_Replica() {
	mem := core.NewMemoryStore()
	var fleet []*core.Bulkhead
	for range 3 {
		r, _ := mem.Replica(2)
		cfg := core.DefaultConfig("payments")
		cfg.CircuitBreakerEnabled = true
		cfg.FailureThreshold = 1
		b, _ := core.New(cfg, core.WithCircuitStore(r))
		defer b.Shutdown(context.Background())
		fleet = append(fleet, b)
	}
	fail := func(context.Context) (int, error) { return 0, errors.New("no route to host") }

	_, _ = core.Execute(context.Background(), fleet[0], fail)
	time.Sleep(10 * time.Millisecond) // a peer's notification would have come
	fmt.Println(fleet[0].State(), fleet[1].State(), fleet[2].State())
	_, _ = core.Execute(context.Background(), fleet[1], fail)
	for fleet[2].State() != core.Isolated { // the MemoryStore notifies at once; the replica adopts on its goroutine
		time.Sleep(time.Millisecond)
	}
	fmt.Println(fleet[0].State(), fleet[1].State(), fleet[2].State())
	// Output:
	// isolated healthy healthy
	// isolated isolated isolated
}
