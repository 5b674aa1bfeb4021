package httpmw

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter records the status of a response served without a timeout, for the
// circuit. It runs on the handler's goroutine only, so it needs no lock.
//
// It implements Flusher, Hijacker, io.StringWriter and io.ReaderFrom (sendfile) by
// delegation, and
// Unwrap for everything else http.ResponseController reaches (deadlines, full duplex).
// It is not pooled: a handler that keeps its ResponseWriter past ServeHTTP (a contract
// breach) would otherwise write into another request's response.
type responseWriter struct {
	http.ResponseWriter
	status   int // 0 until the response starts
	hijacked bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// WriteString keeps io.WriteString from copying s (net/http's writer has it too).
func (w *responseWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return io.WriteString(w.ResponseWriter, s)
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls first, so flush errors reach it.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the ResponseWriter underneath.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides every method but Write, so that io.Copy cannot loop back into
// ReadFrom.
type writerOnly struct{ io.Writer }
