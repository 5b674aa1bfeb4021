package httpmw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// withCircuit turns the breaker on with a hair trigger: one failure opens it for an hour.
func withCircuit(c *core.Config) {
	c.CircuitBreakerEnabled = true
	c.FailureThreshold = 1
	c.SuccessThreshold = 1
	c.IsolationDuration = time.Hour
}

// single allows one call at a time and no queue.
func single(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 0 }

func text(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
}

func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func get(target string) *http.Request { return httptest.NewRequest(http.MethodGet, target, nil) }

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) problem {
	t.Helper()
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var p problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
	return p
}

func TestHandlerServesAndReleases(t *testing.T) {
	b := newBulkhead(t, "api", single)
	rec := serve(Handler(text("ok"), b), get("/"))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok", rec.Body.String())
	s := b.Stats()
	assert.Equal(t, int64(1), s.SuccessfulExecutions)
	assert.Zero(t, s.InFlightCount)
}

func TestHandlerNilBulkheadReturnsNext(t *testing.T) {
	next := http.NewServeMux()
	assert.Same(t, next, Handler(next, nil))
	assert.Same(t, next, Middleware(nil)(next))
}

func TestHandlerRejections(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*core.Config)
		setup      func(t *testing.T, b *core.Bulkhead)
		typ        string
		retryAfter string
	}{
		{
			name:   "full",
			mutate: single,
			setup: func(t *testing.T, b *core.Bulkhead) {
				p, err := b.Acquire(context.Background())
				require.NoError(t, err)
				t.Cleanup(func() { _ = p.Release(core.Success) })
			},
			typ: ProblemFull, retryAfter: "1",
		},
		{
			name: "circuit open",
			mutate: func(c *core.Config) {
				withCircuit(c)
				c.IsolationDuration = 2500 * time.Millisecond
			},
			setup: func(t *testing.T, b *core.Bulkhead) {
				p, err := b.Acquire(context.Background())
				require.NoError(t, err)
				require.NoError(t, p.Release(core.Failure))
				require.Equal(t, core.Isolated, b.State())
			},
			typ: ProblemCircuitOpen, retryAfter: "3", // 2.5s, rounded up
		},
		{
			name: "shut down",
			setup: func(t *testing.T, b *core.Bulkhead) {
				require.NoError(t, b.Shutdown(context.Background()))
			},
			typ: ProblemShutdown, retryAfter: "1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutate := []func(*core.Config){}
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			b := newBulkhead(t, "api", mutate...)
			tt.setup(t, b)
			called := false
			next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
			rec := serve(Handler(next, b), get("/"))
			assert.False(t, called)
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Equal(t, tt.retryAfter, rec.Header().Get("Retry-After"))
			p := decodeProblem(t, rec)
			assert.Equal(t, tt.typ, p.Type)
			assert.Equal(t, http.StatusServiceUnavailable, p.Status)
			assert.Equal(t, "api", p.Bulkhead)
			assert.Contains(t, p.Detail, `"api"`)
			assert.NotEmpty(t, p.Title)
		})
	}
}

func TestHandlerQueueTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "api", func(c *core.Config) {
			c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, 100*time.Millisecond
		})
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		defer func() { _ = p.Release(core.Success) }()

		start := time.Now()
		rec := serve(Handler(text("ok"), b), get("/"))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Empty(t, rec.Header().Get("Retry-After"), "a timeout gets no Retry-After")
		assert.Equal(t, ProblemTimeout, decodeProblem(t, rec).Type)
	})
}

func TestHandlerClientGoneWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "api", func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 1 })
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		defer func() { _ = p.Release(core.Success) }()

		ctx, cancel := context.WithCancel(context.Background())
		var rejected error
		h := Handler(text("ok"), b, WithRejectionHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			rejected = err
			WriteRejection(w, r, err)
		}))
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- serve(h, get("/").WithContext(ctx)) }()
		synctest.Wait()
		cancel()
		rec := <-done
		assert.ErrorIs(t, rejected, context.Canceled)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "about:blank", decodeProblem(t, rec).Type)
		assert.Zero(t, b.Stats().RejectedExecutions, "the client's own departure is no rejection")
	})
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", time.Nanosecond: "1", time.Second: "1", time.Second + time.Millisecond: "2",
		2500 * time.Millisecond: "3", time.Minute: "60", -time.Second: "1",
	} {
		assert.Equal(t, want, retryAfter(d), d)
	}
}

