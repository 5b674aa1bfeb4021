// Package pgtest starts a throwaway PostgreSQL server for the module's tests and examples.
//
// Without DATABASE_URL, [Start] finds the PostgreSQL binaries (initdb and postgres, in PATH,
// then /usr/lib/postgresql/*/bin, highest version first), runs initdb into a fresh temporary
// directory and starts postgres listening only on 127.0.0.1 at a free port, with its unix
// socket directory and its log file inside that temporary directory. The server trades
// durability for speed (fsync off) and trusts every local connection: it is for tests only.
// [Server.Kill] and [Server.Restart] stop it abruptly and start it again on the same port and
// data directory, so that fault-injection tests can watch clients lose and regain it;
// [Server.Crash] kills every process of it at once, as kill -9 would, and [Server.Pause]
// and [Server.Resume] freeze it (SIGSTOP) and let it go on, for a database that hangs
// rather than refuses (Linux only).
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the process runs as root (as CI does), initdb and
// postgres run as the "postgres" system user that Debian's postgresql package creates; if
// that user does not exist Start fails instead of creating one.
//
// # Environment
//
// Unlike library code, this package reads the environment, because it exists only for tests
// and examples (it is internal):
//
//   - DATABASE_URL: when non-empty, Start starts nothing and returns a [Server] that points
//     at that database (see [Server.External]).
//   - BULKMAN_REQUIRE_POSTGRES: when non-empty, [ForTest] and [SkipOrFail] fail a test that
//     finds no PostgreSQL binaries instead of skipping it. CI sets it (.ci/postgres.sh).
//
// # One server per package
//
// A test that needs a server of its own (to Kill it, say) calls [ForTest]. Starting one
// takes a second or two, so a package with many tests shares one server started in
// TestMain and gives each test its own database:
//
//	var pg *pgtest.Server
//	var pgErr error
//
//	func TestMain(m *testing.M) {
//		pg, pgErr = pgtest.Start(context.Background())
//		code := m.Run()
//		if pg != nil {
//			_ = pg.Stop()
//		}
//		os.Exit(code)
//	}
//
//	func TestStore(t *testing.T) {
//		pgtest.SkipOrFail(t, pgErr)
//		url, err := pg.CreateDatabase(t.Context(), "store")
//		require.NoError(t, err)
//		pool, err := pgxpool.New(t.Context(), url)
//		require.NoError(t, err)
//		defer pool.Close()
//		// ...
//	}
package pgtest
