// Package pgstore keeps the circuit state of bulkhead replicas in PostgreSQL, so that the
// replicas share it: a core.CircuitStore on pgx v5, with a namespace per store (as Python
// bulkman's resilient-circuit storage has).
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	...
//	store, err := pgstore.New(ctx, pool, pgstore.WithNamespace("checkout"))
//	...
//	defer store.Close()
//	m := core.NewManager(core.WithCircuitStore(store))
//	defer m.Shutdown(ctx) // before store.Close, so that the last transitions are written
//
// New creates its table if it is missing (WithTable picks another): one row per circuit,
// keyed by namespace and the bulkhead's name. Stores of different namespaces share the
// table but never see each other's circuits.
//
// Writes are guarded in the database: a stored OPEN whose end has not passed is never
// overwritten, so the first replica to open a circuit decides when it ends. With
// WithQuorum(n), n replicas must open it before their isolations end for the row to turn
// OPEN (see WithQuorum). New upgrades a table made by an earlier version in place (it
// adds the columns it lacks, without rewriting or losing a row), so replicas can be
// upgraded one at a time; an earlier version ignores the votes. Each write
// notifies the other replicas through LISTEN/NOTIFY, so they adopt an OPEN within
// milliseconds; core's HealthCheckInterval poll covers notifications lost while a
// connection was down. The listening connection needs a session of its own: point the
// pool at PostgreSQL itself or at a pooler in session mode.
//
// core never calls the store on a call's path: it loads a circuit's state when a bulkhead
// is created, and writes transitions from a goroutine of its own with a deadline (see
// core.WithStoreTimeout). So a slow or unreachable database delays no call.
//
// The user guide (docs/user-guide.md, "Shared circuit state in PostgreSQL") has the table's
// columns and the rules of sharing.
package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkman-go/bulkman/core"
)

// ErrClosed is returned (wrapped) by the methods of a Store after Close.
var ErrClosed = errors.New("pgstore: store is closed")

// Store is a core.CircuitStore in a PostgreSQL table. It runs its queries on the pool
// given to New, and listens for other replicas' writes on one connection of its own.
//
// A Store is safe for concurrent use. The zero Store is not usable: call New. Call Close
// when done, after shutting down the bulkheads that use it.
type Store struct {
	pool      *pgxpool.Pool
	namespace string
	table     string // quoted; schema-qualified as the server resolved it, once migrated
	channel   string // LISTEN/NOTIFY channel of (table, namespace)
	logger    *slog.Logger
	quorum    int
	replica   string

	sqlLoad, sqlLoadAll, sqlSave, sqlVote, sqlCurrent string

	malformedMu sync.Mutex
	malformed   map[string]bool // circuits whose malformed row was logged

	lis       *listener
	closeOnce sync.Once
	closed    chan struct{}
}

var _ core.CircuitStore = (*Store)(nil)

