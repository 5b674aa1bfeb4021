package grpcmw

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/perbulkhead"
)

// ErrorDomain is the Domain of the google.rpc.ErrorInfo detail that every refusal's
// status carries (see UnaryServerInterceptor); its Reason is one of the Reason constants
// and its Metadata["bulkhead"] names the bulkhead. Together they tell a bulkhead's refusal
// from the application's own ResourceExhausted or Unavailable without reading the message.
const ErrorDomain = "bulkman"

// The Reasons of a refusal's ErrorInfo, one per kind of refusal. They are stable: clients
// may branch on them.
const (
	ReasonFull        = "BULKHEAD_FULL"     // core.ErrFull
	ReasonCircuitOpen = "CIRCUIT_OPEN"      // core.ErrCircuitOpen
	ReasonTimeout     = "BULKHEAD_TIMEOUT"  // core.ErrTimeout
	ReasonShutdown    = "BULKHEAD_SHUTDOWN" // core.ErrShutdown
)

// pushbackKey is gRPC's standard retry pushback trailer (gRFC A6): a client whose retry
// policy allows it waits that many milliseconds before its next attempt.
const pushbackKey = "grpc-retry-pushback-ms"

// rejection is the error an interceptor returns when it did not let an RPC through. It is
// a gRPC status error (status.Code, status.FromError and the server's wire encoding see
// st) that still unwraps to the cause, so errors.Is(err, core.ErrFull) works in process.
//
// A rejection of a bulkhead's refusal is shared by the refusals of one kind, as the
// bulkhead shares its *core.Error, so that refusing allocates nothing: nothing in it can
// be changed from outside. Unwrap hands out a new copy of the *core.Error each time, so a
// caller that changes the fields of what errors.As gives it changes nothing anyone else
// sees; and a *status.Status cannot be changed (its Proto and Details return copies).
type rejection struct {
	st     *status.Status
	text   string      // Error()
	ce     core.Error  // a copy of the refusal; unused when ctxErr is set
	src    *core.Error // the bulkhead's own error it was made from (nil: made for one call)
	ms     string      // the pushback trailer's value, "" for none
	ctxErr error       // the caller's context error, when that ended the wait instead
}

func newRejection(st *status.Status, ce *core.Error, ms string) *rejection {
	return &rejection{
		st:   st,
		text: "rpc error: code = " + st.Code().String() + " desc = " + st.Message(),
		ce:   *ce,
		ms:   ms,
	}
}

// Error reads like a status error's, so that logs show the code.
func (r *rejection) Error() string { return r.text }

// GRPCStatus returns the status sent to the caller.
func (r *rejection) GRPCStatus() *status.Status { return r.st }

// Unwrap returns the context error that caused the rejection, or a new copy of the
// *core.Error.
func (r *rejection) Unwrap() error {
	if r.ctxErr != nil {
		return r.ctxErr
	}
	ce := r.ce
	return &ce
}

// refuse turns an error from core.Bulkhead.Acquire into the error the interceptor returns,
// and returns the value of the pushback trailer the refusal asks for: its RetryAfter in
// milliseconds, or "" for none.
func (o *options) refuse(err error) (*rejection, string) {
	ce, ok := err.(*core.Error) // as Acquire returns it
	if !ok {
		ce, ok = errors.AsType[*core.Error](err)
	}
	if !ok {
		// The caller's context ended while it waited: report it as gRPC would.
		st := status.FromContextError(err)
		return &rejection{st: st, text: "rpc error: code = " + st.Code().String() + " desc = " + st.Message(), ctxErr: err}, ""
	}
	if o.status != nil {
		own := *ce
		if st := o.status(&own); st != nil && st.Code() != codes.OK {
			ms := ""
			if ce.RetryAfter > 0 {
				ms = pushbackValue(ce.RetryAfter)
			}
			return newRejection(st, ce, ms), ms
		}
	}
	r := o.statuses.rejection(ce)
	return r, r.ms
}

// pushback returns the trailer for a refusal whose pushback value (from refuse) is ms.
// It is made afresh for each refusal: gRPC, or a stream wrapper, may keep it.
func pushback(ms string) metadata.MD {
	return metadata.MD{pushbackKey: []string{ms}}
}

// setPushback sends the pushback trailer ms from a unary handler's context, when it has a
// server stream to send it on (a handler called directly has none, and nowhere to send it).
func setPushback(ctx context.Context, ms string) {
	if stream := grpc.ServerTransportStreamFromContext(ctx); stream != nil {
		_ = stream.SetTrailer(pushback(ms)) // what grpc.SetTrailer does, without a second lookup
	}
}

// pushbackValue renders d in whole milliseconds, rounded up (a hint to retry too early is
// worse than one a little late).
func pushbackValue(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10)
}

