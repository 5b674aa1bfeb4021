//go:build !linux

package bench

import (
	"testing"
	"time"
)

var processStart = time.Now()

// threadCPUTime falls back to wall time where the thread's CPU clock is not at hand.
func threadCPUTime(testing.TB) time.Duration { return time.Since(processStart) }
