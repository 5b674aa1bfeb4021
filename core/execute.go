package core

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// Result is what Execute reports about an admitted call (Python: ExecutionResult).
type Result[T any] struct {
	Value         T             // fn's value; zero unless Success
	Success       bool          // fn ran and returned a nil error
	Err           error         // fn's own error, unchanged (not wrapped); nil on success
	ExecutionTime time.Duration // start of fn to its end (or to the timeout)
	QueuedTime    time.Duration // admission to start of fn
	BulkheadName  string        // the bulkhead's name (also set when the call was refused)
	ExecutionID   ExecutionID   // unique per admitted call; zero if the call was not admitted
}

// Execute runs fn through b (Python: bulkhead.execute).
//
// The returned error is non-nil only when the bulkhead refused or gave up on the call: a
// *Error wrapping ErrCircuitOpen, ErrFull, ErrTimeout or ErrShutdown, or ctx's error if
// ctx ended first. fn's own failure is reported in the Result (Success false, Err set),
// exactly as Python bulkman does. A nil ctx, b or fn returns an error wrapping
// ErrInvalidArgument.
//
// Without a Timeout, fn runs on the caller's goroutine and Execute allocates nothing.
// With one, fn runs on its own goroutine, and Execute returns ErrTimeout promptly when the
// Timeout passes even if fn ignores its ctx; fn's ctx is then cancelled with
// context.DeadlineExceeded and fn keeps its permit until it really returns
// (Stats.AbandonedTasks). If ctx ends while fn runs, Execute returns ctx's error at once
// in the same way.
//
// A panic in fn releases everything, counts as a failure, and is re-raised on the
// caller's goroutine. (If the caller already gave up at its Timeout, there is no caller to
// re-raise it to: the panic is logged instead.)
func Execute[T any](ctx context.Context, b *Bulkhead, fn func(context.Context) (T, error)) (r Result[T], err error) {
	switch {
	case ctx == nil:
		return r, invalidArg("Execute: nil context")
	case b == nil:
		return r, invalidArg("Execute: nil Bulkhead")
	case fn == nil:
		return r, invalidArg("Execute: nil function")
	}
	r.BulkheadName = b.name
	if timeout := time.Duration(b.timeout.Load()); timeout > 0 {
		return r, executeTimed(ctx, b, fn, &r, timeout)
	}
	s, err := b.admit(ctx, 0, nil)
	if err != nil {
		return r, err
	}
	r.ExecutionID.set(b.idPrefix, s.seq)
	r.QueuedTime = s.started - s.admitted
	recorded := false
	defer func() {
		if !recorded { // fn panicked (or called runtime.Goexit): the panic goes on after this
			b.finish(s, false, Failure, b.clock.now(), nil)
		}
	}()
	r.Value, r.Err = fn(ctx)
	recorded = true
	end := b.clock.now()
	r.ExecutionTime = end - s.started
	b.finish(s, r.Err == nil, verdict(ctx, r.Err), end, nil)
	if r.Err != nil {
		var zero T
		r.Value = zero // the Result's Value is zero unless Success
		return r, nil
	}
	r.Success = true
	return r, nil
}

// verdict classifies fn's error for the circuit: the caller's own cancellation says
// nothing about the dependency.
func verdict(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return Success
	case ctx.Err() != nil:
		return Neutral
	}
	return Failure
}

// Wrap returns fn guarded by b (Python: the with_bulkhead decorator). The wrapped function
// returns one error: fn's own, or the bulkhead's *Error (or ctx's error) when it refused
// or gave up. A nil b or fn gives a function that always returns an error wrapping
// ErrInvalidArgument.
func Wrap[T any](b *Bulkhead, fn func(context.Context) (T, error)) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		r, err := Execute(ctx, b, fn)
		if err != nil {
			return r.Value, err
		}
		return r.Value, r.Err
	}
}

// ExecuteIn runs fn through m's bulkhead called name (Python: manager.execute_in_bulkhead).
// An unknown name returns a *Error wrapping ErrNotFound.
func ExecuteIn[T any](ctx context.Context, m *Manager, name string, fn func(context.Context) (T, error)) (Result[T], error) {
	if m == nil {
		return Result[T]{}, invalidArg("ExecuteIn: nil Manager")
	}
	b, ok := m.Get(name)
	if !ok {
		return Result[T]{BulkheadName: name}, &Error{Bulkhead: name, Err: ErrNotFound}
	}
	return Execute(ctx, b, fn)
}

