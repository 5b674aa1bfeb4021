package grpcmw

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

// details reads a refusal's status as a client does: its ErrorInfo and RetryInfo (nil
// when absent). Any other detail fails the test.
func details(t *testing.T, st *status.Status) (*errdetails.ErrorInfo, *errdetails.RetryInfo) {
	t.Helper()
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			assert.Nil(t, info, "one ErrorInfo")
			info = d
		case *errdetails.RetryInfo:
			assert.Nil(t, retry, "one RetryInfo")
			retry = d
		default:
			assert.Failf(t, "unexpected detail", "%T: %v", d, d)
		}
	}
	return info, retry
}

// refusalKind makes a bulkhead named "svc" refuse the next RPC one way.
type refusalKind struct {
	name     string
	sentinel error
	code     codes.Code
	reason   string
	message  string
	retry    time.Duration // the RetryInfo's delay and the pushback; 0: neither
	config   func(*core.Config)
	// prepare runs before any RPC; refuseNext then makes the next RPC be refused, and
	// returns what ends it. Both run in a synctest bubble.
	prepare    func(b *core.Bulkhead) (handle func(context.Context) error)
	refuseNext func(t *testing.T, c testpb.TestServiceClient, b *core.Bulkhead) (done func())
}

// holdPermit starts a unary call that holds the only permit until done is called, and
// then ends with one of want.
func holdPermit(g *gate, want ...codes.Code) func(t *testing.T, c testpb.TestServiceClient, b *core.Bulkhead) func() {
	return func(t *testing.T, c testpb.TestServiceClient, _ *core.Bulkhead) func() {
		first := goCall(t.Context(), c, unaryRPC)
		<-g.entered
		return func() {
			close(g.release)
			assert.Contains(t, want, status.Code((<-first).err))
		}
	}
}

func refusalKinds() []refusalKind {
	fullGate := newGate()
	return []refusalKind{
		{
			name: "full", sentinel: core.ErrFull, code: codes.ResourceExhausted,
			reason: ReasonFull, message: `bulkhead "svc" is at capacity`,
			prepare:    func(*core.Bulkhead) func(context.Context) error { return fullGate.handle },
			refuseNext: holdPermit(fullGate, codes.OK),
		},
		{
			name: "circuit-open", sentinel: core.ErrCircuitOpen, code: codes.Unavailable,
			reason: ReasonCircuitOpen, message: `bulkhead "svc": circuit is open`, retry: 45 * time.Second,
			config: func(c *core.Config) {
				c.CircuitBreakerEnabled, c.FailureThreshold, c.IsolationDuration = true, 1, time.Minute
			},
			prepare: func(*core.Bulkhead) func(context.Context) error {
				return func(context.Context) error { return status.Error(codes.Unavailable, "backend down") }
			},
			refuseNext: func(t *testing.T, c testpb.TestServiceClient, b *core.Bulkhead) func() {
				_, err := call(t.Context(), c, unaryRPC)
				require.Equal(t, codes.Unavailable, status.Code(err))
				require.Equal(t, core.Isolated, b.State())
				time.Sleep(15 * time.Second) // fake time: 45s of isolation left
				return func() {}
			},
		},
		{
			name: "timeout", sentinel: core.ErrTimeout, code: codes.DeadlineExceeded,
			reason: ReasonTimeout, message: `bulkhead "svc": timed out`,
			config: func(c *core.Config) { c.MaxQueueSize, c.Timeout = 1, 2*time.Second },
			// Held by hand: an RPC holding it would give it back at its own deadline, the
			// moment the queued call's Timeout passes, and either could come first.
			refuseNext: func(t *testing.T, _ testpb.TestServiceClient, b *core.Bulkhead) func() {
				p, err := b.Acquire(t.Context())
				require.NoError(t, err)
				return func() { assert.NoError(t, p.Release(core.Success)) }
			},
		},
		{
			name: "shutdown", sentinel: core.ErrShutdown, code: codes.Unavailable,
			reason: ReasonShutdown, message: `bulkhead "svc" is shut down`,
			refuseNext: func(t *testing.T, _ testpb.TestServiceClient, b *core.Bulkhead) func() {
				require.NoError(t, b.Shutdown(t.Context()))
				return func() {}
			},
		},
	}
}

