package pgstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/testlog"
	"github.com/bulkman-go/bulkman/pgstore"
)

func open(until time.Time) core.CircuitRecord {
	return core.CircuitRecord{Name: "api", Status: core.StatusOpen, OpenUntil: until, UpdatedAt: time.Now()}
}

func load(t *testing.T, s *pgstore.Store, name string) (core.CircuitRecord, bool) {
	t.Helper()
	rec, ok, err := s.Load(context.Background(), name)
	require.NoError(t, err)
	return rec, ok
}

func TestNewRejectsBadTableNames(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	for _, name := range []string{
		"", "1circuits", "circuits-x", "a.b.c", ".circuits", "circuits.", "public.1x",
		`cir"cuits`, "circuits; DROP TABLE x", "cîrcuits", "circuits ", strings.Repeat("a", 64),
		"public." + strings.Repeat("a", 64), strings.Repeat("s", 64) + ".circuits",
	} {
		_, err := pgstore.New(context.Background(), pool, pgstore.WithTable(name))
		assert.ErrorContains(t, err, "invalid table name", "%q", name)
	}
	_, err := pgstore.New(context.Background(), pool, pgstore.WithTable("missing_schema.circuits"))
	assert.ErrorContains(t, err, "missing_schema", "the schema must exist")
	_, err = pgstore.New(context.Background(), pool, pgstore.WithNamespace(""))
	assert.ErrorContains(t, err, "invalid namespace")
	_, err = pgstore.New(context.Background(), nil)
	assert.Error(t, err)

	var n int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&n))
	assert.Zero(t, n, "a bad name creates nothing")

	for _, name := range []string{"circuits", "_c1", "Circuits", "public.circuits_2", strings.Repeat("a", 63)} {
		s, err := pgstore.New(context.Background(), pool, pgstore.WithTable(name))
		if assert.NoError(t, err, name) {
			assert.NoError(t, s.Close())
		}
	}
}

