package grpcmw

import (
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
	exact, service, other, literal, bare := bh("exact"), bh("service"), bh("other"), bh("literal"), bh("bare")
	routes := map[string]*core.Bulkhead{
		"/shop.Orders/Create":  exact,
		"/shop.Orders/*":       service,
		"/shop.Orders/Health":  nil, // exempt from the service's bulkhead
		"/grpc.health.v1.*":    literal,
		"shop.Reports/Run":     bare,
		"*":                    other,
		"/shop.Admin/*":        nil, // a whole service exempt from "*"
		"/shop.Reports/Get*":   literal,
		"/a/b/*":               literal,
		"/*":                   literal,
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
		{"/grpc.health.v1.Health/Check", other}, // "/grpc.health.v1.*" is literal, not a prefix
		{"/grpc.health.v1.*", literal},          // ... and matches only itself
		{"/shop.Reports/Get", other},            // "/shop.Reports/Get*" is literal too
		{"/shop.Reports/Run", other},            // "shop.Reports/Run" lacks its slash: never an RPC name
		{"/a/b/M", other},                       // "/a/b/*" is no service key
		{"/M", other},                           // nor is "/*"
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
