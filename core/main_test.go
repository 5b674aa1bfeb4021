package core_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/core"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// errBoom is the dependency's own failure in these tests.
var errBoom = errors.New("boom")

// newBulkhead returns a bulkhead called "test" with DefaultConfig changed by mutate.
// Inside a synctest bubble, call it inside the bubble: a bulkhead's timers belong to the
// bubble that made them.
func newBulkhead(t *testing.T, mutate func(*core.Config), opts ...core.Option) *core.Bulkhead {
	t.Helper()
	cfg := core.DefaultConfig("test")
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := core.New(cfg, opts...)
	require.NoError(t, err)
	return b
}

// succeed is a function that returns v at once.
func succeed(v int) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return v, nil }
}

// fail is a function that fails at once with errBoom.
func fail(context.Context) (int, error) { return 0, errBoom }

// gate is closed to let held functions return.
type gate chan struct{}

func newGate() gate { return make(gate) }

// hold returns a function that ignores its ctx, blocks until g opens, then returns
// (v, err).
func hold(g gate, v int, err error) func(context.Context) (int, error) {
	return func(context.Context) (int, error) {
		<-g
		return v, err
	}
}

// call is an Execute running on its own goroutine.
type call struct {
	done chan struct{}
	res  core.Result[int]
	err  error
}

// goExecute starts Execute(ctx, b, fn) on a new goroutine.
func goExecute(ctx context.Context, b *core.Bulkhead, fn func(context.Context) (int, error)) *call {
	c := &call{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.res, c.err = core.Execute(ctx, b, fn)
	}()
	return c
}

// wait waits for the call to return.
func (c *call) wait() (core.Result[int], error) {
	<-c.done
	return c.res, c.err
}

// returned reports whether the call has returned, without waiting.
func (c *call) returned() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// goroutineID returns the current goroutine's id, from the first line of its stack
// ("goroutine 42 [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	line := string(buf[:runtime.Stack(buf[:], false)])
	line = strings.TrimPrefix(line, "goroutine ")
	id, _ := strconv.ParseUint(line[:strings.IndexByte(line, ' ')], 10, 64)
	return id
}

// assertRefusal asserts that err is a *core.Error of kind want from bulkhead name.
func assertRefusal(t *testing.T, err error, want error, name string) *core.Error {
	t.Helper()
	var e *core.Error
	if !assert.ErrorAs(t, err, &e) {
		return &core.Error{}
	}
	assert.ErrorIs(t, err, want)
	assert.Equal(t, name, e.Bulkhead)
	return e
}

// assertInvariants checks the rules every snapshot keeps: total = successful + failed +
// active; 0 <= active and active + abandoned <= MaxConcurrentCalls; 0 <= in_flight <=
// MaxConcurrentCalls + MaxQueueSize.
func assertInvariants(t *testing.T, s core.Stats) bool {
	t.Helper()
	ok := assert.Equal(t, s.TotalExecutions, s.SuccessfulExecutions+s.FailedExecutions+int64(s.ActiveTasks), "total = successful + failed + active: %+v", s)
	ok = assert.GreaterOrEqual(t, s.ActiveTasks, 0, "active >= 0: %+v", s) && ok
	ok = assert.LessOrEqual(t, s.ActiveTasks+s.AbandonedTasks, s.MaxConcurrentCalls, "active + abandoned <= max: %+v", s) && ok
	ok = assert.GreaterOrEqual(t, s.InFlightCount, 0, "in_flight >= 0: %+v", s) && ok
	ok = assert.LessOrEqual(t, s.InFlightCount, s.MaxConcurrentCalls+s.MaxQueueSize, "in_flight <= capacity: %+v", s) && ok
	return ok
}

// assertIdle checks that an idle bulkhead has nothing active, in flight, abandoned or
// queued.
func assertIdle(t *testing.T, s core.Stats) {
	t.Helper()
	assertInvariants(t, s)
	assert.Zero(t, s.ActiveTasks, "idle: active")
	assert.Zero(t, s.InFlightCount, "idle: in_flight")
	assert.Zero(t, s.AbandonedTasks, "idle: abandoned")
	assert.Zero(t, s.QueuedTasks, "idle: queued")
}
