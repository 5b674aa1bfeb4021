package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/bulkman-go/bulkman/internal/cputime"
)

// loadConfig is the closed-loop load: Clients goroutines, each sending its next request
// as soon as the previous one is answered, until Requests have been sent or MaxDuration
// has passed (then the requests in flight are cancelled and counted as cut off).
type loadConfig struct {
	Clients       int
	Requests      int
	MaxDuration   time.Duration
	ClientTimeout time.Duration // a deadline on each request; 0 for none
	// RefusalPause is how long a client waits after a refusal or a timeout before its next
	// request, as a client honouring Retry-After or backing off would; 0 sends at once.
	RefusalPause time.Duration
	// IdleProbes is how many probes are sent one after another before the load, for the
	// idle round trip (ProbeIdle).
	IdleProbes int
}

// clientReport is what the load generator saw.
type clientReport struct {
	Sent         int                  `json:"sent"`
	Counts       [numOutcomes]int     `json:"counts"` // indexed by outcome
	Elapsed      time.Duration        `json:"elapsed"`
	HitTimeBound bool                 `json:"hit_time_bound"`
	CPU          time.Duration        `json:"cpu"`     // the load generator's CPU time (user + system)
	Latency      [numOutcomes]summary `json:"latency"` // per outcome, as the client saw it
	// ProbeIdle and ProbeLoad are the round trips of an unguarded request that does
	// nothing, before the load and during it (one every probeEvery): the loopback's and the
	// machine's own latency, the floor under every latency above.
	ProbeIdle   summary `json:"probe_idle"`
	ProbeLoad   summary `json:"probe_load"`
	ProbeErrors int     `json:"probe_errors"`
	// Served is every served request's end (since the start of the load) and latency, for
	// the adaptive targets' stretches; not written to -json.
	Served []servedAt `json:"-"`
}

const probeEvery = 5 * time.Millisecond

// probeIdle sends n probes one after another, before the load, and returns their round
// trips and how many failed.
func probeIdle(c caller, n int) ([]time.Duration, int) {
	var ds []time.Duration
	errs := 0
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t0 := time.Now()
		err := c.probe(ctx)
		d := time.Since(t0)
		cancel()
		if err != nil {
			errs++
			continue
		}
		ds = append(ds, d)
		time.Sleep(time.Millisecond)
	}
	return ds, errs
}

// Goodput is the served requests per second of the run.
func (c clientReport) Goodput() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Counts[outcomeOK]) / c.Elapsed.Seconds()
}

// caller sends one request and sorts its outcome, or sends the probe.
type caller interface {
	call(ctx context.Context) outcome
	probe(ctx context.Context) error
	close()
}

type grpcCaller struct {
	cc *grpc.ClientConn
	c  testpb.TestServiceClient
}

func newGRPCCaller(addr string) (*grpcCaller, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	cc.Connect()
	return &grpcCaller{cc: cc, c: testpb.NewTestServiceClient(cc)}, nil
}

func (g *grpcCaller) call(ctx context.Context) outcome {
	_, err := g.c.EmptyCall(ctx, &testpb.Empty{})
	return classifyGRPC(err)
}

// probe shares the load's connection, so that it waits where the load's requests wait.
func (g *grpcCaller) probe(ctx context.Context) error {
	_, err := g.c.UnaryCall(ctx, &testpb.SimpleRequest{})
	return err
}

func (g *grpcCaller) close() { _ = g.cc.Close() }

type httpCaller struct {
	tr, probeTr *http.Transport
	c, probeC   *http.Client
	url         string
}

// newHTTPCaller keeps one HTTP/1.1 keep-alive connection per client.
func newHTTPCaller(addr string, clients int) *httpCaller {
	tr := &http.Transport{
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: 2 * clients,
		MaxConnsPerHost:     clients, // no more connections than clients: the server's count is fixed
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	probeTr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	return &httpCaller{tr: tr, c: &http.Client{Transport: tr}, probeTr: probeTr, probeC: &http.Client{Transport: probeTr}, url: "http://" + addr}
}

func (h *httpCaller) call(ctx context.Context) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/", nil)
	if err != nil {
		return outcomeOther
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return outcomeOther
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if err != nil {
		return outcomeOther
	}
	return classifyHTTP(resp.StatusCode, string(body))
}

// probe has a connection of its own: with HTTP/1.1, one request at a time per connection.
func (h *httpCaller) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+probePath, nil)
	if err != nil {
		return err
	}
	resp, err := h.probeC.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("probe: status %d", resp.StatusCode)
	}
	return err
}

