package grpcmw

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulkman-go/bulkman/core"
)

func TestByMethod(t *testing.T) {
	bh := func(name string) *core.Bulkhead {
		b, err := core.New(core.DefaultConfig(name))
		if err != nil {
			panic(err)
		}
		return b
	}
	exact, service, other := bh("exact"), bh("service"), bh("other")
	routes := map[string]*core.Bulkhead{
		"/shop.Orders/Create":  exact,
		"/shop.Orders/*":       service,
		"/shop.Orders/Health":  nil, // exempt from the service's bulkhead
		"*":                    other,
		"/shop.Admin/*":        nil, // a whole service exempt from "*"
		"/shop.Inventory/List": exact,
	}
	sel := ByMethod(routes)
	routes["/shop.Orders/Create"] = other // ByMethod copied the map

	for _, tc := range []struct {
		method string
		want   *core.Bulkhead
	}{
		{"/shop.Orders/Create", exact},          // exact beats service
		{"/shop.Orders/Cancel", service},        // service beats "*"
		{"/shop.Orders/Health", nil},            // an exact nil exempts one method
		{"/shop.Admin/Reset", nil},              // a service nil exempts the service
		{"/shop.Inventory/List", exact},         // exact beats "*"
		{"/shop.Inventory/Get", other},          // "*" catches the rest
		{"/grpc.health.v1.Health/Check", other}, // a service is its full name, not a prefix
		{"/shop.Orders.V2/Create", other},
		{"/M", other},
		{"", other},
		{"no-slash", other},
	} {
		assert.Same(t, tc.want, sel(t.Context(), tc.method), tc.method)
	}

	t.Run("without fallback", func(t *testing.T) {
		sel := ByMethod(map[string]*core.Bulkhead{"/shop.Orders/Create": exact})
		assert.Same(t, exact, sel(t.Context(), "/shop.Orders/Create"))
		assert.Nil(t, sel(t.Context(), "/shop.Orders/Cancel"))
	})
	t.Run("empty and nil", func(t *testing.T) {
		assert.Nil(t, ByMethod(nil)(t.Context(), "/shop.Orders/Create"))
		assert.Nil(t, ByMethod(map[string]*core.Bulkhead{})(t.Context(), "/shop.Orders/Create"))
	})
	t.Run("allocation-free", func(t *testing.T) {
		ctx := t.Context()
		allocs := testing.AllocsPerRun(100, func() {
			_ = sel(ctx, "/shop.Orders/Cancel")
			_ = sel(ctx, "/shop.Orders/Create")
			_ = sel(ctx, "/shop.Inventory/Get")
		})
		assert.Zero(t, allocs)
	})
}

func TestAlways(t *testing.T) {
	b, err := core.New(core.DefaultConfig("b"))
	assert.NoError(t, err)
	assert.Same(t, b, Always(b)(t.Context(), "/any/Thing"))
	assert.Nil(t, Always(nil)(t.Context(), "/any/Thing"))
}

// Keys that can match no RPC: ValidateMethod says why and names the key, and ByMethod
// panics with the same message.
func TestValidateMethod(t *testing.T) {
	for _, key := range []string{"*", "/shop.Orders/Create", "/shop.Orders/*", "/grpc.health.v1.Health/Check", "/s/m"} {
		assert.NoError(t, ValidateMethod(key), key)
		assert.NotPanics(t, func() { ByMethod(map[string]*core.Bulkhead{key: nil}) }, key)
	}
	for _, tc := range []struct{ key, why string }{
		{"shop.Orders/Create", "a method pattern starts with a slash"},
		{"/shop.Orders/Get*", `a wildcard stands for a whole method: "/pkg.Service/*"`},
		{"/shop.*/Get", "a wildcard stands for a whole method"},
		{"/grpc.health.v1.*", "not a method pattern"},
		{"/*", "not a method pattern"},
		{"/shop.Orders/", "not a method pattern"},
		{"//Create", "not a method pattern"},
		{"/a/b/*", "not a method pattern"},
		{"/a/b/c", "not a method pattern"},
		{"/shop.Orders", "not a method pattern"},
		{"", "a method pattern starts with a slash"},
		{"**", "a method pattern starts with a slash"},
		{"/shop.Orders/Create ", "no spaces or control characters"},
		{"/shop.Orders/Cre\x00ate", "no spaces or control characters"},
	} {
		err := ValidateMethod(tc.key)
		if assert.Error(t, err, tc.key) {
			assert.Contains(t, err.Error(), fmt.Sprintf("grpcmw: method pattern %q: ", tc.key))
			assert.Contains(t, err.Error(), tc.why)
			assert.Contains(t, err.Error(), `(want "/pkg.Service/Method", "/pkg.Service/*" or "*")`)
			assert.PanicsWithValue(t, "grpcmw: ByMethod: "+strings.TrimPrefix(err.Error(), "grpcmw: "), func() {
				ByMethod(map[string]*core.Bulkhead{"/ok.Service/*": nil, tc.key: nil})
			}, tc.key)
		}
	}
}