// New returns a Store over pool. It creates the table if it is missing and adds missing
// columns to an existing one (which must have the columns namespace and name, and a
// unique key on them), serialised with other replicas starting at the same time by
// a transaction-scoped advisory lock. The table is named as the pool's connections
// resolve it (their search_path), and every statement then uses that schema-qualified
// name. Then New opens the Store's listening connection as the pool opens its own: from
// pool.Config().ConnConfig, through the pool's BeforeConnect and AfterConnect hooks. The
// pool stays the caller's: Close does not close it.
//
// Errors: an invalid option (namespace or table name), an existing table without the key
// columns or their unique key, ctx's error, or the database's (connection refused, the
// schema does not exist, permission denied, ...), wrapped.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: nil pool")
	}
	o := options{namespace: DefaultNamespace, table: DefaultTable, quorum: 1, replica: randomReplica()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.namespace == "" || strings.ContainsRune(o.namespace, 0) {
		return nil, fmt.Errorf("pgstore: invalid namespace %q: want a non-empty string without NUL", o.namespace)
	}
	if o.quorum < 1 {
		return nil, fmt.Errorf("pgstore: invalid quorum %d: want at least 1", o.quorum)
	}
	if o.replica == "" || len(o.replica) > 200 || strings.ContainsRune(o.replica, 0) {
		return nil, fmt.Errorf("pgstore: invalid replica %q: want 1 to 200 bytes without NUL", o.replica)
	}
	ident, err := parseTable(o.table)
	if err != nil {
		return nil, err
	}
	s := &Store{
		pool:      pool,
		namespace: o.namespace,
		table:     ident.Sanitize(),
		logger:    o.logger,
		quorum:    o.quorum,
		replica:   o.replica,
		malformed: make(map[string]bool),
		closed:    make(chan struct{}),
	}
	resolved, err := s.migrate(ctx)
	if err != nil {
		return nil, err
	}
	// Every statement names the table the pool's session resolved, whatever the search_path
	// of the connection it runs on.
	s.table = resolved.Sanitize()
	qualified := resolved[0] + "." + resolved[1]
	sum := sha256.Sum256([]byte(qualified + "\x00" + s.namespace))
	s.channel = "bulkman_" + hex.EncodeToString(sum[:16])
	s.prepareSQL()
	s.lis, err = startListener(ctx, s)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// migrateLock is the advisory lock key that serialises New's schema changes in a database.
const migrateLock = "bulkman/pgstore: schema"

// migrate creates or updates the table, and returns its name as the server resolved it:
// schema and table.
func (s *Store) migrate(ctx context.Context) (pgx.Identifier, error) {
	var schema, table string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, migrateLock); err != nil {
			return err
		}
		// Create the table only when it is missing: CREATE TABLE IF NOT EXISTS needs the
		// CREATE privilege on the schema even when the table exists, which an application
		// role whose table a DBA made may well lack.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.table).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			_, err := tx.Exec(ctx, `CREATE TABLE `+s.table+` (
				namespace  text        NOT NULL,
				name       text        NOT NULL,
				status     text        NOT NULL,
				open_until timestamptz NULL,
				updated_at timestamptz NOT NULL DEFAULT now(),
				votes      jsonb       NOT NULL DEFAULT '{}',
				PRIMARY KEY (namespace, name)
			)`)
			if err != nil {
				return err
			}
		}
		// An existing table (hand-made, or from an earlier version) gets what it lacks.
		// ALTER TABLE locks the table even when it changes nothing, so only when needed.
		rows, err := tx.Query(ctx, `SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, s.table)
		if err != nil {
			return err
		}
		have := make(map[string]string)
		var col, typ string
		_, err = pgx.ForEachRow(rows, []any{&col, &typ}, func() error {
			have[col] = typ
			return nil
		})
		if err != nil {
			return err
		}
		if have["namespace"] == "" || have["name"] == "" {
			return errors.New("the table exists without the columns namespace and name")
		}
		// Save's ON CONFLICT (namespace, name) needs a unique index on exactly these
		// columns, immediate, valid, without predicate or expression; without it every
		// Save would fail, so say so now.
		var keyed bool
		err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i
			WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indimmediate AND i.indisvalid
			AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 2
			AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
				WHERE a.attrelid = i.indrelid AND a.attnum IN (i.indkey[0], i.indkey[1])) = ARRAY['name', 'namespace'])`,
			s.table).Scan(&keyed)
		if err != nil {
			return err
		}
		if !keyed {
			return errors.New("the table has no unique key on (namespace, name), which writes need: add PRIMARY KEY (namespace, name)")
		}
		for _, c := range []struct{ col, def string }{
			{"status", "text NOT NULL DEFAULT 'CLOSED'"},
			{"open_until", "timestamptz NULL"},
			{"updated_at", "timestamptz NOT NULL DEFAULT now()"},
			// A constant default: PostgreSQL adds the column without rewriting the table.
			{"votes", "jsonb NOT NULL DEFAULT '{}'"},
		} {
			var q string
			switch typ := have[c.col]; {
			case typ == "":
				q = fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s %s`, s.table, c.col, c.def)
			case strings.HasPrefix(typ, "timestamp without time zone"):
				// Read in the connection's time zone otherwise: make it UTC.
				q = fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s TYPE timestamptz USING %[2]s AT TIME ZONE 'UTC'`, s.table, c.col)
			default:
				continue
			}
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT n.nspname::text, c.relname::text FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`, s.table).Scan(&schema, &table)
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: create or migrate table %s: %w", s.table, err)
	}
	return pgx.Identifier{schema, table}, nil
}

