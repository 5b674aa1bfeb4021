package grpchealth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/grpchealth"
	"github.com/bulkman-go/bulkman/otelmetrics"
	"github.com/bulkman-go/bulkman/prommetrics"
	"github.com/bulkman-go/bulkman/statuspage"
)

// readers are every view of one Manager a process may expose: the gRPC health status of
// a service that follows bulkhead "db", the status page's JSON, the Prometheus and the
// OpenTelemetry state gauges.
type readers struct {
	hs     *health.Server
	m      *core.Manager
	page   http.Handler
	prom   *prometheus.Registry
	reader *sdkmetric.ManualReader
}

// reading is what each of them says about "db".
type reading struct {
	Health    string // SERVING or NOT_SERVING
	Stats     string // Stats.State
	PageState string // the status page's "state"
	PageOpen  bool   // the status page has "open_until"
	Prom      string // the state whose Prometheus gauge is 1
	Otel      string // the state whose OpenTelemetry gauge is 1
}

func (r *readers) read(t *testing.T) reading {
	t.Helper()
	var out reading
	resp, err := r.hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "shop.Orders"})
	require.NoError(t, err)
	out.Health = resp.GetStatus().String()

	b, _ := r.m.Get("db")
	out.Stats = b.Stats().State.String()

	rec := httptest.NewRecorder()
	r.page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/bulkheads.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var page map[string]map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	out.PageState, _ = page["db"]["state"].(string)
	_, out.PageOpen = page["db"]["open_until"]

	families, err := r.prom.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "bulkman_state" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["bulkhead"] == "db" && m.GetGauge().GetValue() == 1 {
				out.Prom = labels["state"]
			}
		}
	}

	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			g, ok := m.Data.(metricdata.Gauge[int64])
			if m.Name != "bulkman.state" || !ok {
				continue
			}
			for _, p := range g.DataPoints {
				if v, _ := p.Attributes.Value(attribute.Key("bulkhead")); v.AsString() == "db" && p.Value == 1 {
					s, _ := p.Attributes.Value(attribute.Key("state"))
					out.Otel = s.AsString()
				}
			}
		}
	}
	return out
}

// TestEveryReaderAgrees: the gRPC health status, Stats, the status page and both metric
// exporters say the same thing about a circuit at every step: open, its isolation over
// with no call (half-open: SERVING, degraded, no open_until), probed, and for an OPEN a
// peer shared through a CircuitStore, which ends at the peer's end.
func TestEveryReaderAgrees(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const isolation = time.Minute
		store := core.NewMemoryStore()
		newReaders := func(svc string) *readers {
			r := &readers{hs: health.NewServer(), prom: prometheus.NewRegistry(), reader: sdkmetric.NewManualReader()}
			rep, err := grpchealth.New(r.hs, grpchealth.Config{Services: map[string][]string{svc: {"db"}}, Interval: time.Hour})
			require.NoError(t, err)
			r.m = core.NewManager(core.WithCircuitStore(store))
			col := prommetrics.New(r.m)
			t.Cleanup(col.Close)
			require.NoError(t, r.prom.Register(col))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			rec, err := otelmetrics.New(r.m, mp)
			require.NoError(t, err)
			t.Cleanup(func() { _ = rec.Close() })
			r.page = statuspage.JSON(r.m)
			cfg := breaker("db", isolation)
			cfg.HealthCheckInterval = 0
			_, err = r.m.Create(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = rep.Run(ctx, r.m); close(done) }()
			t.Cleanup(func() {
				cancel()
				<-done
				_ = r.m.Shutdown(context.Background())
			})
			return r
		}
		a := newReaders("shop.Orders")
		time.Sleep(10 * time.Second)
		b := newReaders("shop.Orders") // started later: its clock and its Run differ from a's

		healthy := reading{Health: "SERVING", Stats: "healthy", PageState: "healthy", Prom: "healthy", Otel: "healthy"}
		isolated := reading{Health: "NOT_SERVING", Stats: "isolated", PageState: "isolated", PageOpen: true, Prom: "isolated", Otel: "isolated"}
		degraded := reading{Health: "SERVING", Stats: "degraded", PageState: "degraded", Prom: "degraded", Otel: "degraded"}
		both := func(want reading, msg string) {
			t.Helper()
			synctest.Wait()
			assert.Equal(t, want, a.read(t), "a: %s", msg)
			assert.Equal(t, want, b.read(t), "b: %s", msg)
		}
		both(healthy, "at start")

		dbA, _ := a.m.Get("db")
		_, err := core.Execute(context.Background(), dbA, fail)
		require.NoError(t, err)
		both(isolated, "a opened it; b adopted it")

		time.Sleep(isolation - time.Nanosecond)
		both(isolated, "the last instant of the isolation")
		time.Sleep(time.Nanosecond)
		both(degraded, "the isolation is over, no call yet")
		time.Sleep(time.Hour)
		both(degraded, "still no call")

		dbB, _ := b.m.Get("db")
		_, err = core.Execute(context.Background(), dbB, succeed) // b's probe closes it for both
		require.NoError(t, err)
		both(healthy, "b's probe succeeded")
	})
}
