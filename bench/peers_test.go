package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/afex/hystrix-go/hystrix"
	"github.com/eapache/go-resiliency/breaker"
	"github.com/eapache/go-resiliency/semaphore"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The settings every guard shares, so that rows differ only in the library. Nothing in a
// benchmark ever fills the bulkhead, opens a breaker or reaches the timeout: the rows measure
// the cost of the admission path when the dependency is healthy.
const (
	capacity         = 1024             // max concurrent calls
	failureThreshold = 5                // failures that open a breaker
	successThreshold = 3                // half-open successes that close it
	openDelay        = 30 * time.Second // how long a breaker stays open
	callTimeout      = time.Second      // never fires: fn returns in nanoseconds
)

// call is one unit of work: the function a guard protects, or the guarded call itself.
type call func() (uint64, error)

// workload is a function every guard runs, so that a row's cost minus the floor's is the
// guard's overhead.
type workload struct {
	name string
	fn   call
}

func workloads() []workload {
	return []workload{
		{"noop", noop},
		{"fnv64", fnv64},
	}
}

// noop is the cheapest function the compiler cannot remove from the call path.
//
//go:noinline
func noop() (uint64, error) { return 42, nil }

// payload is the input of the "small work" variant.
var payload = func() (p [64]byte) {
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}()

// fnv64 hashes payload with 64-bit FNV-1a, written out so that the work itself allocates
// nothing (hash/fnv's constructor returns an interface, which escapes).
//
//go:noinline
func fnv64() (uint64, error) {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for _, c := range payload[:] {
		h ^= uint64(c)
		h *= prime64
	}
	return h, nil
}

// peerCase is one row of the comparison: wrap puts a guard around fn and returns the guarded
// call. wrap runs outside the timed loop, once per benchmark; it registers any cleanup on tb.
type peerCase struct {
	name string
	wrap func(tb testing.TB, fn call) call
}

// peerCases lists the rows of BenchmarkPeers: fn called directly (the work itself), then the
// floor that every ratio is read against, then the peers. bulkman's rows come from bulkmanPeerCases (bulkman_test.go).
func peerCases() []peerCase {
	cases := []peerCase{
		{"direct", wrapNothing},
		{"floor-chan", wrapChanSemaphore},

		{"failsafe-bh", wrapFailsafeBulkhead},
		{"failsafe-cb+bh", wrapFailsafeBreakerBulkhead},
		{"failsafe-timeout+cb+bh", wrapFailsafeTimeoutBreakerBulkhead},
		{"failsafe-permit-bh", wrapFailsafeBulkheadPermit},
		{"failsafe-permit-bh+cb", wrapFailsafeBulkheadBreakerPermits},

		{"hystrix-do", wrapHystrix},

		{"resiliency-sem", wrapResiliencySemaphore},
		{"resiliency-breaker", wrapResiliencyBreaker},
		{"resiliency-sem+breaker", wrapResiliencySemaphoreBreaker},

		{"gobreaker", wrapGobreaker},
		{"gobreaker+chan", wrapGobreakerChan},
	}
	return append(cases, bulkmanPeerCases()...)
}

// BenchmarkPeers runs every workload through every guard, alone (b.Loop) and under
// b.RunParallel. Names read Peers/<workload>/<guard>/<serial|parallel>.
func BenchmarkPeers(b *testing.B) {
	for _, w := range workloads() {
		b.Run(w.name, func(b *testing.B) {
			for _, pc := range peerCases() {
				b.Run(pc.name, func(b *testing.B) {
					b.Run("serial", func(b *testing.B) {
						runSerial(b, pc.wrap(b, w.fn))
					})
					b.Run("parallel", func(b *testing.B) {
						runParallel(b, pc.wrap(b, w.fn))
					})
				})
			}
		})
	}
}

// runSerial times c on one goroutine. A call that fails (a guard that rejected) is counted
// and reported as errors/op, since it would make the row measure a different path.
func runSerial(b *testing.B, c call) {
	b.ReportAllocs()
	var calls, errs int
	for b.Loop() {
		if _, err := c(); err != nil {
			errs++
		}
		calls++
	}
	reportErrors(b, errs, calls)
}

// runParallel times c from GOMAXPROCS goroutines at once.
func runParallel(b *testing.B, c call) {
	b.ReportAllocs()
	var calls, errs atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		var n, e int64
		for pb.Next() {
			if _, err := c(); err != nil {
				e++
			}
			n++
		}
		calls.Add(n)
		errs.Add(e)
	})
	reportErrors(b, int(errs.Load()), int(calls.Load()))
}