func (s *Store) prepareSQL() {
	s.sqlLoad = `SELECT status, open_until, updated_at FROM ` + s.table + ` WHERE namespace = $1 AND name = $2`
	s.sqlLoadAll = `SELECT name, status, open_until, updated_at FROM ` + s.table + ` WHERE namespace = $1 ORDER BY name`
	// One statement: the guarded upsert, and the notification when it wrote. The WHERE
	// is the guard: a live OPEN (by the database's clock) is left alone, and then no row
	// comes back. A HALF_OPEN or CLOSED also withdraws the writer's vote ($8).
	s.sqlSave = `WITH w AS (
		INSERT INTO ` + s.table + ` AS t (namespace, name, status, open_until, updated_at, votes)
		VALUES ($1, $2, $3, $4, $5, '{}')
		ON CONFLICT (namespace, name) DO UPDATE
			SET status = excluded.status, open_until = excluded.open_until, updated_at = excluded.updated_at,
				votes = ` + liveVotesSQL + `
			WHERE NOT ` + liveSQL + `
		RETURNING 1
	)
	SELECT pg_notify($6, $7)::text FROM w`
	// An OPEN is a vote of replica $8 until $10 (the end of its isolation, in
	// microseconds since 1970): it joins the live votes, and when they number the
	// quorum ($9) the row turns OPEN with this record and the votes are spent; else the
	// row keeps its state, only its votes change, and nobody is notified. It returns the
	// row as it is after the write and whether it turned OPEN; no row when the guard
	// held. The row lock that ON CONFLICT DO UPDATE takes orders concurrent voters, and
	// each counts the votes of those before it. With a quorum above 1 a new row starts
	// CLOSED, with an infinite updated_at: no state was ever written.
	s.sqlVote = `WITH w AS (
		INSERT INTO ` + s.table + ` AS t (namespace, name, status, open_until, updated_at, votes)
		VALUES ($1, $2,
			CASE WHEN $9::int <= 1 THEN $3 ELSE 'CLOSED' END,
			CASE WHEN $9::int <= 1 THEN $4::timestamptz END,
			CASE WHEN $9::int <= 1 THEN $5::timestamptz ELSE '-infinity' END,
			CASE WHEN $9::int <= 1 THEN '{}' ELSE jsonb_build_object($8::text, $10::bigint) END)
		ON CONFLICT (namespace, name) DO UPDATE
			SET (status, open_until, updated_at, votes) = (
				SELECT CASE WHEN q.n >= $9::int THEN $3 ELSE t.status END,
					CASE WHEN q.n >= $9::int THEN $4::timestamptz ELSE t.open_until END,
					CASE WHEN q.n >= $9::int THEN $5::timestamptz ELSE t.updated_at END,
					CASE WHEN q.n >= $9::int THEN '{}' ELSE q.v END
				FROM (SELECT x.v, (SELECT count(*) FROM jsonb_object_keys(x.v)) AS n
					FROM (SELECT ` + liveVotesSQL + ` || jsonb_build_object($8::text, $10::bigint) AS v) AS x) AS q)
			WHERE NOT ` + liveSQL + `
		RETURNING t.status, t.open_until, t.updated_at,
			coalesce(t.status = 'OPEN' AND t.open_until = $4::timestamptz, false) AS opened
	)
	SELECT w.status, w.open_until, w.updated_at, w.opened,
		CASE WHEN w.opened THEN pg_notify($6, $7)::text END FROM w`
	// The row that blocked a write, and whether it is still live.
	s.sqlCurrent = `SELECT t.status, t.open_until, t.updated_at, ` + liveSQL + `
		FROM ` + s.table + ` AS t WHERE t.namespace = $1 AND t.name = $2`
}

// liveVotesSQL is the votes of the row aliased t whose isolation has not ended by the
// database's clock, without the vote of replica $8. A votes value that is not an object,
// or a vote that is not a number, is dropped rather than failing the write that fixes it.
const liveVotesSQL = `(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}')
	FROM jsonb_each(CASE WHEN jsonb_typeof(t.votes) = 'object' THEN t.votes ELSE '{}' END) AS e
	WHERE e.key <> $8::text AND jsonb_typeof(e.value) = 'number'
		AND e.value::numeric > extract(epoch FROM now()) * 1000000)`

// liveSQL is the guard's condition on the row aliased t: a live OPEN, by the database's
// clock. It must agree with decode, so that a row Load ignores as malformed never blocks
// the write that fixes it: an OPEN needs a finite open_until (decode's rule), and
// updated_at, which decode takes as information only, plays no part. coalesce: a NULL
// anywhere is not live (and Scan gets a bool).
const liveSQL = `coalesce(t.status = 'OPEN' AND isfinite(t.open_until) AND t.open_until > now(), false)`

// Namespace returns the Store's namespace.
func (s *Store) Namespace() string { return s.namespace }

// Replica returns the Store's replica identity (see WithReplica).
func (s *Store) Replica() string { return s.replica }

// Quorum returns the number of replicas that must open a circuit for its row to turn
// OPEN (see WithQuorum).
func (s *Store) Quorum() int { return s.quorum }

// randomReplica returns a replica identity of 16 random hex digits.
func randomReplica() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand's Read never fails
	return hex.EncodeToString(b[:])
}

