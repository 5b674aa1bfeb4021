package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// databaseName is the database Start creates and URL points at.
	databaseName = "pgtest"
	// superuser is the role initdb creates; local connections are trusted.
	superuser = "postgres"
	// startTimeout bounds Start and Restart when the caller's ctx has no earlier deadline, so
	// that a server that never comes up fails the test instead of hanging it.
	startTimeout = time.Minute
	// killGrace is how long Kill waits for an immediate shutdown before SIGKILL.
	killGrace = 10 * time.Second
	// portAttempts is how many free ports Start tries: another process can take the port
	// between the probe that found it and postgres binding it.
	portAttempts = 3
)

// errPortInUse marks a start that failed because another process holds the port.
var errPortInUse = errors.New("pgtest: port in use")

// Option configures Start; see [WithBinDir].
type Option func(*options)

type options struct {
	binDir string
}

// WithBinDir makes Start use the initdb and postgres in dir instead of searching PATH and
// /usr/lib/postgresql/*/bin. Start returns an error wrapping [ErrNoPostgres] when dir lacks
// either program. It has no effect when DATABASE_URL is set.
func WithBinDir(dir string) Option {
	return func(o *options) { o.binDir = dir }
}

// Server is a PostgreSQL server for tests: either one that Start runs in a temporary
// directory, or, when DATABASE_URL is set, the database that DATABASE_URL names. Its methods
// are safe for concurrent use. The zero value is not usable; get a Server from [Start] or
// [ForTest].
type Server struct {
	url      string // the database tests use
	external bool   // url came from DATABASE_URL; nothing runs here

	// Set by Start for a local server, then fixed.
	dir     string // temporary directory: data/, sock/, *.log
	dataDir string
	sockDir string
	logPath string
	binDir  string
	as      *account
	port    int

	mu      sync.Mutex
	proc    *process // the running postmaster; nil when killed or stopped
	paused  []int    // the processes Pause stopped; nil when not paused
	stopped bool
	created []string // databases CreateDatabase made on an external server, dropped by Stop
}

// Start returns a running PostgreSQL server with an empty database that [Server.URL] names.
//
// When the environment variable DATABASE_URL is non-empty, Start starts nothing and returns
// a Server that points at it (no connection is made). Otherwise it runs initdb and postgres
// as described in the package documentation and waits until the server accepts connections;
// it gives up when ctx ends or after a minute. Start takes one to two seconds, most of it
// initdb; a package that needs many databases shares one Server (see [Server.CreateDatabase]).
// The caller must call [Server.Stop].
//
// Errors: an error wrapping [ErrNoPostgres] when no binaries are found; an error saying so
// when running as root without a "postgres" system user; an error with the tail of the
// initdb or server log when either fails; ctx's error (wrapped) when ctx ends first.
// Start removes its temporary directory on failure.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return &Server{url: u, external: true}, nil
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	binDir, err := findBinDir(o.binDir)
	if err != nil {
		return nil, err
	}
	as, err := serverAccount()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: create temporary directory: %w", err)
	}
	s := &Server{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logPath: filepath.Join(dir, "postgres.log"),
		binDir:  binDir,
		as:      as,
	}
	if err := s.start(ctx); err != nil {
		s.mu.Lock()
		s.killLocked()
		s.mu.Unlock()
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return s, nil
}

// start prepares the directory, runs initdb, starts the server on a free port and creates
// the database.
func (s *Server) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := os.Mkdir(s.sockDir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	for _, p := range []string{s.dir, s.sockDir} {
		if err := s.as.chown(p); err != nil {
			return err
		}
	}
	if err := s.initdb(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = port
		err = s.launchLocked(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return err
		}
	}
	s.url = s.urlFor(databaseName)
	return createDatabase(ctx, s.urlFor("postgres"), databaseName)
}

// initdb creates the data directory: trust authentication for the fixed superuser, the C
// locale so that the host's locale settings cannot break it, and no fsync because the
// directory is thrown away.
func (s *Server) initdb(ctx context.Context) error {
	logPath := filepath.Join(s.dir, "initdb.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"),
		"--pgdata="+s.dataDir, "--username="+superuser, "--auth=trust",
		"--encoding=UTF8", "--no-locale", "--no-sync")
	s.prepare(cmd, logf)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err() // the kill was ours
		}
		return fmt.Errorf("pgtest: initdb (%s): %w%s", cmd.Path, err, logTail(logPath, 0))
	}
	return nil
}

// prepare sets what initdb and postgres share: the user, a working directory the user can
// read (both resolve their own paths from it), an environment without PG* variables that
// could point them elsewhere, and output to logf.
func (s *Server) prepare(cmd *exec.Cmd, logf *os.File) {
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr(s.as)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
}

// URL returns the connection string of the Server's database, in the URL form
// pgx.ParseConfig and pgxpool.New accept: postgres://postgres@127.0.0.1:PORT/pgtest with
// sslmode=disable for a local server, DATABASE_URL unchanged for an external one. It stays
// the same across Kill and Restart. Safe for concurrent use.
func (s *Server) URL() string {
	return s.url
}

// External reports whether the Server is the database DATABASE_URL names, which pgtest can
// neither Kill nor Restart; fault-injection tests skip when it is. Safe for concurrent use.
func (s *Server) External() bool {
	return s.external
}

// Kill stops the server abruptly, as a crash would (an immediate shutdown: open connections
// break, nothing is checkpointed), and waits until it has exited. The data directory is
// kept for [Server.Restart], and so is the port number, but nothing holds the port
// meanwhile. Kill on a server that is not running does nothing. Safe for concurrent use. It returns an error only when the Server is external or
// stopped.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocal("kill"); err != nil {
		return err
	}
	s.killLocked()
	return nil
}

// Restart kills the server if it is running (see [Server.Kill]) and starts it again on the
// same port with the same data, so that [Server.URL] stays valid and existing pools
// reconnect; it returns once the server accepts connections. It gives up when ctx ends or
// after a minute. Safe for concurrent use.
//
// Errors: the Server is external or stopped; the server did not come back (with the tail of
// its log; for example, another process took the port meanwhile); ctx ended first.
func (s *Server) Restart(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocal("restart"); err != nil {
		return err
	}
	s.killLocked()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return s.launchLocked(ctx)
}

// checkLocal returns an error unless the server runs here and is not stopped. s.mu must be
// held.
func (s *Server) checkLocal(op string) error {
	switch {
	case s.external:
		return fmt.Errorf("pgtest: cannot %s the external server named by DATABASE_URL", op)
	case s.stopped:
		return fmt.Errorf("pgtest: cannot %s a stopped server", op)
	}
	return nil
}

// Stop stops a local server abruptly (see [Server.Kill]) and removes its temporary
// directory, log included; for an external server it drops the databases
// [Server.CreateDatabase] made. Pools still open on the server see their connections fail.
// Stop is idempotent: calls after the first do nothing and return nil. Safe for concurrent
// use. It returns an error when the directory or a database could not be removed.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	if s.external {
		return s.dropCreatedLocked()
	}
	s.killLocked()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// urlFor returns the URL of database db on the local server.
func (s *Server) urlFor(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}