func TestWithRejectionHandler(t *testing.T) {
	b := newBulkhead(t, "api", single)
	p, err := b.Acquire(context.Background())
	require.NoError(t, err)
	defer func() { _ = p.Release(core.Success) }()

	var got error
	h := Handler(text("ok"), b, WithRejectionHandler(func(w http.ResponseWriter, _ *http.Request, err error) {
		got = err
		http.Error(w, "busy", http.StatusTooManyRequests)
	}))
	rec := serve(h, get("/"))
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "busy\n", rec.Body.String())
	var ce *core.Error
	require.ErrorAs(t, got, &ce)
	assert.ErrorIs(t, ce, core.ErrFull)
	assert.Equal(t, "api", ce.Bulkhead)
}

func TestHandlerOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		next      http.Handler
		cancelled bool // the client goes away before the handler returns
		panics    any
		want      core.State
		succeeded int64
	}{
		{name: "200", next: text("ok"), want: core.Healthy, succeeded: 1},
		{name: "implicit 200", next: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), want: core.Healthy, succeeded: 1},
		{name: "404 is a success", next: status(http.StatusNotFound), want: core.Healthy, succeeded: 1},
		{name: "429 is a success", next: status(http.StatusTooManyRequests), want: core.Healthy, succeeded: 1},
		{name: "500", next: status(http.StatusInternalServerError), want: core.Isolated},
		{name: "503 by Write after WriteHeader", next: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("down"))
		}), want: core.Isolated},
		{name: "1xx then 500", next: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusInternalServerError)
		}), want: core.Isolated},
		{name: "panic", next: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), panics: "boom", want: core.Isolated},
		{name: "ErrAbortHandler", next: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }), panics: http.ErrAbortHandler, want: core.Isolated},
		{name: "client went away, 500", next: status(http.StatusInternalServerError), cancelled: true, want: core.Healthy},
		{name: "client went away, 200", next: text("ok"), cancelled: true, want: core.Healthy},
	}
	for _, mode := range []string{"", "timeout", "prompt timeout"} {
		for _, tt := range tests {
			name := tt.name
			var opts []Option
			if mode != "" {
				name += " with " + mode
			}
			if mode == "prompt timeout" {
				opts = append(opts, WithPromptTimeout())
			}
			t.Run(name, func(t *testing.T) {
				b := newBulkhead(t, "api", withCircuit, func(c *core.Config) {
					if mode != "" {
						c.Timeout = time.Hour
					}
				})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				next := tt.next
				if tt.cancelled {
					next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						cancel()
						<-r.Context().Done()
						tt.next.ServeHTTP(w, r)
					})
				}
				h := Handler(next, b, opts...)
				r := get("/").WithContext(ctx)
				if tt.panics != nil {
					assert.PanicsWithValue(t, tt.panics, func() { serve(h, r) })
				} else {
					serve(h, r)
				}
				s := b.Stats()
				assert.Equal(t, tt.want, b.State())
				assert.Equal(t, tt.succeeded, s.SuccessfulExecutions)
				assert.Equal(t, 1-tt.succeeded, s.FailedExecutions)
				assert.Zero(t, s.InFlightCount)
			})
		}
	}
}

// timeoutModes are the two ways Handler serves under a Timeout.
var timeoutModes = []struct {
	name string
	opts []Option
}{
	{"default", nil},
	{"prompt", []Option{WithPromptTimeout()}},
}

func TestHandlerPromptTimeoutAnswersAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "slow", single, withCircuit, func(c *core.Config) { c.Timeout = 100 * time.Millisecond })
		release := make(chan struct{})
		type late struct {
			deadline  time.Time
			err, werr error
		}
		lateCh := make(chan late, 1)
		h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Early", "1") // before the deadline: its own header map
			d, _ := r.Context().Deadline()
			<-release
			w.Header().Set("X-Late", "1")
			w.WriteHeader(http.StatusOK)
			_, werr := w.Write([]byte("late"))
			http.NewResponseController(w).Flush()
			lateCh <- late{d, r.Context().Err(), werr}
		}), b, WithPromptTimeout())

		start := time.Now()
		rec := serve(h, get("/"))
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "answered at the deadline")
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, ProblemTimeout, decodeProblem(t, rec).Type)
		assert.Empty(t, rec.Header().Get("Retry-After"))
		assert.Empty(t, rec.Header().Get("X-Early"))

		// The handler still runs and still holds its permit.
		s := b.Stats()
		assert.Equal(t, 1, s.ActiveTasks)
		assert.Equal(t, 1, s.InFlightCount)
		assert.Equal(t, http.StatusServiceUnavailable, serve(h, get("/")).Code, "no second permit")

		synctest.Wait() // the bulkhead's timer, which ends the context, has run too
		close(release)
		l := <-lateCh
		synctest.Wait()
		assert.Equal(t, start.Add(100*time.Millisecond), l.deadline)
		assert.ErrorIs(t, l.err, context.DeadlineExceeded)
		assert.ErrorIs(t, l.werr, http.ErrHandlerTimeout)
		assert.Empty(t, rec.Header().Get("X-Late"))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.NotContains(t, rec.Body.String(), "late")
		s = b.Stats()
		assert.Zero(t, s.InFlightCount, "released when the handler returned")
		assert.Equal(t, int64(1), s.FailedExecutions)
		assert.Equal(t, int64(1), s.TimedOutExecutions)
		assert.Equal(t, core.Isolated, b.State(), "a timeout is a failure")
	})
}

func TestHandlerTimeoutAfterStartOnlyCancels(t *testing.T) {
	for _, m := range timeoutModes {
		t.Run(m.name, func(t *testing.T) { testTimeoutAfterStartOnlyCancels(t, m.opts) })
	}
}

func testTimeoutAfterStartOnlyCancels(t *testing.T, opts []Option) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "stream", func(c *core.Config) { c.Timeout = 100 * time.Millisecond })
		var ctxErr error
		h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Done")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("partial;"))
			<-r.Context().Done()
			ctxErr = r.Context().Err()
			_, _ = w.Write([]byte("more"))
			w.Header().Set("X-Done", "yes") // a trailer, set after WriteHeader
		}), b, opts...)
		start := time.Now()
		rec := serve(h, get("/"))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.ErrorIs(t, ctxErr, context.DeadlineExceeded)
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "partial;more", rec.Body.String())
		assert.Equal(t, "yes", rec.Result().Trailer.Get("X-Done"))
		assert.Equal(t, int64(1), b.Stats().FailedExecutions, "it ran past its deadline")
		assert.Equal(t, int64(1), b.Stats().TimedOutExecutions)
	})
}

// TestHandlerTimeoutLateReturn has handlers return a moment after the deadline, when the
// bulkhead's timer, which ends their context, may not have run yet: each is timed out all
// the same, by the bulkhead's clock. Real time, because synctest's timers are never late.
func TestHandlerTimeoutLateReturn(t *testing.T) {
	const rounds = 20
	for _, m := range timeoutModes {
		t.Run(m.name, func(t *testing.T) {
			b := newBulkhead(t, "late", func(c *core.Config) { c.Timeout = 2 * time.Millisecond })
			h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK) // started: the deadline will only cancel the context
				d, _ := r.Context().Deadline()
				time.Sleep(time.Until(d) + 50*time.Microsecond)
			}), b, m.opts...)
			for range rounds {
				serve(h, get("/"))
			}
			s := b.Stats()
			assert.Equal(t, int64(rounds), s.TimedOutExecutions)
			assert.Zero(t, s.SuccessfulExecutions)
		})
	}
}

func TestHandlerTimeoutFastHandler(t *testing.T) {
	for _, m := range timeoutModes {
		t.Run(m.name, func(t *testing.T) { testTimeoutFastHandler(t, m.opts) })
	}
}

