package core_test

// The Examples of docs/user-guide.md: each guide section's code is (an excerpt of) one of
// these bodies; docs/docs_test.go checks that they agree.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bulkman-go/bulkman/core"
)

// myFunction stands for the dependency the guide's Quick Start calls.
func myFunction(_ context.Context, arg1, arg2 string) (string, error) {
	return "hello from " + arg1 + " and " + arg2, nil
}

// errNoSuchTable is the guide's database's own error.
var errNoSuchTable = errors.New("no such table")

// exampleDB stands for a database client in the guide's examples.
type exampleDB struct{}

func (exampleDB) Query(_ context.Context, query string) ([]string, error) {
	if query == "SELECT * FROM users" {
		return []string{"ada", "grace"}, nil
	}
	return nil, errNoSuchTable
}

// Python bulkman's Quick Start: one bulkhead, one call, and its Result.
func Example_quickStart() {
	ctx := context.Background()

	// Create a bulkhead with configuration.
	cfg := core.DefaultConfig("api_calls")
	cfg.MaxConcurrentCalls = 5
	cfg.Timeout = 10 * time.Second
	cfg.CircuitBreakerEnabled = true
	bulkhead, err := core.New(cfg)
	if err != nil {
		fmt.Println(err) // every invalid field, named
		return
	}
	defer bulkhead.Shutdown(ctx)

	// Execute a function through the bulkhead. Arguments travel in the closure
	// (Python: bulkhead.execute(my_function, arg1, arg2)).
	result, err := core.Execute(ctx, bulkhead, func(ctx context.Context) (string, error) {
		return myFunction(ctx, "arg1", "arg2")
	})
	switch {
	case err != nil:
		fmt.Println("Refused:", err) // the bulkhead did not run it, or gave up on it
	case result.Success:
		fmt.Println("Result:", result.Value)
	default:
		fmt.Println("Error:", result.Err) // myFunction's own error
	}
	// Output: Result: hello from arg1 and arg2
}

// Python bulkman's decorator (with_bulkhead): Wrap returns the function guarded, with one
// error: the function's own, unchanged, or the bulkhead's refusal.
func ExampleWrap_decorator() {
	ctx := context.Background()
	db := exampleDB{}

	cfg := core.DefaultConfig("database")
	cfg.MaxConcurrentCalls = 10
	bulkhead, err := core.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}

	// A function of ctx alone is wrapped once and called as often as needed.
	listUsers := core.Wrap(bulkhead, func(ctx context.Context) ([]string, error) {
		return db.Query(ctx, "SELECT * FROM users")
	})
	users, err := listUsers(ctx)
	fmt.Println(users, err)

	// A function with arguments: wrap a closure over them.
	queryDatabase := func(ctx context.Context, query string) ([]string, error) {
		return core.Wrap(bulkhead, func(ctx context.Context) ([]string, error) {
			return db.Query(ctx, query)
		})(ctx)
	}
	_, err = queryDatabase(ctx, "SELECT * FROM orders")
	var refusal *core.Error
	fmt.Println(errors.Is(err, errNoSuchTable), errors.As(err, &refusal))
	// Output:
	// [ada grace] <nil>
	// true false
}

// Python bulkman's "Managing Multiple Bulkheads".
func ExampleManager_multipleBulkheads() {
	ctx := context.Background()
	db := exampleDB{}

	manager := core.NewManager()
	defer manager.Shutdown(ctx)

	// Create multiple bulkheads for different resources.
	database := core.DefaultConfig("database")
	database.MaxConcurrentCalls = 20
	if _, err := manager.Create(database); err != nil {
		fmt.Println(err)
		return
	}
	externalAPI := core.DefaultConfig("external_api")
	externalAPI.MaxConcurrentCalls = 5
	if _, err := manager.Create(externalAPI); err != nil {
		fmt.Println(err)
		return
	}

	// Execute in a specific bulkhead.
	result, err := core.ExecuteIn(ctx, manager, "database", func(ctx context.Context) ([]string, error) {
		return db.Query(ctx, "SELECT * FROM users")
	})
	fmt.Println(result.Value, result.BulkheadName, err)

	// Health status of all bulkheads.
	health := manager.Health()
	fmt.Println(health)

	// GetOrCreate returns the existing bulkhead; the config given is then ignored.
	b, _ := manager.GetOrCreate(core.DefaultConfig("database"))
	fmt.Println(b.Config().MaxConcurrentCalls)
	fmt.Println(manager.Names(), manager.Stats()["database"].SuccessfulExecutions)
	// Output:
	// [ada grace] database <nil>
	// map[database:true external_api:true]
	// 20
	// [database external_api] 1
}