func TestNewCreatesTheTableOnce(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	ctx := context.Background()

	// Replicas starting together: the advisory lock serialises the CREATE TABLE.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			s, err := pgstore.New(ctx, pool, pgstore.WithTable("public.shared_circuits"))
			errs[i] = err
			if err == nil {
				_ = s.Close()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}

	rows, err := pool.Query(ctx, `SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_name = 'shared_circuits' ORDER BY ordinal_position`)
	require.NoError(t, err)
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var name, typ, null string
		err := r.Scan(&name, &typ, &null)
		return name + " " + typ + " " + null, err
	})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"namespace text NO",
		"name text NO",
		"status text NO",
		"open_until timestamp with time zone YES",
		"updated_at timestamp with time zone NO",
		"votes jsonb NO",
	}, cols)
	var pk string
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'shared_circuits'::regclass AND contype = 'p'`).Scan(&pk))
	assert.Equal(t, "PRIMARY KEY (namespace, name)", pk)
}

// TestNewMigratesAnOlderTable: a table without updated_at and with a naive timestamp.
func TestNewMigratesAnOlderTable(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	ctx := context.Background()
	_, err := pool.Exec(ctx, `CREATE TABLE bulkman_circuits (namespace text NOT NULL, name text NOT NULL,
		status text NOT NULL, open_until timestamp, PRIMARY KEY (namespace, name))`)
	require.NoError(t, err)
	until := time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond)
	_, err = pool.Exec(ctx, `INSERT INTO bulkman_circuits VALUES ('default', 'api', 'OPEN', $1::timestamptz AT TIME ZONE 'UTC')`, until)
	require.NoError(t, err)

	s := newStore(t, pool)
	rec, ok := load(t, s, "api")
	require.True(t, ok)
	assert.Equal(t, core.StatusOpen, rec.Status)
	assert.Equal(t, until, rec.OpenUntil, "the naive time was UTC")
	assert.Equal(t, time.UTC, rec.OpenUntil.Location())
	assert.False(t, rec.UpdatedAt.IsZero(), "updated_at added")

	_, err = pool.Exec(ctx, `CREATE TABLE not_ours (id int)`)
	require.NoError(t, err)
	_, err = pgstore.New(ctx, pool, pgstore.WithTable("not_ours"))
	assert.ErrorContains(t, err, "namespace and name")
}

// TestNewNeedsTheKey: a hand-made table must have a unique key on exactly (namespace,
// name), which Save's upsert needs; New says so rather than every Save failing.
func TestNewNeedsTheKey(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	ctx := context.Background()
	const cols = `namespace text NOT NULL, name text NOT NULL, status text NOT NULL, open_until timestamptz, updated_at timestamptz NOT NULL DEFAULT now()`
	for _, tt := range []struct {
		table, key string
		ok         bool
	}{
		{"no_key", ``, false},
		{"name_only", `, UNIQUE (name)`, false},
		{"three_columns", `, UNIQUE (namespace, name, status)`, false},
		{"deferred_key", `, UNIQUE (namespace, name) DEFERRABLE INITIALLY DEFERRED`, false},
		{"primary_key", `, PRIMARY KEY (namespace, name)`, true},
		{"other_order", `, UNIQUE (name, namespace)`, true},
	} {
		_, err := pool.Exec(ctx, `CREATE TABLE `+tt.table+` (`+cols+tt.key+`)`)
		require.NoError(t, err, tt.table)
		s, err := pgstore.New(ctx, pool, pgstore.WithTable(tt.table))
		if !tt.ok {
			assert.ErrorContains(t, err, "no unique key on (namespace, name)", tt.table)
			assert.ErrorContains(t, err, tt.table, "the error names the table")
			continue
		}
		require.NoError(t, err, tt.table)
		_, err = s.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed})
		assert.NoError(t, err, tt.table)
		_, err = s.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusHalfOpen})
		assert.NoError(t, err, "%s: the upsert finds the key", tt.table)
		require.NoError(t, s.Close())
	}
	// The partial index is made apart: a unique index with a predicate is no arbiter.
	_, err := pool.Exec(ctx, `CREATE TABLE partial (`+cols+`); CREATE UNIQUE INDEX ON partial (namespace, name) WHERE status <> 'x'`)
	require.NoError(t, err)
	_, err = pgstore.New(ctx, pool, pgstore.WithTable("partial"))
	assert.ErrorContains(t, err, "no unique key on (namespace, name)")
}

// TestSaveFirstOpenerWins: the guarded write, against the database's clock.
func TestSaveFirstOpenerWins(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	a := newStore(t, newPool(t, url))
	b := newStore(t, newPool(t, url)) // another replica, other connections
	ctx := context.Background()

	first := open(time.Now().Add(10 * time.Second))
	got, err := a.Save(ctx, first)
	require.NoError(t, err)
	assert.WithinDuration(t, first.OpenUntil, got.OpenUntil, time.Microsecond)
	assert.Equal(t, time.UTC, got.OpenUntil.Location())
	stored, ok := load(t, b, "api")
	require.True(t, ok)
	assert.Equal(t, got, stored, "kept to the microsecond, in UTC")

	for _, w := range []core.CircuitRecord{
		open(time.Now().Add(20 * time.Second)), // a second opener
		open(time.Now().Add(time.Second)),
		{Name: "api", Status: core.StatusClosed, UpdatedAt: time.Now()}, // a stale CLOSED
		{Name: "api", Status: core.StatusHalfOpen, UpdatedAt: time.Now()},
	} {
		got, err := b.Save(ctx, w)
		require.NoError(t, err)
		assert.Equal(t, stored, got, "%s refused: the live OPEN comes back", w.Status)
		now, _ := load(t, a, "api")
		assert.Equal(t, stored, now)
		assert.WithinDuration(t, first.OpenUntil, now.OpenUntil, time.Millisecond, "open-until unchanged within 1ms")
	}
}

// TestSaveRace: replicas opening the same circuit at the same instant agree on one winner.
func TestSaveRace(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	stores := []*pgstore.Store{newStore(t, newPool(t, url)), newStore(t, newPool(t, url))}
	ctx := context.Background()
	for round := range 5 {
		name := "race" + string(rune('a'+round))
		start := make(chan struct{})
		var wg sync.WaitGroup
		got := make([]core.CircuitRecord, 16)
		errs := make([]error, len(got))
		for i := range got {
			wg.Go(func() {
				<-start
				rec := core.CircuitRecord{Name: name, Status: core.StatusOpen,
					OpenUntil: time.Now().Add(time.Minute + time.Duration(i)*time.Millisecond)}
				got[i], errs[i] = stores[i%2].Save(ctx, rec)
			})
		}
		close(start)
		wg.Wait()
		stored, ok := load(t, stores[0], name)
		require.True(t, ok)
		for i := range got {
			require.NoError(t, errs[i])
			assert.Equal(t, stored.OpenUntil, got[i].OpenUntil, "everyone sees the winner")
		}
	}
}

func TestSaveRecoversAfterExpiry(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, database(t, nil)))
	ctx := context.Background()
	// A second of isolation: long enough that a loaded machine still sees it live, short
	// enough to wait out.
	until := time.Now().Add(time.Second)
	_, err := s.Save(ctx, open(until))
	require.NoError(t, err)
	got, err := s.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusHalfOpen})
	require.NoError(t, err)
	require.Equal(t, core.StatusOpen, got.Status, "still live")

	time.Sleep(time.Until(until) + 50*time.Millisecond)
	for _, status := range []string{core.StatusHalfOpen, core.StatusClosed} {
		w := core.CircuitRecord{Name: "api", Status: status, UpdatedAt: time.Now()}
		got, err := s.Save(ctx, w)
		require.NoError(t, err)
		assert.Equal(t, status, got.Status, "an expired OPEN never blocks recovery")
		rec, _ := load(t, s, "api")
		assert.Equal(t, got, rec)
		assert.True(t, rec.OpenUntil.IsZero())
	}
	got, err = s.Save(ctx, open(time.Now().Add(time.Minute)))
	require.NoError(t, err)
	assert.Equal(t, core.StatusOpen, got.Status, "and it can open again")
}

func TestSaveRejectsInvalidRecords(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, database(t, nil)))
	for _, rec := range []core.CircuitRecord{
		{Status: core.StatusClosed},
		{Name: "api", Status: "open"},
		{Name: "api", Status: core.StatusOpen},
	} {
		_, err := s.Save(context.Background(), rec)
		assert.Error(t, err, "%+v", rec)
	}
	_, ok := load(t, s, "api")
	assert.False(t, ok)
}

func TestNamespacesIsolate(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	pool := newPool(t, url)
	a := newStore(t, pool, pgstore.WithNamespace("team-a"))
	b := newStore(t, newPool(t, url), pgstore.WithNamespace("team-b"))
	def := newStore(t, pool)
	assert.Equal(t, "team-a", a.Namespace())
	assert.Equal(t, pgstore.DefaultNamespace, def.Namespace())
	ctx := context.Background()

	var mu sync.Mutex
	var seenB []core.CircuitRecord
	defer b.Subscribe(func(r core.CircuitRecord) { mu.Lock(); seenB = append(seenB, r); mu.Unlock() })()
	seenA := make(chan core.CircuitRecord, 10)
	defer a.Subscribe(func(r core.CircuitRecord) { seenA <- r })()

	_, err := a.Save(ctx, open(time.Now().Add(time.Minute)))
	require.NoError(t, err)
	select {
	case r := <-seenA:
		assert.Equal(t, core.StatusOpen, r.Status)
	case <-time.After(5 * time.Second):
		t.Fatal("A's own subscriber heard nothing")
	}
	_, ok := load(t, b, "api")
	assert.False(t, ok, "same name, other namespace")
	_, ok = load(t, def, "api")
	assert.False(t, ok)
	got, err := b.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed})
	require.NoError(t, err)
	assert.Equal(t, core.StatusClosed, got.Status, "not blocked by another namespace's OPEN")

	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	for _, r := range seenB {
		assert.Equal(t, core.StatusClosed, r.Status, "B hears only its namespace")
	}
	mu.Unlock()
}

func TestSubscribeAcrossStores(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	a := newStore(t, newPool(t, url))
	// A pool whose connections hand notifications to a callback of the user's: the
	// Store's own connection must still get them.
	b := newStore(t, newPool(t, url, func(c *pgxpool.Config) {
		c.ConnConfig.OnNotification = func(*pgconn.PgConn, *pgconn.Notification) {}
	}))
	ctx := context.Background()

	got := make(chan core.CircuitRecord, 100)
	cancel := b.Subscribe(func(r core.CircuitRecord) { got <- r })
	var want []core.CircuitRecord
	for i, status := range []string{core.StatusClosed, core.StatusHalfOpen, core.StatusClosed, core.StatusOpen} {
		rec := core.CircuitRecord{Name: "api", Status: status, UpdatedAt: time.Now()}
		if status == core.StatusOpen {
			rec.OpenUntil = time.Now().Add(time.Duration(i+1) * time.Minute)
		}
		saved, err := a.Save(ctx, rec)
		require.NoError(t, err)
		want = append(want, saved)
	}
	for i, w := range want {
		select {
		case r := <-got:
			assert.Equal(t, w, r, "notification %d, in order", i)
		case <-time.After(5 * time.Second):
			t.Fatalf("notification %d never came", i)
		}
	}
	cancel()
	cancel() // idempotent
	_, err := a.Save(ctx, core.CircuitRecord{Name: "other", Status: core.StatusClosed})
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	assert.Empty(t, got, "nothing after cancel")
}

// TestListenerConnectsAsThePool: the listening connection goes through the pool's
// BeforeConnect (here the only source of the user name, as with rotating credentials)
// and AfterConnect (here a search_path and an application_name), as the pool's own do;
// and the table is the one the pool's sessions resolve, on every connection.
func TestListenerConnectsAsThePool(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	ctx := context.Background()
	admin := newPool(t, url)
	_, err := admin.Exec(ctx, `CREATE SCHEMA app`)
	require.NoError(t, err)
	real, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	pool := newPool(t, url, func(c *pgxpool.Config) {
		c.ConnConfig.User = "placeholder_user"
		c.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
			cc.User = real.User
			return nil
		}
		c.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, `SET search_path = app; SET application_name = 'bulkman_hooked'`)
			return err
		}
	})
	s := newStore(t, pool)

	var app string
	require.NoError(t, admin.QueryRow(ctx, `SELECT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND query ILIKE 'LISTEN%'`).Scan(&app))
	assert.Equal(t, "bulkman_hooked", app, "AfterConnect ran on the listening connection")
	var tables int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'bulkman_circuits' AND schemaname = 'app'`).Scan(&tables))
	assert.Equal(t, 1, tables, "created where the pool's search_path points")

	// A name too long for a notification makes the listener re-read the table on its own
	// connection.
	name := strings.Repeat("n", 9000)
	got := make(chan core.CircuitRecord, 10)
	defer s.Subscribe(func(r core.CircuitRecord) { got <- r })()
	_, err = s.Save(ctx, core.CircuitRecord{Name: name, Status: core.StatusClosed})
	require.NoError(t, err)
	select {
	case r := <-got:
		assert.Equal(t, name, r.Name)
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
}

