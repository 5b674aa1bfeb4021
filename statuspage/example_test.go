package statuspage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/statuspage"
)

func Example() {
	m := core.NewManager()
	cfg := core.DefaultConfig("payments")
	cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 1, 0
	payments, _ := m.Create(cfg)

	mux := http.NewServeMux()
	mux.Handle("GET /bulkheads.json", statuspage.JSON(m)) // one step: follows m's events and Stats
	mux.Handle("GET /status", statuspage.Page("/bulkheads.json"))

	// One call holds the only permit; ten more are refused: payments is shedding.
	ctx := context.Background()
	p, _ := payments.Acquire(ctx)
	for range 10 {
		_, _ = core.Execute(ctx, payments, func(context.Context) (int, error) { return 1, nil })
	}
	_ = p.Release(core.Success)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/bulkheads.json", nil))
	var body map[string]struct {
		State  string `json:"state"`
		Status string `json:"status"`
		Recent struct {
			Calls    int64            `json:"window_calls"`
			Refusals int64            `json:"window_refusals"`
			Share    float64          `json:"window_refusal_share"`
			Refused  map[string]int64 `json:"refused_by_priority"`
		} `json:"recent"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	pay := body["payments"]
	fmt.Printf("state %s, status %s: %d refused of %d (%.0f%%), by priority %v\n", pay.State, pay.Status,
		pay.Recent.Refusals, pay.Recent.Calls+pay.Recent.Refusals, pay.Recent.Share*100, pay.Recent.Refused)
	// Output:
	// state healthy, status shedding: 10 refused of 11 (91%), by priority map[critical:0 high:0 low:0 normal:10]
}
