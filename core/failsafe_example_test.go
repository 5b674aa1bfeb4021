package core_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/fallback"
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
