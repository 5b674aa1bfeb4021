package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/internal/pgtest"
	"github.com/bulkman-go/bulkman/pgstore"
)

// One PostgreSQL server for the package; each test gets a database of its own. Tests that
// kill the server start their own (pgtest.ForTest).
var (
	pg    *pgtest.Server
	pgErr error
)

func TestMain(m *testing.M) {
	pg, pgErr = pgtest.Start(context.Background())
	if errors.Is(pgErr, pgtest.ErrNoPostgres) && os.Getenv("BULKMAN_REQUIRE_POSTGRES") == "" {
		// Every test and example here needs PostgreSQL; examples cannot skip.
		fmt.Printf("pgstore: skipping the package: %v; install PostgreSQL (Debian/Ubuntu: apt-get install -y postgresql) or set DATABASE_URL; set BULKMAN_REQUIRE_POSTGRES=1 to make this a failure\n", pgErr)
		os.Exit(0)
	}
	code := m.Run()
	if pg != nil {
		if err := pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var dbSeq atomic.Int64

// database creates a fresh database on srv (the shared server when nil) and returns its URL.
func database(t testing.TB, srv *pgtest.Server) string {
	t.Helper()
	if srv == nil {
		pgtest.SkipOrFail(t, pgErr)
		srv = pg
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name())
	suffix := fmt.Sprintf("_%d", dbSeq.Add(1))
	if len(name)+len(suffix) > 63 {
		name = name[:63-len(suffix)]
	}
	url, err := srv.CreateDatabase(context.Background(), name+suffix)
	require.NoError(t, err)
	return url
}

// newPool returns a pool on url, closed at the end of the test.
func newPool(t testing.TB, url string, mutate ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	for _, f := range mutate {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// newStore returns a Store over pool, closed at the end of the test.
func newStore(t testing.TB, pool *pgxpool.Pool, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(context.Background(), pool, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// eventually polls cond every few milliseconds until it holds or d passes.
func eventually(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, msg)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
