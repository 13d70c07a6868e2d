package main

import (
	"fmt"
	"slices"
	"strings"
)

// peerRow is one path of the peers table: direct, a peer, or mcpguard with a pipeline.
type peerRow struct {
	label    string
	path     string // direct, a peer's name, or gateway
	pipeline string // for gateway
}

// peerTables renders, for each upstream stack where peers ran, one table of every path of the
// comparison: c=1 added latency, c=64 throughput against direct, gateway CPU per call and peak
// RSS, each the median over the rounds of the run (-repeat).
func (r *report) peerTables(b *strings.Builder) {
	if len(r.Peers) == 0 {
		return
	}
	var peers []string
	for _, p := range r.Peers {
		if p.Error == "" {
			peers = append(peers, p.Name)
		}
	}
	pipes := pipelines()
	full := pipes[len(pipes)-1].Name
	rows := []peerRow{{label: "direct (no gateway)", path: pathDirect}}
	for _, p := range peers {
		rows = append(rows, peerRow{label: p, path: p})
	}
	rows = append(rows,
		peerRow{label: "mcpguard, nothing enabled (none)", path: pathGateway, pipeline: "none"},
		peerRow{label: "mcpguard, full pipeline (" + full + ")", path: pathGateway, pipeline: full})

	b.WriteString("### Peers\n\n")
	defer b.WriteString("\n")
	for _, p := range r.Peers {
		if p.Error != "" {
			fmt.Fprintf(b, "- **%s** (%s): not measured: %s\n", p.Name, p.Repo, p.Error)
			continue
		}
		fmt.Fprintf(b, "- **%s**: %s %s (commit %.12s); %s\n", p.Name, p.Repo, p.Describe, p.Commit, p.Work)
	}
	for _, stack := range []struct{ up, title string }{
		{upstreamSDK, "go-sdk echo upstream and go-sdk client (legacy era, 2025-11-25)"},
		{upstreamHTTP, "in-repo fast echo upstream and in-repo client (legacy era)"},
	} {
		rounds := r.peerRounds(stack.up)
		if len(rounds) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s; median of %d round(s). Added latency and × direct are against direct in the same round (the median of each round's difference or ratio).\n\n", stack.title, len(rounds))
		b.WriteString("| path | c=1 p50 | c=1 added p50 | c=1 added p99 | c=64 calls/s | × direct | gateway CPU/call c=1 · c=64 | gateway peak RSS | errors |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, row := range rows {
			var p50, add50, add99, rps, ratio, cpu1, cpu64, rss []float64
			var errs int64
			found := false
			for _, round := range rounds {
				c1, d1 := round[peerKey(row, stack.up, 1)], round[peerKey(peerRow{path: pathDirect}, stack.up, 1)]
				c64, d64 := round[peerKey(row, stack.up, 64)], round[peerKey(peerRow{path: pathDirect}, stack.up, 64)]
				if c1 != nil {
					found = true
					errs += c1.Errors
					p50 = append(p50, c1.Latency.P50)
					if d1 != nil {
						add50 = append(add50, c1.Latency.P50-d1.Latency.P50)
						add99 = append(add99, c1.Latency.P99-d1.Latency.P99)
					}
					if c1.Gateway != nil {
						cpu1 = append(cpu1, c1.Gateway.CPUPerCallUS)
						rss = append(rss, float64(c1.Gateway.PeakRSSBytes))
					}
				}
				if c64 != nil {
					found = true
					errs += c64.Errors
					rps = append(rps, c64.Throughput)
					if d64 != nil && d64.Throughput > 0 {
						ratio = append(ratio, c64.Throughput/d64.Throughput)
					}
					if c64.Gateway != nil {
						cpu64 = append(cpu64, c64.Gateway.CPUPerCallUS)
						rss = append(rss, float64(c64.Gateway.PeakRSSBytes))
					}
				}
			}
			if !found {
				continue
			}
			added := func(v []float64) string {
				if row.path == pathDirect {
					return "—"
				}
				return orDash(v, func(x float64) string { return msDelta(x) })
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s · %s | %s | %d |\n",
				row.label,
				orDash(p50, ms), added(add50), added(add99),
				orDash(rps, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
				orDash(ratio, func(x float64) string { return fmt.Sprintf("%.2f", x) }),
				orDash(cpu1, func(x float64) string { return fmt.Sprintf("%.0f µs", x) }),
				orDash(cpu64, func(x float64) string { return fmt.Sprintf("%.0f µs", x) }),
				orDash(rss, func(x float64) string { return mib(int64(x)) }), errs)
		}
	}
}

// peerRounds groups the echo cases of one upstream stack, legacy era, by round: name without
// the round → case.
func (r *report) peerRounds(up string) []map[string]*caseResult {
	byRound := map[int]map[string]*caseResult{}
	hasPeer := false
	for i := range r.Cases {
		c := &r.Cases[i]
		if c.Upstream != up || c.Era != eraLegacy || c.Workload != workEcho.Name || c.Build != "" {
			continue
		}
		if c.Path != pathDirect && c.Path != pathGateway {
			hasPeer = true
		}
		round := max(c.Round, 1)
		if byRound[round] == nil {
			byRound[round] = map[string]*caseResult{}
		}
		k := c.benchCase
		k.Round = 0
		byRound[round][k.Name()] = c
	}
	if !hasPeer {
		return nil
	}
	var keys []int
	for k := range byRound {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]map[string]*caseResult, 0, len(keys))
	for _, k := range keys {
		out = append(out, byRound[k])
	}
	return out
}

// peerKey is the name, without its round, of row's case on upstream up at concurrency n.
func peerKey(row peerRow, up string, n int) string {
	c := benchCase{Path: row.path, Upstream: up, Era: eraLegacy, Pipeline: row.pipeline, Workload: workEcho.Name, Concurrency: n}
	return c.Name()
}

// orDash formats the median of v, or "—" when v is empty.
func orDash(v []float64, format func(float64) string) string {
	if len(v) == 0 {
		return "—"
	}
	return format(median(v))
}

// median is the middle value of v (the mean of the two middle ones for an even count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
