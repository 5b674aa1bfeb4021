package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/fallback"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
	"github.com/failsafe-go/failsafe-go/priority"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/bulkman-go/bulkman/core"
)

func ExampleFailsafePolicy() {
	cfg := core.DefaultConfig("inventory")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	b, _ := core.New(cfg)
	ctx := context.Background()

	// The retry sits outside the bulkhead: every attempt takes a permit of its own, and an
	// open circuit ends the retries.
	retry := retrypolicy.NewBuilder[string]().
		WithMaxAttempts(3).
		AbortOnErrors(core.ErrCircuitOpen).
		Build()
	attempts := 0
	stock, err := failsafe.With(retry, core.FailsafePolicy[string](b)).
		WithContext(ctx).
		GetWithExecution(func(exec failsafe.Execution[string]) (string, error) {
			attempts++
			if attempts == 1 {
				return "", errors.New("connection reset")
			}
			return "12 in stock", nil // a call made with exec.Context()
		})
	fmt.Println(stock, err)
	s := b.Stats()
	fmt.Println(s.TotalExecutions, s.SuccessfulExecutions, s.FailedExecutions)

	// While the only permit is taken, the policy refuses with the *core.Error that Execute
	// returns; a fallback outside it can answer instead.
	p, _ := b.Acquire(ctx)
	lookup := func() (string, error) { return "12 in stock", nil }
	_, err = failsafe.With(core.FailsafePolicy[string](b)).Get(lookup)
	fmt.Println(errors.Is(err, core.ErrFull), err)
	stock, err = failsafe.With(fallback.NewWithResult("unknown"), core.FailsafePolicy[string](b)).Get(lookup)
	fmt.Println(stock, err)
	_ = p.Release(core.Success)
	fmt.Println(b.Stats().RejectedExecutions)
	// Output:
	// 12 in stock <nil>
	// 2 1 1
	// true bulkhead "inventory" is at capacity (1/1)
	// unknown <nil>
	// 2
}

// fetchPrice stands for a call to a dependency that honours its context.
func fetchPrice(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return "9.99", nil
}

func ExampleFailsafePolicy_composition() {
	cfg := core.DefaultConfig("prices")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 8, 16
	cfg.Timeout = 300 * time.Millisecond // each attempt: queue wait + run
	cfg.CircuitBreakerEnabled = true
	b, _ := core.New(cfg)

	// notRefused makes a hedge final unless the bulkhead refused it.
	notRefused := func(_ string, err error) bool {
		var e *core.Error
		return !errors.As(err, &e)
	}
	prices := failsafe.With[string](
		fallback.NewWithResult("price unavailable"), // answers what is left
		retrypolicy.NewBuilder[string]().
			WithMaxAttempts(3).
			WithBackoff(10*time.Millisecond, time.Second).
			AbortOnErrors(core.ErrCircuitOpen). // the circuit isolates the dependency: stop
			Build(),
		hedgepolicy.NewBuilderWithDelay[string](100*time.Millisecond).
			CancelIf(notRefused).
			Build(),
		core.FailsafePolicy[string](b), // every attempt and hedge takes its own permit
	)

	// A failsafe-go priority ranks the call in the bulkhead's queue as PriorityHigh.
	ctx := priority.High.AddTo(context.Background())
	price, err := prices.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[string]) (string, error) {
		return fetchPrice(exec.Context())
	})
	fmt.Println(price, err, core.PriorityFrom(ctx))
	s := b.Stats()
	fmt.Println(s.TotalExecutions, s.SuccessfulExecutions)
	// Output:
	// 9.99 <nil> high
	// 1 1
}
