package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulkman-go/bulkman/core"
)

func ExampleNew() {
	cfg := core.DefaultConfig("payments")
	cfg.MaxConcurrentCalls = 4
	cfg.Timeout = 2 * time.Second
	b, err := core.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := b.Stats()
	fmt.Println(b.Name(), s.MaxConcurrentCalls, s.MaxQueueSize, b.State())

	// New reports every bad field at once.
	bad := core.DefaultConfig("")
	bad.MaxConcurrentCalls = 0
	_, err = core.New(bad)
	fmt.Println(err)
	// Output:
	// payments 4 100 healthy
	// bulkhead "": Name must not be empty, got ""
	// bulkhead "": MaxConcurrentCalls must be between 1 and 16777216, got 0
}

func ExampleExecute() {
	b, _ := core.New(core.DefaultConfig("users"))
	ctx := context.Background()

	res, err := core.Execute(ctx, b, func(ctx context.Context) (string, error) {
		return "ada", nil
	})
	fmt.Println(res.Value, res.Success, err)

	// fn's own failure is in the Result; the error is for the bulkhead's refusals.
	res, err = core.Execute(ctx, b, func(ctx context.Context) (string, error) {
		return "", errors.New("user not found")
	})
	fmt.Println(res.Success, res.Err, err)

	s := b.Stats()
	fmt.Println(s.SuccessfulExecutions, s.FailedExecutions)
	// Output:
	// ada true <nil>
	// false user not found <nil>
	// 1 1
}

func ExampleWrap() {
	b, _ := core.New(core.DefaultConfig("users"))
	getUser := core.Wrap(b, func(ctx context.Context) (string, error) {
		return "ada", nil
	})
	name, err := getUser(context.Background())
	fmt.Println(name, err)
	// Output: ada <nil>
}

func ExampleBulkhead_Acquire() {
	b, _ := core.New(core.DefaultConfig("streams"))
	p, err := b.Acquire(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("active:", b.Stats().ActiveTasks)

	// ... serve the stream; then say how it went, exactly once.
	fmt.Println(p.Release(core.Success))
	fmt.Println("active:", b.Stats().ActiveTasks)
	fmt.Println(errors.Is(p.Release(core.Success), core.ErrReleased))
	// Output:
	// active: 1
	// <nil>
	// active: 0
	// true
}

func ExampleManager() {
	m := core.NewManager()
	for _, name := range []string{"search", "db"} {
		if _, err := m.Create(core.DefaultConfig(name)); err != nil {
			fmt.Println(err)
			return
		}
	}
	_, err := m.Create(core.DefaultConfig("db"))
	fmt.Println(err)

	res, _ := core.ExecuteIn(context.Background(), m, "db", func(ctx context.Context) (int, error) {
		return 42, nil
	})
	fmt.Println(res.Value, res.BulkheadName)
	fmt.Println(m.Names())
	fmt.Println(m.Health())
	fmt.Println(m.Stats()["db"].TotalExecutions)
	fmt.Println(m.Shutdown(context.Background()))
	// Output:
	// a bulkhead named "db" already exists
	// 42 db
	// [db search]
	// map[db:true search:true]
	// 1
	// <nil>
}

// Bulkheads made on demand (one per tenant, say) are taken out with Remove when they are
// no longer wanted, then shut down to let their running calls finish.
func ExampleManager_Remove() {
	ctx := context.Background()
	m := core.NewManager()
	for _, tenant := range []string{"acme", "globex", "initech"} {
		if _, err := m.GetOrCreate(core.DefaultConfig("tenant-" + tenant)); err != nil {
			fmt.Println(err)
			return
		}
	}

	b, ok := m.Remove("tenant-globex") // the tenant left
	fmt.Println(ok, m.Names())
	fmt.Println(b.Shutdown(ctx)) // refuses new calls, waits for the running ones

	_, err := core.ExecuteIn(ctx, m, "tenant-globex", func(ctx context.Context) (int, error) {
		return 1, nil
	})
	fmt.Println(errors.Is(err, core.ErrNotFound))
	// Output:
	// true [tenant-acme tenant-initech]
	// <nil>
	// true
}

func ExampleExecuteIn() {
	m := core.NewManager()
	_, _ = m.Create(core.DefaultConfig("db"))

	res, err := core.ExecuteIn(context.Background(), m, "db", func(ctx context.Context) (string, error) {
		return "row", nil
	})
	fmt.Println(res.Value, err)

	_, err = core.ExecuteIn(context.Background(), m, "cache", func(ctx context.Context) (string, error) {
		return "never runs", nil
	})
	fmt.Println(errors.Is(err, core.ErrNotFound), err)
	// Output:
	// row <nil>
	// true no bulkhead named "cache"
}

// Every refusal is a *core.Error: errors.Is tells the kind, errors.As gives the details.
func ExampleError() {
	cfg := core.DefaultConfig("api")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	b, _ := core.New(cfg)
	p, _ := b.Acquire(context.Background()) // the only permit
	defer p.Release(core.Success)

	_, err := core.Execute(context.Background(), b, func(ctx context.Context) (int, error) {
		return 1, nil
	})
	switch {
	case errors.Is(err, core.ErrFull):
		fmt.Println("full:", err)
	case errors.Is(err, core.ErrCircuitOpen), errors.Is(err, core.ErrTimeout), errors.Is(err, core.ErrShutdown):
		fmt.Println("other refusal:", err)
	}
	var e *core.Error
	if errors.As(err, &e) {
		fmt.Println(e.Bulkhead, e.RetryAfter)
	}
	// Output:
	// full: bulkhead "api" is at capacity (1/1)
	// api 0s
}
