package grpcmw

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

// apiKeyHeader is the metadata key the test servers authenticate callers by.
const apiKeyHeader = "x-api-key"

// byAPIKey derives the tenant from an API key and ranks one key's RPCs critical and the
// streaming methods low; an RPC without a key keeps what the context carries.
func byAPIKey(ctx context.Context, fullMethod string) (core.Priority, string) {
	v := metadata.ValueFromIncomingContext(ctx, apiKeyHeader)
	switch {
	case len(v) == 0:
		return core.PriorityFrom(ctx), core.TenantFrom(ctx)
	case v[0] == "checkout-key":
		return core.PriorityCritical, "checkout"
	case fullMethod != unaryRPC.method:
		return core.PriorityLow, "key:" + v[0]
	}
	return core.PriorityNormal, "key:" + v[0]
}

func TestServerPriorityFunc(t *testing.T) {
	fixed := func(p core.Priority, tenant string) func(context.Context, string) (core.Priority, string) {
		return func(context.Context, string) (core.Priority, string) { return p, tenant }
	}
	tests := []struct {
		name string
		opts []Option
		md   []string // key, value pairs sent by the client
		want func(k kind) seen
	}{
		{
			"a func: metadata untrusted",
			[]Option{WithPriorityFunc(byAPIKey)},
			[]string{apiKeyHeader, "checkout-key", PriorityKey, "low", TenantKey, "acme"},
			func(kind) seen { return seen{core.PriorityCritical, "checkout"} },
		},
		{
			"a func by method",
			[]Option{WithPriorityFunc(byAPIKey)},
			[]string{apiKeyHeader, "k1"},
			func(k kind) seen {
				if k == unaryRPC {
					return seen{core.PriorityNormal, "key:k1"}
				}
				return seen{core.PriorityLow, "key:k1"}
			},
		},
		{
			"a func without trusted metadata sees none",
			[]Option{WithPriorityFunc(byAPIKey)},
			[]string{PriorityKey, "high", TenantKey, "acme"},
			func(kind) seen { return seen{core.PriorityNormal, ""} },
		},
		{
			"a func over trusted metadata",
			[]Option{WithTrustedMetadata(), WithPriorityFunc(byAPIKey)},
			[]string{apiKeyHeader, "checkout-key", PriorityKey, "low", TenantKey, "acme"},
			func(kind) seen { return seen{core.PriorityCritical, "checkout"} },
		},
		{
			"a func that keeps the metadata's",
			[]Option{WithPriorityFunc(byAPIKey), WithTrustedMetadata()}, // the order does not matter
			[]string{PriorityKey, "high", TenantKey, "acme"},
			func(kind) seen { return seen{core.PriorityHigh, "acme"} },
		},
		{
			"an empty tenant replaces the metadata's",
			[]Option{WithTrustedMetadata(), WithPriorityFunc(fixed(core.PriorityHigh, ""))},
			[]string{PriorityKey, "low", TenantKey, "acme"},
			func(kind) seen { return seen{core.PriorityHigh, ""} },
		},
		{
			"too high: clamped",
			[]Option{WithPriorityFunc(fixed(9, "t"))},
			nil,
			func(kind) seen { return seen{core.PriorityCritical, "t"} },
		},
		{
			"too low: clamped",
			[]Option{WithPriorityFunc(fixed(-128, ""))},
			nil,
			func(kind) seen { return seen{core.PriorityLow, ""} },
		},
		{
			"a nil func: ignored",
			[]Option{WithPriorityFunc(fixed(core.PriorityHigh, "t")), WithPriorityFunc(nil)},
			nil,
			func(kind) seen { return seen{core.PriorityHigh, "t"} },
		},
		{
			"a nil func alone: metadata as before",
			[]Option{WithTrustedMetadata(), WithPriorityFunc(nil)},
			[]string{PriorityKey, "low", TenantKey, "acme"},
			func(kind) seen { return seen{core.PriorityLow, "acme"} },
		},
	}
	for _, tt := range tests {
		for _, guarded := range []bool{true, false} {
			for _, k := range allKinds {
				t.Run(fmt.Sprintf("%s/guarded=%v/%s", tt.name, guarded, k.name), func(t *testing.T) {
					var b *core.Bulkhead
					if guarded {
						b, _ = newBulkhead(t, nil)
					}
					svc, got := recordingService()
					c, _ := newTestServer(t, svc, serverOpts(Always(b), tt.opts...))
					ctx := t.Context()
					if tt.md != nil {
						ctx = metadata.AppendToOutgoingContext(ctx, tt.md...)
					}
					_, err := call(ctx, c, k)
					require.NoError(t, err)
					assert.Equal(t, tt.want(k), <-got)
					if guarded {
						assertIdle(t, b)
					}
				})
			}
		}
	}
}

