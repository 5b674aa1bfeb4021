package httpmw

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// TestRejectionBodiesAreStable refuses many requests of each kind, over a real server,
// while an open circuit's isolation runs down: the body is the same bytes for every
// refusal of a kind, and the time left travels in Retry-After only.
func TestRejectionBodiesAreStable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		full := newBulkhead(t, "full", single)
		p, err := full.Acquire(t.Context())
		require.NoError(t, err)
		defer func() { _ = p.Release(core.Success) }()

		open := newBulkhead(t, "open", withCircuit)
		q, err := open.Acquire(t.Context())
		require.NoError(t, err)
		require.NoError(t, q.Release(core.Failure))

		for _, tc := range []struct {
			b    *core.Bulkhead
			body string
		}{
			{full, `{"type":"urn:bulkman:full","title":"Bulkhead full","status":503,"detail":"bulkhead \"full\" is at capacity","bulkhead":"full"}` + "\n"},
			{open, `{"type":"urn:bulkman:circuit-open","title":"Circuit open","status":503,"detail":"bulkhead \"open\": circuit is open","bulkhead":"open"}` + "\n"},
		} {
			h := Handler(text("ok"), tc.b)
			bodies := map[string]int{}
			retries := map[string]bool{}
			for range 100 {
				time.Sleep(1700 * time.Millisecond) // fake time
				rec := serve(h, get("/"))
				require.Equal(t, http.StatusServiceUnavailable, rec.Code)
				bodies[rec.Body.String()]++
				retries[rec.Header().Get("Retry-After")] = true
				// The same bytes as WriteRejection's.
				_, err := tc.b.Acquire(t.Context())
				direct := httptest.NewRecorder()
				WriteRejection(direct, get("/"), err)
				assert.Equal(t, rec.Body.String(), direct.Body.String())
				assert.Equal(t, rec.Header(), direct.Header())
			}
			assert.Equal(t, map[string]int{tc.body: 100}, bodies, tc.b.Name())
			if tc.b == open {
				assert.Greater(t, len(retries), 50, "the time left moves")
			} else {
				assert.Equal(t, map[string]bool{"1": true}, retries)
			}
		}
	})
}

// TestRejectionHeadersAreFresh: a handler further out that changes the headers of one
// refusal, values included, leaves the next refusal's untouched.
func TestRejectionHeadersAreFresh(t *testing.T) {
	for _, mw := range []struct {
		name string
		wrap func(b *core.Bulkhead) http.Handler
	}{
		{"Handler", func(b *core.Bulkhead) http.Handler { return Handler(text("ok"), b) }},
		{"WriteRejection", func(b *core.Bulkhead) http.Handler {
			return Handler(text("ok"), b, WithRejectionHandler(WriteRejection))
		}},
	} {
		t.Run(mw.name, func(t *testing.T) {
			b := newBulkhead(t, "api", single)
			p, err := b.Acquire(t.Context())
			require.NoError(t, err)
			defer func() { _ = p.Release(core.Success) }()
			h := mw.wrap(b)

			want := serve(h, get("/")).Header().Clone()
			for range 3 {
				rec := serve(h, get("/"))
				assert.Equal(t, want, rec.Header())
				for _, vs := range rec.Header() {
					for i := range vs {
						vs[i] = "tampered"
					}
				}
				rec.Header()["Retry-After"] = append(rec.Header()["Retry-After"], "tampered")
			}
		})
	}
}

// TestRejectionBodyOverRealServer reads a refusal as a client does.
func TestRejectionBodyOverRealServer(t *testing.T) {
	b := newBulkhead(t, "api", single)
	p, err := b.Acquire(t.Context())
	require.NoError(t, err)
	defer func() { _ = p.Release(core.Success) }()
	srv := httptest.NewServer(Handler(text("ok"), b))
	defer srv.Close()
	for range 3 {
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		assert.Equal(t, `{"type":"urn:bulkman:full","title":"Bulkhead full","status":503,"detail":"bulkhead \"api\" is at capacity","bulkhead":"api"}`+"\n", string(body))
	}
}

// TestRejecterRetryAfter: the kept Retry-After of an open circuit follows RetryAfter.
func TestRejecterRetryAfter(t *testing.T) {
	r := newRejecter()
	b := r.bodies.Get("api")
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{150 * time.Second, "150"}, {150 * time.Second, "150"}, {149500 * time.Millisecond, "150"},
		{149 * time.Second, "149"}, {0, "1"}, {time.Hour, "3600"},
	} {
		assert.Equal(t, tc.want, b.retryAfter(tc.d), "%v", tc.d)
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { b.retryAfter(time.Hour) }))
}

// TestRejecterOtherErrors: errors that are no refusal of a known kind get WriteRejection's
// answer.
func TestRejecterOtherErrors(t *testing.T) {
	r := newRejecter()
	for _, err := range []error{
		context.Canceled,
		&core.Error{Bulkhead: "api", Err: core.ErrReleased},
	} {
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		r.write(got, get("/"), err)
		WriteRejection(want, get("/"), err)
		assert.Equal(t, want.Code, got.Code)
		assert.Equal(t, want.Body.String(), got.Body.String())
		assert.Equal(t, "about:blank", decodeProblem(t, got).Type)
		assert.Empty(t, got.Header().Get("Retry-After"))
	}
}

// TestTransportRefusalIsACopy: the *core.Error RoundTrip returns is the caller's own; the
// next refusal is untouched by changes to it.
func TestTransportRefusalIsACopy(t *testing.T) {
	b := newBulkhead(t, "up", single)
	p, err := b.Acquire(t.Context())
	require.NoError(t, err)
	defer func() { _ = p.Release(core.Success) }()
	rt := Transport(nil, func(*http.Request) *core.Bulkhead { return b })

	_, err = rt.RoundTrip(get("http://upstream.test/"))
	first, ok := errors.AsType[*core.Error](err)
	require.True(t, ok)
	_, shared := b.Acquire(t.Context())
	assert.NotSame(t, shared, first)
	want := *first
	first.Bulkhead, first.Err = "tampered", core.ErrShutdown

	_, err = rt.RoundTrip(get("http://upstream.test/"))
	second, ok := errors.AsType[*core.Error](err)
	require.True(t, ok)
	assert.Equal(t, want, *second)
	assert.ErrorIs(t, err, core.ErrFull)
}
