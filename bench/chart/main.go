// Command chart draws `go test -bench` output as an SVG horizontal bar chart of ns/op.
//
// Usage:
//
//	go test -run '^$' -bench . -benchmem -count 5 > results/peers.txt
//	go run ./chart < results/peers.txt > results/peers.svg
//	go run ./chart -scale linear -o out.svg results/peers.txt
//
// Each bar is the median ns/op of every line with the same benchmark name (so of the -count
// runs), labelled with that value, its ratio to the group's baseline (-base: by default the
// row whose label starts with "floor"; groups without one get no ratios) and, when -benchmem was on, the median allocs/op.
// A bar's label is the last two elements of its name and its group heading the rest
// (Peers/noop/floor-chan/serial: group Peers/noop, label floor-chan/serial). Bars keep the
// order of the input and are coloured by the last element of their name (serial, parallel). The scale is
// logarithmic when the values span more than two decades, linear otherwise, unless -scale
// says. The SVG is self-contained: no fonts, scripts or images are referenced.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	scale := flag.String("scale", "auto", "x axis: auto, log or linear")
	title := flag.String("title", "", "chart title (default: ns/op per benchmark, median of N runs)")
	out := flag.String("o", "", "write the SVG to this file instead of standard output")
	base := flag.String("base", "^floor", "regexp for a bar label's first element that marks its group's baseline; empty: no ratios")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: chart [-scale auto|log|linear] [-base RE] [-title T] [-o out.svg] [bench.txt]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := options{scale: *scale, title: *title}
	if *base != "" {
		re, err := regexp.Compile(*base)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chart: -base:", err)
			os.Exit(2)
		}
		o.base = re
	}
	if err := run(o, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(o options, out string, args []string) error {
	var in io.Reader = os.Stdin
	switch len(args) {
	case 0:
	case 1:
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	default:
		return errors.New("at most one input file")
	}
	res, err := parse(in)
	if err != nil {
		return err
	}
	if len(res.rows) == 0 {
		return errors.New("no benchmark results with ns/op in the input")
	}
	svg, err := render(res, o)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = io.WriteString(os.Stdout, svg)
		return err
	}
	return os.WriteFile(out, []byte(svg), 0o644)
}

// results is what parse reads from `go test -bench` output.
type results struct {
	config []string // "cpu: ...", "goos: ..." lines, in input order, without duplicates
	rows   []row    // one per benchmark name, in order of first appearance
}

// row is one benchmark's samples.
type row struct {
	name   string // as printed, e.g. BenchmarkPeers/noop/floor-chan/serial-2
	ns     []float64
	allocs []float64
}

// parse reads benchmark lines ("BenchmarkX-N  iters  v unit  v unit ...") and configuration
// lines ("key: value"); everything else (PASS, ok, log output) is skipped.
func parse(r io.Reader) (results, error) {
	var res results
	index := map[string]int{}
	seenConfig := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := configLine(line); ok {
			kv := k + ": " + v
			if !seenConfig[kv] {
				seenConfig[kv] = true
				res.config = append(res.config, kv)
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		var ns, allocs float64
		hasNs, hasAllocs := false, false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns, hasNs = v, true
			case "allocs/op":
				allocs, hasAllocs = v, true
			}
		}
		if !hasNs {
			continue
		}
		i, ok := index[f[0]]
		if !ok {
			i = len(res.rows)
			index[f[0]] = i
			res.rows = append(res.rows, row{name: f[0]})
		}
		res.rows[i].ns = append(res.rows[i].ns, ns)
		if hasAllocs {
			res.rows[i].allocs = append(res.rows[i].allocs, allocs)
		}
	}
	return res, sc.Err()
}

