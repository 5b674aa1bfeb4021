package grpcmw

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

// TestHammer runs RPCs of every kind through a client and a server bulkhead at once, some
// failing, some refused, some cancelled midway, and checks that both bulkheads account for
// every call and end idle.
func TestHammer(t *testing.T) {
	const goroutines, rounds = 16, 20
	small := func(c *core.Config) {
		c.MaxConcurrentCalls = 3
		c.MaxQueueSize = 3
		c.CircuitBreakerEnabled = true
		c.FailureThreshold = 1000 // count failures, but keep admitting
	}
	server, _ := newBulkhead(t, small)
	client, _ := newBulkhead(t, small)
	handle := func(ctx context.Context) error {
		switch rand.IntN(4) {
		case 0:
			return status.Error(codes.Unavailable, "flaky")
		case 1:
			<-ctx.Done() // until the caller gives up
			return ctx.Err()
		}
		return nil
	}
	c, _ := newTestServer(t, &testService{handle: handle}, serverOpts(Always(server)), clientOpts(Always(client))...)

	var wg sync.WaitGroup
	stats := func(b *core.Bulkhead) {
		s := b.Stats()
		if s.TotalExecutions != s.SuccessfulExecutions+s.FailedExecutions+int64(s.ActiveTasks) || s.ActiveTasks > 3 || s.InFlightCount > 6 {
			t.Errorf("broken invariant: %+v", s)
		}
	}
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = call(ctx, c, allKinds[rand.IntN(len(allKinds))])
				}()
				// Give up at once or after a moment; calls that block in the handler end
				// only this way.
				if d := rand.IntN(3); d > 0 {
					time.Sleep(time.Duration(d) * time.Millisecond)
				}
				cancel()
				<-done
				stats(server)
				stats(client)
			}
		})
	}
	wg.Wait()
	for _, b := range []*core.Bulkhead{server, client} {
		assert.Eventually(t, func() bool { return b.Stats().InFlightCount == 0 }, testTimeout, tick,
			"the server side ends when its handler returns, a little after the client saw the end")
		assertIdle(t, b)
		s := b.Stats()
		assert.Equal(t, s.TotalExecutions, s.SuccessfulExecutions+s.FailedExecutions)
	}
	assert.Positive(t, client.Stats().RejectedExecutions+server.Stats().RejectedExecutions, "some calls were refused")
}
