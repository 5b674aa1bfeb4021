package core

import (
	"context"
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
	s, err := b.admit(ctx, nil, 0)
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
