//go:build !linux

package cputime

import "time"

// Thread returns the CPU time the calling OS thread has used so far; on this system it is
// not measured, and Thread returns 0, false.
func Thread() (d time.Duration, ok bool) { return 0, false }
