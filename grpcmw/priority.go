package grpcmw

import (
	"context"
	"strconv"
	"strings"

	"github.com/failsafe-go/failsafe-go/priority"
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
// An RPC without a usable PriorityKey may carry failsafe-go's priority instead, as
// failsafegrpc's NewUnaryClientInterceptorWithLevel sends it: x-failsafe-level (0 to 499),
// else x-failsafe-priority (0, VeryLow, to 4, VeryHigh). The server puts it in the
// context as failsafe-go's own (priority.ContextWithLevel, priority.ContextWithPriority),
// as failsafegrpc's server interceptor does, where core.PriorityFrom finds it (mapped as
// PriorityFrom documents; a priority of bulkman's already in the context wins) and where
// failsafe-go's policies in the handler find it too. A level above 499 counts as 499 and
// a priority above 4 as 4; a negative or unparseable one is ignored.
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
	prioritySet := false
	if v := metadata.ValueFromIncomingContext(ctx, PriorityKey); len(v) > 0 {
		if p, ok := callclass.ParsePriority(v[0]); ok {
			ctx, prioritySet = core.WithPriority(ctx, p), true
		}
	}
	if !prioritySet {
		ctx = failsafeInbound(ctx)
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

// The metadata keys of failsafe-go's priorities (failsafegrpc's, lower case as gRPC
// keeps them).
const (
	failsafeLevelKey    = "x-failsafe-level"
	failsafePriorityKey = "x-failsafe-priority"
)

// failsafeInbound returns ctx with the failsafe-go level, else priority, of the RPC's
// incoming metadata, when it carries a usable one.
func failsafeInbound(ctx context.Context) context.Context {
	if v := metadata.ValueFromIncomingContext(ctx, failsafeLevelKey); len(v) > 0 {
		if level, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil && level >= 0 {
			return priority.ContextWithLevel(ctx, min(level, priority.VeryHigh.MaxLevel()))
		}
	}
	if v := metadata.ValueFromIncomingContext(ctx, failsafePriorityKey); len(v) > 0 {
		if p, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil && p >= 0 {
			return priority.ContextWithPriority(ctx, min(priority.Priority(p), priority.VeryHigh))
		}
	}
	return ctx
}
