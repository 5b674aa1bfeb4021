package core

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/common"
	"github.com/failsafe-go/failsafe-go/policy"
	"github.com/failsafe-go/failsafe-go/priority"
)

// FailsafePolicy returns b as a failsafe-go policy, to compose with failsafe-go's retry,
// fallback, hedge, timeout, circuit breaker and budget policies:
//
//	failsafe.With(retry, core.FailsafePolicy[*Receipt](b)).WithContext(ctx).GetWithExecution(fn)
//
// Each execution that reaches the policy (the first attempt, every retry, every hedge)
// takes its own permit with b.Acquire, on the execution's context (so a priority or
// tenant in the context passed to WithContext counts, failsafe-go's own priorities and
// levels too: see PriorityFrom), and holds it while the policies
// inside it and the function run. A refusal ends the attempt with the same *Error that
// Execute returns (errors.Is finds ErrFull, ErrCircuitOpen, ErrTimeout or ErrShutdown),
// counted as Execute counts it; if the execution was cancelled before it was admitted
// (the caller's context, an outer failsafe-go timeout, a hedge that lost), the attempt
// ends as failsafe-go's own policies end a cancelled one, and nothing is counted. The outcome is recorded as
// Execute records it: a nil error is a success, an error is a failure, an error after the
// execution's context ended is neutral (counted failed in Stats, never moving the
// circuit), and a panic is a failure and goes on up the stack after the permit is
// released (failsafe-go's own bulkhead keeps its permit on a panic).
//
// The bulkhead's Timeout, when set, covers the wait for the permit and the run, from
// admission, as for Execute: a wait that outlasts it is refused with ErrTimeout. When it
// passes while the inner execution runs, the policy cancels the execution's context
// (context.Canceled, as failsafe-go's timeout policy does: failsafe-go gives a policy no
// way to put a deadline in it) and the attempt ends with the *Error wrapping ErrTimeout,
// counted failed and timed out, a failure for the circuit. Unlike Execute, the policy does
// not abandon the function: like failsafe-go's timeout policy, it returns when the inner
// execution returns, and the permit is held until then. With failsafe-go's timeout policy
// in the same chain, the first deadline to pass ends the attempt: a timeout policy outside
// this one ends it with timeout.ErrExceeded and the bulkhead records the caller's
// departure (neutral, or nothing at all while queued), as Execute does when ctx ends; one
// inside it ends the inner execution with timeout.ErrExceeded, which the bulkhead records
// as a failure.
//
// A context carrying failsafe-go's policy.CheckOnlyKey (failsafegrpc's tap handle) asks
// only whether the bulkhead would refuse a call now: the policy then takes no permit and
// records no outcome, and refuses (counting the refusal) when the circuit is open or the
// bulkhead is full; otherwise the execution goes on to the policies inside. Policies are rebuilt by failsafe-go for every execution; this one
// allocates only the closure failsafe-go asks for, plus a child context and a timer when
// the bulkhead has a Timeout.
//
// The policy is safe for concurrent use, as b is. FailsafePolicy[any](b) also implements
// failsafe.ResultAgnosticPolicy[any], for failsafe.WithAny and Executor.ComposeAny. A nil
// b gives a policy whose every execution fails with an error wrapping
// ErrInvalidArgument, as Execute does.
func FailsafePolicy[R any](b *Bulkhead) failsafe.Policy[R] {
	return &failsafePolicy[R]{b: b}
}

// failsafePolicy is both the policy and its executor: failsafe-go asks for an executor
// per execution, and this one has no state of its own to give each.
type failsafePolicy[R any] struct{ b *Bulkhead }

// ToExecutor implements failsafe.Policy.
func (p *failsafePolicy[R]) ToExecutor(R) any { return p }

// ResultAgnostic implements failsafe.ResultAgnosticPolicy: a bulkhead never looks at the
// result.
func (*failsafePolicy[R]) ResultAgnostic() {}

// errNilPolicyBulkhead is what every execution of FailsafePolicy(nil) fails with.
var errNilPolicyBulkhead = invalidArg("FailsafePolicy: nil Bulkhead")

// Apply is failsafe-go's policy executor hook: it returns innerFn guarded by the bulkhead.
func (p *failsafePolicy[R]) Apply(innerFn func(failsafe.Execution[R]) *common.PolicyResult[R]) func(failsafe.Execution[R]) *common.PolicyResult[R] {
	b := p.b
	return func(exec failsafe.Execution[R]) *common.PolicyResult[R] {
		if b == nil {
			return failedResult[R](errNilPolicyBulkhead)
		}
		ei := exec.(policy.ExecutionInternal[R])
		ctx := exec.Context()
		if ctx.Value(policy.CheckOnlyKey) != nil {
			if err := b.wouldRefuse(ctx); err != nil {
				return failedResult[R](err)
			}
			return innerFn(exec) // the policies inside take their own look
		}
		permit, err := b.Acquire(ctx)
		if err != nil {
			if _, refused := err.(*Error); !refused {
				// Cancelled before it was admitted: the canceller's result (an outer
				// timeout's, a winning hedge's), as failsafe-go's own bulkhead gives.
				if canceled, res := ei.IsCanceledWithResult(); canceled {
					return res
				}
			}
			return failedResult[R](err) // a refusal, counted as Execute's is
		}
		if deadline, ok := permit.Deadline(); ok {
			return applyTimed(b, permit, deadline, ei, innerFn)
		}
		recorded := false
		defer func() {
			if !recorded { // innerFn panicked: the panic goes on after the release
				permit.Release(Failure)
			}
		}()
		res := innerFn(exec)
		recorded = true
		permit.Release(policyVerdict(exec, res))
		return res
	}
}