// Every field of Config, as Python bulkman's BulkheadConfig lists them.
func ExampleConfig() {
	cfg := core.Config{
		Name:                  "my_bulkhead",    // unique name for the bulkhead
		MaxConcurrentCalls:    10,               // functions running at once
		MaxQueueSize:          100,              // callers waiting for a permit (FIFO, enforced)
		Timeout:               30 * time.Second, // queue wait + run; 0 = none
		FailureThreshold:      5,                // consecutive failures that open the circuit
		SuccessThreshold:      3,                // consecutive half-open successes that close it
		IsolationDuration:     30 * time.Second, // how long the circuit stays open
		CircuitBreakerEnabled: true,             // off by default
		HealthCheckInterval:   5 * time.Second,  // re-read of shared state (with a CircuitStore)
	}
	fmt.Println(cfg.Validate())
	// Output: <nil>
}

func ExampleDefaultConfig() {
	cfg := core.DefaultConfig("my_bulkhead")
	fmt.Printf("%+v\n", cfg)
	// Output: {Name:my_bulkhead MaxConcurrentCalls:10 MaxQueueSize:100 Timeout:0s FailureThreshold:5 FailureRateThreshold:0 FailureRateWindow:0s MinimumCalls:0 SuccessThreshold:3 IsolationDuration:30s CircuitBreakerEnabled:false HealthCheckInterval:5s Adaptive:<nil>}
}