// TestServerPriorityFuncMethod checks that f gets the RPC's full method name and the
// RPC's incoming context.
func TestServerPriorityFuncMethod(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			methods := make(chan string, 1)
			f := func(ctx context.Context, fullMethod string) (core.Priority, string) {
				methods <- fullMethod
				return core.PriorityNormal, metadata.ValueFromIncomingContext(ctx, apiKeyHeader)[0]
			}
			svc, got := recordingService()
			c, _ := newTestServer(t, svc, serverOpts(nil, WithPriorityFunc(f)))
			_, err := call(metadata.AppendToOutgoingContext(t.Context(), apiKeyHeader, "k9"), c, k)
			require.NoError(t, err)
			assert.Equal(t, k.method, <-methods)
			assert.Equal(t, seen{core.PriorityNormal, "k9"}, <-got)
		})
	}
}

// TestServerPriorityFuncQueue checks that the bulkhead queues RPCs by what f returns:
// RPCs waiting behind one that holds the only permit start critical first, then the
// tenants of one priority in turn, and a critical RPC arriving at a full queue displaces
// the newest waiter of the lowest priority, which gets ResourceExhausted.
func TestServerPriorityFuncQueue(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		for _, k := range []kind{unaryRPC, bidiRPC} {
			t.Run(fmt.Sprintf("trusted=%v/%s", trusted, k.name), func(t *testing.T) {
				rejected := make(chan core.Priority, 8)
				b, err := core.New(func() core.Config {
					c := core.DefaultConfig("svc")
					c.MaxConcurrentCalls = 1
					c.MaxQueueSize = 5
					return c
				}(), core.WithEventHook(func(e core.Event) {
					if e.Kind == core.EventRejected {
						rejected <- e.Priority
					}
				}))
				require.NoError(t, err)

				// The tenant is the caller's key; its priority the one the key's name says.
				ranks := map[string]core.Priority{"low": core.PriorityLow, "normal": core.PriorityNormal, "critical": core.PriorityCritical}
				f := func(ctx context.Context, _ string) (core.Priority, string) {
					key := metadata.ValueFromIncomingContext(ctx, apiKeyHeader)[0]
					var name, tenant string
					_, _ = fmt.Sscanf(key, "%s %s", &name, &tenant)
					return ranks[name], tenant
				}
				opts := []Option{WithPriorityFunc(f)}
				if trusted {
					// The metadata's claims are overruled by f.
					opts = append(opts, WithTrustedMetadata())
				}
				blocker := newGate()
				started := make(chan string, 16)
				svc := &testService{handle: func(ctx context.Context) error {
					key := metadata.ValueFromIncomingContext(ctx, apiKeyHeader)[0]
					if key == "normal blocker" {
						return blocker.handle(ctx)
					}
					started <- key
					return nil
				}}
				c, _ := newTestServer(t, svc, serverOpts(Always(b), opts...))
				send := func(key string) <-chan result {
					ctx := metadata.AppendToOutgoingContext(t.Context(), apiKeyHeader, key, PriorityKey, "critical")
					return goCall(ctx, c, k)
				}
				hold := send("normal blocker")
				<-blocker.entered

				// Queued one by one, so that their order of arrival is known.
				var queued []<-chan result
				for i, key := range []string{"low a", "normal a", "normal a", "normal a", "normal b"} {
					queued = append(queued, send(key))
					require.Eventually(t, func() bool { return b.Stats().QueuedTasks == i+1 }, testTimeout, tick)
				}
				// The queue is full: a critical RPC displaces the low one.
				crit := send("critical c")
				select {
				case r := <-queued[0]:
					assert.Equal(t, codes.ResourceExhausted, status.Code(r.err), "the displaced RPC: %v", r.err)
				case <-time.After(testTimeout):
					require.FailNow(t, "the low RPC was not displaced")
				}
				assert.Equal(t, core.PriorityLow, <-rejected)

				close(blocker.release)
				require.NoError(t, (<-hold).err)
				for _, ch := range append(queued[1:], crit) {
					assert.NoError(t, (<-ch).err)
				}
				var order []string
				for range 5 {
					order = append(order, <-started)
				}
				assert.Equal(t, []string{"critical c", "normal a", "normal b", "normal a", "normal a"}, order)
				assertIdle(t, b)
			})
		}
	}
}
