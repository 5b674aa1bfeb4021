package pgstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/pgstore"
)

// previousTable is the table the version before quorums created.
const previousTable = `CREATE TABLE bulkman_circuits (
	namespace  text        NOT NULL,
	name       text        NOT NULL,
	status     text        NOT NULL,
	open_until timestamptz NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (namespace, name)
)`

// previousSave is that version's write: a replica not yet upgraded keeps running it.
const previousSave = `WITH w AS (
	INSERT INTO bulkman_circuits AS t (namespace, name, status, open_until, updated_at)
	VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (namespace, name) DO UPDATE
		SET status = excluded.status, open_until = excluded.open_until, updated_at = excluded.updated_at
		WHERE NOT coalesce(t.status = 'OPEN' AND isfinite(t.open_until) AND t.open_until > now(), false)
	RETURNING 1
)
SELECT count(*) FROM w`

type storedRow struct {
	Namespace, Name, Status string
	OpenUntil               *time.Time
	UpdatedAt               time.Time
}

func rows(t *testing.T, conn interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []storedRow {
	t.Helper()
	r, err := conn.Query(context.Background(),
		`SELECT namespace, name, status, open_until, updated_at FROM bulkman_circuits ORDER BY namespace, name`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(r, pgx.RowToStructByPos[storedRow])
	require.NoError(t, err)
	return out
}

// TestNewUpgradesThePreviousTableInPlace: New adds the votes column to a table the
// previous version made, keeping every row as it was, without rewriting the table, while
// several replicas start at once; the circuits it held work as before, votes work on
// them, and a replica still on the previous version keeps writing.
func TestNewUpgradesThePreviousTableInPlace(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	pool := newPool(t, url)
	ctx := context.Background()
	_, err := pool.Exec(ctx, previousTable)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, r := range []storedRow{
		{"default", "live", "OPEN", ptr(now.Add(time.Hour)), now.Add(-time.Minute)},
		{"default", "expired", "OPEN", ptr(now.Add(-time.Hour)), now.Add(-2 * time.Hour)},
		{"default", "closed", "CLOSED", nil, now.Add(-3 * time.Minute)},
		{"default", "half", "HALF_OPEN", nil, now.Add(-4 * time.Minute)},
		{"default", "malformed", "SIDEWAYS", nil, now.Add(-5 * time.Minute)},
		{"other", "live", "OPEN", ptr(now.Add(2 * time.Hour)), now.Add(-6 * time.Minute)},
	} {
		_, err := pool.Exec(ctx, `INSERT INTO bulkman_circuits VALUES ($1, $2, $3, $4, $5)`,
			r.Namespace, r.Name, r.Status, r.OpenUntil, r.UpdatedAt)
		require.NoError(t, err)
	}
	before := rows(t, pool)
	var file uint32
	require.NoError(t, pool.QueryRow(ctx, `SELECT relfilenode FROM pg_class WHERE relname = 'bulkman_circuits'`).Scan(&file))

	stores := make([]*pgstore.Store, 4)
	var wg sync.WaitGroup
	for i := range stores {
		pool := newPool(t, url)
		wg.Go(func() {
			s, err := pgstore.New(ctx, pool, pgstore.WithQuorum(2))
			if assert.NoError(t, err) {
				stores[i] = s
				t.Cleanup(func() { _ = s.Close() })
			}
		})
	}
	wg.Wait()
	require.NotContains(t, stores, (*pgstore.Store)(nil))

	assert.Equal(t, before, rows(t, pool), "every row as it was")
	var after uint32
	require.NoError(t, pool.QueryRow(ctx, `SELECT relfilenode FROM pg_class WHERE relname = 'bulkman_circuits'`).Scan(&after))
	assert.Equal(t, file, after, "in place: the table was not rewritten")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM bulkman_circuits WHERE votes = '{}'`).Scan(&n))
	assert.Equal(t, len(before), n, "every row has no votes")

	a, b := stores[0], stores[1]
	rec, ok := load(t, a, "live")
	require.True(t, ok)
	assert.Equal(t, core.StatusOpen, rec.Status)
	assert.True(t, now.Add(time.Hour).Equal(rec.OpenUntil), "the live OPEN, read as before")
	got, err := a.Save(ctx, core.CircuitRecord{Name: "live", Status: core.StatusClosed})
	require.NoError(t, err)
	assert.Equal(t, rec, got, "and it still guards")
	_, ok = load(t, a, "malformed")
	assert.False(t, ok, "a malformed row is still ignored")

	for _, name := range []string{"closed", "expired", "half", "malformed"} {
		vote := core.CircuitRecord{Name: name, Status: core.StatusOpen, OpenUntil: time.Now().Add(time.Hour)}
		got, err := a.Save(ctx, vote)
		require.NoError(t, err)
		if name != "expired" {
			assert.NotEqual(t, core.StatusOpen, got.Status, "%s: one vote of two", name)
		}
		got, err = b.Save(ctx, vote)
		require.NoError(t, err)
		assert.Equal(t, core.StatusOpen, got.Status, "%s: two votes of two", name)
	}

	// A replica still running the previous version writes as it did.
	var wrote int
	require.NoError(t, pool.QueryRow(ctx, previousSave, "default", "fresh", "CLOSED", nil, time.Now()).Scan(&wrote))
	assert.Equal(t, 1, wrote)
	require.NoError(t, pool.QueryRow(ctx, previousSave, "default", "live", "CLOSED", nil, time.Now()).Scan(&wrote))
	assert.Equal(t, 0, wrote, "and the guard holds for it too")
	rec, ok = load(t, a, "fresh")
	require.True(t, ok)
	assert.Equal(t, core.StatusClosed, rec.Status)
}

func ptr[T any](v T) *T { return &v }
