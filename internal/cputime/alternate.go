package cputime

import (
	"runtime"
	"testing"
	"time"
)

// Alternate runs b's loop over variants, each op running batch calls of every variant
// in turn (rotating which goes first), and returns the time each variant spent, in the
// same order: CPU time of the benchmark's OS thread, which does not count the moments
// other processes hold the CPU, or wall time where that clock is not at hand. Comparing
// variants measured in one loop this way keeps a shared machine's noise off their ratio.
func Alternate(b *testing.B, batch int, variants ...func()) []time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := func() time.Duration {
		if d, ok := Thread(); ok {
			return d
		}
		return time.Duration(time.Now().UnixNano())
	}
	spent := make([]time.Duration, len(variants))
	for i := 0; b.Loop(); i++ {
		for k := range variants {
			v := (i + k) % len(variants)
			start := clock()
			for range batch {
				variants[v]()
			}
			spent[v] += clock() - start
		}
	}
	return spent
}
