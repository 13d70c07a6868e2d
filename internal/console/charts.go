package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// The charts are drawn from the audit records of the last 24 hours, by hour: calls (records of
// kind call), denials (policy_denial) and the 99th percentile of the duration of the outcome
// records, per tool. The reads are bounded: one query per hour, of at most chartPerHour
// records, the hour's first. An hour that holds more is counted from that sample, scaled by the
// hour's record count (the sequence numbers of its first record and the next hour's); the
// page then says its counts are estimates. The result is kept chartTTL, so that reloading the
// page does not read the store again.
const (
	chartHours   = 24
	chartPerHour = 250
	chartTTL     = 30 * time.Second
	chartTools   = 8 // the tools with the most calls get a chart each
	chartW       = 480.0
	chartH       = 100.0
)

type toolSeries struct {
	Tool    string
	Calls   [chartHours]int
	Denials [chartHours]int
	durs    [chartHours][]int64
	P99     [chartHours]int64 // microseconds
	total   int
}

// bar is one bar of a chart, in the SVG's coordinates.
type bar struct {
	X, Y, W, H float64
	Label      string
}

type chart struct {
	Title, Max string
	Bars       []bar
}

type toolCharts struct {
	Tool   string
	Charts []chart
}

type chartsData struct {
	From, To  time.Time
	Records   int  // records read
	Estimated bool // some hour held more than chartPerHour records
	Tools     []toolCharts
	Problem   string
}

type chartCache struct {
	mu   sync.Mutex
	at   time.Time
	data *chartsData
}

