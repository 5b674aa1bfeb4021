// Command config declares its bulkheads and routes in a YAML file (bulkheads.yaml), serves
// HTTP and gRPC through them, then raises a limit by rewriting the file: the watcher
// reloads it, the running bulkhead takes the new limit, and its statistics carry on.
//
//	go run ./examples/config
//
// It copies bulkheads.yaml to a temporary directory (it rewrites it), serves on loopback,
// prints what happens and exits by itself (status 1 if the bulkheads did not behave as
// described).
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpcmw"
	"github.com/bulkman-go/bulkman/httpmw"
)

//go:embed bulkheads.yaml
var bulkheadsYAML string

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "config example:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := os.MkdirTemp("", "bulkman-config-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bulkheads.yaml")
	if err := os.WriteFile(path, []byte(bulkheadsYAML), 0o600); err != nil {
		return err
	}

	// The file, applied to a Manager; the watcher reloads it when it changes.
	m := core.NewManager()
	defer m.Shutdown(context.Background())
	reloads := make(chan error, 4)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // steady output
			}
			return a
		},
	}))
	live, err := config.Open(m, path, config.WithLogger(logger), config.WithOnReload(func(err error) { reloads <- err }))
	if err != nil {
		return err // bulkheads.yaml:LINE:COL: key: what is wrong
	}
	defer live.Close()
	if err := live.Watch(0); err != nil {
		return err
	}
	fmt.Printf("loaded %s: bulkheads %s\n", filepath.Base(path), strings.Join(m.Names(), ", "))

	// HTTP: one middleware around the whole mux, choosing by the file's http: table.
	release := make(chan struct{}) // each report waits for a token
	done := make(chan struct{})    // or for the end of the example
	defer close(done)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /reports/{id}", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-done:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "report %s\n", r.PathValue("id"))
	})
	mux.HandleFunc("GET /lookups/{key}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "value of %s\n", r.PathValue("key"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: httpmw.Middleware(live.HTTP())(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()

	// gRPC: the health service, guarded by the file's grpc: table.
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gsrv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(live.GRPC())),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(live.GRPC())),
	)
	healthpb.RegisterHealthServer(gsrv, health.NewServer())
	go func() { _ = gsrv.Serve(gln) }()
	defer gsrv.Stop()
	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	fmt.Printf("serving HTTP on %s and gRPC on %s\n\n", ln.Addr(), gln.Addr())

	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	for range 3 {
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return fmt.Errorf("health check: %w", err)
		}
	}
	if got := fetch(client, base+"/lookups/k1"); got != http.StatusOK {
		return fmt.Errorf("lookup: status %d", got)
	}
	// TotalExecutions counts a call when it is admitted, before its response is written:
	// the client cannot see a response its bulkhead has not counted yet.
	hb, _ := m.Get("health")
	lb, _ := m.Get("lookups")
	checks, lookups := hb.Stats().TotalExecutions, lb.Stats().TotalExecutions
	fmt.Printf("%d gRPC health checks through bulkhead %q, %d lookup through %q\n",
		checks, "health", lookups, "lookups")
	if checks != 3 || lookups != 1 {
		return fmt.Errorf("want 3 health checks and 1 lookup through their bulkheads, got %d and %d", checks, lookups)
	}

	reports, _ := m.Get("reports")
	// Six reports at once under max_concurrent_calls: 2, max_queue_size: 2.
	ok, shed, err := burst(client, base, 6, reports, release)
	if err != nil {
		return err
	}
	before := reports.Stats()
	fmt.Printf("6 reports at once, max_concurrent_calls %d, max_queue_size %d: %d served, %d shed with 503\n",
		before.MaxConcurrentCalls, before.MaxQueueSize, ok, shed)
	if ok != 4 || shed != 2 {
		return fmt.Errorf("want 4 served and 2 shed, got %d and %d", ok, shed)
	}

	// Raise the limit by rewriting the file, as an operator would; the watcher reloads.
	edited := strings.Replace(bulkheadsYAML, "max_concurrent_calls: 2", "max_concurrent_calls: 3", 1)
	if err := writeAtomically(path, edited); err != nil {
		return err
	}
	select {
	case err := <-reloads:
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
	case <-time.After(10 * time.Second):
		return errors.New("the watcher did not reload the file within 10s")
	}
	if r, _ := m.Get("reports"); r != reports {
		return errors.New("the reload replaced the bulkhead instead of reconfiguring it")
	}

	// The same six reports: the new limit applies to the same bulkhead.
	ok, shed, err = burst(client, base, 6, reports, release)
	if err != nil {
		return err
	}
	after := reports.Stats()
	fmt.Printf("6 reports at once, max_concurrent_calls %d, max_queue_size %d: %d served, %d shed with 503\n",
		after.MaxConcurrentCalls, after.MaxQueueSize, ok, shed)
	fmt.Printf("bulkhead %q over both bursts: %d executions (%d before the reload), %d rejected\n",
		"reports", after.TotalExecutions, before.TotalExecutions, after.RejectedExecutions)
	switch {
	case ok != 5 || shed != 1:
		return fmt.Errorf("want 5 served and 1 shed after the reload, got %d and %d", ok, shed)
	case after.TotalExecutions != before.TotalExecutions+5 || after.RejectedExecutions != before.RejectedExecutions+1:
		return fmt.Errorf("statistics did not carry over the reload: before %+v, after %+v", before, after)
	}
	fmt.Println("\nthe new limit took effect on the running bulkhead, statistics kept")
	return nil
}

// burst sends n report requests at once. Once the rejections are back (so the route is
// surely saturated, and b shows its limit and its queue in use), it releases the running
// and the waiting reports and counts the answers.
func burst(client *http.Client, base string, n int, b *core.Bulkhead, release chan<- struct{}) (ok, shed int, err error) {
	cfg := b.Config()
	limit, queue := cfg.MaxConcurrentCalls, cfg.MaxQueueSize
	results := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results <- fetch(client, fmt.Sprintf("%s/reports/%d", base, i)) })
	}
	count := func(status int) {
		switch status {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			shed++
		default:
			err = errors.Join(err, fmt.Errorf("report: status %d", status))
		}
	}
	for range n - limit - queue {
		count(<-results)
	}
	if s := b.Stats(); (s.ActiveTasks != limit || s.QueuedTasks != queue) && err == nil {
		err = fmt.Errorf("want %d reports running and %d waiting, got %d and %d", limit, queue, s.ActiveTasks, s.QueuedTasks)
	}
	for range limit + queue {
		select {
		case release <- struct{}{}:
		case <-time.After(10 * time.Second):
			return ok, shed, errors.New("a report that should run is not running")
		}
	}
	wg.Wait()
	close(results)
	for s := range results {
		count(s)
	}
	return ok, shed, err
}

func fetch(client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// writeAtomically replaces the file at path the way editors save.
func writeAtomically(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
