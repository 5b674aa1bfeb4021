package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The handler benchmarks serve one request per iteration to a fresh
// httptest.ResponseRecorder: no network, no parsing, so the row is the middleware's own cost
// (plus the recorder, which the bare row pays too).

var errUnexpectedReply = errors.New("unexpected reply")

// noopHandler writes nothing, so the response is an implicit 200 with no body.
var noopHandler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// handlerCase is one row of BenchmarkHTTPHandler: build wraps next with the middleware under
// test.
type handlerCase struct {
	name  string
	build func(tb testing.TB, next http.Handler) http.Handler
}

// handlerCases lists the rows, the bare handler first. bulkman's rows come from
// bulkmanHandlerCases (bulkman_test.go).
func handlerCases() []handlerCase {
	cases := []handlerCase{
		{"bare", func(_ testing.TB, next http.Handler) http.Handler { return next }},
		{"failsafe-bh", func(_ testing.TB, next http.Handler) http.Handler {
			return failsafehttp.NewHandler(next, bulkhead.New[*http.Response](capacity))
		}},
		{"failsafe-timeout+cb+bh", func(_ testing.TB, next http.Handler) http.Handler {
			return failsafehttp.NewHandler(next,
				timeout.New[*http.Response](callTimeout),
				newFailsafeBreaker[*http.Response](),
				bulkhead.New[*http.Response](capacity),
			)
		}},
		// The standard library's answer at a deadline: the handler on its own goroutine, its
		// response buffered. The cost bulkman's prompt timeout is held to.
		{"http-timeouthandler", func(_ testing.TB, next http.Handler) http.Handler {
			return http.TimeoutHandler(next, callTimeout, "")
		}},
	}
	return append(cases, bulkmanHandlerCases()...)
}

// handlerCall adapts a handler to the peers' call shape: one request, one new recorder. The
// request is built once and only read; its context is cancellable, as net/http's server
// gives every request (with context.Background instead, failsafehttp's context merge
// short-circuits and the row would flatter it).
func handlerCall(tb testing.TB, h http.Handler) call {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	return func() (uint64, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return 0, errUnexpectedReply
		}
		return uint64(rec.Code), nil
	}
}

// BenchmarkHTTPHandler serves the no-op handler through each middleware, alone and under
// b.RunParallel. Names read HTTPHandler/<handler>/<serial|parallel>.
func BenchmarkHTTPHandler(b *testing.B) {
	for _, hc := range handlerCases() {
		b.Run(hc.name, func(b *testing.B) {
			b.Run("serial", func(b *testing.B) {
				runSerial(b, handlerCall(b, hc.build(b, noopHandler)))
			})
			b.Run("parallel", func(b *testing.B) {
				runParallel(b, handlerCall(b, hc.build(b, noopHandler)))
			})
		})
	}
}

func TestHandlersServeNext(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Next", "yes")
		_, _ = w.Write([]byte("hello"))
	})
	for _, hc := range handlerCases() {
		t.Run(hc.name, func(t *testing.T) {
			h := hc.build(t, next)
			for range 3 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				assert.Equal(t, http.StatusOK, rec.Code)
				assert.Equal(t, "yes", rec.Header().Get("X-Next"))
				assert.Equal(t, "hello", rec.Body.String())
			}
			got, err := handlerCall(t, hc.build(t, noopHandler))()
			require.NoError(t, err)
			assert.Equal(t, uint64(http.StatusOK), got)
		})
	}
}
