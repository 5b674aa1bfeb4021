package core

import (
	"context"
	"strconv"
)

// Priority says how important a call is when a bulkhead must choose which calls to shed.
// The zero value, PriorityNormal, is the priority of a call that has none.
//
// Values outside PriorityLow..PriorityCritical are clamped to the nearest of the two by
// WithPriority, so that a value read from the network cannot rank above PriorityCritical.
type Priority int8

// The priorities, from the first shed to the last.
const (
	PriorityLow      Priority = -1 // shed first: batch work, prefetches
	PriorityNormal   Priority = 0  // the zero value: a call without a priority
	PriorityHigh     Priority = 1  // interactive work
	PriorityCritical Priority = 2  // shed last: the calls the service exists for
)

// numPriorities is the number of distinct priorities; index returns 0 for PriorityLow.
const numPriorities = int(PriorityCritical-PriorityLow) + 1

var priorityNames = [numPriorities]string{"low", "normal", "high", "critical"}

// String returns "low", "normal", "high" or "critical", and "priority(N)" for a value
// outside the range.
func (p Priority) String() string {
	if p.valid() {
		return priorityNames[p.index()]
	}
	return "priority(" + strconv.Itoa(int(p)) + ")"
}

func (p Priority) valid() bool { return p >= PriorityLow && p <= PriorityCritical }

// index maps a valid priority to 0..numPriorities-1, PriorityLow first.
func (p Priority) index() int { return int(p - PriorityLow) }

// clamp returns p limited to PriorityLow..PriorityCritical.
func (p Priority) clamp() Priority { return min(max(p, PriorityLow), PriorityCritical) }

type priorityKey struct{}

type tenantKey struct{}

// WithPriority returns a copy of ctx that carries p; Execute and Acquire read it when they
// queue the call. A p outside PriorityLow..PriorityCritical is clamped to the nearest bound.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p.clamp())
}

// PriorityFrom returns the priority ctx carries, or PriorityNormal when it carries none.
//
// A context without a priority of WithPriority's but with one of failsafe-go's gives that
// one: its level (priority.ContextWithLevel, 0 to 499) if it has one, else its priority
// (priority.ContextWithPriority), as failsafe-go itself prefers the level. failsafe-go's
// five priorities, and the five bands of 100 levels that belong to them, map to four:
//
//	VeryLow, Low    (levels 0-199)    PriorityLow
//	Medium          (levels 200-299)  PriorityNormal
//	High            (levels 300-399)  PriorityHigh
//	VeryHigh        (levels 400-499)  PriorityCritical
//
// Medium is failsafe-go's middle, as PriorityNormal is the priority of a call without
// one; below it, bulkman has one priority for failsafe-go's two; above it, VeryHigh is the
// work to shed last. A level above 499 or a priority above VeryHigh counts as the
// highest; a negative one (failsafe-go's "none") as none.
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return failsafePriority(ctx)
}

// WithTenant returns a copy of ctx that carries tenant, the party a call is made for (a
// customer, an API key's owner). Within a priority, a bulkhead's queue serves tenants in
// turn, so that one tenant's flood cannot starve the others. The empty string is the
// tenant of calls that carry none.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFrom returns the tenant ctx carries, or "" when it carries none.
func TenantFrom(ctx context.Context) string {
	s, _ := ctx.Value(tenantKey{}).(string)
	return s
}

// classOf returns the priority and tenant of the call of ctx, for the queue. The bulkhead
// reads them only when a call cannot start at once, so that calls that need no queue do
// not pay for the lookups.
func classOf(ctx context.Context) (Priority, string) {
	return PriorityFrom(ctx).clamp(), TenantFrom(ctx)
}