func (h *httpCaller) close() { h.tr.CloseIdleConnections(); h.probeTr.CloseIdleConnections() }

func newCaller(proto, addr string, clients int) (caller, error) {
	switch proto {
	case "grpc":
		return newGRPCCaller(addr)
	case "http":
		return newHTTPCaller(addr, clients), nil
	}
	return nil, fmt.Errorf("unknown protocol %q", proto)
}

// sample is one finished request.
type sample struct {
	d   time.Duration
	o   outcome
	end time.Duration // since the start of the load
}

// runLoad drives c with cfg's closed loop and reports what came back. progress, if not
// nil, is called about every 100ms with the requests finished so far.
func runLoad(c caller, cfg loadConfig, progress func(done int64, elapsed time.Duration)) clientReport {
	// The time bound cancels the requests in flight, but is not their deadline: gRPC would
	// send it along, and in the bound's last moments the server would fail every request
	// at once with DeadlineExceeded.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bound := time.AfterFunc(cfg.MaxDuration, cancel)
	defer bound.Stop()
	var next, done atomic.Int64
	perClient := make([][]sample, cfg.Clients)
	cpu0, _ := cputime.Process() // 0 where not measured, as is the end
	start := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Go(func() {
			mine := make([]sample, 0, cfg.Requests/cfg.Clients+1)
			for ctx.Err() == nil && next.Add(1) <= int64(cfg.Requests) {
				rctx, rcancel := ctx, context.CancelFunc(func() {})
				if cfg.ClientTimeout > 0 {
					rctx, rcancel = context.WithTimeout(ctx, cfg.ClientTimeout)
				}
				t0 := time.Now()
				o := c.call(rctx)
				d := time.Since(t0)
				switch {
				case o == outcomeOK:
				case ctx.Err() != nil:
					o = outcomeCutOff
				case cfg.ClientTimeout > 0 && clientDeadlinePassed(rctx):
					o = outcomeClientDeadline
				}
				rcancel()
				mine = append(mine, sample{d, o, time.Since(start)})
				done.Add(1)
				if cfg.RefusalPause > 0 && (o == outcomeRefused || o == outcomeTimedOut) {
					select {
					case <-time.After(cfg.RefusalPause):
					case <-ctx.Done():
					}
				}
			}
			perClient[i] = mine
		})
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				if progress != nil {
					progress(done.Load(), time.Since(start))
				}
			}
		}
	}()
	var probes []time.Duration
	probeErrs := 0
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			if err := c.probe(ctx); err != nil {
				if ctx.Err() == nil {
					probeErrs++
				}
				continue
			}
			probes = append(probes, time.Since(t0))
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := cputime.Process()
	cpu := cpu1 - cpu0
	close(stopProgress)
	<-progressDone
	<-probesDone

	rep := clientReport{Elapsed: elapsed, HitTimeBound: ctx.Err() != nil, CPU: cpu,
		ProbeLoad: summarize(probes), ProbeErrors: probeErrs}
	for _, mine := range perClient {
		for _, s := range mine {
			if s.o == outcomeOK {
				rep.Served = append(rep.Served, servedAt{End: s.end, D: s.d})
			}
		}
	}
	var byOutcome [numOutcomes][]time.Duration
	for _, mine := range perClient {
		for _, s := range mine {
			byOutcome[s.o] = append(byOutcome[s.o], s.d)
			rep.Counts[s.o]++
			rep.Sent++
		}
	}
	for o := range byOutcome {
		rep.Latency[o] = summarize(byOutcome[o])
	}
	return rep
}

// clientDeadlinePassed reports whether the request's own deadline has passed, or is within
// a millisecond: gRPC sends the deadline to the server, whose handler may then fail with
// DeadlineExceeded a moment before the client's own timer fires.
func clientDeadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < time.Millisecond
}