func reportErrors(b *testing.B, errs, calls int) {
	if errs > 0 && calls > 0 {
		b.ReportMetric(float64(errs)/float64(calls), "errors/op")
	}
}

// wrapNothing calls fn directly: the row prices the workload, not a guard.
func wrapNothing(_ testing.TB, fn call) call { return fn }

// wrapChanSemaphore is the floor: a buffered channel used as a counting semaphore, which is
// what failsafe-go's bulkhead and go-resiliency's semaphore are built on.
func wrapChanSemaphore(_ testing.TB, fn call) call {
	sem := make(chan struct{}, capacity)
	return func() (uint64, error) {
		sem <- struct{}{}
		v, err := fn()
		<-sem
		return v, err
	}
}

func newFailsafeBreaker[R any]() circuitbreaker.CircuitBreaker[R] {
	return circuitbreaker.NewBuilder[R]().
		WithFailureThreshold(failureThreshold).
		WithSuccessThreshold(successThreshold).
		WithDelay(openDelay).
		Build()
}

// wrapFailsafeBulkhead: failsafe.With(bulkhead).Get, the executor built once.
func wrapFailsafeBulkhead(_ testing.TB, fn call) call {
	exec := failsafe.With[uint64](bulkhead.New[uint64](capacity))
	return func() (uint64, error) { return exec.Get(fn) }
}

// wrapFailsafeBreakerBulkhead: failsafe.With(circuitbreaker, bulkhead).Get.
func wrapFailsafeBreakerBulkhead(_ testing.TB, fn call) call {
	exec := failsafe.With[uint64](newFailsafeBreaker[uint64](), bulkhead.New[uint64](capacity))
	return func() (uint64, error) { return exec.Get(fn) }
}

// wrapFailsafeTimeoutBreakerBulkhead is failsafe-go's full equivalent of a bulkman call:
// failsafe.With(timeout, circuitbreaker, bulkhead).WithContext(ctx).Get, with ctx a
// cancellable caller context (as a request's is) and WithContext per call (as a handler does).
func wrapFailsafeTimeoutBreakerBulkhead(tb testing.TB, fn call) call {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	exec := failsafe.With[uint64](
		timeout.New[uint64](callTimeout),
		newFailsafeBreaker[uint64](),
		bulkhead.New[uint64](capacity),
	)
	return func() (uint64, error) { return exec.WithContext(ctx).Get(fn) }
}

// wrapFailsafeBulkheadPermit uses the bulkhead's standalone permit API, no executor.
func wrapFailsafeBulkheadPermit(_ testing.TB, fn call) call {
	bh := bulkhead.New[uint64](capacity)
	return func() (uint64, error) {
		if !bh.TryAcquirePermit() {
			return 0, bulkhead.ErrFull
		}
		v, err := fn()
		bh.ReleasePermit()
		return v, err
	}
}

// wrapFailsafeBulkheadBreakerPermits uses both standalone permit APIs. The bulkhead comes
// first so that a full bulkhead never takes (and so never has to judge) a breaker permit.
func wrapFailsafeBulkheadBreakerPermits(_ testing.TB, fn call) call {
	bh := bulkhead.New[uint64](capacity)
	cb := newFailsafeBreaker[uint64]()
	return func() (uint64, error) {
		if !bh.TryAcquirePermit() {
			return 0, bulkhead.ErrFull
		}
		if !cb.TryAcquirePermit() {
			bh.ReleasePermit()
			return 0, circuitbreaker.ErrOpen
		}
		v, err := fn()
		if err != nil {
			cb.RecordFailure()
		} else {
			cb.RecordSuccess()
		}
		bh.ReleasePermit()
		return v, err
	}
}

// hystrixCommands makes each benchmark's hystrix command name unique: hystrix keeps its
// circuits and settings in package globals.
var hystrixCommands atomic.Int64

// wrapHystrix: hystrix.Do, configured once per benchmark. Do runs fn on a new goroutine
// (and arms a timer on another), so fn's value comes back through a captured variable.
func wrapHystrix(_ testing.TB, fn call) call {
	name := fmt.Sprintf("bench-%d", hystrixCommands.Add(1))
	hystrix.ConfigureCommand(name, hystrix.CommandConfig{
		Timeout:               int(callTimeout / time.Millisecond),
		MaxConcurrentRequests: capacity,
	})
	return func() (uint64, error) {
		var v uint64
		err := hystrix.Do(name, func() error {
			var err error
			v, err = fn()
			return err
		}, nil)
		if err != nil {
			return 0, err
		}
		return v, nil
	}
}