// Load returns the record of the circuit called name in the Store's namespace; ok is
// false when there is none, or when its row is malformed (logged). Safe for concurrent
// use. Errors: ErrClosed, ctx's error or the database's, wrapped.
func (s *Store) Load(ctx context.Context, name string) (core.CircuitRecord, bool, error) {
	if s.isClosed() {
		return core.CircuitRecord{}, false, fmt.Errorf("pgstore: load %q: %w", name, ErrClosed)
	}
	var r row
	err := s.pool.QueryRow(ctx, s.sqlLoad, s.namespace, name).Scan(&r.status, &r.openUntil, &r.updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.CircuitRecord{}, false, nil
	}
	if err != nil {
		return core.CircuitRecord{}, false, fmt.Errorf("pgstore: load %q: %w", name, err)
	}
	rec, ok := s.decode(name, r)
	return rec, ok, nil
}

// maxPayload is below PostgreSQL's NOTIFY payload limit (8000 bytes).
const maxPayload = 7999

// saveAttempts bounds Save's retries when the row that blocked its write is no longer
// live when read (it expired, or was deleted, in between).
const saveAttempts = 3

// Save writes rec as the state of the circuit rec.Name in the Store's namespace, unless
// the stored row is a live OPEN (status OPEN, open_until after the database's now()), in
// one statement that also notifies the Store's listeners. It returns rec as stored (its
// times in UTC, to the microsecond; a zero UpdatedAt becomes the current time) when it
// wrote, or the live OPEN that blocked it.
//
// With a quorum above 1 (WithQuorum), an OPEN rec is the Store's vote: when it completes
// the quorum, rec is written and notified as above; otherwise the vote is kept, nobody is
// notified, and Save returns the row's state unchanged (CLOSED for a circuit no state
// was ever written for). A HALF_OPEN or CLOSED rec also withdraws the Store's vote.
//
// Safe for concurrent use. Errors: an invalid rec (empty Name, unknown Status, OPEN
// without OpenUntil), ErrClosed, ctx's error or the database's, wrapped.
func (s *Store) Save(ctx context.Context, rec core.CircuitRecord) (core.CircuitRecord, error) {
	if err := validate(rec); err != nil {
		return core.CircuitRecord{}, err
	}
	if s.isClosed() {
		return core.CircuitRecord{}, fmt.Errorf("pgstore: save %q: %w", rec.Name, ErrClosed)
	}
	rec = normalize(rec)
	payload := encodePayload(rec)
	for range saveAttempts {
		var err error
		if rec.Status == core.StatusOpen {
			var after row
			var opened bool
			var notified pgtype.Text
			err = s.pool.QueryRow(ctx, s.sqlVote, s.namespace, rec.Name, rec.Status, rec.OpenUntil, rec.UpdatedAt,
				s.channel, payload, s.replica, s.quorum, rec.OpenUntil.UnixMicro()).
				Scan(&after.status, &after.openUntil, &after.updatedAt, &opened, &notified)
			if err == nil {
				if opened {
					return rec, nil
				}
				if cur, ok := s.decode(rec.Name, after); ok {
					return cur, nil // a vote short of the quorum
				}
				return core.CircuitRecord{Name: rec.Name, Status: core.StatusClosed}, nil
			}
		} else {
			// One row back when it wrote (pg_notify's empty result), none when the guard held.
			var notified pgtype.Text
			err = s.pool.QueryRow(ctx, s.sqlSave, s.namespace, rec.Name, rec.Status, nil, rec.UpdatedAt,
				s.channel, payload, s.replica).Scan(&notified)
			if err == nil {
				return rec, nil
			}
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return core.CircuitRecord{}, fmt.Errorf("pgstore: save %q: %w", rec.Name, err)
		}
		var r row
		var live bool
		err = s.pool.QueryRow(ctx, s.sqlCurrent, s.namespace, rec.Name).Scan(&r.status, &r.openUntil, &r.updatedAt, &live)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return core.CircuitRecord{}, fmt.Errorf("pgstore: save %q: read the row that blocked the write: %w", rec.Name, err)
		}
		if err == nil && live {
			if cur, ok := s.decode(rec.Name, r); ok {
				return cur, nil
			}
		}
		// Expired or gone since the write: try again.
	}
	return core.CircuitRecord{}, fmt.Errorf("pgstore: save %q: the stored row kept changing", rec.Name)
}

// Subscribe calls fn with every record saved in the Store's namespace from now on, by
// any Store over the same table and namespace (this one included), on the Store's
// listening goroutine, in the order the writes committed. After the listening connection
// is lost and regained, fn is also called with every stored record of the namespace,
// since notifications sent meanwhile are lost. fn must not block; cancel waits for a call
// of fn in progress, so fn must not call it. After Close, fn is never called.
func (s *Store) Subscribe(fn func(core.CircuitRecord)) (cancel func()) {
	return s.lis.subscribe(fn)
}