func ExampleConfig_Validate() {
	cfg := core.DefaultConfig("payments")
	cfg.MaxConcurrentCalls = 0
	cfg.Timeout = -time.Second
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 0

	err := cfg.Validate() // core.New and Manager.Create return the same error
	var ce *core.ConfigError
	if errors.As(err, &ce) { // the first bad field
		fmt.Printf("first: %s = %v\n", ce.Field, ce.Value)
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok { // all of them
		for _, e := range joined.Unwrap() {
			fmt.Println(e)
		}
	}
	// Output:
	// first: MaxConcurrentCalls = 0
	// bulkhead "payments": MaxConcurrentCalls must be between 1 and 16777216, got 0
	// bulkhead "payments": Timeout must not be negative, got -1s
	// bulkhead "payments": FailureThreshold must be between 1 and 16777216 when the circuit breaker is enabled, got 0
}

// Limits change on a running bulkhead without losing its statistics or circuit state.
func ExampleBulkhead_Reconfigure() {
	ctx := context.Background()
	b, _ := core.New(core.DefaultConfig("search"))
	_, _ = core.Execute(ctx, b, func(context.Context) (int, error) { return 1, nil })

	cfg := b.Config()
	cfg.MaxConcurrentCalls = 50
	cfg.Timeout = time.Second
	fmt.Println(b.Reconfigure(cfg))
	s := b.Stats()
	fmt.Println(s.MaxConcurrentCalls, s.TotalExecutions)

	// Name and CircuitBreakerEnabled cannot change while it runs.
	cfg.CircuitBreakerEnabled = true
	fmt.Println(b.Reconfigure(cfg))
	// Output:
	// <nil>
	// 50 1
	// bulkhead "search": CircuitBreakerEnabled cannot change on a running bulkhead, got true
}

// The circuit's three states: CLOSED (healthy), OPEN (isolated), HALF_OPEN (degraded).
func Example_circuitBreaker() {
	ctx := context.Background()
	cfg := core.DefaultConfig("external_service")
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold = 3
	cfg.SuccessThreshold = 2
	cfg.IsolationDuration = 500 * time.Millisecond
	b, _ := core.New(cfg)

	fail := func(context.Context) (string, error) { return "", errors.New("503 from upstream") }
	succeed := func(context.Context) (string, error) { return "ok", nil }
	show := func(when string) {
		s := b.Stats()
		fmt.Printf("%-22s %-9s %s\n", when, s.State, s.CircuitStatus)
	}

	show("start")
	for range cfg.FailureThreshold {
		_, _ = core.Execute(ctx, b, fail)
	}
	show("3 failures in a row")
	_, err := core.Execute(ctx, b, succeed) // not run
	fmt.Println("refused:", errors.Is(err, core.ErrCircuitOpen))

	time.Sleep(cfg.IsolationDuration)
	_, _ = core.Execute(ctx, b, succeed) // the first probe
	show("1 probe succeeded")
	_, _ = core.Execute(ctx, b, succeed)
	show("2 probes succeeded")
	// Output:
	// start                  healthy   CLOSED
	// 3 failures in a row    isolated  OPEN
	// refused: true
	// 1 probe succeeded      degraded  HALF_OPEN
	// 2 probes succeeded     healthy   CLOSED
}

// Stats has Python bulkman's get_stats() keys.
func ExampleBulkhead_Stats() {
	ctx := context.Background()
	cfg := core.DefaultConfig("api")
	cfg.CircuitBreakerEnabled = true
	b, _ := core.New(cfg)

	for i := range 147 { // 142 successes, 5 failures (never 5 in a row)
		_, _ = core.Execute(ctx, b, func(context.Context) (int, error) {
			if i%30 == 0 {
				return 0, errors.New("boom")
			}
			return i, nil
		})
	}
	var running []core.Permit // three calls still running
	for range 3 {
		p, _ := b.Acquire(ctx)
		running = append(running, p)
	}

	stats := b.Stats()
	out, _ := json.MarshalIndent(stats, "", "  ")
	fmt.Println(string(out))
	for _, p := range running {
		_ = p.Release(core.Success)
	}
	// Output:
	// {
	//   "name": "api",
	//   "state": "healthy",
	//   "total_executions": 150,
	//   "successful_executions": 142,
	//   "failed_executions": 5,
	//   "rejected_executions": 0,
	//   "timed_out_executions": 0,
	//   "active_tasks": 3,
	//   "abandoned_tasks": 0,
	//   "queued_tasks": 0,
	//   "in_flight_count": 3,
	//   "max_concurrent_calls": 10,
	//   "max_queue_size": 100,
	//   "circuit_breaker_enabled": true,
	//   "circuit_status": "CLOSED",
	//   "concurrency_limit": 10
	// }
}

// An event hook sees what Stats cannot: why a call was refused, each state change, each
// outcome. prommetrics and otelmetrics are such hooks.
func ExampleWithEventHook() {
	ctx := context.Background()
	var mu sync.Mutex // hooks run on the callers' goroutines
	hook := func(e core.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Kind {
		case core.EventRejected:
			fmt.Println(e.Bulkhead, e.Kind, e.Err)
		case core.EventStateChanged:
			fmt.Println(e.Bulkhead, e.Kind, e.From, "->", e.To)
		case core.EventFinished:
			fmt.Println(e.Bulkhead, e.Kind, "success:", e.Outcome == core.Success)
		}
	}
	cfg := core.DefaultConfig("api")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 1
	b, _ := core.New(cfg, core.WithEventHook(hook))

	p, _ := b.Acquire(ctx) // the only permit
	_, _ = core.Execute(ctx, b, func(context.Context) (int, error) { return 1, nil })
	_ = p.Release(core.Failure) // opens the circuit
	_, _ = core.Execute(ctx, b, func(context.Context) (int, error) { return 1, nil })
	// Output:
	// api rejected bulkhead is full
	// api state_changed healthy -> isolated
	// api finished success: false
	// api rejected circuit is open
}

// Circuit transitions are logged through log/slog: OPEN at Warn, the others at Info.
func ExampleWithLogger() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "open_until" {
				return slog.Attr{} // left out to keep the output stable
			}
			return a
		},
	}))
	cfg := core.DefaultConfig("payments")
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold = true, 1
	b, _ := core.New(cfg, core.WithLogger(logger))
	_, _ = core.Execute(ctx, b, func(context.Context) (int, error) { return 0, errors.New("boom") })
	// Output:
	// level=WARN msg="bulkman: circuit state changed" bulkhead=payments from=CLOSED to=OPEN
}

