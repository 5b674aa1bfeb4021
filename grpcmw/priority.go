package grpcmw

import (
	"context"

	"google.golang.org/grpc/metadata"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/callclass"
)

// The metadata keys that carry a call's priority and tenant between processes. The client
// interceptors send them from the call's context (core.WithPriority, core.WithTenant);
// the server interceptors read them only with WithTrustedMetadata.
//
// PriorityKey holds the priority's name ("low", "normal", "high", "critical"; any case)
// or an integer, which is clamped to core.PriorityLow..core.PriorityCritical. TenantKey
// holds the tenant, at most 256 bytes.
const (
	PriorityKey = "bulkman-priority"
	TenantKey   = "bulkman-tenant"
)

// WithTrustedMetadata makes the server interceptors take each RPC's priority and tenant
// from its incoming metadata (PriorityKey, TenantKey) and put them in the context the
// bulkhead and the handler see, replacing what the context carried. Without it the
// server ignores them: every RPC is core.PriorityNormal, tenant "".
//
// Trust: a priority from the network lets any caller jump the queue and push other
// callers' RPCs out of it, and a tenant from the network lets a caller spread its flood
// over made-up tenants or hide in another's share. Use it only when every caller that can
// reach the server is trusted to set them (services of one system behind an
// authenticating proxy or mTLS), or when a proxy in front strips and sets these keys.
//
// An unusable value is ignored as if absent: a priority that is neither a name nor an
// integer, an empty tenant or one longer than 256 bytes. Of several values the first
// counts. The values are copied out of the metadata; nothing is kept after the RPC. The
// client interceptors ignore this option: they always send what the context carries.
func WithTrustedMetadata() Option {
	return func(o *options) { o.trustMetadata = true }
}

// inbound returns ctx with the priority and tenant of the RPC's incoming metadata, when
// the server trusts them.
func (o *options) inbound(ctx context.Context) context.Context {
	if !o.trustMetadata {
		return ctx
	}
	if v := metadata.ValueFromIncomingContext(ctx, PriorityKey); len(v) > 0 {
		if p, ok := callclass.ParsePriority(v[0]); ok {
			ctx = core.WithPriority(ctx, p)
		}
	}
	if v := metadata.ValueFromIncomingContext(ctx, TenantKey); len(v) > 0 && callclass.ValidTenant(v[0]) {
		ctx = core.WithTenant(ctx, v[0])
	}
	return ctx
}

// outbound returns ctx with the call's priority and tenant added to its outgoing
// metadata, if it carries any: a priority other than normal, a tenant other than "".
func outbound(ctx context.Context) context.Context {
	p, tenant := core.PriorityFrom(ctx), core.TenantFrom(ctx)
	switch {
	case p != core.PriorityNormal && tenant != "":
		return metadata.AppendToOutgoingContext(ctx, PriorityKey, callclass.FormatPriority(p), TenantKey, tenant)
	case p != core.PriorityNormal:
		return metadata.AppendToOutgoingContext(ctx, PriorityKey, callclass.FormatPriority(p))
	case tenant != "":
		return metadata.AppendToOutgoingContext(ctx, TenantKey, tenant)
	}
	return ctx
}
