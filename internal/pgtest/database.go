package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxNameLen is PostgreSQL's identifier limit (NAMEDATALEN-1); longer names are silently
// truncated by the server, so two long test names could share a database.
const maxNameLen = 63

// dropTimeout bounds Stop's clean-up on an external server.
const dropTimeout = 10 * time.Second

// CreateDatabase creates an empty database called name on the server and returns its
// connection string, the Server's URL with the database replaced. Tests that share one
// Server isolate their data this way. name is used as is, quoted (any characters except
// NUL, at most 63 bytes); it must not exist yet. Databases made on a local server go away
// with it; on an external one, Stop drops them. Safe for concurrent use.
//
// Errors: an invalid name; a stopped Server; the server's refusal (for example, "already
// exists") or a connection failure, wrapped; ctx's error when ctx ends first.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if name == "" || len(name) > maxNameLen || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("pgtest: invalid database name %q: want 1 to %d bytes, no NUL", name, maxNameLen)
	}
	dbURL, err := withDatabase(s.url, name)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return "", errors.New("pgtest: cannot create a database on a stopped server")
	}
	if err := createDatabase(ctx, s.url, name); err != nil {
		return "", err
	}
	if s.external {
		s.created = append(s.created, name)
	}
	return dbURL, nil
}

// createDatabase connects to connURL and creates database name.
func createDatabase(ctx context.Context, connURL, name string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return fmt.Errorf("pgtest: create database %q: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %q: %w", name, err)
	}
	return nil
}

// dropCreatedLocked drops the databases CreateDatabase made on the external server,
// disconnecting whoever still uses them. s.mu must be held.
func (s *Server) dropCreatedLocked() error {
	if len(s.created) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return fmt.Errorf("pgtest: drop test databases: %w", err)
	}
	defer conn.Close(ctx)
	var errs []error
	for _, name := range s.created {
		// FORCE (PostgreSQL 13+) ends the sessions of pools a test forgot to close.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: drop database %q: %w", name, err))
		}
	}
	s.created = nil
	return errors.Join(errs...)
}

// withDatabase returns connString with its database replaced by name. It accepts both
// forms pgx does: a postgres:// URL and keyword/value pairs, where a later dbname wins.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("pgtest: parse connection URL: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name)
	return strings.TrimSpace(connString) + " dbname='" + quoted + "'", nil
}
