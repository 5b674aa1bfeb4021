package pgtest

import (
	"errors"
	"os"
	"testing"
)

// requireEnv names the environment variable that turns missing PostgreSQL binaries from a
// skip into a failure; CI sets it so that a broken install cannot pass as green.
const requireEnv = "BULKMAN_REQUIRE_POSTGRES"

// ForTest starts a server for one test (see [Start]), with tb's context, and stops it in
// tb.Cleanup; when tb has failed, the cleanup first logs the tail of the server log. When
// Start fails, ForTest ends the test through [SkipOrFail] (skip when no PostgreSQL is
// installed and BULKMAN_REQUIRE_POSTGRES is unset, fail otherwise) and returns nil, which a
// real testing.TB never lets the caller see. Call it from the test goroutine.
func ForTest(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Start(tb.Context(), opts...)
	if err != nil {
		SkipOrFail(tb, err)
		return nil
	}
	tb.Cleanup(func() {
		if tb.Failed() && !s.external {
			if tail := logTail(s.logPath, 0); tail != "" {
				tb.Log("pgtest: server log for the failed test:" + tail)
			}
		}
		if err := s.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// SkipOrFail ends tb according to err, an error from [Start]: for one wrapping
// [ErrNoPostgres] it skips the test with instructions to install PostgreSQL, or fails it when
// the environment variable BULKMAN_REQUIRE_POSTGRES is non-empty; for any other error it
// fails the test. A nil err does nothing. Tests that share a server started in TestMain
// call it with the error Start returned there. Call it from the test goroutine.
func SkipOrFail(tb testing.TB, err error) {
	tb.Helper()
	switch {
	case err == nil:
	case !errors.Is(err, ErrNoPostgres):
		tb.Fatal(err)
	case os.Getenv(requireEnv) != "":
		tb.Fatalf("%v; %s is set, so this test needs PostgreSQL: install it (Debian/Ubuntu: apt-get install -y postgresql) or set DATABASE_URL", err, requireEnv)
	default:
		tb.Skipf("%v; install PostgreSQL to run this test (Debian/Ubuntu: apt-get install -y postgresql) or set DATABASE_URL; set %s=1 to make this a failure", err, requireEnv)
	}
}
