// Command distributed runs two "replicas" of a service in one process, each with its own
// Manager, connection pool and pgstore over one PostgreSQL database, the way two
// processes would share it. A burst of failures on replica 1 opens the circuit there, and
// replica 2 learns of it through LISTEN/NOTIFY within milliseconds and refuses calls
// until the same moment. After the isolation, replica 2's probe succeeds and closes the
// circuit on both.
//
//	go run ./examples/distributed                          # a throwaway PostgreSQL
//	DATABASE_URL=postgres://... go run ./examples/distributed
//	go run ./examples/distributed -fleet                   # the full fleet run (3 minutes or so)
//
// Then it runs a fleet of ten replicas (fleet.go) and prints a table of measured targets:
// a quorum keeps one broken replica from opening the fleet's circuit, a real outage makes
// the fleet refuse within milliseconds, no store call is made on a request's path, a
// database killed or stopped fails or delays no call, and the failure-rate rule opens
// where the consecutive rule never does. It exits 1 when a target is missed. The default
// run is short (for CI); -fleet runs the full fleet measurement alone (100 trials of a
// broken replica, 50 outages, PostgreSQL stopped for 10s).
//
// Without DATABASE_URL it starts its own PostgreSQL server in a temporary directory
// (internal/pgtest), which needs the PostgreSQL server binaries; it exits 1 with install
// instructions when there are none.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/pgtest"
	"github.com/bulkman-go/bulkman/pgstore"
)

func main() {
	full := flag.Bool("fleet", false, "run the full fleet measurement only (a few minutes)")
	flag.Parse()
	if err := run(*full); err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		if errors.Is(err, pgtest.ErrNoPostgres) {
			fmt.Fprintln(os.Stderr, "Install PostgreSQL (Debian/Ubuntu: apt-get install -y postgresql; macOS: brew install postgresql),\nor point DATABASE_URL at a database you may create a table in.")
		}
		os.Exit(1)
	}
}

// replica is one process's view: its pool, its store, its Manager.
type replica struct {
	pool  *pgxpool.Pool
	store *pgstore.Store
	m     *core.Manager
}

const isolation = time.Second

func newReplica(ctx context.Context, url, namespace string) (*replica, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	store, err := pgstore.New(ctx, pool, pgstore.WithNamespace(namespace))
	if err != nil {
		pool.Close()
		return nil, err
	}
	r := &replica{pool: pool, store: store, m: core.NewManager(core.WithCircuitStore(store))}
	cfg := core.DefaultConfig("payments")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 3
	cfg.SuccessThreshold = 1
	cfg.IsolationDuration = isolation
	cfg.HealthCheckInterval = time.Second // the fallback poll; notifications come first
	if _, err := r.m.Create(cfg); err != nil {
		r.close(ctx)
		return nil, err
	}
	return r, nil
}

func (r *replica) close(ctx context.Context) {
	_ = r.m.Shutdown(ctx) // before the store: the bulkheads' goroutines use it
	_ = r.store.Close()
	r.pool.Close()
}

func (r *replica) state() core.State {
	b, _ := r.m.Get("payments")
	return b.State()
}

func run(full bool) error {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	if !full {
		if err := demo(ctx, srv); err != nil {
			return err
		}
	}
	return runFleet(ctx, srv, full)
}

// demo shows two replicas sharing a circuit.
func demo(ctx context.Context, srv *pgtest.Server) error {
	where := "a throwaway PostgreSQL server"
	if srv.External() {
		where = "DATABASE_URL"
	}
	// A namespace of its own, so that a database used before holds nothing for it.
	namespace := fmt.Sprintf("example-%d", time.Now().UnixNano())
	fmt.Printf("database: %s, namespace %q\n", where, namespace)

	r1, err := newReplica(ctx, srv.URL(), namespace)
	if err != nil {
		return err
	}
	defer r1.close(ctx)
	r2, err := newReplica(ctx, srv.URL(), namespace)
	if err != nil {
		return err
	}
	defer r2.close(ctx)
	defer r1.pool.Exec(ctx, `DELETE FROM bulkman_circuits WHERE namespace = $1`, namespace)

	show := func(when string) {
		fmt.Printf("%-34s replica 1: %-8s replica 2: %s\n", when, r1.state(), r2.state())
	}
	show("start")

	// A burst of failures on replica 1 only.
	for i := range 3 {
		res, err := core.ExecuteIn(ctx, r1.m, "payments", func(context.Context) (string, error) {
			return "", errors.New("payment provider: 503")
		})
		if err != nil {
			return err
		}
		fmt.Printf("replica 1, call %d: success=%v error=%q\n", i+1, res.Success, res.Err)
	}
	opened := time.Now()
	show("after the burst on replica 1")

	// Replica 2 made no call and saw no failure.
	for r2.state() != core.Isolated {
		if time.Since(opened) > 5*time.Second {
			return errors.New("replica 2 did not learn of the open circuit within 5s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	took := time.Since(opened)
	show("replica 2 learned of it")
	fmt.Printf("propagation took %v\n", took.Round(10*time.Microsecond))

	rec1, _, err := r1.store.Load(ctx, "payments")
	if err != nil {
		return err
	}
	rec2, _, err := r2.store.Load(ctx, "payments")
	if err != nil {
		return err
	}
	fmt.Printf("shared OpenUntil: %s as replica 1 wrote it, %s as replica 2 reads it\n",
		rec1.OpenUntil.Format(time.RFC3339Nano), rec2.OpenUntil.Format(time.RFC3339Nano))
	_, err = core.ExecuteIn(ctx, r2.m, "payments", func(context.Context) (string, error) {
		return "charged", nil
	})
	var refusal *core.Error
	if !errors.As(err, &refusal) || !errors.Is(err, core.ErrCircuitOpen) {
		return fmt.Errorf("replica 2 should refuse the call, got %v", err)
	}
	fmt.Printf("replica 2 refuses: %v\n", err)

	// After the isolation, replica 2's probe succeeds and closes the circuit for both.
	time.Sleep(time.Until(rec1.OpenUntil) + 10*time.Millisecond)
	res, err := core.ExecuteIn(ctx, r2.m, "payments", func(context.Context) (string, error) {
		return "charged", nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("replica 2 probes after %v: success=%v value=%q\n", isolation, res.Success, res.Value)
	closed := time.Now()
	for r1.state() != core.Healthy {
		if time.Since(closed) > 5*time.Second {
			return errors.New("replica 1 did not learn of the closed circuit within 5s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	show("after replica 2's probe")
	return nil
}