// refusalStatuses are one bulkhead's statuses, built at its first refusal so that a
// refusal then costs no more than its rejection: the name and the kind decide the status
// (and the RetryAfter, for an open circuit). Every field but open and last is set once.
type refusalStatuses struct {
	name                              string
	full, timeout, shutdown, openBusy *status.Status // openBusy: circuit open without a RetryAfter
	open                              atomic.Pointer[openStatus]
	// last holds, per kind, the last rejection made, from the bulkhead's *core.Error src:
	// the bulkhead hands out the same one until it is reconfigured (or, for an open
	// circuit, for 10 ms), so a refusal nearly always finds its rejection made.
	last [kindCount]atomic.Pointer[rejection]
}

// The kinds of refusal, as indices of refusalStatuses.last.
const (
	kindFull = iota
	kindTimeout
	kindShutdown
	kindOpen
	kindCount
)

// openStatus is the status of a circuit-open refusal with a RetryAfter. core hands out the
// same RetryAfter for 10 ms at a time, so the last one built is nearly always the one
// wanted.
type openStatus struct {
	after time.Duration
	st    *status.Status
	ms    string // pushbackValue(after)
}

// statusCache holds the statuses of each bulkhead an interceptor has refused for.
type statusCache struct {
	perbulkhead.Cache[*refusalStatuses]
}

func newStatusCache() *statusCache {
	return &statusCache{perbulkhead.Cache[*refusalStatuses]{New: newRefusalStatuses}}
}

// rejection returns the rejection of the refusal ce: the one made last for its kind if
// it was made from ce itself, a new one otherwise.
func (c *statusCache) rejection(ce *core.Error) *rejection {
	s := c.Get(ce.Bulkhead)
	var last *atomic.Pointer[rejection]
	switch ce.Err {
	case core.ErrFull:
		last = &s.last[kindFull]
	case core.ErrTimeout:
		last = &s.last[kindTimeout]
	case core.ErrShutdown:
		last = &s.last[kindShutdown]
	case core.ErrCircuitOpen:
		last = &s.last[kindOpen]
	default:
		st, ms := s.of(ce)
		return newRejection(st, ce, ms)
	}
	if r := last.Load(); r != nil && r.src == ce {
		return r
	}
	st, ms := s.of(ce)
	r := newRejection(st, ce, ms)
	r.src = ce
	last.Store(r)
	return r
}

// of returns the status of the refusal ce and its pushback value ("" for none).
func (c *statusCache) of(ce *core.Error) (*status.Status, string) {
	return c.Get(ce.Bulkhead).of(ce)
}

// of returns the status of the refusal ce of s's bulkhead, and its pushback value.
func (s *refusalStatuses) of(ce *core.Error) (*status.Status, string) {
	switch ce.Err {
	case core.ErrFull:
		return s.full, ""
	case core.ErrTimeout:
		return s.timeout, ""
	case core.ErrShutdown:
		return s.shutdown, ""
	case core.ErrCircuitOpen:
		if ce.RetryAfter <= 0 {
			return s.openBusy, ""
		}
		if o := s.open.Load(); o != nil && o.after == ce.RetryAfter {
			return o.st, o.ms
		}
		o := &openStatus{
			after: ce.RetryAfter,
			st:    refusalStatus(codes.Unavailable, ReasonCircuitOpen, s.name, ce.RetryAfter),
			ms:    pushbackValue(ce.RetryAfter),
		}
		s.open.Store(o)
		return o.st, o.ms
	}
	// Not a refusal Acquire makes; say what it is.
	ms := ""
	if ce.RetryAfter > 0 {
		ms = pushbackValue(ce.RetryAfter)
	}
	return status.New(codes.Unknown, ce.Error()), ms
}

func newRefusalStatuses(name string) *refusalStatuses {
	return &refusalStatuses{
		name:     name,
		full:     refusalStatus(codes.ResourceExhausted, ReasonFull, name, 0),
		timeout:  refusalStatus(codes.DeadlineExceeded, ReasonTimeout, name, 0),
		shutdown: refusalStatus(codes.Unavailable, ReasonShutdown, name, 0),
		openBusy: refusalStatus(codes.Unavailable, ReasonCircuitOpen, name, 0),
	}
}

// kinds maps a Reason to the kind's sentinel, for the message.
var kinds = map[string]error{
	ReasonFull:        core.ErrFull,
	ReasonCircuitOpen: core.ErrCircuitOpen,
	ReasonTimeout:     core.ErrTimeout,
	ReasonShutdown:    core.ErrShutdown,
}

// refusalStatus builds the status of a refusal: code c, a message that names the bulkhead
// and the kind and nothing else (so that it is the same text for every refusal of that
// kind, and logs and error trackers group them), an ErrorInfo, and a RetryInfo when retry
// is positive.
func refusalStatus(c codes.Code, reason, bulkhead string, retry time.Duration) *status.Status {
	msg := (&core.Error{Bulkhead: bulkhead, Err: kinds[reason]}).Error()
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{
		Reason:   reason,
		Domain:   ErrorDomain,
		Metadata: map[string]string{"bulkhead": bulkhead},
	}}
	if retry > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	}
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil { // cannot happen: these messages always marshal
		return status.New(c, msg)
	}
	return st
}
