package httpmw_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/httpmw"
)

// The server ranks requests by what it has authenticated, here an API key: the tenant is
// the key's owner, and one owner's requests are critical.
func ExampleWithPriorityFunc() {
	owners := map[string]string{"k-123": "checkout", "k-456": "reports"}
	classify := func(r *http.Request) (core.Priority, string) {
		owner, ok := owners[r.Header.Get("X-Api-Key")]
		if !ok {
			return core.PriorityLow, "" // unknown callers are shed first
		}
		if owner == "checkout" {
			return core.PriorityCritical, owner
		}
		return core.PriorityNormal, owner
	}
	b, err := core.New(core.DefaultConfig("api"))
	if err != nil {
		panic(err)
	}
	show := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, core.PriorityFrom(r.Context()), core.TenantFrom(r.Context()))
	})
	h := httpmw.Handler(show, b, httpmw.WithPriorityFunc(classify))

	for _, key := range []string{"k-123", "k-456", "nope"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Api-Key", key)
		r.Header.Set(httpmw.PriorityHeader, "critical") // not trusted: ignored
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// critical checkout
	// normal reports
	// low
}
