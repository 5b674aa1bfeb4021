package httpmw

import (
	"bufio"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/testlog"
)

// observed returns a bulkhead whose finished calls report their outcome on the channel,
// for tests over a real server, where the handler's return is not the client's.
func observed(t *testing.T, name string, mutate ...func(*core.Config)) (*core.Bulkhead, <-chan core.Outcome) {
	t.Helper()
	outcomes := make(chan core.Outcome, 16)
	b := newBulkheadWith(t, name, mutate, core.WithEventHook(func(e core.Event) {
		if e.Kind == core.EventFinished {
			outcomes <- e.Outcome
		}
	}))
	return b, outcomes
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// modes runs f without and with a bulkhead Timeout, and with the prompt timeout: the two
// ResponseWriter wrappers, the first with and without its deadline.
func modes(t *testing.T, f func(t *testing.T, mutate func(*core.Config), opts ...Option)) {
	timed := func(c *core.Config) { c.Timeout = time.Minute }
	t.Run("inline", func(t *testing.T) { f(t, func(*core.Config) {}) })
	t.Run("timed", func(t *testing.T) { f(t, timed) })
	t.Run("prompt", func(t *testing.T) { f(t, timed, WithPromptTimeout()) })
}

func TestResponseControllerPassThrough(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*core.Config), opts ...Option) {
		b, outcomes := observed(t, "rc", mutate)
		errs := make(chan []error, 1)
		srv := newServer(t, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, isFlusher := w.(http.Flusher)
			_, isHijacker := w.(http.Hijacker)
			_, isReaderFrom := w.(io.ReaderFrom)
			_, isStringWriter := w.(io.StringWriter)
			rc := http.NewResponseController(w)
			errs <- []error{
				rc.SetReadDeadline(time.Now().Add(time.Minute)),
				rc.SetWriteDeadline(time.Now().Add(time.Minute)),
				rc.EnableFullDuplex(),
				assertTrue(isFlusher && isHijacker && isReaderFrom && isStringWriter),
			}
			_, _ = io.WriteString(w, "ok")
			if err := rc.Flush(); err != nil {
				panic(err)
			}
		}), b, opts...))
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, "ok", string(body))
		for _, err := range <-errs {
			assert.NoError(t, err)
		}
		assert.Equal(t, core.Success, <-outcomes)
	})
}

func assertTrue(ok bool) error {
	if !ok {
		return io.ErrUnexpectedEOF // any error: the assertion reads it
	}
	return nil
}

func TestFlushStreams(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*core.Config), opts ...Option) {
		b, outcomes := observed(t, "stream", mutate)
		next := make(chan struct{})
		srv := newServer(t, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-next // the client must see "first" before this returns
			_, _ = io.WriteString(w, "second\n")
		}), b, opts...))
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "first\n", line)
		close(next)
		line, _ = br.ReadString('\n')
		assert.Equal(t, "second\n", line)
		assert.Equal(t, core.Success, <-outcomes)
	})
}

func TestHijackPassThrough(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*core.Config), opts ...Option) {
		b, outcomes := observed(t, "hijack", withCircuit, mutate)
		srv := newServer(t, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
			_ = rw.Flush()
		}), b, opts...))
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "hijacked", string(body))
		assert.Equal(t, core.Success, <-outcomes)
		assert.Equal(t, core.Healthy, b.State())
	})
}

func TestTimedUnwrapTakesOverTheResponse(t *testing.T) {
	b := newBulkhead(t, "unwrap", func(c *core.Config) { c.Timeout = time.Hour })
	var inner http.ResponseWriter
	rec := httptest.NewRecorder()
	Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Before", "1")
		inner = w.(interface{ Unwrap() http.ResponseWriter }).Unwrap()
		inner.WriteHeader(http.StatusTeapot)
	}), b).ServeHTTP(rec, get("/"))
	assert.Same(t, rec, inner)
	assert.Equal(t, http.StatusTeapot, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("X-Before"), "headers handed over")
}

// TestHandlerTimeoutOverRealServer checks the timeout response on real connections,
// HTTP/1.1 and HTTP/2, in both modes: the late writes never reach the wire, the server logs
// no superfluous WriteHeader, and the connection stays usable. In the prompt mode the
// response arrives while the handler still runs; by default, when it returns.
func TestHandlerTimeoutOverRealServer(t *testing.T) {
	for _, m := range timeoutModes {
		for _, h2 := range []bool{false, true} {
			name := m.name + "/HTTP/1.1"
			if h2 {
				name = m.name + "/HTTP/2"
			}
			t.Run(name, func(t *testing.T) { testTimeoutOverRealServer(t, h2, m.opts) })
		}
	}
}

func testTimeoutOverRealServer(t *testing.T, h2 bool, opts []Option) {
	prompt := len(opts) > 0
	b, outcomes := observed(t, "slow", single, func(c *core.Config) { c.Timeout = 50 * time.Millisecond })
	release, late := make(chan struct{}), make(chan error, 1)
	h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quick" {
			_, _ = io.WriteString(w, "quick")
			return
		}
		if prompt {
			<-release
		} else { // ignores its context, and returns well after the deadline
			d, _ := r.Context().Deadline()
			time.Sleep(time.Until(d) + 100*time.Millisecond)
		}
		w.WriteHeader(http.StatusOK)
		_, err := io.WriteString(w, "late")
		late <- err
	}), b, opts...)
	var logs testlog.Buffer
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(&logs, "", 0)
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)

	start := time.Now()
	resp, err := srv.Client().Get(srv.URL + "/slow")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, h2, resp.ProtoMajor == 2)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, string(body), ProblemTimeout)
	if prompt {
		assert.Equal(t, 1, b.Stats().ActiveTasks, "the handler still runs and holds its permit")
		close(release)
	} else {
		assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "answered when the handler returned")
		assert.Zero(t, b.Stats().ActiveTasks)
	}
	assert.ErrorIs(t, <-late, http.ErrHandlerTimeout)
	assert.Equal(t, core.Failure, <-outcomes)

	resp, err = srv.Client().Get(srv.URL + "/quick")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, "quick", string(body))
	assert.Equal(t, core.Success, <-outcomes)
	assert.Empty(t, logs.String())
}
