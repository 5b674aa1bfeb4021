package grpcmw

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

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
// Any other key could never match an RPC (gRPC names every method "/service/method"), so
// ByMethod panics, naming the key, as http.ServeMux.Handle does for a bad pattern: for
// example "pkg.Service/Method" without its leading slash, "/pkg.Service/Get*" (a wildcard
// stands for a whole method) or "/pkg.*/Method". Keys written in the program are found at
// its start; check keys that come from input with ValidateMethod first (package config
// does).
//
// ByMethod copies routes: changing the map afterwards has no effect. The Selector is safe
// for concurrent use, and a lookup allocates nothing (at most two map reads, keyed by
// fullMethod and by a slice of it).
func ByMethod(routes map[string]*core.Bulkhead) Selector {
	exact := make(map[string]*core.Bulkhead)
	services := make(map[string]*core.Bulkhead) // keyed "/pkg.Service/", with the slash
	var other *core.Bulkhead
	keys := slices.Sorted(maps.Keys(routes)) // the same key reported every time
	for _, key := range keys {
		if err := ValidateMethod(key); err != nil {
			panic("grpcmw: ByMethod: " + strings.TrimPrefix(err.Error(), "grpcmw: "))
		}
		b := routes[key]
		switch {
		case key == "*":
			other = b
		case strings.HasSuffix(key, "/*"):
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

// ValidateMethod reports whether key is a ByMethod key that can match an RPC:
// "/pkg.Service/Method", "/pkg.Service/*" or "*". Otherwise it returns an error that names
// the key and says what is wrong, in the form
//
//	grpcmw: method pattern "pkg.Service/Method": a method pattern starts with a slash (want ...)
//
// ByMethod panics on exactly the keys ValidateMethod refuses. It is safe for concurrent use.
func ValidateMethod(key string) error {
	if reason := methodKeyProblem(key); reason != "" {
		return fmt.Errorf("grpcmw: method pattern %q: %s", key, reason)
	}
	return nil
}

// methodKeyProblem says what is wrong with key, or "" if nothing is.
func methodKeyProblem(key string) string {
	const want = `(want "/pkg.Service/Method", "/pkg.Service/*" or "*")`
	if key == "*" {
		return ""
	}
	if strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "a method pattern has no spaces or control characters " + want
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(key, "/"), "/")
	switch {
	case !strings.HasPrefix(key, "/"):
		return "a method pattern starts with a slash " + want
	case !ok || svc == "" || method == "" || strings.Contains(method, "/"):
		return "not a method pattern " + want
	case strings.Contains(svc, "*") || (method != "*" && strings.Contains(method, "*")):
		return `a wildcard stands for a whole method: "/pkg.Service/*" ` + want
	}
	return ""
}
