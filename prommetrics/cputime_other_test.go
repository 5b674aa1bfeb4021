//go:build !linux

package prommetrics

import (
	"testing"
	"time"
)

var processStart = time.Now()

// threadCPUTime falls back to wall time where the thread's CPU clock is not at hand.
func threadCPUTime(*testing.B) time.Duration { return time.Since(processStart) }