// TestSubscribeLongName: a record too big for a notification is re-read instead.
func TestSubscribeLongName(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, database(t, nil)))
	name := strings.Repeat("n", 9000)
	got := make(chan core.CircuitRecord, 10)
	defer s.Subscribe(func(r core.CircuitRecord) { got <- r })()
	_, err := s.Save(context.Background(), core.CircuitRecord{Name: name, Status: core.StatusOpen, OpenUntil: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	select {
	case r := <-got:
		assert.Equal(t, name, r.Name)
		assert.Equal(t, core.StatusOpen, r.Status)
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
}

func TestMalformedRowsAreIgnoredAndFixed(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	logs := &testlog.Sink{MinLevel: slog.LevelDebug}
	s := newStore(t, pool, pgstore.WithLogger(slog.New(logs)))
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO bulkman_circuits (namespace, name, status, open_until, updated_at) VALUES
		('default', 'unknown', 'BROKEN', NULL, now()),
		('default', 'lower', 'open', now() + interval '1 hour', now()),
		('default', 'null_until', 'OPEN', NULL, now()),
		('default', 'forever', 'OPEN', 'infinity', now()),
		('default', 'never', 'OPEN', '-infinity', now()),
		('default', 'forever_everywhere', 'OPEN', 'infinity', 'infinity'),
		('default', 'unknown_forever', 'BROKEN', now() + interval '1 hour', 'infinity')`)
	require.NoError(t, err)

	names := []string{"unknown", "lower", "null_until", "forever", "never", "forever_everywhere", "unknown_forever"}
	for range 2 {
		for _, name := range names {
			rec, ok, err := s.Load(ctx, name)
			require.NoError(t, err, name)
			assert.False(t, ok, "%s: ignored, as if absent", name)
			assert.Zero(t, rec)
		}
	}
	assert.Equal(t, len(names), logs.Count("WARN pgstore: ignoring a malformed circuit row"), "each logged once")

	// A bulkhead over a malformed row starts CLOSED and works.
	cfg := core.DefaultConfig("null_until")
	cfg.CircuitBreakerEnabled = true
	b, err := core.New(cfg, core.WithCircuitStore(s))
	require.NoError(t, err)
	assert.Equal(t, core.Healthy, b.State())
	require.NoError(t, b.Shutdown(ctx))

	// The next write replaces each of them, even an "OPEN" that looks endless.
	for _, name := range names {
		got, err := s.Save(ctx, core.CircuitRecord{Name: name, Status: core.StatusClosed})
		require.NoError(t, err, name)
		assert.Equal(t, core.StatusClosed, got.Status, name)
		rec, ok := load(t, s, name)
		assert.True(t, ok, name)
		assert.Equal(t, core.StatusClosed, rec.Status)
	}
}

// TestUpdatedAtIsInformation: a NULL or infinite updated_at does not make a row
// malformed. Load and the guarded write agree on each row: what Load reads as a live
// OPEN blocks Save, which returns it; anything else is overwritten by Save.
func TestUpdatedAtIsInformation(t *testing.T) {
	t.Parallel()
	pool := newPool(t, database(t, nil))
	s := newStore(t, pool)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `ALTER TABLE bulkman_circuits ALTER COLUMN updated_at DROP NOT NULL`)
	require.NoError(t, err, "a hand-made table may allow NULL")
	_, err = pool.Exec(ctx, `INSERT INTO bulkman_circuits (namespace, name, status, open_until, updated_at) VALUES
		('default', 'live_future', 'OPEN', now() + interval '1 hour', 'infinity'),
		('default', 'live_past', 'OPEN', now() + interval '1 hour', '-infinity'),
		('default', 'live_null', 'OPEN', now() + interval '1 hour', NULL),
		('default', 'expired_future', 'OPEN', now() - interval '1 hour', 'infinity'),
		('default', 'closed_future', 'CLOSED', NULL, 'infinity')`)
	require.NoError(t, err)

	for _, tt := range []struct {
		name   string
		status string
		live   bool
	}{
		{"live_future", core.StatusOpen, true},
		{"live_past", core.StatusOpen, true},
		{"live_null", core.StatusOpen, true},
		{"expired_future", core.StatusOpen, false},
		{"closed_future", core.StatusClosed, false},
	} {
		rec, ok := load(t, s, tt.name)
		require.True(t, ok, "%s: a valid row", tt.name)
		assert.Equal(t, tt.status, rec.Status, tt.name)
		assert.Zero(t, rec.UpdatedAt, "%s: unknown", tt.name)

		got, err := s.Save(ctx, core.CircuitRecord{Name: tt.name, Status: core.StatusClosed})
		require.NoError(t, err, tt.name)
		if tt.live {
			assert.Equal(t, rec, got, "%s: the live OPEN Load read blocks the write", tt.name)
		} else {
			assert.Equal(t, core.StatusClosed, got.Status, "%s: written", tt.name)
			after, ok := load(t, s, tt.name)
			assert.True(t, ok, tt.name)
			assert.Equal(t, got, after, tt.name)
		}
	}
}

// TestCloseReleasesEverything: the listening goroutine and connection go; the pool stays.
func TestCloseReleasesEverything(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after the pool closes
	url := database(t, nil)
	pool := newPool(t, url)
	ctx := context.Background()
	conns := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`).Scan(&n))
		return n
	}

	s, err := pgstore.New(ctx, pool)
	require.NoError(t, err)
	assert.Equal(t, 1, conns(), "one listening connection")
	calls := 0
	s.Subscribe(func(core.CircuitRecord) { calls++ })
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	eventually(t, 5*time.Second, func() bool { return conns() == 0 }, "the listening connection is closed")

	_, _, err = s.Load(ctx, "api")
	assert.ErrorIs(t, err, pgstore.ErrClosed)
	_, err = s.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed})
	assert.ErrorIs(t, err, pgstore.ErrClosed)
	s.Subscribe(func(core.CircuitRecord) { calls++ })()

	other := newStore(t, pool)
	_, err = other.Save(ctx, core.CircuitRecord{Name: "api", Status: core.StatusClosed})
	require.NoError(t, err, "the pool is still the caller's, and open")
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, other.Close())
	assert.Zero(t, calls, "no call after Close")
}

