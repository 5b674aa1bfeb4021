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
