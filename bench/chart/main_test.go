package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/bulkman-go/bulkman/bench
cpu: Some CPU @ 2.0GHz
BenchmarkPeers/noop/floor-chan/serial-2    	 1000	        40.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPeers/noop/floor-chan/serial-2    	 1000	        44.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPeers/noop/floor-chan/serial-2    	 1000	        41.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPeers/noop/a<b&c/parallel-2       	 1000	      1500 ns/op	   352 B/op	      13 allocs/op
BenchmarkPeers/noop/a<b&c/parallel-2       	 1000	      1700 ns/op	   352 B/op	      13 allocs/op
BenchmarkPeers/noop/hystrix/serial-2       	 1000	     12000 ns/op	     0.5000 errors/op	  1400 B/op	      24 allocs/op
BenchmarkGRPCUnary/bare/serial-2           	 1000	         6.1 ns/op
--- BENCH: noise that is not a result
PASS
ok  	github.com/bulkman-go/bulkman/bench	12.3s
`

func TestParseMedians(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"goos: linux", "goarch: amd64", "pkg: github.com/bulkman-go/bulkman/bench", "cpu: Some CPU @ 2.0GHz",
	}, res.config)

	bs := bars(res.rows)
	require.Len(t, bs, 4)
	tests := []struct {
		group, label, series string
		ns, allocs           float64
		runs                 int
	}{
		{"Peers/noop", "floor-chan/serial", "serial", 41, 0, 3},
		{"Peers/noop", "a<b&c/parallel", "parallel", 1600, 13, 2},
		{"Peers/noop", "hystrix/serial", "serial", 12000, 24, 1},
		{"GRPCUnary", "bare/serial", "serial", 6.1, math.NaN(), 1},
	}
	for i, tt := range tests {
		b := bs[i]
		assert.Equal(t, tt.group, b.group)
		assert.Equal(t, tt.label, b.label)
		assert.Equal(t, tt.series, b.series)
		assert.InDelta(t, tt.ns, b.ns, 1e-9)
		assert.Equal(t, tt.runs, b.runs)
		if math.IsNaN(tt.allocs) {
			assert.True(t, math.IsNaN(b.allocs), "allocs of %s", b.label)
		} else {
			assert.InDelta(t, tt.allocs, b.allocs, 1e-9)
		}
	}
}

func TestProcsSuffixKeptWhenRowsDiffer(t *testing.T) {
	res, err := parse(strings.NewReader("BenchmarkX-1 10 5 ns/op\nBenchmarkX-2 10 3 ns/op\n"))
	require.NoError(t, err)
	bs := bars(res.rows)
	require.Len(t, bs, 2)
	assert.Equal(t, "X-1", bs[0].label)
	assert.Equal(t, "X-2", bs[1].label)
}

func TestRenderIsWellFormedSVG(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	for _, scale := range []string{"auto", "log", "linear"} {
		t.Run(scale, func(t *testing.T) {
			svg, err := render(res, options{scale: scale, base: regexp.MustCompile("^(floor|bare)")})
			require.NoError(t, err)

			dec := xml.NewDecoder(strings.NewReader(svg))
			var texts []string
			root := ""
			for {
				tok, err := dec.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				switch tok := tok.(type) {
				case xml.StartElement:
					if root == "" {
						root = tok.Name.Local
					}
				case xml.CharData:
					texts = append(texts, string(tok))
				}
			}
			assert.Equal(t, "svg", root)
			all := strings.Join(texts, "\n")
			for _, want := range []string{
				"floor-chan/serial", "41.0 ns (1.00×) · 0 allocs", "a<b&c/parallel",
				"1.60 µs · 13 allocs", "12.0 µs (293×) · 24 allocs", "6.10 ns (1.00×)", "Peers/noop", "GRPCUnary",
				"Some CPU @ 2.0GHz", "median of 3 runs",
			} {
				assert.Contains(t, all, want)
			}
			assert.NotContains(t, svg, "NaN")
		})
	}
}

func TestSplitName(t *testing.T) {
	for in, want := range map[string][2]string{
		"Peers/noop/floor-chan/serial": {"Peers/noop", "floor-chan/serial"},
		"GRPCUnary/bare/serial":        {"GRPCUnary", "bare/serial"},
		"X/y":                          {"X", "y"},
		"X":                            {"X", "X"},
	} {
		g, l := splitName(in)
		assert.Equal(t, want, [2]string{g, l}, in)
	}
}

func TestRenderRejectsUnknownScale(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	_, err = render(res, options{scale: "cubic"})
	assert.ErrorContains(t, err, "cubic")
}

func TestRunNeedsResults(t *testing.T) {
	res, err := parse(strings.NewReader("PASS\nok x 1s\n"))
	require.NoError(t, err)
	assert.Empty(t, res.rows)
}

func TestFormatTick(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 1: "1 ns", 100: "100 ns", 1000: "1 µs", 2500: "2.5 µs", 1e7: "10 ms"} {
		assert.Equal(t, want, formatTick(in), "formatTick(%v)", in)
	}
}

func TestFormatNs(t *testing.T) {
	for in, want := range map[float64]string{
		4.034: "4.03 ns", 42.31: "42.3 ns", 303.1: "303 ns", 1129: "1.13 µs", 20897: "20.9 µs", 2.5e6: "2.50 ms",
	} {
		assert.Equal(t, want, formatNs(in), "formatNs(%v)", in)
	}
}
