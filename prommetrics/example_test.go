package prommetrics_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/prommetrics"
)

func ExampleCollector() {
	m := core.NewManager()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prommetrics.New(m)) // one step: events and Stats of every bulkhead of m

	b, _ := m.Create(core.DefaultConfig("payments"))
	ctx := context.Background()
	_, _ = core.Execute(ctx, b, func(context.Context) (string, error) { return "ok", nil })
	_, _ = core.Execute(ctx, b, func(context.Context) (string, error) { return "", errors.New("declined") })

	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() != "bulkman_calls_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			fmt.Printf("%s{bulkhead=%q,outcome=%q} %v\n", f.GetName(),
				s.GetLabel()[0].GetValue(), s.GetLabel()[1].GetValue(), s.GetCounter().GetValue())
		}
	}
	// Output:
	// bulkman_calls_total{bulkhead="payments",outcome="failure"} 1
	// bulkman_calls_total{bulkhead="payments",outcome="neutral"} 0
	// bulkman_calls_total{bulkhead="payments",outcome="success"} 1
}
