package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulkman-go/bulkman/core"
)

// FuzzNew checks that any Config either builds a working bulkhead or is refused with
// errors that each name a field, and never panics.
func FuzzNew(f *testing.F) {
	f.Add("api", 10, 100, int64(0), 5, 3, int64(30*time.Second), true, int64(5*time.Second))
	f.Add("", 0, -1, int64(-1), 0, 0, int64(-1), true, int64(-1))
	f.Add(" x\n", 1<<30, 1<<30, int64(1), -5, 1<<40, int64(0), false, int64(0))
	f.Fuzz(func(t *testing.T, name string, maxCalls, maxQueue int, timeout int64, failures, successes int, isolation int64, breaker bool, interval int64) {
		cfg := core.Config{
			Name: name, MaxConcurrentCalls: maxCalls, MaxQueueSize: maxQueue,
			Timeout: time.Duration(timeout), FailureThreshold: failures, SuccessThreshold: successes,
			IsolationDuration: time.Duration(isolation), CircuitBreakerEnabled: breaker,
			HealthCheckInterval: time.Duration(interval),
		}
		b, err := core.New(cfg)
		if err != nil {
			if b != nil {
				t.Fatal("New returned both a bulkhead and an error")
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ce *core.ConfigError
				if !errors.As(e, &ce) || ce.Field == "" || !strings.Contains(e.Error(), ce.Field) {
					t.Fatalf("error %q does not name its field", e)
				}
			}
			return
		}
		if timeout > int64(time.Second) {
			return // keep each input fast
		}
		r, err := core.Execute(context.Background(), b, func(context.Context) (int, error) { return 7, nil })
		if err != nil && !errors.Is(err, core.ErrTimeout) {
			t.Fatalf("Execute on a fresh bulkhead: %v", err)
		}
		if err == nil && (!r.Success || r.Value != 7) {
			t.Fatalf("Result = %+v", r)
		}
		st := b.Stats()
		if st.TotalExecutions != st.SuccessfulExecutions+st.FailedExecutions+int64(st.ActiveTasks) {
			t.Fatalf("total != successful + failed + active: %+v", st)
		}
		if err := b.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
