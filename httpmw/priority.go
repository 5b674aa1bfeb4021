package httpmw

import (
	"net/http"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/callclass"
)

// The headers that carry a request's priority and tenant between processes. Transport
// sends them from the request's context (core.WithPriority, core.WithTenant); Handler
// and Middleware read them only with WithTrustedHeaders.
//
// PriorityHeader holds the priority's name ("low", "normal", "high", "critical"; any
// case) or an integer, which is clamped to core.PriorityLow..core.PriorityCritical.
// TenantHeader holds the tenant, at most 256 bytes.
const (
	PriorityHeader = "Bulkman-Priority"
	TenantHeader   = "Bulkman-Tenant"
)

// WithTrustedHeaders makes Handler and Middleware take each request's priority and tenant
// from its headers (PriorityHeader, TenantHeader) and put them in the request's context,
// which the bulkhead and the next handler see. Without it (and without
// WithPriorityFunc) the headers are ignored: every request is core.PriorityNormal,
// tenant "", unless the request's context already carries others.
//
// Trust: a priority from the network lets any client jump the queue and push other
// clients' requests out of it, and a tenant from the network lets a client spread its
// flood over made-up tenants or hide in another's share. Use it only when every client
// that can reach the handler is trusted to set them (services of one system), or when a
// proxy in front strips and sets these headers; for requests from the open internet,
// derive them from what the server has authenticated with WithPriorityFunc instead.
//
// An unusable value is ignored as if absent: a priority that is neither a name nor an
// integer, an empty tenant or one longer than 256 bytes. Of several values the first
// counts. Transport ignores this option.
func WithTrustedHeaders() Option {
	return func(o *options) { o.trustHeaders = true }
}

// WithPriorityFunc makes Handler and Middleware rank each request by what f returns for
// it: its priority and its tenant (for example the owner of the request's API key, or the
// subject of its verified token). f runs before the bulkhead is asked, for every request
// (also those a Middleware's Selector leaves unguarded), on the request's goroutine; it
// must be quick and safe for concurrent use, and must not keep r. With
// WithTrustedHeaders as well, f sees r with the headers' values already in its context
// (core.PriorityFrom(r.Context())), and what it returns replaces them. A priority out of
// range is clamped, as by core.WithPriority; an empty tenant means none. A nil f is
// ignored. Transport ignores this option.
func WithPriorityFunc(f func(r *http.Request) (p core.Priority, tenant string)) Option {
	return func(o *options) {
		if f != nil {
			o.priorityFunc = f
		}
	}
}

// classify returns r with the priority and tenant the options give it in its context, or
// r itself when they give none.
func (o *options) classify(r *http.Request) *http.Request {
	ctx := r.Context()
	if o.trustHeaders {
		if v := r.Header.Values(PriorityHeader); len(v) > 0 {
			if p, ok := callclass.ParsePriority(v[0]); ok {
				ctx = core.WithPriority(ctx, p)
			}
		}
		if v := r.Header.Values(TenantHeader); len(v) > 0 && callclass.ValidTenant(v[0]) {
			ctx = core.WithTenant(ctx, v[0])
		}
	}
	if f := o.priorityFunc; f != nil {
		in := r
		if ctx != r.Context() {
			in = r.WithContext(ctx)
		}
		p, tenant := f(in)
		ctx = core.WithTenant(core.WithPriority(ctx, p), tenant)
	}
	if ctx == r.Context() {
		return r
	}
	return r.WithContext(ctx)
}

// outbound returns req, or a copy of it with the priority and tenant of its context set
// as headers (replacing any), when the context carries any: a priority other than
// normal, a tenant other than "". The caller's request is not modified.
func outbound(req *http.Request) *http.Request {
	ctx := req.Context()
	p, tenant := core.PriorityFrom(ctx), core.TenantFrom(ctx)
	if p == core.PriorityNormal && tenant == "" {
		return req
	}
	out := req.WithContext(ctx) // a shallow copy
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header, 2)
	}
	if p != core.PriorityNormal {
		out.Header.Set(PriorityHeader, callclass.FormatPriority(p))
	}
	if tenant != "" {
		out.Header.Set(TenantHeader, tenant)
	}
	return out
}
