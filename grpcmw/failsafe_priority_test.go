package grpcmw

import (
	"context"
	"testing"

	"github.com/failsafe-go/failsafe-go/failsafegrpc"
	"github.com/failsafe-go/failsafe-go/priority"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bulkman-go/bulkman/core"
)

// failsafeSeen is what a handler found of failsafe-go's values in its context.
type failsafeSeen struct {
	p        core.Priority
	level    int               // priority.LevelKey's value, -1 when absent
	fsPrio   priority.Priority // priority.FromContext: -1 when absent
	hasLevel bool
}

// failsafeRecordingService answers every RPC kind and reports what its handler's context
// carries, of bulkman's and of failsafe-go's.
func failsafeRecordingService() (*testService, <-chan failsafeSeen) {
	ch := make(chan failsafeSeen, 1)
	return &testService{handle: func(ctx context.Context) error {
		level, ok := ctx.Value(priority.LevelKey).(int)
		if !ok {
			level = -1
		}
		ch <- failsafeSeen{core.PriorityFrom(ctx), level, priority.FromContext(ctx), ok}
		return nil
	}}, ch
}

// TestServerFailsafeMetadata checks that a trusting server takes failsafe-go's priority
// metadata when the RPC has no usable bulkman-priority, and puts it in the context as
// failsafe-go's own value.
func TestServerFailsafeMetadata(t *testing.T) {
	none := priority.Priority(-1)
	tests := []struct {
		name    string
		trusted bool
		md      []string
		want    failsafeSeen
	}{
		{"untrusted: ignored", false, []string{failsafeLevelKey, "450"}, failsafeSeen{core.PriorityNormal, -1, none, false}},
		{"a level", true, []string{failsafeLevelKey, "450"}, failsafeSeen{core.PriorityCritical, 450, none, true}},
		{"a level of the lowest band", true, []string{failsafeLevelKey, "150"}, failsafeSeen{core.PriorityLow, 150, none, true}},
		{"a level above 499: 499", true, []string{failsafeLevelKey, "9000"}, failsafeSeen{core.PriorityCritical, 499, none, true}},
		{"a negative level: ignored", true, []string{failsafeLevelKey, "-5"}, failsafeSeen{core.PriorityNormal, -1, none, false}},
		{"an unparseable level: the priority", true, []string{failsafeLevelKey, "x", failsafePriorityKey, "3"}, failsafeSeen{core.PriorityHigh, -1, priority.High, false}},
		{"a priority", true, []string{failsafePriorityKey, "3"}, failsafeSeen{core.PriorityHigh, -1, priority.High, false}},
		{"a priority above 4: 4", true, []string{failsafePriorityKey, "12"}, failsafeSeen{core.PriorityCritical, -1, priority.VeryHigh, false}},
		{"a level wins over a priority", true, []string{failsafePriorityKey, "4", failsafeLevelKey, "20"}, failsafeSeen{core.PriorityLow, 20, none, true}},
		{"bulkman's key wins", true, []string{PriorityKey, "high", failsafeLevelKey, "20"}, failsafeSeen{core.PriorityHigh, -1, none, false}},
		{"an unusable bulkman key: failsafe-go's", true, []string{PriorityKey, "urgent", failsafeLevelKey, "20"}, failsafeSeen{core.PriorityLow, 20, none, true}},
	}
	for _, tt := range tests {
		for _, k := range allKinds {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				b, _ := newBulkhead(t, nil)
				var opts []Option
				if tt.trusted {
					opts = append(opts, WithTrustedMetadata())
				}
				svc, got := failsafeRecordingService()
				c, _ := newTestServer(t, svc, serverOpts(Always(b), opts...))
				_, err := call(metadata.AppendToOutgoingContext(t.Context(), tt.md...), c, k)
				require.NoError(t, err)
				assert.Equal(t, tt.want, <-got)
				assertIdle(t, b)
			})
		}
	}
}

// TestFailsafeClientPriority checks the round trip from failsafe-go's own client
// interceptor to a trusting bulkman server.
func TestFailsafeClientPriority(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(context.Context) context.Context
		want core.Priority
	}{
		{"a priority", func(ctx context.Context) context.Context { return priority.VeryHigh.AddTo(ctx) }, core.PriorityCritical},
		{"a level", func(ctx context.Context) context.Context { return priority.ContextWithLevel(ctx, 310) }, core.PriorityHigh},
		{"none", func(ctx context.Context) context.Context { return ctx }, core.PriorityNormal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newBulkhead(t, nil)
			svc, got := failsafeRecordingService()
			c, _ := newTestServer(t, svc, serverOpts(Always(b), WithTrustedMetadata()),
				grpc.WithUnaryInterceptor(failsafegrpc.NewUnaryClientInterceptorWithLevel()))
			_, err := call(tt.ctx(t.Context()), c, unaryRPC)
			require.NoError(t, err)
			assert.Equal(t, tt.want, (<-got).p)
		})
	}
}

// TestClientSendsFailsafePriority checks that grpcmw's client interceptors send a
// failsafe-go priority of the call's context as bulkman's, mapped as core.PriorityFrom
// maps it.
func TestClientSendsFailsafePriority(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			svc, got := recordingService()
			c, _ := newTestServer(t, svc, serverOpts(Always(nil), WithTrustedMetadata()), clientOpts(Always(nil))...)
			_, err := call(priority.High.AddTo(t.Context()), c, k)
			require.NoError(t, err)
			assert.Equal(t, seen{core.PriorityHigh, ""}, <-got)
		})
	}
}
