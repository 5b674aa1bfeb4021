package statuspage_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/statuspage"
)

func Example() {
	m := core.NewManager()
	cfg := core.DefaultConfig("payments")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 4, 8
	_, _ = m.Create(cfg)

	mux := http.NewServeMux()
	mux.Handle("GET /bulkheads.json", statuspage.JSON(m))
	mux.Handle("GET /status", statuspage.Page("/bulkheads.json"))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/bulkheads.json", nil))
	fmt.Print(rec.Body.String())
	// Output:
	// {"payments":{"name":"payments","state":"healthy","total_executions":0,"successful_executions":0,"failed_executions":0,"rejected_executions":0,"timed_out_executions":0,"active_tasks":0,"abandoned_tasks":0,"queued_tasks":0,"in_flight_count":0,"max_concurrent_calls":4,"max_queue_size":8,"circuit_breaker_enabled":false,"concurrency_limit":4}}
}