func testTimeoutFastHandler(t *testing.T, opts []Option) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "fast", withCircuit, func(c *core.Config) { c.Timeout = time.Second })
		h := Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Only-Header", "1") // and no write: an implicit 200
		}), b, opts...)
		rec := serve(h, get("/"))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "1", rec.Header().Get("X-Only-Header"))
		assert.Equal(t, int64(1), b.Stats().SuccessfulExecutions)
		assert.Equal(t, core.Healthy, b.State())
	})
}

func TestHandlerPromptTimeoutPanicAfterDeadlineIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "slow", withCircuit, func(c *core.Config) { c.Timeout = 100 * time.Millisecond })
		release := make(chan struct{})
		h := Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			<-release
			panic("too late to tell anyone")
		}), b, WithPromptTimeout())
		rec := serve(h, get("/"))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		close(release)
		synctest.Wait()
		assert.Zero(t, b.Stats().InFlightCount)
		assert.Equal(t, core.Isolated, b.State())
	})
}

// TestHandlerTimeoutRace races handlers that start their response around the deadline
// against the timeout response, for the race detector: every response must be either
// the handler's, whole, or the timeout's, never a mix.
func TestHandlerTimeoutRace(t *testing.T) {
	for _, m := range timeoutModes {
		t.Run(m.name, func(t *testing.T) { testTimeoutRace(t, m.opts) })
	}
}

func testTimeoutRace(t *testing.T, opts []Option) {
	b := newBulkhead(t, "race", func(c *core.Config) {
		c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 256, 0, time.Millisecond
	})
	const n = 200
	var started atomic.Int32
	done := make(chan struct{}, n)
	h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer func() { done <- struct{}{} }()
		time.Sleep(time.Duration(len(r.URL.Path)%3) * 500 * time.Microsecond)
		w.Header().Set("X-Handler", "1")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("handler"))
		_, _ = w.Write([]byte(" body"))
		w.(http.Flusher).Flush()
	}), b, opts...)
	results := make(chan *httptest.ResponseRecorder, n)
	for i := range n {
		go func() { results <- serve(h, get("/"+strings.Repeat("x", i))) }()
	}
	var handler, timeout int
	for range n {
		rec := <-results
		switch rec.Code {
		case http.StatusAccepted:
			handler++
			assert.Equal(t, "handler body", rec.Body.String())
			assert.Equal(t, "1", rec.Header().Get("X-Handler"))
		case http.StatusServiceUnavailable:
			timeout++
			assert.Empty(t, rec.Header().Get("X-Handler"))
			assert.Contains(t, rec.Body.String(), ProblemTimeout)
		default:
			assert.Fail(t, "unexpected status", "%d %q", rec.Code, rec.Body.String())
		}
	}
	for range started.Load() { // every handler started before its ServeHTTP returned
		<-done
	}
	t.Logf("%d handler responses, %d timeouts", handler, timeout)
}

func TestHandlerTimeoutPanicBeforeDeadlineIsReraised(t *testing.T) {
	for _, m := range timeoutModes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, "p", func(c *core.Config) { c.Timeout = time.Second })
				h := Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }), b, m.opts...)
				assert.PanicsWithValue(t, http.ErrAbortHandler, func() { serve(h, get("/")) })
				assert.Zero(t, b.Stats().InFlightCount)
			})
		})
	}
}

