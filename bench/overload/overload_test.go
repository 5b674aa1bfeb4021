package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	// TestChildProcess starts this test binary again as the server process.
	if cfg := os.Getenv(childEnv); cfg != "" {
		if err := serveChild(cfg, os.Stdin, os.Stdout, time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// small is a scaled-down scenario that runs in well under a second per run: a dependency
// of 2 at 5ms, 20 clients, 5 idle probes. Its Timeout is far above any wait the scenario causes: the
// tests check refusals, and their exact counts (every served request called the
// dependency once, and bulkman counted it a success) would not hold for a request that
// timed out as the dependency answered, which a host stall of 50ms under -race caused.
func small() options {
	return options{
		protos: []string{"grpc", "http"},
		modes:  []string{"none", "bulkman", "failsafe"},
		rounds: 1,
		quiet:  true,
		load:   loadConfig{Clients: 20, Requests: 300, MaxDuration: 10 * time.Second, IdleProbes: 5},
		server: serverConfig{
			DepLatency: 5 * time.Millisecond, DepCapacity: 2,
			Limit: 2, Queue: 2, Timeout: time.Second, MaxWait: 5 * time.Millisecond, Breaker: true,
		},
	}
}

func TestScenarios(t *testing.T) {
	o := small()
	for _, proto := range o.protos {
		for _, mode := range o.modes {
			t.Run(proto+"/"+mode, func(t *testing.T) {
				sc := o.server
				sc.Proto, sc.Mode = proto, mode
				r, err := runOne("", sc, o.load, nil)
				require.NoError(t, err)
				c, s := r.Client, r.Server
				assert.Equal(t, o.load.Requests, c.Sent)
				assert.False(t, c.HitTimeBound)
				assert.Zero(t, c.Counts[outcomeOther], "other errors")
				assert.Positive(t, c.Counts[outcomeOK], "served")
				assert.Equal(t, int64(c.Counts[outcomeOK]), s.DepCalls, "every served request called the dependency once")
				assert.Positive(t, s.Samples)
				assert.GreaterOrEqual(t, s.PeakGoroutines, s.IdleGoroutines)
				assert.Positive(t, s.PeakHeap)
				assert.Positive(t, c.ProbeIdle.N)
				switch mode {
				case "none":
					assert.Equal(t, c.Sent, c.Counts[outcomeOK], "without protection every request waits its turn")
					assert.Greater(t, s.PeakInHandler, int64(sc.Limit))
				case "bulkman":
					assert.Positive(t, c.Counts[outcomeRefused])
					assert.LessOrEqual(t, s.PeakInHandler, int64(sc.Limit))
					assert.Positive(t, s.Refused.N, "the server saw the refusals")
					require.NotNil(t, s.Stats)
					assert.True(t, s.Stats.CircuitBreakerEnabled)
					if s.Stats.TimedOutExecutions < int64(5) { // five timeouts in a row (a stalled machine) would open it
						assert.Equal(t, "healthy", s.Circuit, "refusals of a full bulkhead do not open the circuit")
					}
					assert.Equal(t, int64(c.Counts[outcomeOK]), s.Stats.SuccessfulExecutions)
				case "failsafe":
					assert.Positive(t, c.Counts[outcomeRefused])
					assert.LessOrEqual(t, s.PeakInHandler, int64(sc.Limit))
					assert.GreaterOrEqual(t, c.Latency[outcomeRefused].P50, sc.MaxWait, "failsafe-go refuses after its max wait")
				}
			})
		}
	}
}

// TestChildProcess runs one scenario with the server in a process of its own, as the
// command does.
func TestChildProcess(t *testing.T) {
	o := small()
	sc := o.server
	sc.Proto, sc.Mode = "grpc", "bulkman"
	r, err := runOne(os.Args[0], sc, o.load, nil)
	require.NoError(t, err)
	assert.Equal(t, o.load.Requests, r.Client.Sent)
	assert.Positive(t, r.Client.Counts[outcomeRefused])
	assert.Positive(t, r.Server.Samples)
	assert.LessOrEqual(t, r.Server.PeakInHandler, int64(sc.Limit))
	if r.Server.Stats != nil && r.Server.Stats.TimedOutExecutions < 5 {
		assert.Equal(t, "healthy", r.Server.Circuit)
	}
}

func TestRunPrintsTables(t *testing.T) {
	o := small()
	o.protos, o.modes = []string{"http"}, []string{"bulkman"}
	o.inProcess = true
	o.jsonOut = t.TempDir() + "/runs.json"
	var out bytes.Buffer
	require.NoError(t, run(o, &out, io.Discard))
	assert.Contains(t, out.String(), "### http, round 1")
	assert.Contains(t, out.String(), "|  | bulkman |")
	assert.Contains(t, out.String(), "bulkman targets (http):")
	b, err := os.ReadFile(o.jsonOut)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"runs"`)
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want outcome
	}{
		{nil, outcomeOK},
		{status.Error(codes.ResourceExhausted, `bulkhead "dependency" is at capacity (16/16)`), outcomeRefused},
		{status.Error(codes.Unavailable, `bulkhead "dependency": circuit is open`), outcomeRefused},
		{status.Error(codes.DeadlineExceeded, "bulkhead timeout"), outcomeTimedOut},
		{status.Error(codes.Unknown, "bulkhead full"), outcomeRefused},     // failsafegrpc
		{status.Error(codes.Unknown, "timeout exceeded"), outcomeTimedOut}, // failsafegrpc
		{status.Error(codes.Internal, "boom"), outcomeOther},
	} {
		assert.Equal(t, tc.want, classifyGRPC(tc.err), "%v", tc.err)
	}
	for _, tc := range []struct {
		code int
		body string
		want outcome
	}{
		{http.StatusOK, okBody, outcomeOK},
		{http.StatusOK, "", outcomeOther},
		{http.StatusServiceUnavailable, `{"type":"urn:bulkman:full"}`, outcomeRefused},
		{http.StatusServiceUnavailable, `{"type":"urn:bulkman:timeout"}`, outcomeTimedOut},
		{http.StatusTooManyRequests, "bulkhead full\n", outcomeRefused},        // failsafehttp
		{http.StatusServiceUnavailable, "timeout exceeded\n", outcomeTimedOut}, // failsafehttp
		{http.StatusInternalServerError, "", outcomeOther},
	} {
		assert.Equal(t, tc.want, classifyHTTP(tc.code, tc.body), "%d %s", tc.code, tc.body)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc", "http"}, o.protos)
	assert.Equal(t, []string{"none", "bulkman", "failsafe"}, o.modes)
	assert.Equal(t, 80, o.load.Clients)
	assert.Equal(t, 200, o.load.IdleProbes)
	assert.Equal(t, 20*time.Millisecond, o.server.DepLatency)
	for _, args := range [][]string{
		{"-proto", "udp"}, {"-mode", "magic"}, {"-clients", "0"}, {"-limit", "0"}, {"-queue", "-1"}, {"-idle-probes", "-1"},
		{"-dep-spread", "-0.5"}, {"-dep-spread", "NaN"}, {"-dep-spread", "11"},
	} {
		_, err := parseOptions(args, io.Discard)
		assert.Error(t, err, "%v", args)
	}
}

// TestDependencySpread checks the spread dependency's latencies: their mean is the
// latency asked for and their coefficient of variation the spread; without a spread every
// call takes the latency.
func TestDependencySpread(t *testing.T) {
	assert.Equal(t, 20*time.Millisecond, newDependency(20*time.Millisecond, 8, 0).callLatency())
	for _, spread := range []float64{0.25, 1} {
		d := newDependency(20*time.Millisecond, 8, spread)
		const n = 200_000
		var sum, sumSq float64
		for range n {
			x := float64(d.callLatency())
			sum, sumSq = sum+x, sumSq+x*x
		}
		mean := sum / n
		cv := math.Sqrt(sumSq/n-mean*mean) / mean
		assert.InEpsilon(t, float64(20*time.Millisecond), mean, 0.02, "mean at spread %g", spread)
		assert.InEpsilon(t, spread, cv, 0.05, "coefficient of variation at spread %g", spread)
	}
}

func TestSummarize(t *testing.T) {
	assert.Equal(t, summary{}, summarize(nil))
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	assert.Equal(t, summary{N: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}, s)
}

// TestPhases checks the adaptive targets' stretches: an unguarded run is cut too (its
// goodput is the dependency's ceiling), a static guard's is not.
func TestPhases(t *testing.T) {
	o := small()
	o.server.DepCapacity, o.server.DepLatency = 2, 10*time.Millisecond // 200 calls/s
	r := result{Mode: "none"}
	r.Client.Elapsed = settleStart + 2*time.Second
	for at := time.Duration(0); at < r.Client.Elapsed; at += 10 * time.Millisecond {
		r.Client.Served = append(r.Client.Served, servedAt{End: at, D: 40 * time.Millisecond}) // 100/s
	}
	r.Server.Timeline = make([]timelineStep, int(r.Client.Elapsed/timelineEvery))
	for i := range r.Server.Timeline {
		r.Server.Timeline[i].Peak = 3
	}
	ps := phases(o, r)
	require.Len(t, ps, 1)
	assert.Equal(t, settleStart, ps[0].From)
	assert.InDelta(t, 0.5, ps[0].Goodput, 0.01)
	assert.Equal(t, 40*time.Millisecond, ps[0].ServedP99)
	assert.EqualValues(t, 3, ps[0].Peak)

	var out bytes.Buffer
	printPhases(&out, o, []result{{Mode: "none", Phases: ps}})
	assert.Contains(t, out.String(), "| no protection | 5-7 s | 2 | 50% | 40.0 ms | 3 | – | – (the dependency's ceiling) |")

	r.Mode = "bulkman"
	assert.Nil(t, phases(o, r), "a static guard is told the capacity: no adaptive targets")
}

func TestCriticalFloor(t *testing.T) {
	o := small()
	o.load.Clients, o.server.DepCapacity, o.server.DepLatency = 80, 8, 20*time.Millisecond
	for _, c := range []struct {
		share float64
		want  time.Duration
	}{
		{0.2, 40 * time.Millisecond}, // 16 clients on 8 places: each waits one call
		{0.1, 20 * time.Millisecond}, // 8 on 8: none need wait
		{0.05, 20 * time.Millisecond},
	} {
		o.prio.critical = c.share
		assert.Equal(t, c.want, criticalFloor(o), "critical share %v", c.share)
	}
}