// configLine recognises the header lines go test prints (goos, goarch, pkg, cpu) and any other
// "key: value" line whose key is one lower-case word, as benchfmt does.
func configLine(line string) (key, value string, ok bool) {
	k, v, found := strings.Cut(line, ":")
	if !found || k == "" || strings.ContainsAny(k, " \t") || strings.HasPrefix(k, "Benchmark") {
		return "", "", false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", "", false
		}
	}
	return k, strings.TrimSpace(v), true
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// bar is one drawn row.
type bar struct {
	group  string // top-level benchmark, without "Benchmark"
	label  string // the rest of the name, without the -GOMAXPROCS suffix when all rows share it
	series string // last element of the name: decides the colour
	ns     float64
	allocs float64 // NaN when unknown
	ratio  float64 // ns over the group's baseline of the same series; 0 when there is none
	runs   int
}

// bars turns rows into bars: medians, names split into group, label and series.
func bars(rows []row) []bar {
	suffix := commonProcsSuffix(rows)
	out := make([]bar, 0, len(rows))
	for _, r := range rows {
		name := strings.TrimPrefix(r.name, "Benchmark")
		name = strings.TrimSuffix(name, suffix)
		group, label := splitName(name)
		series := label[strings.LastIndex(label, "/")+1:]
		b := bar{group: group, label: label, series: series, ns: median(r.ns), allocs: math.NaN(), runs: len(r.ns)}
		if len(r.allocs) > 0 {
			b.allocs = median(r.allocs)
		}
		out = append(out, b)
	}
	return out
}

// splitName splits a benchmark name (without "Benchmark") into a group heading and a bar
// label: the label is the last two elements (Peers/noop/floor-chan/serial gives the group
// Peers/noop and the label floor-chan/serial), or the last one when there are two.
func splitName(name string) (group, label string) {
	parts := strings.Split(name, "/")
	switch n := len(parts); {
	case n >= 3:
		return strings.Join(parts[:n-2], "/"), strings.Join(parts[n-2:], "/")
	case n == 2:
		return parts[0], parts[1]
	default:
		return name, name
	}
}

// setRatios gives every bar the ratio of its ns/op to its group's baseline of the same
// series: the first bar in the group whose label's first element matches base.
func setRatios(bs []bar, base *regexp.Regexp) {
	if base == nil {
		return
	}
	type key struct{ group, series string }
	baseline := map[key]float64{}
	for _, b := range bs {
		k := key{b.group, b.series}
		first, _, _ := strings.Cut(b.label, "/")
		if _, ok := baseline[k]; !ok && base.MatchString(first) && b.ns > 0 {
			baseline[k] = b.ns
		}
	}
	for i := range bs {
		if v, ok := baseline[key{bs[i].group, bs[i].series}]; ok {
			bs[i].ratio = bs[i].ns / v
		}
	}
}

// commonProcsSuffix returns the "-N" GOMAXPROCS suffix if every row has the same one, so it
// can be dropped from the labels without merging rows that differ in it.
func commonProcsSuffix(rows []row) string {
	suffix := ""
	for i, r := range rows {
		j := strings.LastIndex(r.name, "-")
		if j < 0 {
			return ""
		}
		if _, err := strconv.Atoi(r.name[j+1:]); err != nil {
			return ""
		}
		if i == 0 {
			suffix = r.name[j:]
		} else if r.name[j:] != suffix {
			return ""
		}
	}
	return suffix
}

// formatNs prints a duration given in nanoseconds with three significant digits.
func formatNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return sig3(ns/1e9) + " s"
	case ns >= 1e6:
		return sig3(ns/1e6) + " ms"
	case ns >= 1e3:
		return sig3(ns/1e3) + " µs"
	default:
		return sig3(ns) + " ns"
	}
}

