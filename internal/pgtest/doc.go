// Package pgtest starts a throwaway PostgreSQL server for the module's tests and examples.
//
// Without DATABASE_URL, [Start] finds the PostgreSQL binaries (initdb and postgres, in PATH,
// then /usr/lib/postgresql/*/bin, highest version first), runs initdb into a fresh temporary
// directory and starts postgres listening only on 127.0.0.1 at a free port, with its unix
// socket directory and its log file inside that temporary directory. The server trades
// durability for speed (fsync off) and trusts every local connection: it is for tests only.
// [Server.Kill] and [Server.Restart] stop it abruptly and start it again on the same port and
// data directory, so that fault-injection tests can watch clients lose and regain it.
//
// PostgreSQL refuses to run as root. When the process runs as root (as CI does), initdb and
// postgres run as the "postgres" system user that Debian's postgresql package creates; if
// that user does not exist Start fails instead of creating one.
//
// Unlike library code, this package reads the environment, because it exists only for tests
// and examples (it is internal):
//
//   - DATABASE_URL: when non-empty, Start starts nothing and returns a [Server] that points
//     at that database (see [Server.External]).
//   - BULKMAN_REQUIRE_POSTGRES: when non-empty, [ForTest] and [SkipOrFail] fail a test that
//     finds no PostgreSQL binaries instead of skipping it. CI sets it (.ci/postgres.sh).
//
// A package whose tests need one server each calls [ForTest]. A package that shares one
// server between its tests starts it in TestMain and gives each test its own database with
// [Server.CreateDatabase]; tests call [SkipOrFail] with the error Start returned.
package pgtest
