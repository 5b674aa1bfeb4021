package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/pgstore"
)

// exampleDatabase returns the URL of a fresh database (in a program: your DATABASE_URL).
func exampleDatabase() string {
	if pg == nil {
		log.Fatal(pgErr)
	}
	url, err := pg.CreateDatabase(context.Background(), fmt.Sprintf("example_%d", dbSeq.Add(1)))
	if err != nil {
		log.Fatal(err)
	}
	return url
}

// Two replicas share a circuit: the second one, starting after the first opened it,
// refuses calls at once, until the same moment.
func ExampleNew() {
	ctx := context.Background()
	url := exampleDatabase()

	replica := func() (*core.Manager, *pgstore.Store, func()) {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			log.Fatal(err)
		}
		store, err := pgstore.New(ctx, pool, pgstore.WithNamespace("checkout"))
		if err != nil {
			log.Fatal(err)
		}
		m := core.NewManager(core.WithCircuitStore(store))
		cfg := core.DefaultConfig("payments")
		cfg.CircuitBreakerEnabled = true
		cfg.FailureThreshold = 2
		if _, err := m.Create(cfg); err != nil {
			log.Fatal(err)
		}
		return m, store, func() {
			_ = m.Shutdown(ctx) // first: it writes the last transitions
			_ = store.Close()
			pool.Close()
		}
	}

	m1, store, stop1 := replica()
	for range 2 {
		_, _ = core.ExecuteIn(ctx, m1, "payments", func(context.Context) (string, error) {
			return "", errors.New("provider down")
		})
	}
	stop1()

	m2, _, stop2 := replica()
	defer stop2()
	_, err := core.ExecuteIn(ctx, m2, "payments", func(context.Context) (string, error) {
		return "charged", nil
	})
	fmt.Println("replica 2:", m2.Health()["payments"], errors.Is(err, core.ErrCircuitOpen))
	_, _, err = store.Load(ctx, "payments")
	fmt.Println("after Close:", errors.Is(err, pgstore.ErrClosed))
	// Output:
	// replica 2: false true
	// after Close: true
}
