package bench

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPUTime returns the CPU time of the calling OS thread.
func threadCPUTime(tb testing.TB) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
