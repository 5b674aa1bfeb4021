// Command observability shows what operators see of a Manager's bulkheads: Prometheus
// metrics at /metrics, every bulkhead's Stats as JSON at /bulkheads.json, a live status
// page at /status, and a gRPC health server whose "shop.Payments" status follows the
// "payments" bulkhead. It sends traffic that moves the payments circuit through open,
// half-open and closed, prints the state sequence, the health statuses and a few metric
// lines, and exits; with -serve it keeps serving, and keeps cycling the traffic, until
// interrupted.
//
//	go run ./examples/observability            # about two seconds, then exits
//	go run ./examples/observability -serve     # then open the printed /status URL
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpchealth"
	"github.com/bulkman-go/bulkman/prommetrics"
	"github.com/bulkman-go/bulkman/statuspage"
)

func main() {
	serve := flag.Bool("serve", false, "keep serving (and cycling the traffic) until interrupted")
	addr := flag.String("addr", "127.0.0.1:0", "HTTP listen address (loopback)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *serve); err != nil {
		log.Fatal(err)
	}
}

// transitions records the circuit's state changes, from the event hook.
type transitions struct {
	mu  sync.Mutex
	seq []string
}

func (t *transitions) observe(e core.Event) {
	if e.Kind == core.EventStateChanged && e.Bulkhead == "payments" {
		t.mu.Lock()
		if len(t.seq) == 0 {
			t.seq = append(t.seq, e.From.String())
		}
		t.seq = append(t.seq, e.To.String())
		t.mu.Unlock()
	}
}

func (t *transitions) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.seq, " → ")
}

// dependency stands in for the payments API: up, it answers in a few milliseconds;
// down, it fails.
type dependency struct{ down atomic.Bool }

func (d *dependency) call(ctx context.Context) (string, error) {
	if d.down.Load() {
		return "", errors.New("payments API: 503 Service Unavailable")
	}
	select {
	case <-time.After(2 * time.Millisecond):
		return "ok", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func run(ctx context.Context, addr string, serve bool) error {
	// Wiring: each exporter attaches to the Manager in one step.
	m := core.NewManager()
	seq := &transitions{}
	m.Subscribe(seq.observe)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prommetrics.New(m))
	hs := health.NewServer()
	reporter, err := grpchealth.New(hs, grpchealth.Config{
		Services: map[string][]string{"shop.Payments": {"payments"}},
		Interval: 250 * time.Millisecond,
	})
	if err != nil {
		return err
	}

	payCfg := core.DefaultConfig("payments")
	payCfg.MaxConcurrentCalls, payCfg.MaxQueueSize, payCfg.Timeout = 4, 4, 200*time.Millisecond
	payCfg.CircuitBreakerEnabled = true
	payCfg.FailureThreshold, payCfg.SuccessThreshold, payCfg.IsolationDuration = 3, 2, 700*time.Millisecond
	payments, err := m.Create(payCfg)
	if err != nil {
		return err
	}
	invCfg := core.DefaultConfig("inventory")
	invCfg.MaxConcurrentCalls, invCfg.MaxQueueSize = 8, 16
	inventory, err := m.Create(invCfg)
	if err != nil {
		return err
	}

	// HTTP: metrics, JSON and the status page, on loopback.
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /bulkheads.json", statuspage.JSON(m))
	mux.Handle("GET /status", statuspage.Page("/bulkheads.json"))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Serve(lis) }()
	base := "http://" + lis.Addr().String()

	// gRPC: the health service, on loopback, and a client that checks it.
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	grpcSrv := grpc.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, hs)
	grpcDone := make(chan error, 1)
	go func() { grpcDone <- grpcSrv.Serve(grpcLis) }()
	conn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	healthClient := healthpb.NewHealthClient(conn)
	checkHealth := func(svc string) string {
		resp, err := healthClient.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return err.Error()
		}
		return resp.GetStatus().String()
	}

	runCtx, stopReporter := context.WithCancel(ctx)
	reporterDone := make(chan error, 1)
	go func() { reporterDone <- reporter.Run(runCtx, m) }()
	defer func() {
		stopReporter()
		<-reporterDone
		_ = conn.Close()
		grpcSrv.Stop()
		<-grpcDone
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(shutdownCtx)
		<-httpDone
		_ = m.Shutdown(shutdownCtx)
	}()

	fmt.Printf("serving %s/metrics, %s/bulkheads.json, %s/status; gRPC health on %s\n",
		base, base, base, grpcLis.Addr())

	dep := &dependency{}
	if serve {
		fmt.Println("traffic cycles through an outage every few seconds; Ctrl-C to stop")
		for ctx.Err() == nil {
			if err := cycle(ctx, payments, inventory, dep, 2*time.Second, nil); err != nil && ctx.Err() == nil {
				return err
			}
		}
		return nil
	}

	var statuses, overall []string // health(shop.Payments) and health("") at each step
	say := func(what string) {
		svc, all := checkHealth("shop.Payments"), checkHealth("")
		statuses, overall = append(statuses, svc), append(overall, all)
		fmt.Printf("%-46s payments=%-8s  health(shop.Payments)=%-11s  health(\"\")=%s\n",
			what, payments.State(), svc, all)
	}
	if err := cycle(ctx, payments, inventory, dep, 0, say); err != nil {
		return err
	}

	fmt.Println("\nstate sequence of payments:", seq)
	if want := "healthy → isolated → degraded → healthy"; seq.String() != want {
		return fmt.Errorf("state sequence %q, want %q", seq, want)
	}
	// shop.Payments is NOT_SERVING while the circuit is open, and SERVING again once the
	// isolation is over (probes are allowed); the overall status never changes.
	serving, notServing := healthpb.HealthCheckResponse_SERVING.String(), healthpb.HealthCheckResponse_NOT_SERVING.String()
	if want := []string{serving, notServing, notServing, serving, serving, serving}; !slices.Equal(statuses, want) {
		return fmt.Errorf("health(shop.Payments) at the six steps: %v, want %v", statuses, want)
	}
	if i := slices.IndexFunc(overall, func(s string) bool { return s != serving }); i >= 0 {
		return fmt.Errorf(`health("") at step %d: %s, want %s`, i+1, overall[i], serving)
	}

	fmt.Println("\na few lines of", base+"/metrics:")
	if err := printMetrics(ctx, base+"/metrics", []string{
		`bulkman_state{bulkhead="payments"`,
		`bulkman_state_changes_total{bulkhead="payments"`,
		`bulkman_calls_total{bulkhead="payments"`,
		`bulkman_rejections_total{bulkhead="payments",reason="circuit_open"}`,
		`bulkman_execution_duration_seconds_count{bulkhead="payments"`,
		`bulkman_max_concurrent_calls`,
	}); err != nil {
		return err
	}

	fmt.Println("\npayments in", base+"/bulkheads.json:")
	return printJSON(ctx, base+"/bulkheads.json", "payments")
}

