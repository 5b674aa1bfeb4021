package grpcmw

import (
	"errors"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
)

// pushbackKey is gRPC's standard retry pushback trailer (gRFC A6): a client whose retry
// policy allows it waits that many milliseconds before its next attempt.
const pushbackKey = "grpc-retry-pushback-ms"

// rejection is the error an interceptor returns when it did not let an RPC through. It is
// a gRPC status error (status.Code, status.FromError and the server's wire encoding see
// st) that still unwraps to the cause, so errors.Is(err, core.ErrFull) works in process.
type rejection struct {
	st    *status.Status
	cause error // a *core.Error, or the caller's context error
}

// Error reads like a status error's, so that logs show the code.
func (r *rejection) Error() string {
	return "rpc error: code = " + r.st.Code().String() + " desc = " + r.st.Message()
}

// GRPCStatus returns the status sent to the caller.
func (r *rejection) GRPCStatus() *status.Status { return r.st }

// Unwrap returns the *core.Error or context error that caused the rejection.
func (r *rejection) Unwrap() error { return r.cause }

// refuse turns an error from core.Bulkhead.Acquire into the error the interceptor returns,
// and returns the pushback the refusal suggests (0 for none).
func (o *options) refuse(err error) (*rejection, time.Duration) {
	ce, ok := errors.AsType[*core.Error](err)
	if !ok {
		// The caller's context ended while it waited: report it as gRPC would.
		return &rejection{st: status.FromContextError(err), cause: err}, 0
	}
	var st *status.Status
	if o.status != nil {
		st = o.status(err)
	}
	if st == nil || st.Code() == codes.OK {
		st = status.New(defaultCode(ce), ce.Error())
	}
	return &rejection{st: st, cause: err}, ce.RetryAfter
}

func defaultCode(e *core.Error) codes.Code {
	switch {
	case errors.Is(e, core.ErrFull):
		return codes.ResourceExhausted
	case errors.Is(e, core.ErrTimeout):
		return codes.DeadlineExceeded
	case errors.Is(e, core.ErrCircuitOpen), errors.Is(e, core.ErrShutdown):
		return codes.Unavailable
	}
	return codes.Unknown
}

// pushback returns the trailer for a refusal with a RetryAfter, in whole milliseconds
// rounded up (a hint to retry too early is worse than one a little late).
func pushback(d time.Duration) metadata.MD {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return metadata.MD{pushbackKey: []string{strconv.FormatInt(int64(ms), 10)}}
}
