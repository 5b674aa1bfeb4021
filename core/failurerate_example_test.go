package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulkman-go/bulkman/core"
)

// A dependency that fails every other call never fails 5 times in a row, so the
// consecutive rule never opens the circuit; the failure-rate rule opens it once 20 calls
// within 10 seconds are at least half failures.
func Example_failureRate() {
	ctx := context.Background()
	cfg := core.DefaultConfig("flaky_service")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureRateThreshold = 50            // percent of the calls in the window
	cfg.FailureRateWindow = 10 * time.Second // how far back it looks
	cfg.MinimumCalls = 20                    // calls the window needs before it may open
	b, _ := core.New(cfg)
	defer b.Shutdown(ctx)

	for i := 1; i <= 40; i++ {
		_, err := core.Execute(ctx, b, func(context.Context) (string, error) {
			if i%2 == 1 {
				return "", errors.New("503 from upstream")
			}
			return "ok", nil
		})
		if err != nil {
			fmt.Printf("call %d refused: %v\n", i, errors.Is(err, core.ErrCircuitOpen))
			break
		}
	}
	fmt.Println(b.State())
	// Output:
	// call 21 refused: true
	// isolated
}
