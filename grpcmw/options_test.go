package grpcmw

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

func TestOutcome(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel2()
	st := func(c codes.Code) error { return status.Error(c, "x") }

	for _, tc := range []struct {
		name string
		opts []Option
		ctx  context.Context
		err  error
		want core.Outcome
	}{
		{"ok", nil, live, nil, core.Success},
		{"InvalidArgument answers", nil, live, st(codes.InvalidArgument), core.Success},
		{"NotFound answers", nil, live, st(codes.NotFound), core.Success},
		{"PermissionDenied answers", nil, live, st(codes.PermissionDenied), core.Success},
		{"ResourceExhausted answers", nil, live, st(codes.ResourceExhausted), core.Success},
		{"Unknown fails", nil, live, st(codes.Unknown), core.Failure},
		{"DeadlineExceeded fails", nil, live, st(codes.DeadlineExceeded), core.Failure},
		{"Internal fails", nil, live, st(codes.Internal), core.Failure},
		{"Unavailable fails", nil, live, st(codes.Unavailable), core.Failure},
		{"DataLoss fails", nil, live, st(codes.DataLoss), core.Failure},
		{"plain error is Unknown", nil, live, errors.New("boom"), core.Failure},
		{"wrapped status keeps its code", nil, live, fmt.Errorf("ctx: %w", st(codes.NotFound)), core.Success},
		{"bare deadline error", nil, live, context.DeadlineExceeded, core.Failure},
		{"caller's deadline passed", nil, expired, st(codes.DeadlineExceeded), core.Failure},
		{"Canceled is neutral", nil, live, st(codes.Canceled), core.Neutral},
		{"bare Canceled is neutral", nil, live, context.Canceled, core.Neutral},
		{"caller cancelled, any error", nil, cancelled, st(codes.Internal), core.Neutral},
		{"caller cancelled, but it succeeded", nil, cancelled, nil, core.Success},
		{"custom: NotFound fails", []Option{WithFailureCodes(codes.NotFound)}, live, st(codes.NotFound), core.Failure},
		{"custom: Unavailable answers", []Option{WithFailureCodes(codes.NotFound)}, live, st(codes.Unavailable), core.Success},
		{"custom: Canceled listed fails", []Option{WithFailureCodes(codes.Canceled)}, live, st(codes.Canceled), core.Failure},
		{"custom: caller cancel stays neutral", []Option{WithFailureCodes(codes.Canceled)}, cancelled, st(codes.Canceled), core.Neutral},
		{"custom: none", []Option{WithFailureCodes()}, live, st(codes.Internal), core.Success},
		{"custom: OK and unknown codes ignored", []Option{WithFailureCodes(codes.OK, codes.Code(40))}, live, st(codes.Code(40)), core.Success},
		{"last option wins", []Option{WithFailureCodes(codes.NotFound), WithFailureCodes(codes.Internal)}, live, st(codes.NotFound), core.Success},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, buildOptions(tc.opts).outcome(tc.ctx, tc.err))
		})
	}
}

// TestCircuitClassification drives a breaker with threshold 1 through the server
// interceptor: only a failure code opens it.
func TestCircuitClassification(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want core.State
	}{
		{status.Error(codes.InvalidArgument, "bad"), core.Healthy},
		{status.Error(codes.NotFound, "none"), core.Healthy},
		{status.Error(codes.Unavailable, "down"), core.Isolated},
		{errors.New("boom"), core.Isolated},
	} {
		t.Run(status.Code(tc.err).String(), func(t *testing.T) {
			b, _ := newBulkhead(t, func(c *core.Config) {
				c.CircuitBreakerEnabled = true
				c.FailureThreshold = 1
			})
			c, _ := newTestServer(t, &testService{handle: func(context.Context) error { return tc.err }}, serverOpts(Always(b)))
			_, err := call(t.Context(), c, unaryRPC)
			require.Error(t, err)
			assert.Equal(t, tc.want, b.State())
		})
	}

	t.Run("client cancel", func(t *testing.T) {
		b, outcomes := newBulkhead(t, func(c *core.Config) {
			c.CircuitBreakerEnabled = true
			c.FailureThreshold = 1
		})
		g := newGate()
		c, _ := newTestServer(t, &testService{handle: g.handle}, serverOpts(Always(b)))
		ctx, cancel := context.WithCancel(t.Context())
		res := goCall(ctx, c, unaryRPC)
		<-g.entered
		cancel()
		assert.Equal(t, codes.Canceled, status.Code((<-res).err))
		assert.Equal(t, core.Neutral, next(t, outcomes))
		assert.Equal(t, core.Healthy, b.State())
		assertIdle(t, b)
	})
}

