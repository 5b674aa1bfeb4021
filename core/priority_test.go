package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulkman-go/bulkman/core"
)

func TestPriorityFromContext(t *testing.T) {
	ctx := t.Context()
	assert.Equal(t, core.PriorityNormal, core.PriorityFrom(ctx), "a context without a priority")
	assert.Equal(t, "", core.TenantFrom(ctx), "a context without a tenant")

	tests := []struct {
		set, want core.Priority
	}{
		{core.PriorityLow, core.PriorityLow},
		{core.PriorityNormal, core.PriorityNormal},
		{core.PriorityHigh, core.PriorityHigh},
		{core.PriorityCritical, core.PriorityCritical},
		{core.Priority(3), core.PriorityCritical},   // clamped down
		{core.Priority(127), core.PriorityCritical}, // clamped down
		{core.Priority(-2), core.PriorityLow},       // clamped up
		{core.Priority(-128), core.PriorityLow},     // clamped up
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, core.PriorityFrom(core.WithPriority(ctx, tt.set)), "WithPriority(%d)", int(tt.set))
	}

	ctx = core.WithTenant(core.WithPriority(ctx, core.PriorityHigh), "acme")
	assert.Equal(t, "acme", core.TenantFrom(ctx))
	assert.Equal(t, core.PriorityHigh, core.PriorityFrom(ctx))
}

func TestPriorityString(t *testing.T) {
	for p, want := range map[core.Priority]string{
		core.PriorityLow: "low", core.PriorityNormal: "normal", core.PriorityHigh: "high",
		core.PriorityCritical: "critical", core.Priority(7): "priority(7)", core.Priority(-9): "priority(-9)",
	} {
		assert.Equal(t, want, p.String())
	}
}

func ExampleWithPriority() {
	ctx := core.WithTenant(core.WithPriority(context.Background(), core.PriorityCritical), "acme")
	fmt.Println(core.PriorityFrom(ctx), core.TenantFrom(ctx))
	fmt.Println(core.PriorityFrom(context.Background()))
	// Output:
	// critical acme
	// normal
}