func TestMiddlewareWiring(t *testing.T) {
	// The same Middleware value serves the usual wirings.
	wirings := map[string]func(mw func(http.Handler) http.Handler, slow, fast http.Handler, fastB *core.Bulkhead) http.Handler{
		"whole mux": func(mw func(http.Handler) http.Handler, slow, fast http.Handler, _ *core.Bulkhead) http.Handler {
			return mw(routes(slow, fast)) // stdlib: the whole mux wrapped, before routing
		},
		"per route": func(mw func(http.Handler) http.Handler, slow, fast http.Handler, fastB *core.Bulkhead) http.Handler {
			mux := http.NewServeMux() // stdlib: per route, after routing (r.Pattern set)
			mux.Handle("GET /slow/{id}", mw(slow))
			mux.Handle("GET /fast", Handler(fast, fastB))
			return mux
		},
		"mounted": func(mw func(http.Handler) http.Handler, slow, fast http.Handler, _ *core.Bulkhead) http.Handler {
			outer := http.NewServeMux() // a sub-router mounted under a prefix: r.Pattern is "/"
			outer.Handle("/", mw(routes(slow, fast)))
			return outer
		},
	}
	for name, wire := range wirings {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { // a wrong bulkhead deadlocks: synctest reports it
				slowB := newBulkhead(t, "slow", single)
				fastB := newBulkhead(t, "fast", single)
				// "/" unguarded: the prefix the mounted case's outer mux routes by.
				sel, err := ByPattern(map[string]*core.Bulkhead{"GET /slow/{id}": slowB, "GET /fast": fastB, "/": nil})
				require.NoError(t, err)
				entered, release := make(chan string, 1), make(chan struct{})
				slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					entered <- r.Pattern
					<-release
					_, _ = w.Write([]byte("slow " + r.PathValue("id")))
				})
				h := wire(Middleware(sel), slow, text("fast"), fastB)

				first := make(chan *httptest.ResponseRecorder)
				go func() { first <- serve(h, get("/slow/1")) }()
				assert.Equal(t, "GET /slow/{id}", <-entered)

				rec := serve(h, get("/slow/2"))
				assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "the slow route is saturated")
				assert.Equal(t, "slow", decodeProblem(t, rec).Bulkhead)
				assert.Equal(t, "fast", serve(h, get("/fast")).Body.String(), "the fast route still answers")
				assert.Equal(t, http.StatusNotFound, serve(h, get("/other")).Code, "unguarded")

				close(release)
				assert.Equal(t, "slow 1", (<-first).Body.String())
			})
		})
	}
}

// routes is the mux of TestMiddlewareWiring.
func routes(slow, fast http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /slow/{id}", slow)
	mux.Handle("GET /fast", fast)
	return mux
}

func TestWriteRejectionForOtherErrors(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteRejection(rec, get("/"), errors.New("something else"))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	p := decodeProblem(t, rec)
	assert.Equal(t, "about:blank", p.Type)
	assert.Empty(t, p.Bulkhead)
	assert.Empty(t, rec.Header().Get("Retry-After"))
}

// TestHandlerTimeoutDefaultAnswersOnReturn: by default a handler that ignores its context
// runs on; its late start is refused, and the timeout response goes out when it returns,
// with the headers set before it ran and none of its own.
func TestHandlerTimeoutDefaultAnswersOnReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "slow", single, withCircuit, func(c *core.Config) { c.Timeout = 100 * time.Millisecond })
		var ctxErr, werr, ferr error
		inner := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.Header().Set("Cache-Control", "max-age=3600") // must not reach the 503
			time.Sleep(300 * time.Millisecond)              // ignores its context
			ctxErr = r.Context().Err()
			w.WriteHeader(http.StatusOK)
			_, werr = w.Write([]byte("late"))
			ferr = http.NewResponseController(w).Flush()
		}), b)
		outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", "42")
			inner.ServeHTTP(w, r)
		})
		start := time.Now()
		rec := serve(outer, get("/"))
		assert.Equal(t, 300*time.Millisecond, time.Since(start), "answered when the handler returned")
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, ProblemTimeout, decodeProblem(t, rec).Type)
		assert.NotContains(t, rec.Body.String(), "late")
		assert.Equal(t, "42", rec.Header().Get("X-Request-Id"), "headers set before the handler stay")
		assert.Empty(t, rec.Header().Get("X-Handler"))
		assert.Empty(t, rec.Header().Get("Cache-Control"))
		assert.ErrorIs(t, ctxErr, context.DeadlineExceeded)
		assert.ErrorIs(t, werr, http.ErrHandlerTimeout)
		assert.ErrorIs(t, ferr, http.ErrHandlerTimeout)
		s := b.Stats()
		assert.Zero(t, s.InFlightCount)
		assert.Equal(t, int64(1), s.FailedExecutions)
		assert.Equal(t, int64(1), s.TimedOutExecutions)
		assert.Equal(t, core.Isolated, s.State, "a timeout is a failure")
	})
}

