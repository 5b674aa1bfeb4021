// Command quickstart is Python bulkman's Quick Start in Go: one bulkhead, a call that
// succeeds, one that fails (reported in the Result, not as an error), a call refused because the
// bulkhead is full, the circuit opening after repeated failures, and the statistics
// printed as JSON with Python bulkman's keys.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/bulkman-go/bulkman/core"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()

	// Python bulkman: BulkheadConfig(name="api_calls", max_concurrent_calls=5,
	// timeout_seconds=10.0, circuit_breaker_enabled=True)
	cfg := core.DefaultConfig("api_calls")
	cfg.MaxConcurrentCalls = 5
	// Five more callers may wait while five run: about one more round of the dependency's
	// latency (docs/user-guide.md, "Choosing limits"). A queue lets the bulkhead serve a
	// burst at its capacity; 0 would refuse every caller beyond the fifth of a burst.
	cfg.MaxQueueSize = 5
	cfg.Timeout = 10 * time.Second
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 3
	cfg.IsolationDuration = 2 * time.Second
	bulkhead, err := core.New(cfg)
	if err != nil {
		return err
	}

	// 1. A call that succeeds: Result.Success and Result.Value.
	result, err := core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) {
		return "hello from the dependency", nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("1. success=%v value=%q id=%s\n", result.Success, result.Value, result.ExecutionID)

	// 2. A call whose function fails: the bulkhead admitted it, so the error is in the
	// Result, exactly as Python bulkman reports it.
	result, err = core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) {
		return "", errors.New("connection refused")
	})
	if err != nil {
		return err
	}
	fmt.Printf("2. success=%v error=%q\n", result.Success, result.Err)

	// 3. A rejection: five calls hold every permit and five more wait in the queue, so
	// the eleventh is refused at once with ErrFull.
	release := make(chan struct{})
	started := make(chan struct{}, cfg.MaxConcurrentCalls+cfg.MaxQueueSize)
	done := make(chan struct{})
	held := cfg.MaxConcurrentCalls + cfg.MaxQueueSize
	for range held {
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) {
				started <- struct{}{}
				<-release
				return "slow", nil
			})
		}()
	}
	for range cfg.MaxConcurrentCalls {
		<-started
	}
	for bulkhead.Stats().QueuedTasks < cfg.MaxQueueSize {
		time.Sleep(time.Millisecond) // the other five are on their way into the queue
	}
	_, err = core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) { return "never runs", nil })
	fmt.Printf("3. %d running, %d queued; rejected: %v (errors.Is ErrFull: %v)\n",
		bulkhead.Stats().ActiveTasks, bulkhead.Stats().QueuedTasks, err, errors.Is(err, core.ErrFull))
	close(release)
	for range held {
		<-done
	}

	// 4. The circuit opens after FailureThreshold consecutive failures; then calls are
	// refused with ErrCircuitOpen without running the function.
	for range cfg.FailureThreshold {
		_, _ = core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) {
			return "", errors.New("503 from upstream")
		})
	}
	_, err = core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) { return "never runs", nil })
	var berr *core.Error
	if errors.As(err, &berr) {
		fmt.Printf("4. state=%s, refused: %v (errors.Is ErrCircuitOpen: %v, RetryAfter %v)\n",
			bulkhead.State(), err, errors.Is(err, core.ErrCircuitOpen), berr.RetryAfter.Round(time.Second))
	}

	// 5. The statistics, with Python bulkman's keys.
	out, err := json.MarshalIndent(bulkhead.Stats(), "", "  ")
	if err != nil {
		return err
	}
	fmt.Printf("5. stats:\n%s\n", out)

	shutdownCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := bulkhead.Shutdown(shutdownCtx); err != nil {
		return err
	}
	_, err = core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) { return "", nil })
	fmt.Printf("6. after Shutdown: %v (errors.Is ErrShutdown: %v)\n", err, errors.Is(err, core.ErrShutdown))
	return nil
}
