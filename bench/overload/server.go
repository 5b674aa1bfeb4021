package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/failsafegrpc"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/timeout"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
	"github.com/bulkman-go/bulkman/internal/cputime"
)

// serverConfig is one server: its protocol, its protection, and the dependency behind it.
// The parent passes it to the server process as JSON.
type serverConfig struct {
	Proto       string        `json:"proto"`        // "grpc" or "http"
	Mode        string        `json:"mode"`         // "none", "bulkman" or "failsafe"
	DepLatency  time.Duration `json:"dep_latency"`  // how long one dependency call takes (its mean)
	DepCapacity int           `json:"dep_capacity"` // how many it serves at once; the rest wait
	Limit       int           `json:"limit"`        // bulkman MaxConcurrentCalls; failsafe bulkhead size
	Queue       int           `json:"queue"`        // bulkman MaxQueueSize
	Timeout     time.Duration `json:"timeout"`      // bulkman Timeout; failsafe timeout policy
	MaxWait     time.Duration `json:"max_wait"`     // failsafe bulkhead max wait time
	Breaker     bool          `json:"breaker"`      // bulkman CircuitBreakerEnabled (5/3/30s)
	// DepSpread, when above 0, draws every call's latency from a lognormal distribution of
	// mean DepLatency and this coefficient of variation (its standard deviation over its
	// mean), as a real service's latencies spread; 0 makes every call take DepLatency.
	DepSpread float64 `json:"dep_spread,omitempty"`
	// Schedule, when set, moves the dependency's capacity to each value in turn, one
	// every ScheduleEvery from the start of the load (DepCapacity is then unused).
	Schedule      []int         `json:"schedule,omitempty"`
	ScheduleEvery time.Duration `json:"schedule_every,omitempty"`
	Ceiling       int           `json:"ceiling,omitempty"` // bulkman-adaptive MaxConcurrentCalls
}

// serverReport is what the server process measured about itself during the load.
type serverReport struct {
	IdleGoroutines int     `json:"idle_goroutines"` // at the start of the load, after a GC
	PeakGoroutines int     `json:"peak_goroutines"` // runtime.NumGoroutine, sampled every 1ms
	MeanGoroutines float64 `json:"mean_goroutines"`
	IdleHeap       uint64  `json:"idle_heap"` // heap in use (objects + unused spans), bytes
	PeakHeap       uint64  `json:"peak_heap"`
	Samples        int     `json:"samples"`
	// CPU is the CPU time (user + system) the server process used during the load.
	CPU time.Duration `json:"cpu"`
	// PeakInHandler is the most requests inside the application handler at once: past the
	// guard, waiting for the dependency or using it. Counted exactly, not sampled.
	PeakInHandler int64 `json:"peak_in_handler"`
	// DepCalls is how many dependency calls ran to the end during the load: the work done,
	// whether or not a client was still waiting for it.
	DepCalls int64 `json:"dep_calls"`
	// Refused and TimedOut are the server's own view of the refusals: from the outermost
	// interceptor (or middleware) entering until it returns, so without the network, the
	// client or the codec.
	Refused  summary `json:"refused"`
	TimedOut summary `json:"timed_out"`
	// Timeline is the dependency seen every timelineStep: the most requests inside the
	// handler at once, and the dependency calls that ended.
	Timeline []timelineStep `json:"timeline,omitempty"`
	// Circuit and Stats describe the bulkman bulkhead at the end (bulkman mode only).
	Circuit string      `json:"circuit,omitempty"`
	Stats   *core.Stats `json:"stats,omitempty"`
}

// dependency takes latency per call and serves capacity calls at once; further callers
// wait for a slot until their ctx ends. It is the slow database or service behind the
// handler.
type dependency struct {
	slots     chan struct{}
	latency   time.Duration
	mu, sigma float64 // of the logarithm of a call's latency in nanoseconds, when spread
	inHandler atomic.Int64
	peak      atomic.Int64
	stepPeak  atomic.Int64 // peak since the timeline's last step
	completed atomic.Int64 // calls that got a slot and ran their full latency
}

func newDependency(latency time.Duration, capacity int, spread float64) *dependency {
	d := &dependency{slots: make(chan struct{}, capacity), latency: latency}
	if spread > 0 {
		// A lognormal of mean m and coefficient of variation c: sigma^2 = ln(1 + c^2),
		// mu = ln(m) - sigma^2/2.
		v := math.Log1p(spread * spread)
		d.sigma, d.mu = math.Sqrt(v), math.Log(float64(latency))-v/2
	}
	return d
}

