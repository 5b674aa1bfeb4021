package pgstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/pgstore"
)

// votes returns the votes column of circuit "api" in the default namespace.
func votes(t *testing.T, pool *pgxpool.Pool) map[string]int64 {
	t.Helper()
	var v map[string]int64
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT votes FROM bulkman_circuits WHERE namespace = 'default' AND name = 'api'`).Scan(&v))
	return v
}

func TestSaveQuorum(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	pool := newPool(t, url)
	ctx := context.Background()
	var stores []*pgstore.Store
	for _, id := range []string{"a", "b", "c"} {
		stores = append(stores, newStore(t, newPool(t, url), pgstore.WithQuorum(3), pgstore.WithReplica(id)))
	}
	a, b, c := stores[0], stores[1], stores[2]
	assert.Equal(t, 3, a.Quorum())
	assert.Equal(t, "a", a.Replica())
	listener := newStore(t, pool)
	assert.Equal(t, 1, listener.Quorum())
	assert.Len(t, listener.Replica(), 16, "a random identity by default")
	heard := make(chan core.CircuitRecord, 10)
	defer listener.Subscribe(func(r core.CircuitRecord) { heard <- r })()

	later := time.Now().Add(time.Hour)
	got, err := a.Save(ctx, open(later))
	require.NoError(t, err)
	assert.Equal(t, core.CircuitRecord{Name: "api", Status: core.StatusClosed}, got, "one vote of three")
	_, ok := load(t, c, "api")
	assert.True(t, ok, "the row exists")
	rec, _ := load(t, c, "api")
	assert.Equal(t, core.StatusClosed, rec.Status)
	assert.Zero(t, rec.UpdatedAt, "no state was ever written")
	assert.Equal(t, map[string]int64{"a": later.UnixMicro()}, votes(t, pool))

	_, err = a.Save(ctx, open(later.Add(time.Minute)))
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"a": later.Add(time.Minute).UnixMicro()}, votes(t, pool), "one vote per replica, the latest")
	got, err = b.Save(ctx, open(later))
	require.NoError(t, err)
	assert.Equal(t, core.StatusClosed, got.Status, "two of three")
	select {
	case r := <-heard:
		t.Fatalf("a vote was notified: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}

	third := open(later.Add(2 * time.Minute))
	got, err = c.Save(ctx, third)
	require.NoError(t, err)
	assert.Equal(t, core.StatusOpen, got.Status, "the quorum")
	assert.True(t, third.OpenUntil.Truncate(time.Microsecond).Equal(got.OpenUntil), "with the third voter's end")
	assert.Empty(t, votes(t, pool), "the votes are spent")
	select {
	case r := <-heard:
		assert.Equal(t, got, r)
	case <-time.After(5 * time.Second):
		t.Fatal("the fleet-wide OPEN was not notified")
	}
	rec, ok = load(t, a, "api")
	require.True(t, ok)
	assert.Equal(t, got, rec)

	// The live OPEN guards as always, votes included.
	got, err = a.Save(ctx, open(later.Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, rec, got)
	got, err = b.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed})
	require.NoError(t, err)
	assert.Equal(t, rec, got)
}

// TestSaveQuorumVotesExpire: a vote counts until its voter's isolation ends, by the
// database's clock; a HALF_OPEN or CLOSED withdraws it.
func TestSaveQuorumVotesExpire(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	pool := newPool(t, url)
	ctx := context.Background()
	a := newStore(t, pool, pgstore.WithQuorum(2), pgstore.WithReplica("a"))
	b := newStore(t, pool, pgstore.WithQuorum(2), pgstore.WithReplica("b"))
	c := newStore(t, pool, pgstore.WithQuorum(2), pgstore.WithReplica("c"))

	_, err := a.Save(ctx, open(time.Now().Add(300*time.Millisecond)))
	require.NoError(t, err)
	time.Sleep(400 * time.Millisecond)
	got, err := b.Save(ctx, open(time.Now().Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, core.StatusClosed, got.Status, "a's vote expired with its isolation")
	assert.Equal(t, []string{"b"}, keys(votes(t, pool)), "and was dropped")

	_, err = b.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusHalfOpen})
	require.NoError(t, err)
	got, err = c.Save(ctx, open(time.Now().Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, core.StatusHalfOpen, got.Status, "b withdrew its vote when it went half-open")

	got, err = a.Save(ctx, open(time.Now().Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, core.StatusOpen, got.Status, "a and c")
}

func keys(m map[string]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSaveQuorumRace: ten replicas vote at once with a quorum of five: exactly one write
// opens the circuit, the four before it are votes, the five after it meet the live OPEN,
// and one notification goes out.
func TestSaveQuorumRace(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	ctx := context.Background()
	listener := newStore(t, newPool(t, url))
	var mu sync.Mutex
	var heard []core.CircuitRecord
	defer listener.Subscribe(func(r core.CircuitRecord) { mu.Lock(); heard = append(heard, r); mu.Unlock() })()
	for round := range 5 {
		name := "api" + strings.Repeat("x", round)
		stores := make([]*pgstore.Store, 10)
		for i := range stores {
			stores[i] = newStore(t, newPool(t, url), pgstore.WithQuorum(5))
		}
		results := make([]core.CircuitRecord, len(stores))
		sent := make([]core.CircuitRecord, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			sent[i] = core.CircuitRecord{Name: name, Status: core.StatusOpen, OpenUntil: time.Now().Add(time.Duration(i+1) * time.Minute)}
			wg.Go(func() {
				r, err := s.Save(ctx, sent[i])
				assert.NoError(t, err)
				results[i] = r
			})
		}
		wg.Wait()
		var opened, votesOnly, guarded int
		var winner core.CircuitRecord
		for i, r := range results {
			switch {
			case r.Status == core.StatusClosed:
				votesOnly++
			case r.Status == core.StatusOpen && r.OpenUntil.Equal(sent[i].OpenUntil.UTC().Truncate(time.Microsecond)):
				opened++
				winner = r
			default:
				guarded++
			}
		}
		assert.Equal(t, []int{1, 4, 5}, []int{opened, votesOnly, guarded}, "round %d: opened, votes, guarded", round)
		for _, r := range results {
			if r.Status == core.StatusOpen {
				assert.True(t, winner.OpenUntil.Equal(r.OpenUntil), "round %d: everyone else sees the winner's OPEN", round)
			}
		}
	}
	eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(heard) == 5 }, "one notification per round")
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	assert.Len(t, heard, 5, "and no more")
	mu.Unlock()
}

// TestQuorumFleet: five replicas, each with its own pool, share a circuit with a quorum
// of three: one replica that opens alone keeps serving its own verdict while the others
// serve; the third opener opens the fleet, and the others learn of it through LISTEN/NOTIFY.
func TestQuorumFleet(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	var fleet []*core.Bulkhead
	for range 5 {
		fleet = append(fleet, replica(t, newStore(t, newPool(t, url), pgstore.WithQuorum(3)), "api", time.Minute, 0))
	}
	states := func() string {
		var sb strings.Builder
		for _, b := range fleet {
			sb.WriteString(b.State().String()[:1])
		}
		return sb.String()
	}
	trip(t, fleet[0])
	time.Sleep(300 * time.Millisecond) // a notification would have arrived by now
	assert.Equal(t, "ihhhh", states(), "one replica alone")
	for _, b := range fleet[1:] {
		r, err := core.Execute(context.Background(), b, succeed)
		require.NoError(t, err)
		assert.True(t, r.Success)
	}
	trip(t, fleet[1])
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, "iihhh", states(), "two of three")
	trip(t, fleet[2])
	eventually(t, 5*time.Second, func() bool { return states() == "iiiii" }, "the third opens the fleet")
	// The two replicas that opened alone were open already; each learns the fleet's end
	// of isolation from its own notification, which may come after the others'.
	want := fleet[2].Stats().OpenUntil
	agree := func() bool {
		for _, b := range fleet {
			if d := b.Stats().OpenUntil.Sub(want); d < -time.Millisecond || d > time.Millisecond {
				return false
			}
		}
		return true
	}
	eventually(t, 5*time.Second, agree, "every replica adopts the fleet's end of isolation")
	for i, b := range fleet {
		assert.WithinDuration(t, want, b.Stats().OpenUntil, time.Millisecond, "replica %d", i)
	}
}

func TestNewRejectsBadQuorumAndReplica(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	for _, tc := range []struct {
		opt  pgstore.Option
		want string
	}{
		{pgstore.WithQuorum(0), "invalid quorum 0"},
		{pgstore.WithQuorum(-2), "invalid quorum -2"},
		{pgstore.WithReplica(""), "invalid replica"},
		{pgstore.WithReplica("a\x00b"), "invalid replica"},
		{pgstore.WithReplica(strings.Repeat("r", 201)), "invalid replica"},
	} {
		_, err := pgstore.New(context.Background(), pool, tc.opt)
		assert.ErrorContains(t, err, tc.want)
	}
}

// TestSaveQuorumMalformedVotes: votes someone wrote by hand that are not votes are
// dropped by the next write, which they never make fail.
func TestSaveQuorumMalformedVotes(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	ctx := context.Background()
	a := newStore(t, pool, pgstore.WithQuorum(2), pgstore.WithReplica("a"))
	b := newStore(t, pool, pgstore.WithQuorum(2), pgstore.WithReplica("b"))
	for _, bad := range []string{`[1, 2]`, `"x"`, `null`, `{"c": "tomorrow", "d": {"x": 1}, "e": null}`} {
		_, err := pool.Exec(ctx, `INSERT INTO bulkman_circuits (namespace, name, status, updated_at, votes)
			VALUES ('default', 'api', 'CLOSED', now(), $1::jsonb)
			ON CONFLICT (namespace, name) DO UPDATE SET status = 'CLOSED', votes = excluded.votes`, bad)
		require.NoError(t, err, bad)
		got, err := a.Save(ctx, open(time.Now().Add(time.Hour)))
		require.NoError(t, err, bad)
		assert.Equal(t, core.StatusClosed, got.Status, "%s: the bad votes do not count", bad)
		assert.Equal(t, []string{"a"}, keys(votes(t, pool)), "%s: and are dropped", bad)
		got, err = b.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed})
		require.NoError(t, err, bad)
		assert.Equal(t, core.StatusClosed, got.Status)
	}
}
