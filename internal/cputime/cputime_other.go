//go:build !unix

package cputime

import "time"

// Process returns the CPU time the process has used so far; on this system it is not
// measured, and Process returns 0, false. It is safe for concurrent use.
func Process() (d time.Duration, ok bool) { return 0, false }
