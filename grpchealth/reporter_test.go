package grpchealth_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpchealth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
)

var errBoom = errors.New("boom")

func fail(context.Context) (int, error)    { return 0, errBoom }
func succeed(context.Context) (int, error) { return 1, nil }

// breaker is a config whose circuit opens on the first failure and closes on the first
// probe success.
func breaker(name string, isolation time.Duration) core.Config {
	cfg := core.DefaultConfig(name)
	cfg.CircuitBreakerEnabled = true
	cfg.FailureThreshold, cfg.SuccessThreshold, cfg.IsolationDuration = 1, 1, isolation
	return cfg
}

// world is a health server, a Reporter driving it and a Manager, with Run on its own
// goroutine until stop.
type world struct {
	hs   *health.Server
	r    *grpchealth.Reporter
	m    *core.Manager
	stop func()
}

// start builds a world inside a synctest bubble, and waits for Run's first update.
func start(t *testing.T, cfg grpchealth.Config, bulkheads ...core.Config) *world {
	t.Helper()
	w := &world{hs: health.NewServer(), m: core.NewManager()}
	for _, c := range bulkheads {
		_, err := w.m.Create(c)
		require.NoError(t, err)
	}
	return w.run(t, cfg)
}

// run starts a Reporter for cfg on w's Manager, and waits for its first update.
func (w *world) run(t *testing.T, cfg grpchealth.Config) *world {
	t.Helper()
	var err error
	w.r, err = grpchealth.New(w.hs, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.r.Run(ctx, w.m) }()
	w.stop = func() {
		cancel()
		assert.NoError(t, <-done, "Run returns nil when ctx ends")
	}
	synctest.Wait()
	return w
}

func (w *world) bulkhead(t *testing.T, name string) *core.Bulkhead {
	t.Helper()
	b, ok := w.m.Get(name)
	require.True(t, ok, name)
	return b
}

// status is what the health server answers a Check for svc.
func (w *world) status(t *testing.T, svc string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := w.hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
	if err != nil {
		return healthpb.HealthCheckResponse_SERVICE_UNKNOWN
	}
	return resp.GetStatus()
}

// TestOverBufconn checks the transitions as a real client sees them, over a real gRPC
// server: Watch streams NOT_SERVING as soon as the circuit opens, SERVING again when the
// isolation is over (so that probes can arrive), and the overall status never moves.
func TestOverBufconn(t *testing.T) {
	const isolation = 300 * time.Millisecond
	hs := health.NewServer()
	r, err := grpchealth.New(hs, grpchealth.Config{
		Services: map[string][]string{"shop.Orders": {"db"}, "shop.Catalog": {"db", "cache"}},
		Interval: time.Hour, // only events and the end of the isolation may move anything
	})
	require.NoError(t, err)
	m := core.NewManager()
	db, err := m.Create(breaker("db", isolation))
	require.NoError(t, err)
	_, err = m.Create(breaker("cache", isolation))
	require.NoError(t, err)

	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { srv.Stop(); assert.NoError(t, <-served) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- r.Run(runCtx, m) }()
	defer func() { stopRun(); assert.NoError(t, <-ran) }()

	check := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
		return resp.GetStatus()
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "shop.Orders"})
	require.NoError(t, err)
	recv := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := stream.Recv()
		require.NoError(t, err)
		return resp.GetStatus()
	}
	// Watch of a service the server does not know yet starts with SERVICE_UNKNOWN.
	first := recv()
	if first == healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		first = recv()
	}
	require.Equal(t, serving, first)
	assert.Equal(t, serving, check("shop.Catalog"))

	opened := time.Now()
	_, err = core.Execute(ctx, db, fail)
	require.NoError(t, err)
	require.Equal(t, core.Isolated, db.State())
	assert.Equal(t, notServing, recv(), "the circuit opened")
	assert.Less(t, time.Since(opened), isolation, "promptly, not at the next re-check")
	assert.Equal(t, notServing, check("shop.Orders"))
	assert.Equal(t, notServing, check("shop.Catalog"), "AnyIsolated: one of its bulkheads is enough")
	assert.Equal(t, serving, check(""), "the overall status is never touched")

	assert.Equal(t, serving, recv(), "the isolation is over: let probes through")
	assert.False(t, time.Now().Before(db.Stats().OpenUntil), "at the end of the isolation Stats gives, not before")
	assert.Equal(t, core.Degraded, db.State(), "the bulkhead agrees, with no call yet: half-open, the next call is a probe")

	_, err = core.Execute(ctx, db, succeed) // the probe closes the circuit
	require.NoError(t, err)
	require.Equal(t, core.Healthy, db.State())
	assert.Equal(t, serving, check("shop.Orders"))
	assert.Equal(t, serving, check(""))
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "shop.Unlisted"})
	assert.Equal(t, codes.NotFound, status.Code(err), "services not listed are not touched")
}

func TestCircuitOpensAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := start(t, grpchealth.Config{Services: map[string][]string{"shop.Orders": {"db"}}}, breaker("db", time.Minute))
		defer w.stop()
		synctest.Wait()
		assert.Equal(t, serving, w.status(t, "shop.Orders"))

		db := w.bulkhead(t, "db")
		_, err := core.Execute(context.Background(), db, fail)
		require.NoError(t, err)
		synctest.Wait() // no time passes: the event did it
		assert.Equal(t, notServing, w.status(t, "shop.Orders"))

		time.Sleep(30 * time.Second)
		synctest.Wait()
		assert.Equal(t, notServing, w.status(t, "shop.Orders"), "periodic re-checks keep it off while isolated")

		time.Sleep(30 * time.Second)
		synctest.Wait()
		assert.Equal(t, serving, w.status(t, "shop.Orders"), "the isolation is over")

		_, err = core.Execute(context.Background(), db, fail) // the probe fails: open again
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, notServing, w.status(t, "shop.Orders"))
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, serving, w.status(t, "shop.Orders"))
		_, err = core.Execute(context.Background(), db, succeed)
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, serving, w.status(t, "shop.Orders"))
		assert.Equal(t, core.Healthy, db.State())
	})
}

// TestAgreesWithStats: a service is NOT_SERVING exactly while Stats says its bulkhead is
// isolated, until Stats.OpenUntil, also for a circuit that opened before Run started (the
// end of the isolation is the circuit's, not counted from when the Reporter saw it).
func TestAgreesWithStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &world{hs: health.NewServer(), m: core.NewManager()}
		db, err := w.m.Create(breaker("db", time.Minute))
		require.NoError(t, err)
		_, err = core.Execute(context.Background(), db, fail)
		require.NoError(t, err)
		openUntil := db.Stats().OpenUntil
		require.False(t, openUntil.IsZero())

		time.Sleep(40 * time.Second)
		w.run(t, grpchealth.Config{Services: map[string][]string{"shop.Orders": {"db"}}, Interval: time.Hour})
		defer w.stop()
		agree := func(msg string) {
			t.Helper()
			s := db.Stats()
			isolated := s.State == core.Isolated && time.Now().Before(s.OpenUntil)
			assert.Equal(t, isolated, w.status(t, "shop.Orders") == notServing, msg)
		}
		assert.Equal(t, notServing, w.status(t, "shop.Orders"), "opened before Run started")
		agree("opened before Run started")

		time.Sleep(time.Until(openUntil) - time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, notServing, w.status(t, "shop.Orders"), "until the end of the isolation")
		agree("just before the end")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, serving, w.status(t, "shop.Orders"), "at the end of the isolation, with no call and no re-check")
		agree("at the end")
	})
}

func TestPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy grpchealth.Policy
		one    healthpb.HealthCheckResponse_ServingStatus // a then isolated
		both   healthpb.HealthCheckResponse_ServingStatus // a and b isolated
	}{
		{grpchealth.AnyIsolated, notServing, notServing},
		{grpchealth.AllIsolated, serving, notServing},
	} {
		t.Run(map[grpchealth.Policy]string{grpchealth.AnyIsolated: "any", grpchealth.AllIsolated: "all"}[tc.policy], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := start(t, grpchealth.Config{
					Services: map[string][]string{"svc": {"a", "b"}, "only-b": {"b"}},
					Policy:   tc.policy,
				}, breaker("a", time.Minute), breaker("b", time.Minute))
				defer w.stop()
				_, err := core.Execute(context.Background(), w.bulkhead(t, "a"), fail)
				require.NoError(t, err)
				synctest.Wait()
				assert.Equal(t, tc.one, w.status(t, "svc"))
				assert.Equal(t, serving, w.status(t, "only-b"))
				_, err = core.Execute(context.Background(), w.bulkhead(t, "b"), fail)
				require.NoError(t, err)
				synctest.Wait()
				assert.Equal(t, tc.both, w.status(t, "svc"))
				assert.Equal(t, notServing, w.status(t, "only-b"))
			})
		})
	}
}