// TestRefusalContract checks what a real client reads from every kind of refusal, for
// every kind of RPC, from the server interceptors (over the wire) and from the client
// interceptors (in process): the code, a message that names the bulkhead and the kind
// only, an ErrorInfo (domain "bulkman", the kind's reason, the bulkhead's name), and a
// RetryInfo and the pushback trailer exactly when the refusal has a RetryAfter.
func TestRefusalContract(t *testing.T) {
	for _, side := range []string{"server", "client"} {
		for i, rk := range refusalKinds() {
			for _, k := range allKinds {
				t.Run(side+"/"+rk.name+"/"+k.name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						rk := refusalKinds()[i] // gates made in the bubble, fresh for each test
						b, _ := newBulkhead(t, rk.config)
						svc := &testService{}
						if rk.prepare != nil {
							svc.handle = rk.prepare(b)
						}
						var c testpb.TestServiceClient
						if side == "server" {
							c, _ = newTestServer(t, svc, serverOpts(Always(b)))
						} else {
							c, _ = newTestServer(t, svc, nil, clientOpts(Always(b))...)
						}
						done := rk.refuseNext(t, c, b)
						defer done()

						tr, err := call(t.Context(), c, k)
						st, ok := status.FromError(err)
						require.True(t, ok, "a status error: %v", err)
						assert.Equal(t, rk.code, st.Code())
						assert.Equal(t, rk.message, st.Message())
						info, retry := details(t, st)
						if assert.NotNil(t, info, "an ErrorInfo") {
							assert.Equal(t, "bulkman", info.GetDomain())
							assert.Equal(t, rk.reason, info.GetReason())
							assert.Equal(t, map[string]string{"bulkhead": "svc"}, info.GetMetadata())
						}
						if rk.retry > 0 {
							if assert.NotNil(t, retry, "a RetryInfo") {
								assert.Equal(t, rk.retry, retry.GetRetryDelay().AsDuration())
							}
						} else {
							assert.Nil(t, retry, "no RetryInfo without a retry hint")
						}

						if side == "server" {
							if rk.retry > 0 {
								assert.Equal(t, []string{"45000"}, tr.Get(pushbackKey))
							} else {
								assert.Empty(t, tr.Get(pushbackKey))
							}
							return
						}
						// In process, the error is also the core error.
						assert.ErrorIs(t, err, rk.sentinel)
						ce, ok := errors.AsType[*core.Error](err)
						if assert.True(t, ok) {
							assert.Equal(t, "svc", ce.Bulkhead)
							assert.Equal(t, rk.retry, ce.RetryAfter)
						}
					})
				})
			}
		}
	}
}

// TestRefusalMessageIsStable refuses many RPCs while an open circuit's isolation runs
// down and while the bulkhead is full, as a load generator would: one message per kind,
// whatever the moment; the time left travels in the RetryInfo and the trailer only.
func TestRefusalMessageIsStable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBulkhead(t, func(c *core.Config) {
			c.CircuitBreakerEnabled, c.FailureThreshold, c.IsolationDuration = true, 1, time.Minute
		})
		c, _ := newTestServer(t, &testService{handle: func(context.Context) error {
			return status.Error(codes.Internal, "broken")
		}}, serverOpts(Always(b)))
		_, err := call(t.Context(), c, unaryRPC)
		require.Equal(t, codes.Internal, status.Code(err))

		messages := map[string]int{}
		delays := map[time.Duration]bool{}
		for range 200 {
			time.Sleep(123 * time.Millisecond) // fake time: 24.6s in all
			tr, err := call(t.Context(), c, unaryRPC)
			st := status.Convert(err)
			messages[st.Message()]++
			_, retry := details(t, st)
			require.NotNil(t, retry)
			delays[retry.GetRetryDelay().AsDuration()] = true
			assert.Len(t, tr.Get(pushbackKey), 1)
		}
		assert.Equal(t, map[string]int{`bulkhead "svc": circuit is open`: 200}, messages)
		assert.Len(t, delays, 200, "every refusal has its own time left")
	})
}

// TestRefusalMutationSafety changes everything a caller can reach from one refusal, and
// checks that the next refusal of the same kind, and the bulkhead's own errors, are
// untouched.
func TestRefusalMutationSafety(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBulkhead(t, func(c *core.Config) {
			c.CircuitBreakerEnabled, c.FailureThreshold, c.IsolationDuration = true, 1, time.Minute
		})
		p, err := b.Acquire(t.Context())
		require.NoError(t, err)
		require.NoError(t, p.Release(core.Failure))
		_, coreErr := b.Acquire(t.Context()) // the bulkhead's own refusal, for comparison
		require.ErrorIs(t, coreErr, core.ErrCircuitOpen)
		want := *(coreErr.(*core.Error))

		info := &grpc.UnaryServerInfo{FullMethod: unaryRPC.method}
		interceptor := UnaryServerInterceptor(Always(b))
		refuse := func() error {
			_, err := interceptor(t.Context(), nil, info, func(context.Context, any) (any, error) { panic("not reached") })
			return err
		}

		first := refuse()
		ce, ok := errors.AsType[*core.Error](first)
		require.True(t, ok)
		assert.NotSame(t, coreErr, ce, "not the bulkhead's own error")
		ce.Bulkhead, ce.RetryAfter, ce.Err = "tampered", time.Hour, core.ErrFull

		st := status.Convert(first)
		pb := st.Proto()
		pb.Message, pb.Code = "tampered", int32(codes.OK)
		pb.Details[0].Value = []byte("tampered")
		errInfo, _ := details(t, st)
		require.NotNil(t, errInfo)
		errInfo.Metadata["bulkhead"], errInfo.Reason = "tampered", "TAMPERED"

		second := refuse()
		assert.ErrorIs(t, second, core.ErrCircuitOpen)
		ce2, ok := errors.AsType[*core.Error](second)
		require.True(t, ok)
		assert.Equal(t, want, *ce2)
		st2 := status.Convert(second)
		assert.Equal(t, codes.Unavailable, st2.Code())
		assert.Equal(t, `bulkhead "svc": circuit is open`, st2.Message())
		errInfo2, retry := details(t, st2)
		require.NotNil(t, errInfo2)
		assert.Equal(t, ReasonCircuitOpen, errInfo2.GetReason())
		assert.Equal(t, map[string]string{"bulkhead": "svc"}, errInfo2.GetMetadata())
		assert.NotNil(t, retry)
		assert.Equal(t, `bulkhead "svc": circuit is open`, status.Convert(first).Message(), "the first one's status too")
		_, again := b.Acquire(t.Context())
		assert.Equal(t, want, *(again.(*core.Error)), "the bulkhead's own refusal")
	})
}

