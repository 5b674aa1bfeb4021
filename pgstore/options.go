package pgstore

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultNamespace is the namespace of a Store created without WithNamespace.
const DefaultNamespace = "default"

// DefaultTable is the table of a Store created without WithTable.
const DefaultTable = "bulkman_circuits"

// Option configures a Store; see New.
type Option func(*options)

type options struct {
	namespace string
	table     string
	logger    *slog.Logger
	quorum    int
	replica   string
}

// WithNamespace sets the namespace of the Store's circuits (default "default"). Stores
// of different namespaces share a table but never see each other's circuits; stores of
// the same namespace share the circuits of the same names. New returns an error for an
// empty namespace or one containing a NUL byte.
func WithNamespace(ns string) Option {
	return func(o *options) { o.namespace = ns }
}

// WithTable sets the table the Store keeps circuits in (default "bulkman_circuits"),
// optionally schema-qualified as "schema.table"; the schema must exist. Each part must
// be an SQL identifier of 1 to 63 bytes: ASCII letters, digits and underscores, not
// starting with a digit. The name is used quoted, so it is case-sensitive ("Circuits" is
// not "circuits"). New returns an error for any other name.
func WithTable(name string) Option {
	return func(o *options) { o.table = name }
}

// WithQuorum makes a fleet-wide OPEN need n distinct replicas (n Store values, usually one
// per process) to open the circuit before their isolations end. A replica's OPEN is then
// its vote, kept in the circuit's row until the end of that replica's isolation; the
// vote that makes n live votes turns the row OPEN, until that voter's end of isolation,
// and every replica adopts it as with a quorum of 1. A replica that opens alone stays
// open locally, serving its own breaker's verdict, while the others keep serving; its
// vote lapses when its isolation ends (or when it writes HALF_OPEN or CLOSED).
//
// The trade-off: a quorum keeps one replica with a broken network path, or a bad
// connection pool, from taking every replica off a dependency that is healthy, at the
// cost of the fleet's reaction time to a real outage: the fleet opens when the n-th
// replica's own breaker opens, rather than the first's (the replicas that see the
// failures still stop calling at once, each on its own verdict).
//
// n = 1, the default, keeps the first-opener rule: the first replica to open decides for
// everyone. New returns an error for n < 1. Replicas of one circuit should use the same
// n; each applies its own when it votes.
func WithQuorum(n int) Option {
	return func(o *options) { o.quorum = n }
}

// WithReplica sets the Store's replica identity, the name its votes are kept under
// (see WithQuorum): a stable name such as the pod's or the host's, so that a process that
// restarts during an isolation does not vote twice. The default is a random identity per
// Store. New returns an error for an empty id, one longer than 200 bytes, or one with a
// NUL byte.
func WithReplica(id string) Option {
	return func(o *options) { o.replica = id }
}

// WithLogger sends what the Store does not report through its methods to l: malformed
// rows (at Warn, once per circuit until it is valid again) and the listening connection
// lost and regained (at Warn and Info). The default discards everything; a nil l keeps
// the default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// maxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1); the server would
// silently truncate a longer name.
const maxIdentLen = 63

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseTable validates a table name, "table" or "schema.table", and returns its parts.
func parseTable(name string) (pgx.Identifier, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("pgstore: invalid table name %q: want table or schema.table", name)
	}
	for _, p := range parts {
		if len(p) > maxIdentLen || !identRE.MatchString(p) {
			return nil, fmt.Errorf("pgstore: invalid table name %q: %q is not an identifier of 1 to %d bytes (ASCII letters, digits, underscores, not starting with a digit)",
				name, p, maxIdentLen)
		}
	}
	return pgx.Identifier(parts), nil
}