// formatTick prints a grid value without trailing zeros: 0, 10 ns, 2.5 µs.
func formatTick(ns float64) string {
	if ns == 0 {
		return "0"
	}
	v, unit := ns, "ns"
	switch {
	case ns >= 1e9:
		v, unit = ns/1e9, "s"
	case ns >= 1e6:
		v, unit = ns/1e6, "ms"
	case ns >= 1e3:
		v, unit = ns/1e3, "µs"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + unit
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// axis maps a value in ns to a fraction of the plot width, and lists the grid lines.
type axis struct {
	log    bool
	lo, hi float64 // log: decades (powers of ten); linear: 0 and a round maximum
}

func newAxis(bs []bar, scale string) (axis, error) {
	minV, maxV := math.Inf(1), 0.0
	for _, b := range bs {
		if b.ns > 0 {
			minV = min(minV, b.ns)
		}
		maxV = max(maxV, b.ns)
	}
	if maxV <= 0 {
		maxV, minV = 1, 1
	}
	var useLog bool
	switch scale {
	case "log":
		useLog = true
	case "linear":
	case "auto":
		useLog = maxV/minV > 100
	default:
		return axis{}, fmt.Errorf("unknown -scale %q (want auto, log or linear)", scale)
	}
	if useLog {
		lo := math.Floor(math.Log10(minV))
		hi := math.Ceil(math.Log10(maxV))
		if hi <= lo {
			hi = lo + 1
		}
		return axis{log: true, lo: lo, hi: hi}, nil
	}
	return axis{hi: niceCeil(maxV)}, nil
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func (a axis) frac(v float64) float64 {
	if a.log {
		if v <= 0 {
			return 0
		}
		return math.Max(0, (math.Log10(v)-a.lo)/(a.hi-a.lo))
	}
	return v / a.hi
}

// ticks returns the values that get a grid line and a label.
func (a axis) ticks() []float64 {
	var ts []float64
	if a.log {
		for d := a.lo; d <= a.hi; d++ {
			ts = append(ts, math.Pow(10, d))
		}
		return ts
	}
	step := a.hi / 5
	for i := 0; i <= 5; i++ {
		ts = append(ts, float64(i)*step)
	}
	return ts
}

type options struct {
	scale string
	title string
	base  *regexp.Regexp // baseline rows for the ratios; nil: no ratios
}

// Layout, in px. The label font is monospace so the label column can be sized from the
// longest label without measuring text.
const (
	fontSize   = 12
	charWidth  = 7.3 // monospace advance at fontSize, generous
	barHeight  = 16
	rowStep    = 22
	groupGap   = 30
	plotWidth  = 560
	margin     = 16
	valueSpace = 150 // room right of the longest bar for its value label
)

// palette: colour-blind-safe (Okabe-Ito), in order of first appearance of a series.
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// render lays the bars out and returns the SVG document.
func render(res results, o options) (string, error) {
	bs := bars(res.rows)
	setRatios(bs, o.base)
	ax, err := newAxis(bs, o.scale)
	if err != nil {
		return "", err
	}

	var series []string
	for _, b := range bs {
		if !slices.Contains(series, b.series) {
			series = append(series, b.series)
		}
	}
	colour := func(s string) string { return palette[slices.Index(series, s)%len(palette)] }

	labelW := 0
	for _, b := range bs {
		labelW = max(labelW, len([]rune(b.label)))
	}
	plotX := float64(margin) + float64(labelW)*charWidth + 12
	width := plotX + plotWidth + valueSpace + margin

	runs := 0
	for _, b := range bs {
		runs = max(runs, b.runs)
	}
	title := o.title
	if title == "" {
		title = fmt.Sprintf("ns/op per benchmark (median of %d run%s; shorter is faster)", runs, plural(runs))
	}
	scaleNote := "linear scale"
	if ax.log {
		scaleNote = "log scale"
	}
	sub := scaleNote
	if c := configSummary(res.config); c != "" {
		sub = c + " · " + scaleNote
	}

	var sb strings.Builder
	y := float64(margin)
	// Title, subtitle and legend.
	header := &strings.Builder{}
	fmt.Fprintf(header, `<text x="%d" y="%.0f" font-size="16" font-weight="bold">%s</text>`+"\n", margin, y+14, esc(title))
	y += 34
	fmt.Fprintf(header, `<text x="%d" y="%.0f" fill="#555">%s</text>`+"\n", margin, y, esc(sub))
	y += 20
	lx := float64(margin)
	for _, s := range series {
		fmt.Fprintf(header, `<rect x="%.1f" y="%.0f" width="12" height="12" fill="%s"/>`, lx, y-10, colour(s))
		fmt.Fprintf(header, `<text x="%.1f" y="%.0f">%s</text>`+"\n", lx+17, y, esc(s))
		lx += 17 + float64(len([]rune(s)))*charWidth + 24
	}
	if slices.ContainsFunc(bs, func(b bar) bool { return b.ratio > 0 }) {
		fmt.Fprintf(header, `<text x="%.1f" y="%.0f" fill="#555">(n×) = ns/op ÷ the group's baseline row of the same colour</text>`+"\n", lx+8, y)
	}
	y += 14
	axisTop := y + 16 // tick labels sit above the plot
	y = axisTop + 8

	// Rows, grouped.
	rows := &strings.Builder{}
	group := ""
	for i, b := range bs {
		if i == 0 || b.group != group {
			if i > 0 {
				y += groupGap - rowStep + 8
			}
			group = b.group
			fmt.Fprintf(rows, `<text x="%d" y="%.0f" font-weight="bold" font-size="13">%s</text>`+"\n", margin, y+12, esc(group))
			y += rowStep
		}
		w := math.Max(1, ax.frac(b.ns)*plotWidth)
		cy := y + barHeight/2
		fmt.Fprintf(rows, `<text x="%.1f" y="%.1f" text-anchor="end" font-family="%s" dominant-baseline="central">%s</text>`,
			plotX-8, cy, monoFonts, esc(b.label))
		fmt.Fprintf(rows, `<rect x="%.1f" y="%.0f" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>`,
			plotX, y, w, barHeight, colour(b.series), esc(b.group+"/"+b.label), esc(valueText(b)))
		fmt.Fprintf(rows, `<text x="%.1f" y="%.1f" dominant-baseline="central">%s</text>`+"\n",
			plotX+w+6, cy, esc(valueText(b)))
		y += rowStep
	}
	plotBottom := y

	// Grid and tick labels, drawn under the bars.
	grid := &strings.Builder{}
	for _, t := range ax.ticks() {
		x := plotX + ax.frac(t)*plotWidth
		fmt.Fprintf(grid, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`, x, axisTop+4, x, plotBottom)
		label := formatTick(t)
		fmt.Fprintf(grid, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555" font-size="11">%s</text>`+"\n", x, axisTop, esc(label))
	}
	fmt.Fprintf(grid, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#888"/>`+"\n", plotX, axisTop+4, plotX, plotBottom)

	height := plotBottom + margin
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="%s" font-size="%d">`+"\n",
		width, height, width, height, sansFonts, fontSize)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	sb.WriteString(header.String())
	sb.WriteString(grid.String())
	sb.WriteString(rows.String())
	sb.WriteString("</svg>\n")
	return sb.String(), nil
}

const (
	sansFonts = "Helvetica, Arial, DejaVu Sans, sans-serif"
	monoFonts = "DejaVu Sans Mono, Menlo, Consolas, monospace"
)

func valueText(b bar) string {
	s := formatNs(b.ns)
	if b.ratio > 0 {
		s += " (" + sig3(b.ratio) + "×)"
	}
	if !math.IsNaN(b.allocs) {
		a := strconv.FormatFloat(b.allocs, 'f', -1, 64)
		s += " · " + a + " alloc" + plural(int(math.Ceil(b.allocs)))
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// configSummary picks the header lines worth a subtitle: cpu, goos/goarch.
func configSummary(config []string) string {
	get := func(k string) string {
		for _, kv := range config {
			if v, ok := strings.CutPrefix(kv, k+": "); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	parts := slices.DeleteFunc([]string{get("cpu"), strings.Trim(get("goos")+"/"+get("goarch"), "/")},
		func(s string) bool { return s == "" })
	return strings.Join(parts, " · ")
}

// esc escapes text for an SVG text node or attribute.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
