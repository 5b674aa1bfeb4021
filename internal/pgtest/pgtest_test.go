package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// local returns a server this package runs, skipping when DATABASE_URL points elsewhere.
func local(t *testing.T) *Server {
	t.Helper()
	s := ForTest(t)
	if s.External() {
		t.Skip("DATABASE_URL is set; this test needs a server that pgtest runs")
	}
	return s
}

// queryInt runs a query that returns one integer on a fresh connection to url.
func queryInt(ctx context.Context, url, sql string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// retry calls f until it succeeds or ten seconds pass: a real server comes back on its own
// schedule, so there is no channel to wait on.
func retry(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing after 10s: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestStartServesQueries(t *testing.T) {
	t.Parallel()
	began := time.Now()
	s := local(t)
	t.Logf("Start took %v", time.Since(began))
	ctx := t.Context()

	conn, err := pgx.Connect(ctx, s.URL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var one int
	require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))
	assert.Equal(t, 1, one)

	var listen, db, user string
	require.NoError(t, conn.QueryRow(ctx,
		"SELECT current_setting('listen_addresses'), current_database(), current_user").Scan(&listen, &db, &user))
	assert.Equal(t, "127.0.0.1", listen, "listens on loopback only")
	assert.Equal(t, databaseName, db)
	assert.Equal(t, superuser, user)
	assert.Equal(t, "127.0.0.1", conn.Config().Host)
}

func TestRestartKeepsPortAndData(t *testing.T) {
	t.Parallel()
	s := local(t)
	ctx := t.Context()
	url := s.URL()

	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "CREATE TABLE kept (v int)")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "INSERT INTO kept VALUES (42)") // committed just before the crash
	require.NoError(t, err)

	require.NoError(t, s.Kill())
	_, err = pool.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the server is down")
	require.NoError(t, s.Kill(), "Kill on a killed server")

	require.NoError(t, s.Restart(ctx))
	assert.Equal(t, url, s.URL(), "same port and database")
	var v int
	require.NoError(t, retry(ctx, func() error {
		return pool.QueryRow(ctx, "SELECT v FROM kept").Scan(&v)
	}), "the pool reconnects")
	assert.Equal(t, 42, v, "the row survived the crash")

	// Restart also works on a running server.
	require.NoError(t, s.Restart(ctx))
	require.NoError(t, retry(ctx, func() error {
		return pool.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&v)
	}))
	assert.Equal(t, 1, v)
}

func TestStopRemovesEverything(t *testing.T) {
	t.Parallel()
	s := local(t)
	ctx := t.Context()
	require.DirExists(t, s.dir)
	cfg, err := pgx.ParseConfig(s.URL())
	require.NoError(t, err)
	addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))

	// Concurrent Stops: one does the work, the others return nil.
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = s.Stop() })
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}

	assert.NoDirExists(t, s.dir)
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "nothing listens on %s", addr)
	assert.NoError(t, s.Stop(), "Stop is idempotent")
	assert.Error(t, s.Kill())
	assert.Error(t, s.Restart(ctx))
	_, err = s.CreateDatabase(ctx, "late")
	assert.Error(t, err)
}

func TestCreateDatabaseIsolates(t *testing.T) {
	t.Parallel()
	s := ForTest(t) // local or DATABASE_URL's: both must isolate
	ctx := t.Context()

	names := []string{"first", "second", `Odd/Name? "quoted" 'x' 100%`}
	urls := make([]string, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { urls[i], errs[i] = s.CreateDatabase(ctx, name) })
	}
	wg.Wait()
	for i, name := range names {
		require.NoError(t, errs[i], name)
		conn, err := pgx.Connect(ctx, urls[i])
		require.NoError(t, err, name)
		var got string
		err = conn.QueryRow(ctx, "SELECT current_database()").Scan(&got)
		require.NoError(t, conn.Close(ctx))
		require.NoError(t, err, name)
		assert.Equal(t, name, got)
	}

	conn, err := pgx.Connect(ctx, urls[0])
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE only_here (v int)")
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, err)
	_, err = queryInt(ctx, urls[1], "SELECT count(*) FROM only_here")
	assert.ErrorContains(t, err, "does not exist", "databases do not share tables")

	_, err = s.CreateDatabase(ctx, "first")
	assert.ErrorContains(t, err, "already exists")
	for _, bad := range []string{"", strings.Repeat("x", maxNameLen+1), "nul\x00"} {
		_, err := s.CreateDatabase(ctx, bad)
		assert.ErrorContains(t, err, "invalid database name", "%q", bad)
	}
}

