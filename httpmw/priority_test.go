package httpmw

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// seen is what a handler found in its request's context.
type seen struct {
	p      core.Priority
	tenant string
}

// recording returns a handler that reports the priority and tenant of each request.
func recording() (http.Handler, <-chan seen) {
	ch := make(chan seen, 1)
	return http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ch <- seen{core.PriorityFrom(r.Context()), core.TenantFrom(r.Context())}
	}), ch
}

// byAPIKey derives the tenant from an API key and ranks one key's calls critical.
func byAPIKey(r *http.Request) (core.Priority, string) {
	switch key := r.Header.Get("X-Api-Key"); key {
	case "":
		return core.PriorityFrom(r.Context()), core.TenantFrom(r.Context())
	case "checkout-key":
		return core.PriorityCritical, "checkout"
	default:
		return core.PriorityLow, "key:" + key
	}
}

func TestHandlerPriority(t *testing.T) {
	long := strings.Repeat("t", 257)
	tests := []struct {
		name   string
		opts   []Option
		header http.Header
		want   seen
	}{
		{"untrusted: ignored", nil, http.Header{PriorityHeader: {"critical"}, TenantHeader: {"acme"}}, seen{core.PriorityNormal, ""}},
		{"names", []Option{WithTrustedHeaders()}, http.Header{PriorityHeader: {"critical"}, TenantHeader: {"acme"}}, seen{core.PriorityCritical, "acme"}},
		{"any case", []Option{WithTrustedHeaders()}, http.Header{PriorityHeader: {"HIGH"}}, seen{core.PriorityHigh, ""}},
		{"an integer", []Option{WithTrustedHeaders()}, http.Header{PriorityHeader: {"-1"}}, seen{core.PriorityLow, ""}},
		{"an integer out of range: clamped", []Option{WithTrustedHeaders()}, http.Header{PriorityHeader: {"100"}}, seen{core.PriorityCritical, ""}},
		{"unparseable: ignored", []Option{WithTrustedHeaders()}, http.Header{PriorityHeader: {"urgent"}, TenantHeader: {"acme"}}, seen{core.PriorityNormal, "acme"}},
		{"a tenant too long: ignored", []Option{WithTrustedHeaders()}, http.Header{TenantHeader: {long}}, seen{core.PriorityNormal, ""}},
		{"the first of several", []Option{WithTrustedHeaders()}, http.Header{PriorityHeader: {"low", "critical"}}, seen{core.PriorityLow, ""}},
		{"a func", []Option{WithPriorityFunc(byAPIKey)}, http.Header{"X-Api-Key": {"checkout-key"}, PriorityHeader: {"low"}}, seen{core.PriorityCritical, "checkout"}},
		{"a func over headers", []Option{WithTrustedHeaders(), WithPriorityFunc(byAPIKey)}, http.Header{"X-Api-Key": {"k1"}, PriorityHeader: {"high"}}, seen{core.PriorityLow, "key:k1"}},
		{"a func that keeps the headers'", []Option{WithTrustedHeaders(), WithPriorityFunc(byAPIKey)}, http.Header{PriorityHeader: {"high"}, TenantHeader: {"acme"}}, seen{core.PriorityHigh, "acme"}},
		{"a func out of range: clamped", []Option{WithPriorityFunc(func(*http.Request) (core.Priority, string) { return 9, "" })}, nil, seen{core.PriorityCritical, ""}},
	}
	for _, tt := range tests {
		for _, mw := range []string{"Handler", "Middleware", "Middleware unguarded"} {
			t.Run(tt.name+"/"+mw, func(t *testing.T) {
				b := newBulkhead(t, "api", single)
				next, got := recording()
				var h http.Handler
				switch mw {
				case "Handler":
					h = Handler(next, b, tt.opts...)
				case "Middleware":
					h = Middleware(func(*http.Request) *core.Bulkhead { return b }, tt.opts...)(next)
				default:
					h = Middleware(func(*http.Request) *core.Bulkhead { return nil }, tt.opts...)(next)
				}
				r := get("/")
				for k, vs := range tt.header {
					r.Header[k] = vs
				}
				rec := serve(h, r)
				require.Equal(t, http.StatusOK, rec.Code)
				assert.Equal(t, tt.want, <-got)
				assert.Zero(t, b.Stats().InFlightCount)
			})
		}
	}
}

// TestTransportSendsPriority checks the round trip over a real server: Transport sends
// the context's priority and tenant as headers, a trusting Handler puts them in the
// context again, and the caller's request is not modified.
func TestTransportSendsPriority(t *testing.T) {
	next, got := recording()
	srv := httptest.NewServer(Handler(next, newBulkhead(t, "server"), WithTrustedHeaders()))
	t.Cleanup(srv.Close)
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
			name := tt.name + "/unguarded"
			if guarded {
				name = tt.name + "/guarded"
			}
			t.Run(name, func(t *testing.T) {
				cb := newBulkhead(t, "client")
				client := &http.Client{Transport: Transport(nil, func(*http.Request) *core.Bulkhead {
					if guarded {
						return cb
					}
					return nil
				})}
				t.Cleanup(client.CloseIdleConnections)
				req, err := http.NewRequestWithContext(tt.ctx(t.Context()), http.MethodGet, srv.URL, nil)
				require.NoError(t, err)
				req.Header.Set(PriorityHeader, "high") // replaced when the context has one
				resp, err := client.Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				want := tt.want
				if want.p == core.PriorityNormal {
					want.p = core.PriorityHigh // the request's own header went as it was
				}
				assert.Equal(t, want, <-got)
				assert.Equal(t, []string{"high"}, req.Header.Values(PriorityHeader), "the caller's request is not modified")
				assert.Empty(t, req.Header.Values(TenantHeader))
				assert.Zero(t, cb.Stats().InFlightCount)
			})
		}
	}
}
