package cputime_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/internal/cputime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestProcess(t *testing.T) {
	start, ok := cputime.Process()
	if !ok {
		require.Zero(t, start)
		t.Skip("CPU time is not measured on " + runtime.GOOS)
	}
	assert.Positive(t, start, "the process has run already")
	// Spin until the clock moves: getrusage's resolution may be as coarse as a tick.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if now, _ := cputime.Process(); now > start {
			return
		}
	}
	t.Fatal("no CPU time counted over 10s of spinning")
}

func TestThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, ok := cputime.Thread()
	if !ok {
		require.Zero(t, start)
		t.Skip("the thread's CPU time is not measured on " + runtime.GOOS)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if now, _ := cputime.Thread(); now > start {
			return
		}
	}
	t.Fatal("no CPU time counted on this thread over 10s of spinning")
}

func TestAlternate(t *testing.T) {
	var calls [3]int
	var n int
	var spent []time.Duration
	testing.Benchmark(func(b *testing.B) {
		spent = cputime.Alternate(b, 4,
			func() { calls[0]++ },
			func() { calls[1]++ },
			func() {
				calls[2]++
				for i := range 1000 { // clearly slower than the others
					sink += i
				}
			})
		n = b.N
	})
	require.Positive(t, n)
	assert.Equal(t, [3]int{4 * n, 4 * n, 4 * n}, calls, "every variant runs batch calls per op")
	require.Len(t, spent, 3)
	assert.Greater(t, spent[2], spent[0], "the slow variant's time is its own")
}

var sink int
