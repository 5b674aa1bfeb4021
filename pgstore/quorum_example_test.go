package pgstore_test

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

// A fleet of three replicas with a quorum of two: one replica whose own calls fail opens
// its circuit alone, and the others keep serving; when a second replica's circuit opens,
// the whole fleet refuses.
func ExampleWithQuorum() {
	ctx := context.Background()
	url := exampleDatabase() // in a program: your DATABASE_URL

	var fleet []*core.Bulkhead
	for range 3 { // in a program: one Store per process
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			log.Fatal(err)
		}
		defer pool.Close()
		store, err := pgstore.New(ctx, pool, pgstore.WithQuorum(2))
		if err != nil {
			log.Fatal(err)
		}
		defer store.Close()
		cfg := core.DefaultConfig("payments")
		cfg.CircuitBreakerEnabled = true
		cfg.FailureThreshold = 3
		b, err := core.New(cfg, core.WithCircuitStore(store))
		if err != nil {
			log.Fatal(err)
		}
		defer b.Shutdown(ctx) // before store.Close
		fleet = append(fleet, b)
	}
	broken := func(context.Context) (string, error) { return "", errors.New("no route to host") }
	show := func(when string) {
		fmt.Printf("%-34s %v %v %v\n", when, fleet[0].State(), fleet[1].State(), fleet[2].State())
	}

	for range 3 {
		_, _ = core.Execute(ctx, fleet[0], broken)
	}
	time.Sleep(300 * time.Millisecond) // a peer's notification would have come by now
	show("replica 0 opens alone:")
	for range 3 {
		_, _ = core.Execute(ctx, fleet[1], broken)
	}
	for start := time.Now(); fleet[2].State() != core.Isolated && time.Since(start) < 5*time.Second; {
		time.Sleep(time.Millisecond) // replica 2 hears of it through LISTEN/NOTIFY
	}
	show("replica 1 opens too, a quorum:")
	// Output:
	// replica 0 opens alone:             isolated healthy healthy
	// replica 1 opens too, a quorum:     isolated isolated isolated
}