// Every error of the package, and how to tell them apart.
func Example_errors() {
	ctx := context.Background()
	describe := func(err error) string {
		var refusal *core.Error
		var bad *core.ConfigError
		switch {
		case err == nil:
			return "ok"
		// The bulkhead refused or gave up on the call: a *core.Error.
		case errors.Is(err, core.ErrFull):
			return "full: shed the load"
		case errors.Is(err, core.ErrCircuitOpen) && errors.As(err, &refusal):
			return fmt.Sprintf("circuit open: retry after %v", refusal.RetryAfter.Round(time.Second))
		case errors.Is(err, core.ErrTimeout):
			return "timed out, queued or running"
		case errors.Is(err, core.ErrShutdown):
			return "shut down"
		// The Manager.
		case errors.Is(err, core.ErrNotFound):
			return "no bulkhead of that name"
		case errors.Is(err, core.ErrExists):
			return "the name is taken"
		// Programming mistakes.
		case errors.Is(err, core.ErrReleased):
			return "permit released twice"
		case errors.Is(err, core.ErrInvalidArgument):
			return "nil argument"
		case errors.As(err, &bad):
			return "invalid config: " + bad.Field
		// The caller's own context: not a *core.Error, and never counted.
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return "the caller gave up"
		}
		return "the function's own error: " + err.Error()
	}
	ok := func(context.Context) (string, error) { return "ok", nil }
	newBulkhead := func(name string, change func(*core.Config)) *core.Bulkhead {
		cfg := core.DefaultConfig(name)
		change(&cfg)
		b, err := core.New(cfg)
		if err != nil {
			panic(err)
		}
		return b
	}

	// ErrFull: every permit taken and no queue.
	full := newBulkhead("full", func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 })
	p, _ := full.Acquire(ctx)
	_, err := core.Execute(ctx, full, ok)
	fmt.Println(describe(err))

	// ErrReleased: a Permit is released exactly once.
	_ = p.Release(core.Success)
	fmt.Println(describe(p.Release(core.Success)))

	// ErrCircuitOpen, with RetryAfter: the isolation left.
	open := newBulkhead("open", func(c *core.Config) {
		c.CircuitBreakerEnabled, c.FailureThreshold, c.IsolationDuration = true, 1, time.Minute
	})
	_, _ = core.Execute(ctx, open, func(context.Context) (string, error) { return "", errors.New("down") })
	_, err = core.Execute(ctx, open, ok)
	fmt.Println(describe(err))

	// ErrTimeout: the Timeout passed (here while the function ran).
	slow := newBulkhead("slow", func(c *core.Config) { c.Timeout = 20 * time.Millisecond })
	_, err = core.Execute(ctx, slow, func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	})
	fmt.Println(describe(err))

	// ErrShutdown.
	_ = slow.Shutdown(ctx)
	_, err = core.Execute(ctx, slow, ok)
	fmt.Println(describe(err))

	// The Manager's ErrNotFound and ErrExists.
	m := core.NewManager()
	_, err = core.ExecuteIn(ctx, m, "nope", ok)
	fmt.Println(describe(err))
	_, _ = m.Create(core.DefaultConfig("db"))
	_, err = m.Create(core.DefaultConfig("db"))
	fmt.Println(describe(err))

	// ErrInvalidArgument and *core.ConfigError.
	_, err = core.Execute[string](ctx, full, nil)
	fmt.Println(describe(err))
	_, err = core.New(core.DefaultConfig(""))
	fmt.Println(describe(err))

	// The caller's context ended: its error, as it is.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = core.Execute(cancelled, full, ok)
	fmt.Println(describe(err))

	// The function's own failure is in Result.Err, not in the error Execute returns ...
	res, err := core.Execute(ctx, full, func(context.Context) (string, error) {
		return "", os.ErrNotExist
	})
	fmt.Println(describe(err), "/", res.Success, errors.Is(res.Err, os.ErrNotExist))
	// ... and Wrap returns it as its one error, unchanged.
	_, err = core.Wrap(full, func(context.Context) (string, error) { return "", os.ErrNotExist })(ctx)
	fmt.Println(describe(err))
	// Output:
	// full: shed the load
	// permit released twice
	// circuit open: retry after 1m0s
	// timed out, queued or running
	// shut down
	// no bulkhead of that name
	// the name is taken
	// nil argument
	// invalid config: Name
	// the caller gave up
	// ok / false true
	// the function's own error: file does not exist
}

// Middleware that holds a permit for longer than one function reports how the call ended;
// a call that ran past the permit's deadline is TimedOut (failed and timed out in Stats, a
// failure for the circuit).
func ExamplePermit_Release() {
	ctx := context.Background()
	cfg := core.DefaultConfig("jobs")
	cfg.Timeout = 20 * time.Millisecond
	b, _ := core.New(cfg)
	runJob := func(ctx context.Context) error { // honours its ctx, but is too slow
		<-ctx.Done()
		return ctx.Err()
	}

	p, err := b.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	jobCtx := p.Context(ctx) // ctx with the permit's deadline; ends on Release
	err = runJob(jobCtx)
	switch {
	case ctx.Err() != nil:
		_ = p.Release(core.Neutral) // the caller went away: no verdict on the dependency
	case err != nil:
		_ = p.Release(core.Failure) // past the deadline, Release records TimedOut
	default:
		_ = p.Release(core.Success)
	}
	s := b.Stats()
	fmt.Println(s.FailedExecutions, s.TimedOutExecutions)
	// Output: 1 1
}