func TestOverallStatusIsNeverTouched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := start(t, grpchealth.Config{Services: map[string][]string{"svc": {"db"}}}, breaker("db", time.Minute))
		defer w.stop()
		w.hs.SetServingStatus("", serving)
		_, err := core.Execute(context.Background(), w.bulkhead(t, "db"), fail)
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, notServing, w.status(t, "svc"))
		assert.Equal(t, serving, w.status(t, ""))

		w.hs.SetServingStatus("", notServing) // the application's own decision
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, notServing, w.status(t, ""), "and it is not put back either")
	})
}

// TestUnknownBulkheads: a bulkhead the Manager does not have counts as not isolated, and
// is followed once it is created.
func TestUnknownBulkheads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := start(t, grpchealth.Config{Services: map[string][]string{"svc": {"later"}}})
		defer w.stop()
		synctest.Wait()
		assert.Equal(t, serving, w.status(t, "svc"))
		b, err := w.m.Create(breaker("later", time.Minute))
		require.NoError(t, err)
		_, err = core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, notServing, w.status(t, "svc"))
	})
}

// TestReassertsAfterResume: the server's Resume sets every service SERVING; the next
// re-check puts the isolated ones back.
func TestReassertsAfterResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := start(t, grpchealth.Config{Services: map[string][]string{"svc": {"db"}}}, breaker("db", time.Minute))
		defer w.stop()
		_, err := core.Execute(context.Background(), w.bulkhead(t, "db"), fail)
		require.NoError(t, err)
		synctest.Wait()
		w.hs.Shutdown()
		w.hs.Resume()
		assert.Equal(t, serving, w.status(t, "svc"))
		time.Sleep(grpchealth.DefaultInterval)
		synctest.Wait()
		assert.Equal(t, notServing, w.status(t, "svc"))
	})
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Made in the bubble, so that Run's wait is durable there.
		r, err := grpchealth.New(health.NewServer(), grpchealth.Config{Services: map[string][]string{"svc": {"db"}}})
		require.NoError(t, err)
		assert.ErrorContains(t, r.Run(context.Background(), nil), "nil Manager")

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, core.NewManager()) }()
		synctest.Wait() // Run waits for something to happen
		assert.ErrorContains(t, r.Run(ctx, core.NewManager()), "already running")
		cancel()
		assert.NoError(t, <-done)
		assert.NoError(t, r.Run(ctx, core.NewManager()), "a Run that has returned can be started again")
	})
}

func TestNew(t *testing.T) {
	hs := health.NewServer()
	for _, tc := range []struct {
		name string
		hs   grpchealth.StatusSetter
		cfg  grpchealth.Config
		errs []string
	}{
		{"ok", hs, grpchealth.Config{Services: map[string][]string{"svc": {"db"}}}, nil},
		{"nil server and no services", nil, grpchealth.Config{}, []string{"nil StatusSetter", "Services is empty"}},
		{"overall status", hs, grpchealth.Config{Services: map[string][]string{"": {"db"}}}, []string{`overall status ""`}},
		{"no bulkheads", hs, grpchealth.Config{Services: map[string][]string{"svc": nil}}, []string{`Services["svc"]: no bulkheads`}},
		{"negative interval", hs, grpchealth.Config{Services: map[string][]string{"svc": {"db"}}, Interval: -time.Second}, []string{"Interval: -1s is negative"}},
		{"unknown policy", hs, grpchealth.Config{Services: map[string][]string{"svc": {"db"}}, Policy: 7}, []string{"unknown policy 7"}},
		{"unknown policy and negative interval", hs, grpchealth.Config{Services: map[string][]string{"svc": {"db"}}, Policy: 7, Interval: -time.Second},
			[]string{"unknown policy 7", "Interval: -1s is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := grpchealth.New(tc.hs, tc.cfg)
			if tc.errs == nil {
				assert.NoError(t, err)
				assert.NotNil(t, r)
				return
			}
			assert.Nil(t, r)
			for _, want := range tc.errs {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestNewCopiesConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		services := map[string][]string{"svc": {"db"}}
		hs := health.NewServer()
		r, err := grpchealth.New(hs, grpchealth.Config{Services: services})
		require.NoError(t, err)
		services["svc"][0] = "other"
		services["more"] = []string{"db"}
		m := core.NewManager()
		b, err := m.Create(breaker("db", time.Minute))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, m) }()
		_, err = core.Execute(context.Background(), b, fail)
		require.NoError(t, err)
		synctest.Wait()
		resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "svc"})
		require.NoError(t, err)
		assert.Equal(t, notServing, resp.GetStatus())
		_, err = hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "more"})
		assert.Equal(t, codes.NotFound, status.Code(err))
		cancel()
		assert.NoError(t, <-done)
	})
}
