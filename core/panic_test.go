package core_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// executeRecover runs Execute and returns what it panicked with, if anything. The recover
// is on the calling goroutine: a panic raised on any other goroutine would crash the test
// binary instead.
func executeRecover(ctx context.Context, b *core.Bulkhead, fn func(context.Context) (int, error)) (p any, err error) {
	defer func() { p = recover() }()
	_, err = core.Execute(ctx, b, fn)
	return nil, err
}

func TestPanicReraisedOnCaller(t *testing.T) {
	type payload struct{ n int }
	for _, timeout := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("Timeout=%v", timeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 1, func(c *core.Config) {
					c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, timeout
				})
				// A caller waits in the queue behind the panicking call.
				g := newGate()
				started := make(chan struct{})
				var queued *call
				go func() {
					<-started
					queued = goExecute(context.Background(), b, succeed(2))
					synctest.Wait()
					close(g)
				}()
				value := &payload{7}
				p, err := executeRecover(context.Background(), b, func(context.Context) (int, error) {
					close(started)
					<-g
					panic(value)
				})
				assert.Same(t, value, p, "the panic value reaches the caller unchanged")
				assert.NoError(t, err)

				synctest.Wait()
				res, err := queued.wait()
				require.NoError(t, err, "the permit passed on to the queued caller")
				assert.Equal(t, 2, res.Value)
				s := b.Stats()
				assert.Equal(t, int64(1), s.FailedExecutions, "a panic is a failure")
				assert.Equal(t, int64(1), s.SuccessfulExecutions)
				assertIdle(t, s)
				assert.Equal(t, core.Isolated, b.State(), "a panic counts against the circuit")
			})
		})
	}
}

func TestPanicReleasesProbe(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("Timeout=%v", timeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newCircuit(t, 1, 1, func(c *core.Config) { c.Timeout = timeout })
				tripAndWait(t, b)
				p, _ := executeRecover(context.Background(), b, func(context.Context) (int, error) { panic("probe") })
				assert.Equal(t, "probe", p)
				assert.Equal(t, core.Isolated, b.State(), "a panicking probe re-opens the circuit")
				time.Sleep(isolation)
				ran, err := runs(b, succeed(1))
				require.NoError(t, err)
				assert.True(t, ran, "the circuit probes again")
				assert.Equal(t, core.Healthy, b.State())
				assertIdle(t, b.Stats())
			})
		})
	}
}

// A panic after the caller gave up at its Timeout has no caller to go to: it is logged,
// the program goes on, and the permit comes back.
func TestPanicAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		}), nil))
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.Timeout = 1, time.Second }, core.WithLogger(logger))
		g := newGate()
		p, err := executeRecover(context.Background(), b, func(context.Context) (int, error) {
			<-g
			panic("too late")
		})
		assert.Nil(t, p)
		assertRefusal(t, err, core.ErrTimeout, "test")
		assert.Equal(t, 1, b.Stats().AbandonedTasks)

		close(g)
		synctest.Wait()
		s := b.Stats()
		assert.Equal(t, int64(1), s.FailedExecutions)
		assertIdle(t, s)
		mu.Lock()
		assert.Contains(t, logs.String(), "too late")
		mu.Unlock()
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestGoexitCarriesThrough checks that runtime.Goexit in fn (t.FailNow, for instance)
// ends the caller's goroutine too, with or without a Timeout, and counts as a failure.
func TestGoexitCarriesThrough(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Hour} {
		cfg := core.DefaultConfig("goexit")
		cfg.Timeout = timeout
		b, err := core.New(cfg)
		require.NoError(t, err)
		returned := make(chan bool, 1)
		go func() {
			normal := false
			defer func() { returned <- normal }()
			_, _ = core.Execute(context.Background(), b, func(context.Context) (int, error) {
				runtime.Goexit()
				return 0, nil
			})
			normal = true
		}()
		assert.False(t, <-returned, "Execute returned normally after Goexit (timeout %v)", timeout)
		st := b.Stats()
		assert.Equal(t, int64(1), st.FailedExecutions)
		assert.Equal(t, 0, st.ActiveTasks)
		require.NoError(t, b.Shutdown(context.Background()))
	}
}