func TestExternalServer(t *testing.T) {
	backing := local(t)
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(backing.URL())
	require.NoError(t, err)
	forms := map[string]string{
		"url":           backing.URL(),
		"keyword-value": fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Database),
	}
	for form, dbURL := range forms {
		t.Run(form, func(t *testing.T) {
			t.Setenv("DATABASE_URL", dbURL)
			s, err := Start(ctx, WithBinDir(t.TempDir())) // the binaries are not needed
			require.NoError(t, err)
			assert.True(t, s.External())
			assert.Equal(t, dbURL, s.URL())
			assert.ErrorContains(t, s.Kill(), "external")
			assert.ErrorContains(t, s.Restart(ctx), "external")

			url, err := s.CreateDatabase(ctx, "ext db")
			require.NoError(t, err)
			conn, err := pgx.Connect(ctx, url) // left open: Stop must end it
			require.NoError(t, err)
			var db string
			require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
			assert.Equal(t, "ext db", db)

			require.NoError(t, s.Stop())
			_ = conn.Close(ctx)
			n, err := queryInt(ctx, backing.URL(), "SELECT count(*) FROM pg_database WHERE datname = 'ext db'")
			require.NoError(t, err)
			assert.Zero(t, n, "Stop dropped the database")
			assert.NoError(t, s.Stop())
		})
	}
}

func TestStartWithoutBinaries(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv(requireEnv, "") // CI sets it; this test is about the skip
	dir := t.TempDir()
	_, err := Start(t.Context(), WithBinDir(dir))
	require.ErrorIs(t, err, ErrNoPostgres)
	assert.ErrorContains(t, err, dir)

	rec := &recordingTB{TB: t}
	assert.Nil(t, ForTest(rec, WithBinDir(dir)))
	assert.Contains(t, rec.skipped, "apt-get install -y postgresql")
	assert.Empty(t, rec.failed)
}

func TestStartCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Start(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// recordingTB records what SkipOrFail asks of a test instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                      {}
func (r *recordingTB) Fatal(args ...any)            { r.failed = fmt.Sprint(args...) }
func (r *recordingTB) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }
func (r *recordingTB) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }

func TestSkipOrFail(t *testing.T) {
	missing := fmt.Errorf("%w in /nowhere", ErrNoPostgres)
	tests := []struct {
		name        string
		err         error
		require     string // BULKMAN_REQUIRE_POSTGRES
		wantSkipped string
		wantFailed  string
	}{
		{name: "no error"},
		{name: "missing", err: missing, wantSkipped: "apt-get install -y postgresql"},
		{name: "missing but required", err: missing, require: "1", wantFailed: "BULKMAN_REQUIRE_POSTGRES is set"},
		{name: "other error", err: errors.New("initdb broke"), wantFailed: "initdb broke"},
		{name: "other error, required", err: errors.New("initdb broke"), require: "1", wantFailed: "initdb broke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(requireEnv, tt.require)
			rec := &recordingTB{TB: t}
			SkipOrFail(rec, tt.err)
			if tt.wantSkipped == "" {
				assert.Empty(t, rec.skipped)
			} else {
				assert.Contains(t, rec.skipped, tt.wantSkipped)
			}
			if tt.wantFailed == "" {
				assert.Empty(t, rec.failed)
			} else {
				assert.Contains(t, rec.failed, tt.wantFailed)
			}
		})
	}
}

func TestNewestFirst(t *testing.T) {
	got := newestFirst([]string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/17/bin",
	})
	assert.Equal(t, []string{
		"/usr/lib/postgresql/17/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
	}, got)
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ in, name, want string }{
		{"postgres://u@h:5/old?sslmode=disable", "new", "postgres://u@h:5/new?sslmode=disable"},
		{"postgresql://u@h/", "a b?", "postgresql://u@h/a%20b%3F"},
		{"host=h dbname=old", "it's", `host=h dbname=old dbname='it\'s'`},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.in, tt.name)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
		cfg, err := pgx.ParseConfig(got)
		require.NoError(t, err)
		assert.Equal(t, tt.name, cfg.Database)
	}
}

func TestStartFailureReportsLog(t *testing.T) {
	tests := []struct {
		name, initdb, postgres string
		want                   []string
	}{
		{
			name:     "initdb fails",
			initdb:   "echo 'initdb: error: fake initdb failure'; exit 1",
			postgres: "exit 1",
			want:     []string{"initdb", "fake initdb failure"},
		},
		{
			name:     "postgres exits",
			initdb:   "exit 0",
			postgres: "echo 'FATAL:  fake postgres failure' >&2; exit 1",
			want:     []string{"did not start", "postgres exited", "fake postgres failure"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", "")
			// World-readable directories: under root the scripts run as the postgres user.
			bin := worldReadableDir(t)
			tmp := worldReadableDir(t)
			t.Setenv("TMPDIR", tmp) // Start's temporary directory goes here
			writeScript(t, bin, "initdb", tt.initdb)
			writeScript(t, bin, "postgres", tt.postgres)

			_, err := Start(t.Context(), WithBinDir(bin))
			require.Error(t, err)
			for _, want := range tt.want {
				assert.ErrorContains(t, err, want)
			}
			left, err := os.ReadDir(tmp)
			require.NoError(t, err)
			assert.Empty(t, left, "Start removes its directory on failure")
		})
	}
}

func worldReadableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgtest-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755))
}