// callLatency returns how long the next call takes, once it has a slot.
func (d *dependency) callLatency() time.Duration {
	if d.sigma == 0 {
		return d.latency
	}
	return time.Duration(math.Exp(d.mu + d.sigma*rand.NormFloat64()))
}

// handle is the application handler's body: count the request in, call the dependency.
func (d *dependency) handle(ctx context.Context) error {
	n := d.inHandler.Add(1)
	defer d.inHandler.Add(-1)
	for p := d.peak.Load(); n > p && !d.peak.CompareAndSwap(p, n); p = d.peak.Load() {
	}
	for p := d.stepPeak.Load(); n > p && !d.stepPeak.CompareAndSwap(p, n); p = d.stepPeak.Load() {
	}
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.slots }()
	t := time.NewTimer(d.callLatency())
	defer t.Stop()
	select {
	case <-t.C:
		d.completed.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome is how one request ended, as the client (or the server's outermost layer) sees it.
type outcome uint8

const (
	outcomeOK             outcome = iota // served by the dependency
	outcomeRefused                       // refused at admission: bulkhead full (or circuit open)
	outcomeTimedOut                      // the guard's timeout: queued or ran too long
	outcomeOther                         // any other error
	outcomeClientDeadline                // the client's own deadline passed first (client only)
	outcomeCutOff                        // still in flight at the run's time bound (client only)
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "refused", "timed_out", "other", "client_deadline", "cut_off"}

func (o outcome) String() string { return outcomeNames[o] }

// classifyGRPC sorts an RPC's error. bulkman answers with codes (ResourceExhausted for a
// full bulkhead, Unavailable for an open circuit, DeadlineExceeded for its timeout);
// failsafegrpc returns failsafe-go's sentinel errors as they are, which gRPC sends as
// Unknown with the error's text.
func classifyGRPC(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	st := status.Convert(err)
	msg := st.Message()
	switch {
	case st.Code() == codes.ResourceExhausted, strings.Contains(msg, bulkhead.ErrFull.Error()),
		strings.Contains(msg, adaptivelimiter.ErrExceeded.Error()):
		return outcomeRefused
	case st.Code() == codes.Unavailable && strings.Contains(msg, "circuit"):
		return outcomeRefused
	case st.Code() == codes.DeadlineExceeded, strings.Contains(msg, timeout.ErrExceeded.Error()):
		return outcomeTimedOut
	}
	return outcomeOther
}

// okBody is what the handler answers when the dependency served the request.
const okBody = "ok"

// classifyHTTP sorts a response. bulkman answers 503 with a problem+json body whose type
// names the refusal; failsafehttp answers 429 for a full bulkhead and 503 for its timeout.
func classifyHTTP(code int, body string) outcome {
	switch {
	case code == http.StatusOK && body == okBody:
		return outcomeOK
	case code == http.StatusTooManyRequests,
		strings.Contains(body, httpmw.ProblemFull), strings.Contains(body, httpmw.ProblemCircuitOpen):
		return outcomeRefused
	case strings.Contains(body, httpmw.ProblemTimeout), strings.Contains(body, timeout.ErrExceeded.Error()):
		return outcomeTimedOut
	}
	return outcomeOther
}

// recorder keeps the server-side durations of refused and timed-out requests.
type recorder struct {
	mu       sync.Mutex
	refused  []time.Duration
	timedOut []time.Duration
}

func (r *recorder) add(o outcome, d time.Duration) {
	if o != outcomeRefused && o != outcomeTimedOut {
		return
	}
	r.mu.Lock()
	if o == outcomeRefused {
		r.refused = append(r.refused, d)
	} else {
		r.timedOut = append(r.timedOut, d)
	}
	r.mu.Unlock()
}

// sampler reads the goroutine count and the heap in use every millisecond.
type sampler struct {
	stop, done chan struct{}
	cpu0       time.Duration
	rep        serverReport
}

var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

func heapInUse(s []metrics.Sample) uint64 {
	metrics.Read(s)
	var n uint64
	for _, m := range s {
		if m.Value.Kind() == metrics.KindUint64 {
			n += m.Value.Uint64()
		}
	}
	return n
}

func startSampler() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	ms := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		ms[i].Name = name
	}
	runtime.GC()
	s.rep.IdleGoroutines = runtime.NumGoroutine() - 1 // not counting the sampler itself
	s.rep.IdleHeap = heapInUse(ms)
	s.cpu0, _ = cputime.Process() // 0 where not measured, as is the end
	started := make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		close(started)
		var sum int
		for {
			g := runtime.NumGoroutine() - 1
			s.rep.PeakGoroutines = max(s.rep.PeakGoroutines, g)
			sum += g
			s.rep.Samples++
			s.rep.PeakHeap = max(s.rep.PeakHeap, heapInUse(ms))
			select {
			case <-s.stop:
				s.rep.MeanGoroutines = float64(sum) / float64(s.rep.Samples)
				return
			case <-tick.C:
			}
		}
	}()
	<-started
	return s
}

