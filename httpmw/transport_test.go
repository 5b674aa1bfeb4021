package httpmw

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// upstream is a test server for the transport, counting the connections it accepts.
type upstream struct {
	*httptest.Server
	conns    atomic.Int32
	requests atomic.Int32
	hanging  chan struct{} // a request reached /hang
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{hanging: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 64<<10)) // more than one read
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		for _, c := range r.PathValue("code") {
			code = code*10 + int(c-'0')
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		u.hanging <- struct{}{}
		<-r.Context().Done()
	})
	mux.HandleFunc("/drop", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close() // no response at all
		}
	})
	mux.HandleFunc("/truncated", func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_, _ = rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
			_ = rw.Flush()
			_ = conn.Close()
		}
	})
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// client returns an http.Client whose transport guards every request with b.
func (u *upstream) client(b *core.Bulkhead) *http.Client {
	return &http.Client{Transport: Transport(u.Client().Transport, func(*http.Request) *core.Bulkhead { return b })}
}

func TestTransportHoldsPermitUntilEOF(t *testing.T) {
	u := newUpstream(t)
	b, outcomes := observed(t, "up", single)
	c := u.client(b)
	resp, err := c.Get(u.URL + "/ok")
	require.NoError(t, err)
	assert.Equal(t, 1, b.Stats().ActiveTasks, "held while the body is unread")
	_, err = c.Get(u.URL + "/ok")
	require.ErrorIs(t, err, core.ErrFull, "a bulkhead of one means one open exchange")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Len(t, body, 64<<10)
	assert.Zero(t, b.Stats().InFlightCount, "released at EOF, before Close")
	assert.Equal(t, core.Success, <-outcomes)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int64(1), b.Stats().TotalExecutions)
}

func TestTransportReleasesOnClose(t *testing.T) {
	u := newUpstream(t)
	b, outcomes := observed(t, "up", single)
	resp, err := u.client(b).Get(u.URL + "/ok")
	require.NoError(t, err)
	buf := make([]byte, 10)
	_, err = resp.Body.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, 1, b.Stats().ActiveTasks)
	require.NoError(t, resp.Body.Close())
	assert.Zero(t, b.Stats().InFlightCount)
	assert.Equal(t, core.Success, <-outcomes)
}

func TestTransportReusesConnections(t *testing.T) {
	u := newUpstream(t)
	b := newBulkhead(t, "up", single)
	c := u.client(b)
	for range 10 {
		resp, err := c.Get(u.URL + "/ok")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	assert.Equal(t, int32(1), u.conns.Load(), "the body wrapper keeps keep-alive working")
	assert.Equal(t, int64(10), b.Stats().SuccessfulExecutions)
}

func TestTransportOutcomes(t *testing.T) {
	tests := []struct {
		path    string
		wantErr bool
		want    core.Outcome
	}{
		{"/ok", false, core.Success},
		{"/status/404", false, core.Success},
		{"/status/429", false, core.Success},
		{"/status/204", false, core.Success}, // http.NoBody: released at once
		{"/status/500", false, core.Failure},
		{"/status/503", false, core.Failure},
		{"/drop", true, core.Failure},
		{"/truncated", false, core.Failure}, // the body read fails
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			u := newUpstream(t)
			b, outcomes := observed(t, "up", withCircuit)
			resp, err := u.client(b).Get(u.URL + tt.path)
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			assert.Equal(t, tt.want, <-outcomes)
			assert.Zero(t, b.Stats().InFlightCount)
		})
	}
}

func TestTransportNoBodyReleasesAtOnce(t *testing.T) {
	u := newUpstream(t)
	b := newBulkhead(t, "up", single)
	resp, err := u.client(b).Head(u.URL + "/ok")
	require.NoError(t, err)
	assert.Equal(t, http.NoBody, resp.Body)
	assert.Zero(t, b.Stats().InFlightCount, "nothing to read, nothing held")
}

func TestTransportCircuitOpens(t *testing.T) {
	u := newUpstream(t)
	b := newBulkhead(t, "up", withCircuit)
	c := u.client(b)
	resp, err := c.Get(u.URL + "/status/500")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	served := u.requests.Load()

	_, err = c.Get(u.URL + "/ok")
	require.ErrorIs(t, err, core.ErrCircuitOpen)
	var ce *core.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "up", ce.Bulkhead)
	assert.Positive(t, ce.RetryAfter)
	var ue *url.Error
	assert.ErrorAs(t, err, &ue, "http.Client wraps it, errors.Is sees through")
	assert.Equal(t, served, u.requests.Load(), "never sent")
}

