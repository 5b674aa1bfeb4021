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
// bulkhead and the handler see, replacing what the context carried. Without it (and
// without WithPriorityFunc) the server ignores them: every RPC is core.PriorityNormal,
// tenant "".
//
// Trust: a priority from the network lets any caller jump the queue and push other
// callers' RPCs out of it, and a tenant from the network lets a caller spread its flood
// over made-up tenants or hide in another's share. Use it only when every caller that can
// reach the server is trusted to set them (services of one system behind an
// authenticating proxy or mTLS), or when a proxy in front strips and sets these keys; for
// RPCs from the open internet, derive them from what the server has authenticated with
// WithPriorityFunc instead.
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

// WithPriorityFunc makes the server interceptors rank each RPC by what f returns for it:
// its priority and its tenant (for example the identity of its authenticated peer, or the
// owner of an API key in its metadata, and a priority by method). f runs before the
// bulkhead is asked, for every RPC (also those the Selector leaves unguarded), on the
// RPC's goroutine, with the RPC's context and its full method name ("/pkg.Service/Method");
// it must be quick and safe for concurrent use, and must not keep ctx. With
// WithTrustedMetadata as well, f sees the metadata's values already in ctx
// (core.PriorityFrom(ctx)), and what it returns replaces them. The bulkhead and the
// handler see what f returns. A priority out of range is clamped, as by core.WithPriority;
// an empty tenant means none. A nil f is ignored. The client interceptors ignore this
// option.
//
// Trust: f decides who may jump the queue, so derive its answer from what the server has
// verified (the peer's certificate, a checked token or key), not from what any caller may
// claim.
func WithPriorityFunc(f func(ctx context.Context, fullMethod string) (p core.Priority, tenant string)) Option {
	return func(o *options) {
		if f != nil {
			o.priorityFunc = f
		}
	}
}

// inbound returns ctx with the priority and tenant of the RPC of fullMethod as the options
// give them: from its incoming metadata when the server trusts it, then from the priority
// function.
func (o *options) inbound(ctx context.Context, fullMethod string) context.Context {
	if o.trustMetadata {
		ctx = o.trusted(ctx)
	}
	if f := o.priorityFunc; f != nil {
		p, tenant := f(ctx, fullMethod)
		ctx = core.WithTenant(core.WithPriority(ctx, p), tenant)
	}
	return ctx
}

// trusted returns ctx with the priority and tenant of the RPC's incoming metadata.
func (o *options) trusted(ctx context.Context) context.Context {
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