// Close stops the listening goroutine and closes its connection, and makes later calls
// fail with ErrClosed. It does not close the pool. It is idempotent and safe for
// concurrent use; it always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.lis.stop()
	})
	return nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// row is a stored row as read, before validation.
type row struct {
	status    pgtype.Text
	openUntil pgtype.Timestamptz
	updatedAt pgtype.Timestamptz
}

// decode validates a row. A malformed one (see liveSQL for the rule it shares with the
// guard) is logged, once until the circuit is valid again, and reported as absent.
func (s *Store) decode(name string, r row) (core.CircuitRecord, bool) {
	rec := core.CircuitRecord{Name: name, Status: r.status.String}
	var problem string
	switch {
	case !r.status.Valid:
		problem = "status is NULL"
	case r.status.String != core.StatusClosed && r.status.String != core.StatusOpen && r.status.String != core.StatusHalfOpen:
		problem = "unknown status"
	case r.status.String == core.StatusOpen && (!r.openUntil.Valid || r.openUntil.InfinityModifier != pgtype.Finite):
		problem = "OPEN without a finite open_until"
	}
	s.malformedMu.Lock()
	logged := s.malformed[name]
	if problem == "" {
		delete(s.malformed, name)
	} else {
		s.malformed[name] = true
	}
	s.malformedMu.Unlock()
	if problem != "" {
		if !logged {
			s.logger.Warn("pgstore: ignoring a malformed circuit row; the next write replaces it",
				slog.String("table", s.table), slog.String("namespace", s.namespace), slog.String("name", name),
				slog.String("problem", problem), slog.String("status", r.status.String))
		}
		return core.CircuitRecord{}, false
	}
	if rec.Status == core.StatusOpen {
		rec.OpenUntil = r.openUntil.Time.UTC()
	}
	// updated_at is information, not state: NULL or infinite reads as unknown (zero),
	// and the row stays valid, as the guard in the database sees it (liveSQL).
	if r.updatedAt.Valid && r.updatedAt.InfinityModifier == pgtype.Finite {
		rec.UpdatedAt = r.updatedAt.Time.UTC()
	}
	return rec, true
}

func validate(rec core.CircuitRecord) error {
	switch {
	case rec.Name == "" || strings.ContainsRune(rec.Name, 0):
		return fmt.Errorf("pgstore: save: invalid circuit name %q", rec.Name)
	case rec.Status != core.StatusClosed && rec.Status != core.StatusOpen && rec.Status != core.StatusHalfOpen:
		return fmt.Errorf("pgstore: save %q: unknown status %q", rec.Name, rec.Status)
	case rec.Status == core.StatusOpen && rec.OpenUntil.IsZero():
		return fmt.Errorf("pgstore: save %q: OPEN without OpenUntil", rec.Name)
	}
	return nil
}

// normalize gives rec the times the database keeps: UTC, microseconds, no monotonic
// reading; and an OpenUntil only when OPEN.
func normalize(rec core.CircuitRecord) core.CircuitRecord {
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = time.Now()
	}
	rec.UpdatedAt = rec.UpdatedAt.Round(0).UTC().Truncate(time.Microsecond)
	if rec.Status == core.StatusOpen {
		rec.OpenUntil = rec.OpenUntil.Round(0).UTC().Truncate(time.Microsecond)
	} else {
		rec.OpenUntil = time.Time{}
	}
	return rec
}

// payload is a notification: a saved record. An empty payload (the record did not fit in
// a notification) tells listeners to re-read the namespace.
type payload struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	OpenUntil *time.Time `json:"open_until,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func encodePayload(rec core.CircuitRecord) string {
	p := payload{Name: rec.Name, Status: rec.Status, UpdatedAt: rec.UpdatedAt}
	if rec.Status == core.StatusOpen {
		p.OpenUntil = &rec.OpenUntil
	}
	b, err := json.Marshal(p)
	if err != nil || len(b) > maxPayload {
		return ""
	}
	return string(b)
}

func decodePayload(s string) (core.CircuitRecord, bool) {
	var p payload
	if s == "" || json.Unmarshal([]byte(s), &p) != nil {
		return core.CircuitRecord{}, false
	}
	rec := core.CircuitRecord{Name: p.Name, Status: p.Status, UpdatedAt: p.UpdatedAt.UTC()}
	if p.OpenUntil != nil {
		rec.OpenUntil = p.OpenUntil.UTC()
	}
	if validate(rec) != nil {
		return core.CircuitRecord{}, false
	}
	return rec, true
}
