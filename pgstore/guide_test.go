package pgstore_test

// The Example of docs/user-guide.md's "Circuit Breaker Integration"; docs/docs_test.go
// checks that the guide's code is in its body.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/pgstore"
)

// Python bulkman's shared PostgreSQL storage with a namespace: the circuit of
// "external_service" in namespace "my_app" is shared by every process whose store has
// that namespace.
func ExampleWithNamespace() {
	ctx := context.Background()
	url := exampleDatabase() // in a program: your DATABASE_URL

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	// Python bulkman: storage = create_storage(namespace="my_app")
	store, err := pgstore.New(ctx, pool, pgstore.WithNamespace("my_app"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	cfg := core.DefaultConfig("external_service")
	cfg.CircuitBreakerEnabled = true // off by default
	cfg.FailureThreshold = 3
	cfg.IsolationDuration = 60 * time.Second

	// Python bulkman: Bulkhead(config, circuit_storage=storage)
	bulkhead, err := core.New(cfg, core.WithCircuitStore(store))
	if err != nil {
		log.Fatal(err)
	}
	defer bulkhead.Shutdown(ctx) // before store.Close: it writes the last transitions

	for range cfg.FailureThreshold {
		_, _ = core.Execute(ctx, bulkhead, func(context.Context) (string, error) {
			return "", errors.New("connection refused")
		})
	}
	fmt.Println(bulkhead.State())

	// The transition is written off the request path, by the bulkhead's own goroutine.
	for {
		rec, ok, err := store.Load(ctx, "external_service")
		if err != nil {
			log.Fatal(err)
		}
		if ok && rec.Status == core.StatusOpen {
			fmt.Println(store.Namespace(), rec.Name, rec.Status)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// isolated
	// my_app external_service OPEN
}
