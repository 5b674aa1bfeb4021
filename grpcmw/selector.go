package grpcmw

import (
	"context"
	"strings"

	"github.com/bulkman-go/bulkman/core"
)

// Selector picks the bulkhead that guards the RPC fullMethod ("/pkg.Service/Method", as in
// grpc.UnaryServerInfo.FullMethod and the method argument of client interceptors). A nil
// result lets the call through unguarded.
//
// An interceptor calls its Selector once per RPC, on the RPC's goroutine, so a Selector
// must be safe for concurrent use and should be quick: resolve bulkheads (for example with
// core.Manager.Get) when wiring, not per call. ctx is the RPC's context, for selectors
// that choose by metadata (a tenant, a priority).
type Selector func(ctx context.Context, fullMethod string) *core.Bulkhead

// Always returns a Selector that picks b for every RPC; it is safe for concurrent use.
// Always(nil) guards nothing.
func Always(b *core.Bulkhead) Selector {
	return func(context.Context, string) *core.Bulkhead { return b }
}

// ByMethod returns a Selector that picks a bulkhead by the RPC's full method name. The keys
// of routes are:
//
//   - "/pkg.Service/Method": that method exactly;
//   - "/pkg.Service/*": every method of the service;
//   - "*": any other method.
//
// The most specific key wins: an exact method before its service, a service before "*".
// A method that matches no key is unguarded. A nil value is allowed and means unguarded,
// so that one method can be exempted from its service's bulkhead or from "*" (a health
// check, say).
//
// Every other key, for example "pkg.Service/Method" without its leading slash or
// "/pkg.Service/Get*", is not an error: it is matched literally as an exact method name,
// so it never matches an RPC whose name differs. (ByMethod has no error result; load
// routes from configuration through a validating loader.)
//
// ByMethod copies routes: changing the map afterwards has no effect. The Selector is safe
// for concurrent use, and a lookup allocates nothing (at most two map reads, keyed by
// fullMethod and by a slice of it).
func ByMethod(routes map[string]*core.Bulkhead) Selector {
	exact := make(map[string]*core.Bulkhead)
	services := make(map[string]*core.Bulkhead) // keyed "/pkg.Service/", with the slash
	var other *core.Bulkhead
	for key, b := range routes {
		switch {
		case key == "*":
			other = b
		case isServiceKey(key):
			services[key[:len(key)-1]] = b
		default:
			exact[key] = b
		}
	}
	if len(services) == 0 && other == nil {
		return func(_ context.Context, fullMethod string) *core.Bulkhead {
			return exact[fullMethod]
		}
	}
	return func(_ context.Context, fullMethod string) *core.Bulkhead {
		if b, ok := exact[fullMethod]; ok {
			return b
		}
		if i := strings.LastIndexByte(fullMethod, '/'); i > 0 {
			if b, ok := services[fullMethod[:i+1]]; ok {
				return b
			}
		}
		return other
	}
}

// isServiceKey reports whether key has the form "/pkg.Service/*": a leading slash, a
// non-empty service name without slashes, and "/*".
func isServiceKey(key string) bool {
	if len(key) < 4 || key[0] != '/' || !strings.HasSuffix(key, "/*") {
		return false
	}
	return !strings.Contains(key[1:len(key)-2], "/")
}
