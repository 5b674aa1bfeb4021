// Command overload offers a gRPC server and an HTTP server ten times the load their
// dependency can take, and reports what happens with no protection, with bulkman, and
// with failsafe-go's integration (failsafegrpc, failsafehttp).
//
// The dependency takes 20ms per call and serves 8 calls at once (a semaphore of 8 and a
// sleep; callers beyond 8 wait), so it can serve 400 requests/s. A closed-loop load
// generator keeps 80 clients busy, each sending its next request as soon as the last one
// is answered: ten times the dependency's concurrency. Each run sends a fixed number of
// requests and stops at a time bound, whichever comes first.
//
//	cd bench && go run ./overload                      # both protocols, the three modes
//	go run ./overload -proto grpc -mode bulkman        # one run
//	go run ./overload -rounds 3 -json results/overload.json
//
// The protections, configured to give the same bounds:
//
//	bulkman   MaxConcurrentCalls 8, MaxQueueSize 8, Timeout 100ms, circuit breaker off
//	          (-breaker turns it on: 5 failures / 3 successes / 30s):
//	          grpcmw.UnaryServerInterceptor, httpmw.Handler
//	failsafe  failsafe.With(timeout 100ms, bulkhead 8 with max wait 20ms):
//	          failsafegrpc.NewUnaryServerInterceptor, failsafehttp.NewHandler
//
// A queue of 8 behind 8 permits waits at most one dependency call (20ms), so the failsafe
// bulkhead's max wait is 20ms as well. The breaker is off by default because the scenario
// is overload of a healthy dependency, which a breaker has no business judging, and
// because failsafe-go's side has none: the two then differ only in their bulkheads. A full
// bulkhead's refusals never count against the circuit, so with -breaker the circuit stays
// closed under overload alone; but the guard's timeouts do count, and when the host
// stalls (this shared machine does, for tenths of a second) five of them in a row open
// the circuit for 30s. docs/performance.md shows both.
//
// Every server runs in a process of its own (this program, started again with the
// BULKMAN_OVERLOAD_SERVER environment variable), so that the goroutines and the heap it
// reports are the server's alone, not the load generator's. It samples
// runtime.NumGoroutine and the heap in use (runtime/metrics: heap objects plus unused
// heap spans, i.e. MemStats.HeapInuse) every millisecond during the load, and counts
// exactly how many requests are inside the application handler at once. Everything
// listens on 127.0.0.1 only, and every run ends by itself.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// options are the command line.
type options struct {
	protos, modes []string
	rounds        int
	load          loadConfig
	server        serverConfig
	inProcess     bool
	jsonOut       string
	quiet         bool
	prio          prioOptions // -scenario: see priority.go
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("overload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	protos := fs.String("proto", "grpc,http", "protocols to run, comma-separated: grpc, http")
	modes := fs.String("mode", "none,bulkman,failsafe", "protections to run, comma-separated: none, bulkman, failsafe, bulkman-adaptive, failsafe-adaptive")
	fs.IntVar(&o.rounds, "rounds", 1, "how many times to run every (protocol, mode), interleaved")
	fs.IntVar(&o.load.Clients, "clients", 80, "closed-loop clients (concurrent requests offered)")
	fs.IntVar(&o.load.Requests, "requests", 20000, "requests per run")
	fs.DurationVar(&o.load.MaxDuration, "max-duration", 10*time.Second, "time bound per run")
	fs.DurationVar(&o.load.ClientTimeout, "client-timeout", 0, "a deadline on every request (0: none)")
	fs.DurationVar(&o.load.RefusalPause, "refusal-pause", 0, "how long a client waits after a refusal or a timeout before its next request (0: at once)")
	fs.IntVar(&o.load.IdleProbes, "idle-probes", 200, "no-op probes sent one after another before each run, for the idle round trip")
	fs.DurationVar(&o.server.DepLatency, "dep-latency", 20*time.Millisecond, "the dependency's latency")
	fs.IntVar(&o.server.DepCapacity, "dep-capacity", 8, "calls the dependency serves at once")
	fs.Float64Var(&o.server.DepSpread, "dep-spread", 0, "the spread of the dependency's latency: 0, every call takes -dep-latency; above 0, lognormal latencies of mean -dep-latency with this coefficient of variation (e.g. 0.5)")
	fs.IntVar(&o.server.Limit, "limit", 8, "bulkhead size (bulkman MaxConcurrentCalls, failsafe bulkhead)")
	fs.IntVar(&o.server.Queue, "queue", 8, "bulkman MaxQueueSize")
	fs.DurationVar(&o.server.Timeout, "timeout", 100*time.Millisecond, "bulkman Timeout and failsafe timeout")
	fs.DurationVar(&o.server.MaxWait, "max-wait", 20*time.Millisecond, "failsafe bulkhead max wait time")
	fs.BoolVar(&o.server.Breaker, "breaker", false, "bulkman circuit breaker (5 failures / 3 successes / 30s)")
	adaptiveFlags(fs, &o)
	fs.BoolVar(&o.inProcess, "inprocess", false, "run the servers in this process (their numbers then include the load generator's)")
	fs.StringVar(&o.jsonOut, "json", "", "also write every run's numbers to this file")
	fs.BoolVar(&o.quiet, "quiet", !isTerminal(os.Stderr), "no progress line (the default when stderr is not a terminal)")
	prioDone := registerPrioFlags(fs, &o.prio)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := prioDone(); err != nil {
		return o, err
	}
	o.protos, o.modes = splitList(*protos), splitList(*modes)
	for _, p := range o.protos {
		if p != "grpc" && p != "http" {
			return o, fmt.Errorf("unknown protocol %q", p)
		}
	}
	for _, m := range o.modes {
		if m != "none" && m != "bulkman" && m != "failsafe" && !adaptiveModes[m] {
			return o, fmt.Errorf("unknown mode %q", m)
		}
	}
	switch {
	case o.rounds < 1, o.load.Clients < 1, o.load.Requests < 1, o.load.MaxDuration <= 0:
		return o, errors.New("-rounds, -clients, -requests and -max-duration must be positive")
	case o.load.IdleProbes < 0:
		return o, errors.New("-idle-probes must be at least 0")
	case o.server.DepCapacity < 1, o.server.Limit < 1, o.server.Queue < 0, o.server.DepLatency <= 0:
		return o, errors.New("-dep-capacity and -limit must be at least 1, -queue at least 0, -dep-latency positive")
	case !(o.server.DepSpread >= 0 && o.server.DepSpread <= maxDepSpread): // NaN fails too
		return o, fmt.Errorf("-dep-spread must be between 0 and %d, not %v", maxDepSpread, o.server.DepSpread)
	}
	if err := checkAdaptiveFlags(&o); err != nil {
		return o, err
	}
	return o, nil
}

// maxDepSpread bounds -dep-spread: at 10 the median call takes a tenth of the mean.
const maxDepSpread = 10

// depDesc describes the dependency for a report's header: "20ms x 8 at once", with the
// latencies' spread when there is one.
func depDesc(sc serverConfig) string {
	s := fmt.Sprintf("%v x %d at once", sc.DepLatency, sc.DepCapacity)
	if sc.DepSpread > 0 {
		s += fmt.Sprintf(" (latency lognormal, mean %v, spread %g)", sc.DepLatency, sc.DepSpread)
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// result is one run.
type result struct {
	Round  int           `json:"round"`
	Proto  string        `json:"proto"`
	Mode   string        `json:"mode"`
	Server serverReport  `json:"server"`
	Client clientReport  `json:"client"`
	Phases []phaseReport `json:"phases,omitempty"` // adaptive targets, stretch by stretch
}

func main() {
	if cfg := os.Getenv(childEnv); cfg != "" {
		if err := serveChild(cfg, os.Stdin, os.Stdout, 5*time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "overload server:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseOptions(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(2)
	}
	if len(o.prio.scenarios) > 0 {
		if err := runPriorities(o, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "overload:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
}

// run runs every round of every (protocol, mode) and prints a table per protocol and round.
func run(o options, stdout, stderr io.Writer) error {
	exe := ""
	if !o.inProcess {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "overload: %d clients, %d requests per run (at most %v), refusal pause %v, client timeout %v; dependency %s\n",
		o.load.Clients, o.load.Requests, o.load.MaxDuration, o.load.RefusalPause, o.load.ClientTimeout, depDesc(o.server))
	fmt.Fprintf(stdout, "bulkman: limit %d, queue %d, timeout %v, breaker %v; failsafe-go: bulkhead %d, max wait %v, timeout %v\n",
		o.server.Limit, o.server.Queue, o.server.Timeout, o.server.Breaker, o.server.Limit, o.server.MaxWait, o.server.Timeout)
	fmt.Fprintf(stdout, "%s %s/%s, GOMAXPROCS %d, load average at start %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), loadAverage())
	var all []result
	for round := 1; round <= o.rounds; round++ {
		for _, proto := range o.protos {
			var rs []result
			for _, mode := range o.modes {
				sc := o.server
				sc.Proto, sc.Mode = proto, mode
				label := fmt.Sprintf("round %d/%d %s %s", round, o.rounds, proto, mode)
				progress := func(done int64, elapsed time.Duration) {
					if !o.quiet {
						fmt.Fprintf(stderr, "\r%-28s %6d/%d requests  %5.1fs", label, done, o.load.Requests, elapsed.Seconds())
					}
				}
				r, err := runOne(exe, sc, o.load, progress)
				if !o.quiet {
					fmt.Fprintf(stderr, "\r%s\r", strings.Repeat(" ", 60))
				}
				if err == nil {
					fmt.Fprintf(stderr, "%s: %d requests in %.2fs\n", label, r.Client.Sent, r.Client.Elapsed.Seconds())
				}
				if err != nil {
					return fmt.Errorf("%s: %w", label, err)
				}
				r.Round = round
				r.Phases = phases(o, r)
				rs = append(rs, r)
			}
			printTable(stdout, fmt.Sprintf("%s, round %d", proto, round), o, rs)
			all = append(all, rs...)
		}
	}
	if o.jsonOut != "" {
		out := struct {
			GoVersion  string       `json:"go_version"`
			GOMAXPROCS int          `json:"gomaxprocs"`
			Load       loadConfig   `json:"load"`
			Server     serverConfig `json:"server"`
			Runs       []result     `json:"runs"`
		}{runtime.Version(), runtime.GOMAXPROCS(0), o.load, o.server, all}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runOne runs one server (in a process of its own unless exe is empty) under the load.
func runOne(exe string, sc serverConfig, lc loadConfig, progress func(int64, time.Duration)) (result, error) {
	r := result{Proto: sc.Proto, Mode: sc.Mode}
	var srv interface {
		address() string
		begin() error
		end() (serverReport, error)
	}
	if exe == "" {
		s, err := startServer(sc)
		if err != nil {
			return r, err
		}
		srv = inProcess{s}
	} else {
		c, err := startChild(exe, sc)
		if err != nil {
			return r, err
		}
		srv = c
	}
	c, err := newCaller(sc.Proto, srv.address(), lc.Clients)
	if err != nil {
		_, _ = srv.end()
		return r, err
	}
	idle, idleErrs := probeIdle(c, lc.IdleProbes)
	if err := srv.begin(); err != nil {
		c.close()
		_, _ = srv.end()
		return r, err
	}
	r.Client = runLoad(c, lc, progress)
	r.Client.ProbeIdle = summarize(idle)
	r.Client.ProbeErrors += idleErrs
	c.close()
	r.Server, err = srv.end()
	return r, err
}

// inProcess adapts a server running in this process.
type inProcess struct{ s *server }

func (p inProcess) address() string            { return p.s.addr }
func (p inProcess) begin() error               { p.s.begin(); return nil }
func (p inProcess) end() (serverReport, error) { return p.s.end(), nil }

// child is a server running in a process of its own.
type child struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
	exit chan error
}

func startChild(exe string, sc serverConfig) (*child, error) {
	cfg, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out), exit: make(chan error, 1)}
	line, err := c.readLine()
	if err != nil || !strings.HasPrefix(line, "listening ") {
		c.kill()
		return nil, fmt.Errorf("server process did not start: %q, %v", line, err)
	}
	c.addr = strings.TrimPrefix(line, "listening ")
	return c, nil
}

// readLine reads one line of the child's output, giving up after 30s.
func (c *child) readLine() (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.out.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(30 * time.Second):
		return "", errors.New("server process: no answer in 30s")
	}
}

func (c *child) address() string { return c.addr }

func (c *child) begin() error {
	if _, err := io.WriteString(c.in, "start\n"); err != nil {
		return err
	}
	// The server starts its sampler (after a GC) before it acknowledges, so that the load
	// starts after the measurement.
	line, err := c.readLine()
	if err != nil || line != "started" {
		return fmt.Errorf("server process did not start measuring: %q, %v", line, err)
	}
	return nil
}

func (c *child) end() (serverReport, error) {
	var rep serverReport
	_, err := io.WriteString(c.in, "stop\n")
	if err == nil {
		var line string
		if line, err = c.readLine(); err == nil {
			err = json.Unmarshal([]byte(line), &rep)
		}
	}
	_ = c.in.Close()
	go func() { c.exit <- c.cmd.Wait() }()
	select {
	case werr := <-c.exit:
		return rep, errors.Join(err, werr)
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exit
		return rep, errors.Join(err, errors.New("server process did not exit; killed"))
	}
}

// kill ends the child process this program started, when it failed to start serving.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// isTerminal reports whether f is a character device, where a progress line can redraw
// itself.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// loadAverage returns the 1-minute load average (Linux), so that a table says how busy the
// machine was; "?" elsewhere.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
