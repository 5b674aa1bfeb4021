package grpcmw

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/bulkman-go/bulkman/core"
)

// seen is what a handler found in its context.
type seen struct {
	p      core.Priority
	tenant string
}

// recordingService answers every RPC kind and reports the priority and tenant its
// handler's context carries.
func recordingService() (*testService, <-chan seen) {
	ch := make(chan seen, 1)
	return &testService{handle: func(ctx context.Context) error {
		ch <- seen{core.PriorityFrom(ctx), core.TenantFrom(ctx)}
		return nil
	}}, ch
}

func TestServerMetadata(t *testing.T) {
	long := strings.Repeat("t", 257)
	tests := []struct {
		name    string
		trusted bool
		md      []string // key, value pairs sent by the client
		want    seen
	}{
		{"untrusted: ignored", false, []string{PriorityKey, "critical", TenantKey, "acme"}, seen{core.PriorityNormal, ""}},
		{"names", true, []string{PriorityKey, "critical", TenantKey, "acme"}, seen{core.PriorityCritical, "acme"}},
		{"any case", true, []string{PriorityKey, "Low"}, seen{core.PriorityLow, ""}},
		{"an integer", true, []string{PriorityKey, "1"}, seen{core.PriorityHigh, ""}},
		{"an integer too high: clamped", true, []string{PriorityKey, "7"}, seen{core.PriorityCritical, ""}},
		{"an integer too low: clamped", true, []string{PriorityKey, "-99999999999999999999999"}, seen{core.PriorityLow, ""}},
		{"unparseable: ignored", true, []string{PriorityKey, "urgent", TenantKey, "acme"}, seen{core.PriorityNormal, "acme"}},
		{"empty: ignored", true, []string{PriorityKey, "", TenantKey, ""}, seen{core.PriorityNormal, ""}},
		{"a tenant too long: ignored", true, []string{TenantKey, long}, seen{core.PriorityNormal, ""}},
		{"the first of several", true, []string{PriorityKey, "high", PriorityKey, "low"}, seen{core.PriorityHigh, ""}},
		{"none", true, nil, seen{core.PriorityNormal, ""}},
	}
	for _, tt := range tests {
		for _, k := range allKinds {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				b, _ := newBulkhead(t, nil)
				var opts []Option
				if tt.trusted {
					opts = append(opts, WithTrustedMetadata())
				}
				svc, got := recordingService()
				c, _ := newTestServer(t, svc, serverOpts(Always(b), opts...))
				ctx := t.Context()
				if tt.md != nil {
					ctx = metadata.AppendToOutgoingContext(ctx, tt.md...)
				}
				_, err := call(ctx, c, k)
				require.NoError(t, err)
				assert.Equal(t, tt.want, <-got)
				assertIdle(t, b)
			})
		}
	}
}

// TestServerMetadataUnguarded checks that a trusting server passes the values on to
// handlers that have no bulkhead too, so that their own outgoing calls carry them.
func TestServerMetadataUnguarded(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			svc, got := recordingService()
			c, _ := newTestServer(t, svc, serverOpts(Always(nil), WithTrustedMetadata()))
			ctx := metadata.AppendToOutgoingContext(t.Context(), PriorityKey, "high", TenantKey, "acme")
			_, err := call(ctx, c, k)
			require.NoError(t, err)
			assert.Equal(t, seen{core.PriorityHigh, "acme"}, <-got)
		})
	}
}

// TestClientSendsPriority checks the round trip: the client interceptors send the
// context's priority and tenant, a trusting server puts them in its handler's context.
func TestClientSendsPriority(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(context.Context) context.Context
		want seen
	}{
		{"none", func(ctx context.Context) context.Context { return ctx }, seen{core.PriorityNormal, ""}},
		{"both", func(ctx context.Context) context.Context {
			return core.WithTenant(core.WithPriority(ctx, core.PriorityCritical), "acme")
		}, seen{core.PriorityCritical, "acme"}},
		{"a priority", func(ctx context.Context) context.Context { return core.WithPriority(ctx, core.PriorityLow) }, seen{core.PriorityLow, ""}},
		{"a tenant", func(ctx context.Context) context.Context { return core.WithTenant(ctx, "acme") }, seen{core.PriorityNormal, "acme"}},
	}
	for _, tt := range tests {
		for _, guarded := range []bool{false, true} {
			for _, k := range allKinds {
				t.Run(fmt.Sprintf("%s/guarded=%v/%s", tt.name, guarded, k.name), func(t *testing.T) {
					var cb *core.Bulkhead
					if guarded {
						cb, _ = newBulkhead(t, nil)
					}
					svc, got := recordingService()
					c, _ := newTestServer(t, svc, serverOpts(Always(nil), WithTrustedMetadata()), clientOpts(Always(cb))...)
					_, err := call(tt.ctx(t.Context()), c, k)
					require.NoError(t, err)
					assert.Equal(t, tt.want, <-got)
				})
			}
		}
	}
}
