package bench

import (
	"context"
	"testing"
	"time"
)

// refBase is the instant time-since measures from.
var refBase = time.Now()

// BenchmarkReference prices the primitives an admission path is made of on this machine, so
// that a row's overhead over the floor can be explained: a clock read (every timed stat
// needs two; time.Now reads the wall and the monotonic clock, time.Since only the
// monotonic one, as bulkman's core does) and a per-call deadline (every timeout needs
// one). They are not guards; they are here because on a VM both can cost more than the
// whole floor.
// Names read Reference/<primitive>/<serial|parallel>.
func BenchmarkReference(b *testing.B) {
	refs := []struct {
		name string
		c    call
	}{
		{"time-now", func() (uint64, error) {
			return uint64(time.Now().UnixNano()), nil
		}},
		{"time-since", func() (uint64, error) { // the monotonic clock alone, as core reads it
			return uint64(time.Since(refBase)), nil
		}},
		{"context-withtimeout", func() (uint64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			cancel()
			<-ctx.Done()
			return 0, nil
		}},
	}
	for _, r := range refs {
		b.Run(r.name, func(b *testing.B) {
			b.Run("serial", func(b *testing.B) { runSerial(b, r.c) })
			b.Run("parallel", func(b *testing.B) { runParallel(b, r.c) })
		})
	}
}