type timedCall[T any] struct {
	callCtx
	s        *slot
	fn       func(context.Context) (T, error)
	value    T
	err      error
	panicVal any
}

// run calls fn on its own goroutine and reports back through the context.
func (c *timedCall[T]) run() {
	returned := false
	defer func() {
		if returned {
			return
		}
		// A panic is re-raised on the caller's goroutine, if the caller still waits. A nil
		// recover means fn called runtime.Goexit (panic(nil) arrives as a
		// *runtime.PanicNilError): the caller's goroutine exits the same way.
		p := recover()
		c.panicked, c.panicVal = true, p
		c.conclude()
	}()
	c.value, c.err = c.fn(&c.callCtx)
	returned = true
	c.conclude()
}

// conclude runs on fn's goroutine when fn is over. If fn came first, the caller records
// the outcome; otherwise the caller already recorded the call as failed, and whichever of
// the two comes second hands the permit back.
func (c *timedCall[T]) conclude() {
	if c.end(finished) {
		return
	}
	b := c.b
	if c.panicked && c.panicVal != nil {
		b.logger.Error("bulkman: function panicked after its caller gave up",
			slog.String("bulkhead", b.name), slog.Any("panic", c.panicVal))
	}
	if c.leaving.Add(1) == 2 {
		b.freeAbandoned(c.s)
	}
}

// executeTimed is Execute for a bulkhead with a Timeout. It fills in *r and returns
// Execute's error.
func executeTimed[T any](ctx context.Context, b *Bulkhead, fn func(context.Context) (T, error), r *Result[T], timeout time.Duration) error {
	var c *timedCall[T]
	s, err := b.admit(ctx, timeout, func() *callCtx {
		c = &timedCall[T]{fn: fn}
		c.parent, c.b = ctx, b
		return &c.callCtx
	})
	if err != nil {
		return err
	}
	c.s = s
	r.ExecutionID.set(b.idPrefix, s.seq)
	r.QueuedTime = s.started - s.admitted
	go c.run()

	if parentDone := ctx.Done(); parentDone == nil {
		<-s.wake
	} else {
		select {
		case <-s.wake:
		case <-parentDone:
			if !c.end(departed) {
				<-s.wake // fn's return or the Timeout came first: its token is on the way
			}
		}
	}
	end := b.clock.now()
	r.ExecutionTime = end - s.started

	decided := c.decided.Load()
	if decided == finished {
		if c.panicked {
			b.finish(s, false, Failure, end, &c.callCtx)
			if c.panicVal == nil {
				runtime.Goexit()
			}
			panic(c.panicVal)
		}
		b.finish(s, c.err == nil, verdict(ctx, c.err), end, &c.callCtx)
		if c.err != nil {
			r.Err = c.err
			return nil
		}
		r.Value, r.Success = c.value, true
		return nil
	}

	// The caller gives up on a running fn: count it failed now, keep its permit held.
	timedOut := decided == expired
	o := Neutral
	if timedOut {
		o = Failure // a hung dependency must be able to trip the circuit
	}
	if cb := b.circuit; cb != nil {
		cb.release(s.probe, o)
	}
	l := &b.ledger
	l.mu.Lock()
	l.abandonLocked(s, timedOut)
	l.due.remove(&c.dl)
	l.mu.Unlock()
	if c.leaving.Add(1) == 2 {
		b.freeAbandoned(s)
	}
	if b.hooks.Load() != nil {
		b.emitFinished(timedOut, o, r.QueuedTime, r.ExecutionTime)
	}
	if timedOut {
		return b.errTimeout
	}
	return ctx.Err()
}

// freeAbandoned hands back the permit of an abandoned call whose fn has returned.
func (b *Bulkhead) freeAbandoned(s *slot) {
	l := &b.ledger
	l.mu.Lock()
	l.finishLocked(s, false, true, 0)
	l.mu.Unlock()
}