// chartsPage draws the charts.
func (c *Console) chartsPage(w http.ResponseWriter, r *http.Request, s *session) {
	p := &page{Title: "Charts", Nav: "charts"}
	if c.st.Audit == nil {
		p.Data = &chartsData{Problem: "no audit log is configured (audit:): the charts are drawn from its records"}
		c.render(w, r, http.StatusOK, "charts", s, p)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	d, err := c.chartData(ctx)
	if err != nil {
		c.logger.Error("console: chart data not read", "err", err)
		p.Data = &chartsData{Problem: "the audit store cannot be read: try again later"}
		c.render(w, r, http.StatusServiceUnavailable, "charts", s, p)
		return
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "charts", s, p)
}

// chartData returns the cached chart data, or reads it again when older than chartTTL.
func (c *Console) chartData(ctx context.Context) (*chartsData, error) {
	c.charts.mu.Lock()
	defer c.charts.mu.Unlock()
	now := c.now()
	if c.charts.data != nil && now.Sub(c.charts.at) < chartTTL {
		return c.charts.data, nil
	}
	d, err := readCharts(ctx, c.st.Audit, now)
	if err != nil {
		return nil, err
	}
	c.charts.data, c.charts.at = d, now
	return d, nil
}

func readCharts(ctx context.Context, st store.Store, now time.Time) (*chartsData, error) {
	end := now.Truncate(time.Hour).Add(time.Hour)
	start := end.Add(-chartHours * time.Hour)
	size, err := st.Size(ctx)
	if err != nil {
		return nil, err
	}
	d := &chartsData{From: start, To: end}
	byTool := map[string]*toolSeries{}
	var dur struct {
		D int64 `json:"duration_us"`
	}
	// first[h] is the sequence number of hour h's first record, -1 when it holds none.
	var first [chartHours + 1]int64
	var sampled [chartHours]int
	var perTool [chartHours]map[*toolSeries]*[2]int // calls, denials sampled in the hour
	// Each hour's first record is found by binary search on the time (seqAt), and the hour is
	// read from there in sequence order: no query scans more than chartPerHour records.
	lo := int64(0)
	for h := range chartHours {
		first[h] = -1
		perTool[h] = map[*toolSeries]*[2]int{}
		from, until := start.Add(time.Duration(h)*time.Hour), start.Add(time.Duration(h+1)*time.Hour)
		seq, err := seqAt(ctx, st, from, lo, size)
		if err != nil {
			return nil, err
		}
		lo = seq
		err = st.Search(ctx, store.Query{AfterSeq: seq - 1, Limit: chartPerHour}, func(r *store.Record) error {
			if !r.Time.Before(until) {
				return errStop
			}
			if r.Time.Before(from) {
				return nil
			}
			if first[h] < 0 {
				first[h] = r.Seq
			}
			sampled[h]++
			if r.Tool == "" {
				return nil
			}
			ts := byTool[r.Tool]
			if ts == nil {
				if len(byTool) >= 4*chartTools { // tools come from configured upstreams; bound them anyway
					return nil
				}
				ts = &toolSeries{Tool: r.Tool}
				byTool[r.Tool] = ts
			}
			n := perTool[h][ts]
			if n == nil {
				n = &[2]int{}
				perTool[h][ts] = n
			}
			switch audit.Kind(r.Kind) {
			case audit.KindToolCall:
				n[0]++
			case audit.KindPolicyDenial:
				n[1]++
			case audit.KindOutcome:
				dur.D = 0
				if json.Unmarshal(r.Data, &dur) == nil && dur.D > 0 {
					ts.durs[h] = append(ts.durs[h], dur.D)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, err
		}
		d.Records += sampled[h]
	}
	first[chartHours] = size
	for h := range chartHours {
		scale := 1.0
		if sampled[h] >= chartPerHour {
			next := size
			for k := h + 1; k <= chartHours; k++ {
				if first[k] >= 0 {
					next = first[k]
					break
				}
			}
			if total := next - first[h]; total > int64(sampled[h]) {
				scale, d.Estimated = float64(total)/float64(sampled[h]), true
			}
		}
		for ts, n := range perTool[h] {
			ts.Calls[h] = int(float64(n[0])*scale + 0.5)
			ts.Denials[h] = int(float64(n[1])*scale + 0.5)
			ts.total += ts.Calls[h]
		}
	}
	list := make([]*toolSeries, 0, len(byTool))
	for _, ts := range byTool {
		for h := range ts.durs {
			if n := len(ts.durs[h]); n > 0 {
				slices.Sort(ts.durs[h])
				ts.P99[h] = ts.durs[h][min(n-1, (n*99+99)/100-1)]
			}
		}
		list = append(list, ts)
	}
	slices.SortFunc(list, func(a, b *toolSeries) int {
		if a.total != b.total {
			return b.total - a.total
		}
		if a.Tool < b.Tool {
			return -1
		}
		return 1
	})
	if len(list) > chartTools {
		list = list[:chartTools]
	}
	for _, ts := range list {
		calls, denials, p99 := make([]int64, chartHours), make([]int64, chartHours), ts.P99[:]
		for h := range chartHours {
			calls[h], denials[h] = int64(ts.Calls[h]), int64(ts.Denials[h])
		}
		d.Tools = append(d.Tools, toolCharts{Tool: ts.Tool, Charts: []chart{
			bars("calls per hour", calls, start, func(v int64) string { return fmt.Sprint(v) }),
			bars("denials per hour", denials, start, func(v int64) string { return fmt.Sprint(v) }),
			bars("p99 latency", p99, start, func(v int64) string { return (time.Duration(v) * time.Microsecond).String() }),
		}})
	}
	return d, nil
}

// bars lays out one bar per hour, scaled to the largest value.
func bars(title string, vals []int64, start time.Time, format func(int64) string) chart {
	top := slices.Max(vals)
	ch := chart{Title: title, Max: format(top)}
	w := chartW / float64(len(vals))
	for i, v := range vals {
		h := 0.0
		if top > 0 {
			h = float64(v) / float64(top) * (chartH - 2)
		}
		ch.Bars = append(ch.Bars, bar{X: float64(i)*w + 1, Y: chartH - h, W: w - 2, H: h,
			Label: fmt.Sprintf("%s from %s: %s", title, start.Add(time.Duration(i)*time.Hour).UTC().Format("15:04Z"), format(v))})
	}
	return ch
}