// TestHandlerTimeoutDefaultWroteBeforeDeadline: a response started before the deadline is
// the handler's, whatever follows; the call still counts as timed out if it returns late.
func TestHandlerTimeoutDefaultWroteBeforeDeadline(t *testing.T) {
	tests := []struct {
		name  string
		start func(w http.ResponseWriter)
	}{
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }},
		{"Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("early;")) }},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }},
		{"ResponseController.Flush", func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, "early", func(c *core.Config) { c.Timeout = 100 * time.Millisecond })
				var werr error
				rec := serve(Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					tt.start(w)
					time.Sleep(time.Second)
					_, werr = w.Write([]byte("late"))
				}), b), get("/"))
				require.NoError(t, werr)
				assert.NotEqual(t, http.StatusServiceUnavailable, rec.Code)
				assert.True(t, strings.HasSuffix(rec.Body.String(), "late"), rec.Body.String())
				assert.NotContains(t, rec.Body.String(), ProblemTimeout)
				assert.Equal(t, int64(1), b.Stats().TimedOutExecutions, "returned after the deadline")
			})
		})
	}
}

// TestHandlerTimeoutDefaultClientGone: nothing is written for a client that went away,
// and the call is neutral, not timed out.
func TestHandlerTimeoutDefaultClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, "gone", withCircuit, func(c *core.Config) { c.Timeout = 100 * time.Millisecond })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := serve(Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cancel()
			time.Sleep(time.Second)
		}), b), get("/").WithContext(ctx))
		assert.Zero(t, rec.Body.Len())
		assert.Empty(t, rec.Header())
		s := b.Stats()
		assert.Equal(t, int64(1), s.FailedExecutions)
		assert.Zero(t, s.TimedOutExecutions)
		assert.Equal(t, core.Healthy, s.State)
	})
}

// TestHandlerTimeoutHijackAfterDeadline: over a real connection, a hijack after the
// deadline is refused in both modes and the client gets the timeout response.
func TestHandlerTimeoutHijackAfterDeadline(t *testing.T) {
	for _, m := range timeoutModes {
		t.Run(m.name, func(t *testing.T) {
			b := newBulkhead(t, "hijack", func(c *core.Config) { c.Timeout = 20 * time.Millisecond })
			hijackErr := make(chan error, 1)
			srv := newServer(t, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				d, _ := r.Context().Deadline()
				time.Sleep(time.Until(d) + 10*time.Millisecond)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				hijackErr <- err
			}), b, m.opts...))
			resp, err := srv.Client().Get(srv.URL)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Contains(t, string(body), ProblemTimeout)
			assert.ErrorIs(t, <-hijackErr, http.ErrHandlerTimeout)
			require.Eventually(t, func() bool { return b.Stats().InFlightCount == 0 }, 5*time.Second, time.Millisecond)
			assert.Equal(t, int64(1), b.Stats().TimedOutExecutions)
		})
	}
}

// TestWithFailureStatus: the classifier replaces "500 or more" in every mode; a panic and a
// client that went away keep their own rules.
func TestWithFailureStatus(t *testing.T) {
	only429 := WithFailureStatus(func(status int) bool { return status == http.StatusTooManyRequests })
	tests := []struct {
		name string
		next http.Handler
		opts []Option
		want core.State
	}{
		{"429 fails", status(http.StatusTooManyRequests), []Option{only429}, core.Isolated},
		{"500 answers", status(http.StatusInternalServerError), []Option{only429}, core.Healthy},
		{"nothing written is a 200", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
			[]Option{WithFailureStatus(func(status int) bool { return status == http.StatusOK })}, core.Isolated},
		{"nil keeps the default", status(http.StatusInternalServerError), []Option{WithFailureStatus(nil)}, core.Isolated},
	}
	for _, mode := range []string{"inline", "timed", "prompt"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				b := newBulkhead(t, "api", withCircuit, func(c *core.Config) {
					if mode != "inline" {
						c.Timeout = time.Hour
					}
				})
				opts := tt.opts
				if mode == "prompt" {
					opts = append(slices.Clone(opts), WithPromptTimeout())
				}
				serve(Handler(tt.next, b, opts...), get("/"))
				assert.Equal(t, tt.want, b.State())
				assert.Zero(t, b.Stats().InFlightCount)
			})
		}
	}
}