// TestWithStatusGetsACopy: a status mapper may change the refusal it is given without
// changing the next one.
func TestWithStatusGetsACopy(t *testing.T) {
	b := fullBulkhead(t)
	var seen []core.Error
	interceptor := UnaryServerInterceptor(Always(b), WithStatus(func(err error) *status.Status {
		ce := err.(*core.Error)
		seen = append(seen, *ce)
		ce.Bulkhead = "tampered"
		return nil
	}))
	info := &grpc.UnaryServerInfo{FullMethod: unaryRPC.method}
	for range 2 {
		_, err := interceptor(t.Context(), nil, info, nil)
		assert.Equal(t, `bulkhead "bench" is at capacity`, status.Convert(err).Message())
		assert.ErrorIs(t, err, core.ErrFull)
	}
	require.Len(t, seen, 2)
	assert.Equal(t, "bench", seen[1].Bulkhead)
}

// TestStatusCacheConcurrent refuses from many goroutines at once, across bulkheads and
// kinds, under the race detector.
func TestStatusCacheConcurrent(t *testing.T) {
	c := newStatusCache()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := string(rune('a' + (g+i)%4))
				ce := &core.Error{Bulkhead: name, Err: core.ErrCircuitOpen, RetryAfter: time.Duration(i%3+1) * time.Second}
				st, ms := c.of(ce)
				_, retry := details(t, st)
				if assert.NotNil(t, retry) {
					assert.Equal(t, ce.RetryAfter, retry.GetRetryDelay().AsDuration())
				}
				assert.Equal(t, pushbackValue(ce.RetryAfter), ms)
				full, _ := c.of(&core.Error{Bulkhead: name, Err: core.ErrFull})
				assert.Equal(t, `bulkhead "`+name+`" is at capacity`, full.Message())
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 4, c.Len())
}

// TestRefusalSharedButSafe: a full refusal allocates nothing (its rejection is shared,
// as the bulkhead shares its *core.Error), every errors.As gets a copy of its own, and a
// reconfigured bulkhead's refusals carry its new error.
func TestRefusalSharedButSafe(t *testing.T) {
	b := fullBulkhead(t)
	info := &grpc.UnaryServerInfo{FullMethod: unaryRPC.method}
	interceptor := UnaryServerInterceptor(Always(b))
	ctx := t.Context()
	refuse := func() error {
		_, err := interceptor(ctx, nil, info, nil)
		return err
	}
	refuse()
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = refuse() }))

	err := refuse()
	a, ok := errors.AsType[*core.Error](err)
	require.True(t, ok)
	c, ok := errors.AsType[*core.Error](err)
	require.True(t, ok)
	assert.NotSame(t, a, c, "a copy for each errors.As")
	a.Bulkhead = "tampered"
	assert.Equal(t, "bench", c.Bulkhead)
	again, _ := errors.AsType[*core.Error](refuse())
	assert.Equal(t, "bench", again.Bulkhead)
	assert.Equal(t, `bulkhead "bench" is at capacity (1/1)`, again.Error())

	// Reconfigure gives the bulkhead a new error (its text names the capacity): the
	// refusals follow it.
	before := refuse()
	require.NoError(t, b.Reconfigure(b.Config()))
	after := refuse()
	assert.NotSame(t, before, after)
	_, coreErr := b.Acquire(ctx)
	got, _ := errors.AsType[*core.Error](after)
	assert.Equal(t, *(coreErr.(*core.Error)), *got)
	assert.Equal(t, `bulkhead "bench" is at capacity`, status.Convert(refuse()).Message())
}