// cycle runs one round of traffic: steady calls, an outage that opens the circuit and
// gets calls refused, the isolation running out, and a recovery whose probes close the
// circuit. pause stretches each phase (for -serve); say, when not nil, reports each step.
func cycle(ctx context.Context, payments, inventory *core.Bulkhead, dep *dependency, pause time.Duration, say func(string)) error {
	report := func(what string) {
		if say != nil {
			say(what)
		}
	}
	calls := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, _ = core.Execute(ctx, payments, dep.call)
				_, _ = core.Execute(ctx, inventory, func(ctx context.Context) (int, error) {
					time.Sleep(time.Millisecond)
					return 1, nil
				})
			})
		}
		wg.Wait()
	}
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	dep.down.Store(false)
	for range 5 {
		calls(4)
	}
	report("1. steady traffic, the dependency answers")
	if err := sleep(pause); err != nil {
		return err
	}

	dep.down.Store(true)
	for range 3 { // FailureThreshold consecutive failures
		_, _ = core.Execute(ctx, payments, dep.call)
	}
	if err := sleep(100 * time.Millisecond); err != nil { // let the health reporter act
		return err
	}
	report("2. the dependency fails 3 times: open")
	calls(4)
	report("3. calls are refused without reaching it")
	if err := sleep(payments.Config().IsolationDuration + 100*time.Millisecond + pause); err != nil {
		return err
	}
	report("4. isolation over, no call yet: probes allowed")

	dep.down.Store(false)
	if _, err := core.Execute(ctx, payments, dep.call); err != nil {
		return err
	}
	report("5. the first probe succeeds: half-open")
	if _, err := core.Execute(ctx, payments, dep.call); err != nil {
		return err
	}
	if err := sleep(50 * time.Millisecond); err != nil {
		return err
	}
	report("6. the second probe succeeds: closed")
	return sleep(pause)
}

// printMetrics prints the lines of the exposition at url that start with a prefix.
func printMetrics(ctx context.Context, url string, prefixes []string) error {
	body, err := get(ctx, url)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(line, p) }) {
			fmt.Println("  " + line)
		}
	}
	return sc.Err()
}

// printJSON prints the Stats of bulkhead name from the JSON handler at url.
func printJSON(ctx context.Context, url, name string) error {
	body, err := get(ctx, url)
	if err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &all); err != nil {
		return err
	}
	fmt.Println("  " + string(all[name]))
	return nil
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}
