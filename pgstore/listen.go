package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkman-go/bulkman/core"
)

// listener is a Store's LISTEN connection and the goroutine that waits on it, fanning
// notifications out to the subscribers. When the connection drops it reconnects with
// backoff and, since notifications sent meanwhile are lost, re-reads the namespace and
// delivers every record.
type listener struct {
	s      *Store
	cfg    *pgxpool.Config // the pool's: its ConnConfig and connection hooks
	cancel context.CancelFunc
	done   chan struct{}

	deliverMu sync.Mutex // held while fn runs: cancel waits for it
	mu        sync.Mutex
	subs      []*subscriber
	stopped   bool
}

type subscriber struct{ fn func(core.CircuitRecord) }

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
	// connTimeout bounds connecting, LISTEN and the re-read after a reconnect.
	connTimeout = 10 * time.Second
	// closeTimeout bounds the goodbye to the server when closing the connection.
	closeTimeout = time.Second
)

// startListener connects and listens before it returns, so that a Subscribe after New
// misses nothing; then it leaves the connection to its goroutine.
func startListener(ctx context.Context, s *Store) (*listener, error) {
	l := &listener{s: s, cfg: s.pool.Config(), done: make(chan struct{})} // a copy
	cctx, cancel := context.WithTimeout(ctx, connTimeout)
	conn, err := l.connect(cctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("pgstore: listen on %s: %w", s.table, err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	l.cancel = stop
	go l.run(runCtx, conn)
	return l, nil
}

// connect makes a connection as the pool makes its own: BeforeConnect on a fresh copy of
// the pool's ConnConfig (rotating credentials, say), then AfterConnect (connection settings);
// and listens on it.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := l.cfg.ConnConfig.Copy()
	// pgx buffers notifications for WaitForNotification only when no callback takes them.
	cfg.OnNotification = nil
	if l.cfg.BeforeConnect != nil {
		if err := l.cfg.BeforeConnect(ctx, cfg); err != nil {
			return nil, err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if l.cfg.AfterConnect != nil {
		if err := l.cfg.AfterConnect(ctx, conn); err != nil {
			closeConn(conn)
			return nil, err
		}
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.s.channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	backoff := minBackoff
	failures := 0
	for {
		if conn == nil {
			c, err := l.reconnect(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				failures++
				l.s.logger.Debug("pgstore: reconnecting the listening connection failed",
					slog.String("table", l.s.table), slog.String("namespace", l.s.namespace),
					slog.Int("attempt", failures), slog.Any("error", err))
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				backoff = min(backoff*2, maxBackoff)
				continue
			}
			l.s.logger.Info("pgstore: listening again; re-read the namespace",
				slog.String("table", l.s.table), slog.String("namespace", l.s.namespace), slog.Int("failed_attempts", failures))
			conn, backoff, failures = c, minBackoff, 0
		}
		n, err := conn.WaitForNotification(ctx)
		if err == nil && n != nil {
			if rec, ok := decodePayload(n.Payload); ok {
				l.deliver([]core.CircuitRecord{rec})
				continue
			}
			// Too big for a notification, or not ours: read the namespace instead.
			if err = l.reload(ctx, conn); err == nil {
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		l.s.logger.Warn("pgstore: lost the listening connection; reconnecting (peers' transitions arrive through the poll meanwhile)",
			slog.String("table", l.s.table), slog.String("namespace", l.s.namespace), slog.Any("error", err))
		closeConn(conn)
		conn = nil
	}
}

// reconnect connects, listens, and delivers every record of the namespace: notifications
// sent while the connection was down are lost.
func (l *listener) reconnect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connTimeout)
	defer cancel()
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.reload(ctx, conn); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

// reload reads every record of the namespace on conn and delivers the valid ones.
func (l *listener) reload(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, connTimeout)
	defer cancel()
	rows, err := conn.Query(ctx, l.s.sqlLoadAll, l.s.namespace)
	if err != nil {
		return err
	}
	defer rows.Close()
	var recs []core.CircuitRecord
	for rows.Next() {
		var name string
		var r row
		if err := rows.Scan(&name, &r.status, &r.openUntil, &r.updatedAt); err != nil {
			return err
		}
		if rec, ok := l.s.decode(name, r); ok {
			recs = append(recs, rec)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	l.deliver(recs)
	return nil
}

func (l *listener) deliver(recs []core.CircuitRecord) {
	l.deliverMu.Lock()
	defer l.deliverMu.Unlock()
	l.mu.Lock()
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	for _, rec := range recs {
		for _, sub := range subs {
			sub.fn(rec)
		}
	}
}

func (l *listener) subscribe(fn func(core.CircuitRecord)) func() {
	sub := &subscriber{fn: fn}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || fn == nil {
		return func() {}
	}
	l.subs = append(l.subs, sub)
	var once sync.Once
	return func() {
		once.Do(func() {
			l.deliverMu.Lock()
			defer l.deliverMu.Unlock()
			l.mu.Lock()
			defer l.mu.Unlock()
			if i := slices.Index(l.subs, sub); i >= 0 {
				l.subs = slices.Delete(l.subs, i, i+1)
			}
		})
	}
}

// stop ends the goroutine, which closes the connection, and forgets the subscribers.
func (l *listener) stop() {
	l.cancel()
	<-l.done
	l.mu.Lock()
	l.stopped = true
	l.subs = nil
	l.mu.Unlock()
}
