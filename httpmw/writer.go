package httpmw

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"time"
)

// responseWriter is the ResponseWriter of a handler that runs on the server's goroutine:
// it records the status, for the circuit, and with a bulkhead Timeout it guards the
// response: one the handler has not started by the deadline belongs to the timeout, so a
// late start is refused (http.ErrHandlerTimeout) and the timeout response is written when
// the handler returns (see timedOut). It runs on the handler's goroutine only, so it needs
// no lock; the deadline is read from the clock only when the response starts.
//
// It implements Flusher, Hijacker, io.StringWriter, io.ReaderFrom (sendfile) and the
// methods http.ResponseController looks for (FlushError, deadlines, full duplex) itself,
// so that every way to start the response passes the guard; Unwrap hands out the writer
// underneath for anything else, and the handler then owns the response. It is not
// pooled: a handler that keeps its ResponseWriter past ServeHTTP (a contract breach) would
// otherwise write into another request's response.
type responseWriter struct {
	http.ResponseWriter
	deadline  time.Time   // zero without a Timeout
	outer     http.Header // with a Timeout, the headers set before the handler ran (nil: none)
	status    int         // 0 until the response starts
	late      bool        // the handler tried to start the response after the deadline
	hijacked  bool
	unwrapped bool // the handler took the writer underneath: it owns the response
}

// start records that the response starts with status, and reports whether it may: not
// once the deadline has passed with nothing written.
func (w *responseWriter) start(status int) bool {
	if w.status != 0 || w.unwrapped {
		return true
	}
	if w.expired() {
		return false
	}
	w.status = status
	return true
}

// expired reports whether the deadline has passed; false without one. It marks the
// response late, so that timedOut need not ask the clock again.
func (w *responseWriter) expired() bool {
	if w.late {
		return true
	}
	if w.deadline.IsZero() || time.Now().Before(w.deadline) {
		return false
	}
	w.late = true
	return true
}

// timedOut reports, once the handler has returned, whether the client is owed the
// timeout response: nothing was written, the deadline has passed, and the client is
// still there.
func (w *responseWriter) timedOut(r *http.Request) bool {
	return w.status == 0 && !w.hijacked && !w.unwrapped && w.expired() && r.Context().Err() == nil
}

func (w *responseWriter) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols { // informational: not the response yet
		if w.status == 0 && !w.unwrapped && w.expired() {
			return
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.start(code) {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.start(http.StatusOK) {
		return 0, http.ErrHandlerTimeout
	}
	return w.ResponseWriter.Write(p)
}

// WriteString keeps io.WriteString from copying s (net/http's writer has it too).
func (w *responseWriter) WriteString(s string) (int, error) {
	if !w.start(http.StatusOK) {
		return 0, http.ErrHandlerTimeout
	}
	return io.WriteString(w.ResponseWriter, s)
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.start(http.StatusOK) {
		return 0, http.ErrHandlerTimeout
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls first, so flush errors reach it.
func (w *responseWriter) FlushError() error {
	if !w.start(http.StatusOK) {
		return http.ErrHandlerTimeout
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 && !w.unwrapped && w.expired() {
		return nil, nil, http.ErrHandlerTimeout
	}
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// The deadline setters and full duplex act on the connection and start nothing, so they
// pass through; implementing them keeps http.ResponseController from reaching Unwrap.

func (w *responseWriter) SetReadDeadline(t time.Time) error {
	return http.NewResponseController(w.ResponseWriter).SetReadDeadline(t)
}

func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(t)
}

func (w *responseWriter) EnableFullDuplex() error {
	return http.NewResponseController(w.ResponseWriter).EnableFullDuplex()
}

// Unwrap hands the handler the ResponseWriter underneath, for interfaces the methods above
// do not cover. What it writes there is out of sight, so the handler owns the response
// from then on: no timeout response is written after it.
func (w *responseWriter) Unwrap() http.ResponseWriter {
	w.unwrapped = true
	return w.ResponseWriter
}

// writerOnly hides every method but Write, so that io.Copy cannot loop back into
// ReadFrom.
type writerOnly struct{ io.Writer }