func (s *sampler) finish() serverReport {
	close(s.stop)
	<-s.done
	cpu, _ := cputime.Process()
	s.rep.CPU = cpu - s.cpu0
	return s.rep
}

// server is a running server of either protocol.
type server struct {
	addr     string
	dep      *dependency
	rec      *recorder
	bh       *core.Bulkhead // bulkman mode only
	adapt    adaptiveState  // the capacity schedule and the timeline
	shutdown func()
	sampler  *sampler
	// depCalls0 is the dependency's count of calls at begin: the client's connection
	// warm-up and probes do not call it, but a restarted measurement would.
	depCalls0 int64
}

// startServer listens on 127.0.0.1 and serves cfg's protocol behind cfg's protection.
func startServer(cfg serverConfig) (*server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{addr: lis.Addr().String(), dep: newDependency(cfg.DepLatency, cfg.DepCapacity, cfg.DepSpread), rec: &recorder{}}
	s.adapt.cfg = cfg
	if adaptiveModes[cfg.Mode] {
		if err := s.adaptiveServer(cfg); err != nil {
			_ = lis.Close()
			return nil, err
		}
	}
	if cfg.Mode == "bulkman" {
		bc := core.DefaultConfig("dependency")
		bc.MaxConcurrentCalls = cfg.Limit
		bc.MaxQueueSize = cfg.Queue
		bc.Timeout = cfg.Timeout
		bc.CircuitBreakerEnabled = cfg.Breaker
		if s.bh, err = core.New(bc); err != nil {
			_ = lis.Close()
			return nil, err
		}
	}
	switch cfg.Proto {
	case "grpc":
		err = s.serveGRPC(lis, cfg)
	case "http":
		err = s.serveHTTP(lis, cfg)
	default:
		err = fmt.Errorf("unknown protocol %q", cfg.Proto)
	}
	if err != nil {
		_ = lis.Close()
		return nil, err
	}
	return s, nil
}

func unknownMode(mode string) error { return fmt.Errorf("unknown mode %q", mode) }

// echoService answers EmptyCall after a call to the dependency.
type echoService struct {
	testpb.UnimplementedTestServiceServer
	dep *dependency
}

// UnaryCall is the probe: unguarded, it answers at once, so that its round trip is the
// loopback's and the machine's own latency at that moment.
func (e echoService) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{}, nil
}

// Method names of the load and of the probe.
const (
	loadMethod  = "/grpc.testing.TestService/EmptyCall"
	probeMethod = "/grpc.testing.TestService/UnaryCall"
	probePath   = "/ping"
)

// onlyLoad applies i to the load's method only, never to the probe. Both protections are
// gated by it, so that they differ only in the interceptor they are.
func onlyLoad(i grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod != loadMethod {
			return h(ctx, req)
		}
		return i(ctx, req, info, h)
	}
}

func (e echoService) EmptyCall(ctx context.Context, in *testpb.Empty) (*testpb.Empty, error) {
	if err := e.dep.handle(ctx); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	return in, nil
}

func (s *server) serveGRPC(lis net.Listener, cfg serverConfig) error {
	observe := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		s.rec.add(classifyGRPC(err), time.Since(start))
		return resp, err
	}
	chain := []grpc.UnaryServerInterceptor{onlyLoad(observe)}
	switch cfg.Mode {
	case "none":
	case "bulkman", "bulkman-adaptive":
		chain = append(chain, onlyLoad(grpcmw.UnaryServerInterceptor(grpcmw.Always(s.bh))))
	case "failsafe-adaptive":
		chain = append(chain, onlyLoad(failsafegrpc.NewUnaryServerInterceptor[any](
			timeout.New[any](cfg.Timeout), adaptivelimiter.NewWithDefaults[any]())))
	case "failsafe":
		chain = append(chain, onlyLoad(failsafegrpc.NewUnaryServerInterceptor[any](
			timeout.New[any](cfg.Timeout),
			bulkhead.NewBuilder[any](uint(cfg.Limit)).WithMaxWaitTime(cfg.MaxWait).Build(),
		)))
	default:
		return unknownMode(cfg.Mode)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(chain...))
	testpb.RegisterTestServiceServer(srv, echoService{dep: s.dep})
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	s.shutdown = func() { srv.Stop(); <-served }
	return nil
}

