package report

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var pageTemplate string

//go:embed report.css
var pageCSS string

// page is the HTML template. It runs with html/template, so every value from a record (tool
// names, principals, reasons, arguments) is escaped for where it lands; the page has no script,
// and its Content-Security-Policy allows nothing but its own style sheet (by hash).
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"tsz":     func(t time.Time) string { return zeroDash(t) },
	"json":    func(raw json.RawMessage) string { return string(raw) },
	"join":    strings.Join,
	"more":    more,
	"percent": func(a, b int64) string { return fmt.Sprintf("%.1f%%", float64(a)*100/float64(max(b, 1))) },
	"ms":      millis,
	"kinds":   sortedKinds,
	"masked":  sortedCounts,
}).Parse(pageTemplate))

// csp is the page's Content-Security-Policy: nothing may load, run or be submitted; the only
// style is the page's own, allowed by its hash.
var csp = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src 'none'; base-uri 'none'; form-action 'none'"
}()

// view is what the template renders: the report and its charts.
type view struct {
	*Report
	CSP        string
	CSS        template.CSS
	ActChart   chart
	DenChart   hchart
	KeyText    string
	VerifyHint string
}

// HTML renders the report as a self-contained page signed with k: charts inline as SVG, no
// script, a strict Content-Security-Policy, and the signed statement in a final block.
func HTML(r *Report, k *Key) ([]byte, error) {
	var b bytes.Buffer
	v := view{Report: r, CSP: csp, CSS: template.CSS(pageCSS), ActChart: activityChart(r.Activity.Series),
		DenChart: barChart(r.Security.DenialsByRule), KeyText: k.Verifier}
	if err := page.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("render the report: %w", err)
	}
	sig, err := sign(k, FormatHTML, b.Bytes(), r)
	if err != nil {
		return nil, err
	}
	return sealHTML(b.Bytes(), sig), nil
}

// JSON renders the report as JSON signed with k: {"report":…,"signature":"…"}.
func JSON(r *Report, k *Key) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode the report: %w", err)
	}
	sig, err := sign(k, FormatJSON, body, r)
	if err != nil {
		return nil, err
	}
	return sealJSON(body, sig)
}

// SignPDF returns the detached signature (FILE.sig) of a PDF printed from the report.
func SignPDF(r *Report, k *Key, pdf []byte) ([]byte, error) {
	return sign(k, FormatPDF, pdf, r)
}

func zeroDash(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(time.RFC3339)
}

// more says how many rows a table left out, or nothing.
func more(shown int, total int64) string {
	if int64(shown) >= total {
		return ""
	}
	return fmt.Sprintf("Showing %d of %d; the rest are in the log (mcpguard audit search, or a larger --max-rows).", shown, total)
}

func millis(ms int64) string {
	if ms < 0 {
		return "—"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func sortedKinds(m map[string]int64) []Count { return sortedCounts(m) }

func sortedCounts(m map[string]int64) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Name: k, Count: v})
	}
	slices.SortFunc(out, func(a, b Count) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 900.0, 240.0
	chartPad       = 40.0
)

// chart is the activity chart: a group of three bars (calls, denials, errors) per interval.
type chart struct {
	W, H   float64
	Bars   []bar
	Ticks  []tick
	Labels []tick
	Max    int64
	Empty  bool
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type tick struct {
	X, Y float64
	Text string
}

func activityChart(series []Interval) chart {
	c := chart{W: chartW, H: chartH}
	for _, s := range series {
		c.Max = max(c.Max, s.Calls, s.Denials, s.Errors)
	}
	if len(series) == 0 || c.Max == 0 {
		c.Empty = true
		return c
	}
	plotW, plotH := chartW-2*chartPad, chartH-2*chartPad
	slot := plotW / float64(len(series))
	w := max(slot/4, 0.5)
	y := func(n int64) float64 { return plotH * float64(n) / float64(c.Max) }
	every := max(1, len(series)/8)
	for i, s := range series {
		x := chartPad + float64(i)*slot + slot/8
		label := s.Start.UTC().Format("2006-01-02 15:04")
		for j, v := range []struct {
			n     int64
			class string
			what  string
		}{{s.Calls, "calls", "calls"}, {s.Denials, "denials", "denials"}, {s.Errors, "errors", "errors"}} {
			h := y(v.n)
			c.Bars = append(c.Bars, bar{X: x + float64(j)*w, Y: chartPad + plotH - h, W: w, H: h, Class: v.class,
				Title: fmt.Sprintf("%s: %d %s", label, v.n, v.what)})
		}
		if i%every == 0 {
			c.Labels = append(c.Labels, tick{X: x, Y: chartH - chartPad/2, Text: s.Start.UTC().Format("01-02 15h")})
		}
	}
	for _, f := range []float64{0, 0.5, 1} {
		c.Ticks = append(c.Ticks, tick{X: chartPad - 4, Y: chartPad + plotH - plotH*f, Text: fmt.Sprint(int64(float64(c.Max) * f))})
	}
	return c
}

// hchart is a horizontal bar chart of counts (denials by rule).
type hchart struct {
	W, H  float64
	Bars  []hbar
	Empty bool
}

type hbar struct {
	Y, W  float64
	Name  string
	Count int64
}

func barChart(counts []Count) hchart {
	if len(counts) > maxTop {
		counts = counts[:maxTop]
	}
	c := hchart{W: chartW, H: float64(len(counts))*22 + 10, Empty: len(counts) == 0}
	var top int64
	for _, n := range counts {
		top = max(top, n.Count)
	}
	for i, n := range counts {
		c.Bars = append(c.Bars, hbar{Y: float64(i)*22 + 5, W: max(1, 500*float64(n.Count)/float64(max(top, 1))), Name: clip(n.Name, 60), Count: n.Count})
	}
	return c
}