// What decided a timed attempt: the first of the inner execution's return, the Timeout,
// and the execution's cancellation from outside, which the Timeout's timer notices.
const (
	attemptRunning int32 = iota
	attemptReturned
	attemptTimedOut
	attemptCancelled
)

// applyTimed runs innerFn under a permit whose Timeout ends at deadline. The inner
// execution gets a cancellable copy of ei, which the Timeout cancels with the bulkhead's
// ErrTimeout as its result, as failsafe-go's timeout policy cancels with its own.
func applyTimed[R any](b *Bulkhead, permit Permit, deadline time.Time, ei policy.ExecutionInternal[R], innerFn func(failsafe.Execution[R]) *common.PolicyResult[R]) *common.PolicyResult[R] {
	inner := ei.CopyForCancellable().(policy.ExecutionInternal[R])
	var decided atomic.Int32
	timer := time.AfterFunc(time.Until(deadline), func() {
		if ei.Context().Err() != nil {
			// The execution was cancelled from outside before the Timeout passed: the
			// caller's departure decides, as in Execute.
			decided.CompareAndSwap(attemptRunning, attemptCancelled)
			return
		}
		if decided.CompareAndSwap(attemptRunning, attemptTimedOut) {
			inner.Cancel(failedResult[R](b.errTimeout))
		}
	})
	recorded := false
	defer func() {
		if recorded {
			return
		}
		// innerFn panicked: the panic goes on after the release.
		timer.Stop()
		inner.Cancel(nil)
		o := Failure
		if !decided.CompareAndSwap(attemptRunning, attemptReturned) && decided.Load() == attemptTimedOut {
			o = TimedOut
		}
		permit.Release(o)
	}()
	res := innerFn(inner)
	recorded = true
	if decided.CompareAndSwap(attemptRunning, attemptReturned) || decided.Load() == attemptCancelled {
		timer.Stop()
		o := policyVerdict(inner, res)
		inner.Cancel(nil) // frees the child context
		// Returned at the deadline, before the timer ran: Release records a Success or
		// Failure as TimedOut then (unless the caller left), and the caller hears the same.
		if o == Neutral || time.Now().Before(deadline) || ei.Context().Err() != nil {
			permit.Release(o)
			return res
		}
	}
	permit.Release(TimedOut)
	return failedResult[R](b.errTimeout)
}

// policyVerdict classifies an inner execution's result as Execute's verdict classifies
// fn's error: an error after the execution's context ended says nothing about the
// dependency.
func policyVerdict[R any](exec failsafe.Execution[R], res *common.PolicyResult[R]) Outcome {
	switch {
	case res.Error == nil:
		return Success
	case exec.Context().Err() != nil:
		return Neutral
	}
	return Failure
}

// failedResult is the result of an attempt the bulkhead ended with err, built as
// failsafe-go's own policies build theirs.
func failedResult[R any](err error) *common.PolicyResult[R] {
	return &common.PolicyResult[R]{Error: err, Done: true}
}

// wouldRefuse answers a check-only execution: the refusal Acquire would give at once
// when the circuit is open or the bulkhead is full (counted as rejected), nil otherwise.
func (b *Bulkhead) wouldRefuse(ctx context.Context) error {
	s := b.Stats()
	switch {
	case s.State == Isolated:
		left := max(time.Until(s.OpenUntil), 0)
		left = (left + retryAfterGrain - 1) / retryAfterGrain * retryAfterGrain // as Acquire rounds it
		return b.reject(ctx, &Error{Bulkhead: b.name, Err: ErrCircuitOpen, RetryAfter: left})
	case s.ActiveTasks+s.AbandonedTasks+s.QueuedTasks >= s.ConcurrencyLimit+s.MaxQueueSize:
		return b.reject(ctx, b.errFull.Load())
	}
	return nil
}

// failsafePriority is PriorityFrom for a context without a priority of WithPriority's:
// failsafe-go's level, else its priority, mapped as PriorityFrom documents.
func failsafePriority(ctx context.Context) Priority {
	if level, ok := ctx.Value(priority.LevelKey).(int); ok && level >= 0 {
		return fromFailsafe(level / 100)
	}
	if p, ok := ctx.Value(priority.PriorityKey).(priority.Priority); ok && p >= 0 {
		return fromFailsafe(int(p))
	}
	return PriorityNormal
}

// fromFailsafe maps failsafe-go's priorities, VeryLow (0) to VeryHigh (4), to bulkman's.
func fromFailsafe(p int) Priority {
	switch {
	case p <= int(priority.Low):
		return PriorityLow
	case p == int(priority.Medium):
		return PriorityNormal
	case p == int(priority.High):
		return PriorityHigh
	}
	return PriorityCritical
}