// wrapResiliencySemaphore: go-resiliency's semaphore Acquire/Release around fn.
func wrapResiliencySemaphore(_ testing.TB, fn call) call {
	sem := semaphore.New(capacity, callTimeout)
	return func() (uint64, error) {
		if err := sem.Acquire(); err != nil {
			return 0, err
		}
		v, err := fn()
		sem.Release()
		return v, err
	}
}

// wrapResiliencyBreaker: go-resiliency's breaker.Run.
func wrapResiliencyBreaker(_ testing.TB, fn call) call {
	br := breaker.New(failureThreshold, successThreshold, openDelay)
	return func() (uint64, error) { return runResiliencyBreaker(br, fn) }
}

// wrapResiliencySemaphoreBreaker: go-resiliency's semaphore around its breaker.
func wrapResiliencySemaphoreBreaker(_ testing.TB, fn call) call {
	sem := semaphore.New(capacity, callTimeout)
	br := breaker.New(failureThreshold, successThreshold, openDelay)
	return func() (uint64, error) {
		if err := sem.Acquire(); err != nil {
			return 0, err
		}
		v, err := runResiliencyBreaker(br, fn)
		sem.Release()
		return v, err
	}
}

// runResiliencyBreaker adapts fn to breaker.Run, whose work returns only an error.
func runResiliencyBreaker(br *breaker.Breaker, fn call) (uint64, error) {
	var v uint64
	err := br.Run(func() error {
		var err error
		v, err = fn()
		return err
	})
	if errors.Is(err, breaker.ErrBreakerOpen) {
		return 0, err
	}
	return v, err
}

// newGobreaker configures gobreaker like the other breakers: open after failureThreshold
// consecutive failures, successThreshold half-open probes, openDelay in the open state.
func newGobreaker() *gobreaker.CircuitBreaker[any] {
	return gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "bench",
		MaxRequests: successThreshold,
		Timeout:     openDelay,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= failureThreshold
		},
	})
}

// wrapGobreaker: gobreaker's CircuitBreaker[any].Execute. The any result boxes fn's value.
func wrapGobreaker(_ testing.TB, fn call) call {
	cb := newGobreaker()
	return func() (uint64, error) { return executeGobreaker(cb, fn) }
}

// wrapGobreakerChan adds the floor's channel semaphore, since gobreaker has no concurrency
// limit of its own.
func wrapGobreakerChan(_ testing.TB, fn call) call {
	cb := newGobreaker()
	sem := make(chan struct{}, capacity)
	return func() (uint64, error) {
		sem <- struct{}{}
		v, err := executeGobreaker(cb, fn)
		<-sem
		return v, err
	}
}

func executeGobreaker(cb *gobreaker.CircuitBreaker[any], fn call) (uint64, error) {
	r, err := cb.Execute(func() (any, error) { return fn() })
	if err != nil {
		return 0, err
	}
	v, _ := r.(uint64)
	return v, nil
}

// TestPeersReturnValue checks that every guarded call hands back fn's value and no error,
// for each workload, alone and from several goroutines at once.
func TestPeersReturnValue(t *testing.T) {
	for _, w := range workloads() {
		want, err := w.fn()
		require.NoError(t, err)
		for _, pc := range peerCases() {
			t.Run(w.name+"/"+pc.name, func(t *testing.T) {
				c := pc.wrap(t, w.fn)
				for range 3 {
					got, err := c()
					require.NoError(t, err)
					require.Equal(t, want, got)
				}

				const goroutines, perGoroutine = 8, 50
				var bad atomic.Int64
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(func() {
						for range perGoroutine {
							if got, err := c(); err != nil || got != want {
								bad.Add(1)
							}
						}
					})
				}
				wg.Wait()
				assert.Zero(t, bad.Load(), "concurrent calls that did not return (%d, nil)", want)
			})
		}
	}
}

func TestFNV64MatchesStdlib(t *testing.T) {
	h := fnv.New64a()
	_, _ = h.Write(payload[:])
	got, err := fnv64()
	require.NoError(t, err)
	assert.Equal(t, h.Sum64(), got)
}