// statusRecorder keeps the status and the start of the body for the observing middleware.
type statusRecorder struct {
	http.ResponseWriter
	code int
	head []byte
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if room := 256 - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	return w.ResponseWriter.Write(p)
}

func (s *server) serveHTTP(lis net.Listener, cfg serverConfig) error {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.dep.handle(r.Context()); err != nil {
			return // the guard (or nobody: the client went away) answers
		}
		_, _ = io.WriteString(w, okBody)
	})
	switch cfg.Mode {
	case "none":
	case "bulkman", "bulkman-adaptive":
		h = httpmw.Handler(h, s.bh)
	case "failsafe-adaptive":
		h = failsafehttp.NewHandler(h, timeout.New[*http.Response](cfg.Timeout), adaptivelimiter.NewWithDefaults[*http.Response]())
	case "failsafe":
		h = failsafehttp.NewHandler(h,
			timeout.New[*http.Response](cfg.Timeout),
			bulkhead.NewBuilder[*http.Response](uint(cfg.Limit)).WithMaxWaitTime(cfg.MaxWait).Build(),
		)
	default:
		return unknownMode(cfg.Mode)
	}
	guarded := h
	observe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusRecorder{ResponseWriter: w}
		guarded.ServeHTTP(sw, r)
		s.rec.add(classifyHTTP(sw.code, string(sw.head)), time.Since(start))
	})
	mux := http.NewServeMux()
	mux.Handle("/", observe)
	mux.HandleFunc(probePath, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "pong") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	s.shutdown = func() { _ = srv.Close(); <-served }
	return nil
}

// begin marks the start of the load: the sampler starts from an idle, collected heap.
func (s *server) begin() {
	s.depCalls0 = s.dep.completed.Load()
	s.sampler = startSampler()
	s.startTimeline()
}

// end stops sampling, then the server, and reports.
func (s *server) end() serverReport {
	rep := s.sampler.finish()
	rep.Timeline = s.stopTimeline()
	rep.PeakInHandler = s.dep.peak.Load()
	rep.DepCalls = s.dep.completed.Load() - s.depCalls0
	s.rec.mu.Lock()
	rep.Refused = summarize(s.rec.refused)
	rep.TimedOut = summarize(s.rec.timedOut)
	s.rec.mu.Unlock()
	s.shutdown()
	if s.bh != nil {
		st := s.bh.Stats()
		rep.Stats = &st
		rep.Circuit = st.State.String()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.bh.Shutdown(ctx)
	}
	return rep
}

// childEnv, when set in the environment, makes this program the server process: its
// value is the serverConfig in JSON.
const childEnv = "BULKMAN_OVERLOAD_SERVER"

// serveChild runs the server process. It prints "listening ADDR", starts measuring on a
// "start" line on stdin, and on "stop" (or the end of stdin, or after maxLife) prints its
// serverReport as one JSON line and returns.
func serveChild(cfgJSON string, stdin io.Reader, stdout io.Writer, maxLife time.Duration) error {
	var cfg serverConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fmt.Errorf("bad %s: %w", childEnv, err)
	}
	s, err := startServer(cfg)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "listening %s\n", s.addr); err != nil {
		s.shutdown()
		return err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(maxLife)
	for {
		select {
		case line, ok := <-lines:
			switch {
			case ok && line == "start" && s.sampler == nil:
				s.begin()
				if _, err := fmt.Fprintln(stdout, "started"); err != nil {
					s.shutdown()
					return err
				}
				continue
			case ok && line != "stop":
				continue
			}
		case <-deadline:
		}
		if s.sampler == nil {
			s.begin()
		}
		return json.NewEncoder(stdout).Encode(s.end())
	}
}

// summary is a latency distribution: count, p50, p99 and max (nearest rank).
type summary struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.999999) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return summary{N: len(ds), P50: rank(0.50), P99: rank(0.99), Max: ds[len(ds)-1]}
}

// discardLog silences net/http's per-connection errors (clients cut off at the time bound).
var discardLog = log.New(io.Discard, "", 0)
