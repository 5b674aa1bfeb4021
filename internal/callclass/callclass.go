// Package callclass reads and writes a call's priority and tenant as they travel between
// processes, in gRPC metadata and HTTP headers, for grpcmw and httpmw alike.
package callclass

import (
	"strconv"
	"strings"

	"github.com/bulkman-go/bulkman/core"
)

// MaxTenantLength is the longest tenant accepted from the network, in bytes; a longer
// value is ignored, so that a caller cannot make the queue hold arbitrary amounts of its
// data.
const MaxTenantLength = 256

// ParsePriority reads an inbound priority: a name ("low", "normal", "high", "critical",
// in any case) or an integer, which is clamped to PriorityLow..PriorityCritical as
// core.WithPriority clamps. ok is false for anything else (empty, unparseable), which the
// caller ignores.
func ParsePriority(s string) (p core.Priority, ok bool) {
	s = strings.TrimSpace(s)
	for _, c := range []core.Priority{core.PriorityLow, core.PriorityNormal, core.PriorityHigh, core.PriorityCritical} {
		if strings.EqualFold(s, c.String()) {
			return c, true
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
			// An integer too large for int: clamp it like any other out-of-range value.
			if strings.HasPrefix(s, "-") {
				return core.PriorityLow, true
			}
			return core.PriorityCritical, true
		}
		return core.PriorityNormal, false
	}
	return core.Priority(min(max(n, int(core.PriorityLow)), int(core.PriorityCritical))), true
}

// ValidTenant reports whether an inbound tenant is used: not empty, at most
// MaxTenantLength bytes.
func ValidTenant(s string) bool { return s != "" && len(s) <= MaxTenantLength }

// FormatPriority is the outbound form of p: its name.
func FormatPriority(p core.Priority) string { return p.String() }
