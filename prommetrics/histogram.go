package prommetrics

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// histogram counts durations into fixed buckets with one atomic add (two when d > 0),
// where a client_golang Histogram takes four atomic operations and a compare-and-swap
// loop: the difference decides whether the collector's hook fits in the budget of the hot
// path (docs/performance.md). It is read at scrape time into a const
// histogram.
//
// The bucket counts are the source of truth: the count is their sum, so count and buckets
// always agree. The sum is added separately and may miss calls that end during a scrape;
// the next scrape has them.
type histogram struct {
	bounds []time.Duration // upper bounds, inclusive; shared, read-only
	counts []atomic.Uint64 // one per bound, then +Inf
	sum    atomic.Int64    // nanoseconds
}

func (h *histogram) init(bounds []time.Duration) {
	h.bounds, h.counts = bounds, make([]atomic.Uint64, len(bounds)+1)
}

// observe adds d.
func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	if d != 0 {
		h.sum.Add(int64(d))
	}
}

// addTo adds h's bucket counts (not cumulative) to counts and returns h's sum.
func (h *histogram) addTo(counts []uint64) time.Duration {
	for i := range h.counts {
		counts[i] += h.counts[i].Load()
	}
	return time.Duration(h.sum.Load())
}

// layout is a histogram's bucket bounds in both units: seconds for the exposition,
// durations for observe (integer comparisons, no conversion on the hot path).
type layout struct {
	seconds   []float64
	durations []time.Duration
	zero      int // the bucket that 0 falls in
}

// newLayout keeps the finite bounds, sorted and deduplicated; none left means
// DefaultBuckets. A bound is rounded to whole nanoseconds, the resolution of the
// durations observed.
func newLayout(bounds []float64) layout {
	var l layout
	for _, v := range bounds {
		if !math.IsNaN(v) && math.Abs(v) < math.MaxInt64/1e9 {
			l.seconds = append(l.seconds, v)
		}
	}
	if len(l.seconds) == 0 {
		l.seconds = DefaultBuckets()
	}
	slices.Sort(l.seconds)
	l.seconds = slices.Compact(l.seconds)
	for _, s := range l.seconds {
		l.durations = append(l.durations, time.Duration(math.Round(s*1e9)))
	}
	l.zero, _ = slices.BinarySearch(l.durations, 0)
	return l
}

// exposition turns bucket counts (not cumulative, +Inf last) and a sum into what
// prometheus.MustNewConstHistogram wants.
func (l layout) exposition(counts []uint64, sum time.Duration) (count uint64, buckets map[float64]uint64, seconds float64) {
	buckets = make(map[float64]uint64, len(l.seconds))
	for i, ub := range l.seconds {
		count += counts[i]
		buckets[ub] = count
	}
	count += counts[len(l.seconds)]
	return count, buckets, sum.Seconds()
}
