package core

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"
)

// The baselines live next to what they measure, so that one run gives the ratios:
//
//	go test -run '^$' -bench . -benchmem -count 10 ./core/ | tee core.txt
//	benchstat core.txt

var sink int

//go:noinline
func noop(context.Context) (int, error) { sink++; return sink, nil }

func benchBulkhead(b *testing.B, mutate func(*Config)) *Bulkhead {
	cfg := DefaultConfig("bench")
	cfg.MaxConcurrentCalls = 1024
	cfg.CircuitBreakerEnabled = true
	if mutate != nil {
		mutate(&cfg)
	}
	bh, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return bh
}

// BenchmarkSemaphore is the floor: a bare buffered-channel semaphore around the same
// no-op function.
func BenchmarkSemaphore(b *testing.B) {
	sem := make(chan struct{}, 1024)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sem <- struct{}{}
		_, _ = noop(ctx)
		<-sem
	}
}

func BenchmarkExecute(b *testing.B) {
	bh := benchBulkhead(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Execute(ctx, bh, noop); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecuteNoBreaker(b *testing.B) {
	bh := benchBulkhead(b, func(c *Config) { c.CircuitBreakerEnabled = false })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Execute(ctx, bh, noop); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	bh := benchBulkhead(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		acquireRelease(b, bh)
	}
}

// acquireRelease takes a permit of bh, runs noop under it and gives it back.
func acquireRelease(b *testing.B, bh *Bulkhead) {
	ctx := context.Background()
	p, err := bh.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = noop(ctx)
	if err := p.Release(Success); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRejectFull(b *testing.B) { benchRejectFull(b, 0) }

// BenchmarkRejectFullTimeout: a refusal costs the same when the bulkhead has a Timeout
// (the call's record is made only once the call is admitted or queued).
func BenchmarkRejectFullTimeout(b *testing.B) { benchRejectFull(b, time.Second) }

func benchRejectFull(b *testing.B, timeout time.Duration) {
	bh := benchBulkhead(b, func(c *Config) { c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 0, timeout })
	ctx := context.Background()
	p, err := bh.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Release(Success)
	benchRefused(b, bh)
}

func BenchmarkRejectCircuitOpen(b *testing.B) { benchRejectCircuitOpen(b, 0) }

func BenchmarkRejectCircuitOpenTimeout(b *testing.B) { benchRejectCircuitOpen(b, time.Second) }

func benchRejectCircuitOpen(b *testing.B, timeout time.Duration) {
	bh := benchBulkhead(b, func(c *Config) {
		c.FailureThreshold, c.IsolationDuration, c.Timeout = 1, time.Hour, timeout
	})
	_, _ = Execute(context.Background(), bh, func(context.Context) (int, error) { return 0, context.DeadlineExceeded })
	if bh.State() != Isolated {
		b.Fatal("circuit did not open")
	}
	benchRefused(b, bh)
}

func benchRefused(b *testing.B, bh *Bulkhead) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Execute(ctx, bh, noop); err == nil {
			b.Fatal("admitted")
		}
	}
}

func BenchmarkExecuteTimeout(b *testing.B) {
	bh := benchBulkhead(b, func(c *Config) { c.Timeout = time.Second })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Execute(ctx, bh, noop); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFailsafeTimeout is failsafe-go's executor with the same three policies.
func BenchmarkFailsafeTimeout(b *testing.B) {
	to := timeout.New[int](time.Second)
	cb := circuitbreaker.NewBuilder[int]().WithFailureThreshold(5).WithSuccessThreshold(3).WithDelay(30 * time.Second).Build()
	bh := bulkhead.New[int](1024)
	exec := failsafe.With[int](to, cb, bh)
	ctx := context.Background()
	fn := func() (int, error) { return noop(ctx) }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := exec.WithContext(ctx).Get(fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSemaphoreParallel(b *testing.B) {
	sem := make(chan struct{}, 1024)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sem <- struct{}{}
			_, _ = noop(ctx)
			<-sem
		}
	})
}

func BenchmarkExecuteParallel(b *testing.B) {
	bh := benchBulkhead(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Execute(ctx, bh, noop); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPermitContext is what middleware does per request with a Timeout: Acquire, give
// the handler the permit's context (which it asks for Done, as a client call does), Release.
// The baselines do the same with context.WithDeadline and its cancel, and without asking Done.
// The parent is cancellable, as a server's request context is.
func BenchmarkPermitContext(b *testing.B) {
	rows := []struct {
		name    string
		derive  func(parent context.Context, p Permit) (context.Context, context.CancelFunc)
		askDone bool
	}{
		{"Permit.Context", func(parent context.Context, p Permit) (context.Context, context.CancelFunc) {
			return p.Context(parent), func() {}
		}, true},
		{"Permit.Context/no-Done", func(parent context.Context, p Permit) (context.Context, context.CancelFunc) {
			return p.Context(parent), func() {}
		}, false},
		{"WithDeadline", func(parent context.Context, p Permit) (context.Context, context.CancelFunc) {
			d, _ := p.Deadline()
			return context.WithDeadline(parent, d)
		}, true},
	}
	for _, row := range rows {
		b.Run(row.name, func(b *testing.B) {
			bh := benchBulkhead(b, func(c *Config) { c.Timeout = time.Second })
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				p, err := bh.Acquire(parent)
				if err != nil {
					b.Fatal(err)
				}
				ctx, done := row.derive(parent, p)
				if row.askDone {
					select {
					case <-ctx.Done():
						b.Fatal("done early")
					default:
					}
				}
				done()
				if err := p.Release(Success); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTimeoutContexts weighs the timeout's hand-written context (callCtx, ended by
// the bulkhead's one timer) against the standard library's: a timed call done the same way
// but with context.WithDeadline (a runtime timer per call) and context.AfterFunc to wake the
// caller at the deadline. Both admit, run fn on its own goroutine, wait for the first of
// fn's return and the deadline, and finish through the same ledger; the standard row
// leaves out the panic and abandonment handling, which only makes it cheaper. fn either
// ignores its context or asks it for Done, as a client call does. The parent is
// cancellable, as a server's request context is.
func BenchmarkTimeoutContexts(b *testing.B) {
	fns := []struct {
		name string
		fn   func(context.Context) (int, error)
	}{
		{"ignores-ctx", noop},
		{"asks-Done", func(ctx context.Context) (int, error) {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			default:
				return noop(ctx)
			}
		}},
	}
	impls := []struct {
		name string
		run  func(ctx context.Context, bh *Bulkhead, fn func(context.Context) (int, error)) error
	}{
		{"callCtx", func(ctx context.Context, bh *Bulkhead, fn func(context.Context) (int, error)) error {
			_, err := Execute(ctx, bh, fn)
			return err
		}},
		{"WithDeadline+AfterFunc", func(ctx context.Context, bh *Bulkhead, fn func(context.Context) (int, error)) error {
			return executeStdTimeout(ctx, bh, fn, time.Duration(bh.timeout.Load()))
		}},
	}
	for _, f := range fns {
		for _, parallel := range []bool{false, true} {
			for _, im := range impls {
				name := f.name + "/" + im.name
				if parallel {
					name = f.name + "/parallel/" + im.name
				}
				b.Run(name, func(b *testing.B) {
					bh := benchBulkhead(b, func(c *Config) { c.Timeout = time.Second })
					parent, cancel := context.WithCancel(context.Background())
					defer cancel()
					b.ReportAllocs()
					if parallel {
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								if err := im.run(parent, bh, f.fn); err != nil {
									b.Error(err)
									return
								}
							}
						})
						return
					}
					for b.Loop() {
						if err := im.run(parent, bh, f.fn); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// executeStdTimeout is a timed Execute built on the standard library's contexts, for
// BenchmarkTimeoutContexts.
func executeStdTimeout[T any](ctx context.Context, b *Bulkhead, fn func(context.Context) (T, error), timeout time.Duration) error {
	s, err := b.admit(ctx, 0, nil)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithDeadline(ctx, b.clock.at(s.admitted+timeout))
	c := &stdCall[T]{s: s, fn: fn, ctx: fctx}
	stop := context.AfterFunc(fctx, c.expire)
	go c.run()
	<-s.wake
	stop()
	cancel()
	end := b.clock.now()
	if c.decided.Load() != finished {
		b.finish(s, false, TimedOut, end, nil)
		return b.errTimeout
	}
	b.finish(s, c.err == nil, verdict(ctx, c.err), end, nil)
	return nil
}

// stdCall is one call of executeStdTimeout: what callCtx is to Execute, in one record.
type stdCall[T any] struct {
	decided atomic.Int32
	s       *slot
	fn      func(context.Context) (T, error)
	ctx     context.Context
	value   T
	err     error
}

func (c *stdCall[T]) expire() {
	if c.decided.CompareAndSwap(running, expired) {
		c.s.wake <- struct{}{}
	}
}

func (c *stdCall[T]) run() {
	c.value, c.err = c.fn(c.ctx)
	if c.decided.CompareAndSwap(running, finished) {
		c.s.wake <- struct{}{}
	}
}
