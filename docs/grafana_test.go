package docs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/prommetrics"
)

// exported returns the metric families prommetrics exports, by name, with their label
// names and type, from a Manager in which every family has a series: a call ended, one
// was refused, and a circuit is open.
func exported(t *testing.T) map[string]family {
	t.Helper()
	m := core.NewManager()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prommetrics.New(m))
	cfg := core.DefaultConfig("payments")
	cfg.CircuitBreakerEnabled, cfg.FailureThreshold, cfg.IsolationDuration = true, 1, time.Hour
	b, err := m.Create(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = core.Execute(ctx, b, func(context.Context) (int, error) { return 0, errors.New("boom") })
	require.NoError(t, err)
	_, err = core.Execute(ctx, b, func(context.Context) (int, error) { return 1, nil })
	require.ErrorIs(t, err, core.ErrCircuitOpen)
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]family{}
	for _, f := range families {
		labels := []string{}
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		out[f.GetName()] = family{kind: f.GetType().String(), labels: labels}
	}
	return out
}

type family struct {
	kind   string
	labels []string
}

// TestGrafanaDashboard: docs/grafana-dashboard.json is a dashboard whose every query
// names only metrics the Prometheus collector exports (a histogram through its _bucket,
// _sum or _count series), groups only by labels those metrics have, and which shows every
// family the collector exports.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Query struct {
					Query string `json:"query"`
				} `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash), "valid JSON")
	require.NotEmpty(t, dash.Title)

	families := exported(t)
	var queries []string
	for _, v := range dash.Templating.List {
		queries = append(queries, v.Query.Query)
	}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			queries = append(queries, tg.Expr)
		}
	}

	metricName := regexp.MustCompile(`\bbulkman_[a-z_]+`)
	grouping := regexp.MustCompile(`\bby \(([^)]*)\)`)
	used := map[string]bool{}
	for _, q := range queries {
		names := metricName.FindAllString(q, -1)
		require.NotEmpty(t, names, "query %q names no bulkman metric", q)
		var labels []string
		for _, name := range names {
			f, ok := families[name]
			base := name
			if !ok {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, found := strings.CutSuffix(name, suffix); found && families[b].kind == "HISTOGRAM" {
						base, f, ok = b, families[b], true
						if suffix == "_bucket" {
							f.labels = append(slices.Clone(f.labels), "le")
						}
					}
				}
			}
			if !assert.True(t, ok, "query %q: the collector exports no %s", q, name) {
				continue
			}
			used[base] = true
			labels = append(labels, f.labels...)
		}
		for _, g := range grouping.FindAllStringSubmatch(q, -1) {
			for _, l := range strings.Split(g[1], ",") {
				assert.Contains(t, labels, strings.TrimSpace(l), "query %q groups by a label its metrics do not have", q)
			}
		}
	}
	for name := range families {
		assert.True(t, used[name], "the dashboard does not show %s", name)
	}
}