func TestRejectionError(t *testing.T) {
	for _, tc := range []struct {
		sentinel error
		code     codes.Code
		message  string
	}{
		{core.ErrFull, codes.ResourceExhausted, `bulkhead "svc" is at capacity`},
		{core.ErrCircuitOpen, codes.Unavailable, `bulkhead "svc": circuit is open`},
		{core.ErrTimeout, codes.DeadlineExceeded, `bulkhead "svc": timed out`},
		{core.ErrShutdown, codes.Unavailable, `bulkhead "svc" is shut down`},
	} {
		t.Run(tc.code.String()+"/"+tc.sentinel.Error(), func(t *testing.T) {
			cause := &core.Error{Bulkhead: "svc", Err: tc.sentinel}
			rej, ms := buildOptions(nil).refuse(cause)
			assert.Empty(t, ms)
			var err error = rej
			assert.Equal(t, tc.code, status.Code(err))
			assert.Equal(t, tc.message, status.Convert(err).Message())
			assert.ErrorIs(t, err, tc.sentinel)
			var ce *core.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, *cause, *ce, "a copy of the refusal")
			assert.NotSame(t, cause, ce, "its own copy")
			assert.Equal(t, "rpc error: code = "+tc.code.String()+" desc = "+tc.message, err.Error())

			// Wrapped again by someone outside: still both.
			wrapped := fmt.Errorf("calling svc: %w", err)
			assert.Equal(t, tc.code, status.Code(wrapped))
			assert.ErrorIs(t, wrapped, tc.sentinel)
		})
	}

	t.Run("retry after", func(t *testing.T) {
		_, ms := buildOptions(nil).refuse(&core.Error{Bulkhead: "svc", Err: core.ErrCircuitOpen, RetryAfter: 3 * time.Second})
		assert.Equal(t, "3000", ms)
	})
	t.Run("context errors", func(t *testing.T) {
		for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
			rej, ms := buildOptions(nil).refuse(cause)
			assert.Empty(t, ms)
			assert.Equal(t, status.FromContextError(cause).Code(), status.Code(rej))
			assert.ErrorIs(t, rej, cause)
		}
	})
	t.Run("another kind", func(t *testing.T) {
		cause := &core.Error{Bulkhead: "svc", Err: core.ErrReleased}
		rej, ms := buildOptions(nil).refuse(cause)
		assert.Empty(t, ms)
		assert.Equal(t, codes.Unknown, status.Code(rej))
		assert.Equal(t, cause.Error(), status.Convert(rej).Message())
		assert.ErrorIs(t, rej, core.ErrReleased)
	})
}

func TestWithStatus(t *testing.T) {
	busy := func(err error) *status.Status {
		switch {
		case errors.Is(err, core.ErrFull):
			return status.New(codes.Unavailable, "busy, try later")
		case errors.Is(err, core.ErrShutdown):
			return status.New(codes.OK, "") // OK is no refusal: the default applies
		}
		return nil // the default
	}
	info := &grpc.UnaryServerInfo{FullMethod: unaryRPC.method}

	b, _ := newBulkhead(t, nil)
	release := make(chan struct{})
	held := make(chan struct{})
	done := make(chan struct{})
	interceptor := UnaryServerInterceptor(Always(b), WithStatus(busy))
	go func() {
		defer close(done)
		_, _ = interceptor(context.Background(), nil, info, func(context.Context, any) (any, error) {
			close(held)
			<-release
			return nil, nil
		})
	}()
	<-held
	_, err := interceptor(t.Context(), nil, info, nil)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Equal(t, "busy, try later", status.Convert(err).Message())
	assert.ErrorIs(t, err, core.ErrFull, "still unwraps to the refusal")
	close(release)
	<-done

	t.Run("over the wire", func(t *testing.T) {
		b, _ := newBulkhead(t, nil)
		g := newGate()
		c, _ := newTestServer(t, &testService{handle: g.handle}, serverOpts(Always(b), WithStatus(busy)))
		first := goCall(t.Context(), c, bidiRPC)
		<-g.entered
		_, err := call(t.Context(), c, bidiRPC)
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Equal(t, "busy, try later", status.Convert(err).Message())
		close(g.release)
		assert.NoError(t, (<-first).err)
	})

	t.Run("nil and OK fall back", func(t *testing.T) {
		b, _ := newBulkhead(t, nil)
		require.NoError(t, b.Shutdown(t.Context()))
		_, err := UnaryServerInterceptor(Always(b), WithStatus(busy))(t.Context(), nil, info, nil)
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Contains(t, status.Convert(err).Message(), "shut down")

		_, err = UnaryServerInterceptor(Always(b), WithStatus(nil))(t.Context(), nil, info, nil)
		assert.Equal(t, codes.Unavailable, status.Code(err))
	})

	t.Run("pushback is sent whatever the mapping", func(t *testing.T) {
		b, outcomes := newBulkhead(t, func(c *core.Config) {
			c.CircuitBreakerEnabled = true
			c.FailureThreshold = 1
			c.IsolationDuration = time.Hour
		})
		teapot := func(error) *status.Status { return status.New(codes.Aborted, "later") }
		c, _ := newTestServer(t, &testService{handle: func(context.Context) error { return status.Error(codes.Internal, "x") }},
			serverOpts(Always(b), WithStatus(teapot)))
		_, err := call(t.Context(), c, unaryRPC)
		assert.Equal(t, codes.Internal, status.Code(err))
		assert.Equal(t, core.Failure, next(t, outcomes))
		tr, err := call(t.Context(), c, unaryRPC)
		assert.Equal(t, codes.Aborted, status.Code(err))
		assert.Len(t, tr.Get(pushbackKey), 1)
	})
}
