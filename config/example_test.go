package config_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

func ExampleParse() {
	f, err := config.Parse("bulkheads.yaml", []byte(`
bulkheads:
  - name: orders
    max_concurrent_calls: 20
    timeout_seconds: 1.5
grpc:
  "/shop.v1.Orders/*": orders
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range f.Bulkheads() {
		fmt.Println(c.Name, c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout)
	}
	fmt.Println(f.GRPCRoutes())
	// Output:
	// orders 20 100 1.5s
	// map[/shop.v1.Orders/*:orders]
}

func ExampleParse_errors() {
	_, err := config.Parse("bulkheads.yaml", []byte(`
bulkheads:
  - name: orders
    max_concurrent_calls: 0
    timeout: 2s
http:
  "GET /orders/{id}": order
`))
	fmt.Println(err)
	// Output:
	// bulkheads.yaml:4:27: bulkheads[0].max_concurrent_calls: must be between 1 and 16777216, got 0
	// bulkheads.yaml:5:5: bulkheads[0].timeout: unknown key (want name, max_concurrent_calls, max_queue_size, timeout_seconds, failure_threshold, failure_rate_threshold, failure_rate_window, minimum_calls, success_threshold, isolation_duration, circuit_breaker_enabled, health_check_interval, adaptive)
	// bulkheads.yaml:7:23: http["GET /orders/{id}"]: no bulkhead named "order"
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bulkheads.yaml")
	os.WriteFile(path, []byte(`
bulkheads:
  - name: reports
    max_concurrent_calls: 2
http:
  "GET /reports/{id}": reports
`), 0o600)

	m := core.NewManager()
	defer m.Shutdown(context.Background())
	live, err := config.Open(m, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer live.Close()
	sel := live.HTTP() // for httpmw.Middleware; follows every reload
	reports := sel(httptest.NewRequest("GET", "/reports/7", nil))
	core.Execute(context.Background(), reports, func(context.Context) (int, error) { return 1, nil })

	// An operator raises the limit; Reload (or Watch) applies it to the running bulkhead.
	os.WriteFile(path, []byte(`
bulkheads:
  - name: reports
    max_concurrent_calls: 8
http:
  "GET /reports/{id}": reports
`), 0o600)
	if err := live.Reload(); err != nil {
		fmt.Println(err)
		return
	}
	same := sel(httptest.NewRequest("GET", "/reports/7", nil)) == reports
	s := reports.Stats()
	fmt.Println(same, s.MaxConcurrentCalls, s.TotalExecutions)
	// Output:
	// true 8 1
}

// To turn a bulkhead's circuit breaker on or off while serving and keep its name, take
// the old bulkhead out of the Manager, reload, and only then shut the old one down.
func ExampleLive_Reload_circuitBreaker() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bulkheads.yaml")
	os.WriteFile(path, []byte(`
bulkheads:
  - name: reports
    max_concurrent_calls: 2
http:
  "GET /reports/{id}": reports
`), 0o600)
	m := core.NewManager()
	defer m.Shutdown(context.Background())
	live, err := config.Open(m, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer live.Close()
	ctx := context.Background()

	os.WriteFile(path, []byte(`
bulkheads:
  - name: reports
    max_concurrent_calls: 2
    circuit_breaker_enabled: true
http:
  "GET /reports/{id}": reports
`), 0o600)
	old, _ := m.Remove("reports")
	if err := live.Reload(); err != nil {
		fmt.Println(err) // old still serves the routes, outside the Manager
		return
	}
	// A new "reports", with the breaker as the file says, has the routes.
	if err := old.Shutdown(ctx); err != nil { // waits for the calls old still runs
		fmt.Println(err)
	}

	b := live.HTTP()(httptest.NewRequest("GET", "/reports/7", nil))
	fmt.Println(b != old, b.Config().CircuitBreakerEnabled)
	// Output:
	// true true
}