// closeTracker is a request body that records Close.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

func TestTransportRejectionClosesRequestBody(t *testing.T) {
	u := newUpstream(t)
	b := newBulkhead(t, "up", single)
	p, err := b.Acquire(context.Background())
	require.NoError(t, err)
	defer func() { _ = p.Release(core.Success) }()

	body := &closeTracker{Reader: strings.NewReader("payload")}
	req, err := http.NewRequest(http.MethodPost, u.URL+"/ok", body)
	require.NoError(t, err)
	resp, err := Transport(u.Client().Transport, func(*http.Request) *core.Bulkhead { return b }).RoundTrip(req)
	assert.Nil(t, resp)
	require.ErrorIs(t, err, core.ErrFull)
	var ce *core.Error
	require.ErrorAs(t, err, &ce)
	assert.True(t, body.closed.Load(), "RoundTrip must close the body, even on errors")
	assert.Zero(t, u.requests.Load())
}

func TestTransportCallerCancelIsNeutral(t *testing.T) {
	u := newUpstream(t)
	b, outcomes := observed(t, "up", withCircuit)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL+"/hang", nil)
	require.NoError(t, err)
	go func() {
		<-u.hanging
		cancel()
	}()
	_, err = u.client(b).Do(req)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, core.Neutral, <-outcomes)
	assert.Equal(t, core.Healthy, b.State())
}

func TestTransportTimeoutIsAFailure(t *testing.T) {
	u := newUpstream(t)
	b, outcomes := observed(t, "up", withCircuit, func(c *core.Config) { c.Timeout = 50 * time.Millisecond })
	_, err := u.client(b).Get(u.URL + "/hang")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, core.Failure, <-outcomes)
	assert.Equal(t, core.Isolated, b.State())
}

func TestTransportSwitchingProtocolsBodyIsWritable(t *testing.T) {
	echoed := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(echoed)
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw) // echo until the client closes
	}))
	b, outcomes := observed(t, "ws", single)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	c := &http.Client{Transport: Transport(srv.Client().Transport, func(*http.Request) *core.Bulkhead { return b })}
	resp, err := c.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	rw, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "a 101 body must stay writable")
	_, err = io.WriteString(rw, "ping\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(rw).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ping\n", line)
	assert.Equal(t, 1, b.Stats().ActiveTasks, "held while the connection is open")
	require.NoError(t, rw.Close())
	assert.Equal(t, core.Success, <-outcomes)
	<-echoed
}

func TestTransportUnguarded(t *testing.T) {
	u := newUpstream(t)
	for name, rt := range map[string]http.RoundTripper{
		"nil selector":    Transport(u.Client().Transport, nil),
		"selector of nil": Transport(u.Client().Transport, func(*http.Request) *core.Bulkhead { return nil }),
	} {
		resp, err := (&http.Client{Transport: rt}).Get(u.URL + "/status/204")
		require.NoError(t, err, name)
		assert.Equal(t, http.StatusNoContent, resp.StatusCode, name)
	}
	assert.Same(t, http.DefaultTransport, Transport(nil, nil).(*transport).base)
}

func TestTransportCloseIdleConnections(t *testing.T) {
	u := newUpstream(t)
	c := u.client(newBulkhead(t, "up"))
	resp, err := c.Get(u.URL + "/status/204")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	c.CloseIdleConnections() // reaches the base transport
	resp, err = c.Get(u.URL + "/status/204")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int32(2), u.conns.Load())
}

// TestTransportWithFailureStatus: the classifier judges the dependency's statuses; a broken
// exchange stays a failure.
func TestTransportWithFailureStatus(t *testing.T) {
	only429 := WithFailureStatus(func(status int) bool { return status == http.StatusTooManyRequests })
	tests := []struct {
		path    string
		wantErr bool
		want    core.Outcome
	}{
		{"/status/429", false, core.Failure},
		{"/status/500", false, core.Success},
		{"/ok", false, core.Success},
		{"/drop", true, core.Failure},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			u := newUpstream(t)
			b, outcomes := observed(t, "up", withCircuit)
			client := &http.Client{Transport: Transport(u.Client().Transport, func(*http.Request) *core.Bulkhead { return b }, only429)}
			resp, err := client.Get(u.URL + tt.path)
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			assert.Equal(t, tt.want, <-outcomes)
			assert.Zero(t, b.Stats().InFlightCount)
		})
	}
}