// TestNewWithoutCreatePrivilege: an application role that may only read and write the
// table a DBA made (PostgreSQL 15 grants no CREATE on schema public by default) can use
// it: New creates nothing that exists.
func TestNewWithoutCreatePrivilege(t *testing.T) {
	t.Parallel()
	url := database(t, nil)
	if pg.External() {
		t.Skip("needs to create a role and log in as it without a password")
	}
	admin := newPool(t, url)
	ctx := context.Background()
	newStore(t, admin) // the DBA's run creates the table
	role := fmt.Sprintf("bulkman_app_%d", dbSeq.Add(1))
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		`GRANT SELECT, INSERT, UPDATE ON bulkman_circuits TO ` + role,
	} {
		_, err := admin.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	app := newPool(t, url, func(c *pgxpool.Config) { c.ConnConfig.User = role })
	_, err := app.Exec(ctx, `CREATE TABLE IF NOT EXISTS bulkman_circuits (x int)`)
	require.ErrorContains(t, err, "permission denied", "the role really cannot create")

	s := newStore(t, app)
	_, err = s.Save(ctx, open(time.Now().Add(time.Minute)))
	require.NoError(t, err)
	rec, ok := load(t, s, "api")
	require.True(t, ok)
	assert.Equal(t, core.StatusOpen, rec.Status)
}
