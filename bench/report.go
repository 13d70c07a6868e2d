package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// report is one run of the harness: where it ran, what it measured.
type report struct {
	Date     string            `json:"date"`
	Commit   string            `json:"commit"`
	Dirty    bool              `json:"dirty"` // product code differs from the commit
	Machine  machine           `json:"machine"`
	Settings settings          `json:"settings"`
	Fsync    *fsyncResult      `json:"fsync,omitempty"`
	Cases    []caseResult      `json:"cases"`
	Sessions *sessionsResult   `json:"sessions,omitempty"`
	NotBuilt map[string]string `json:"not_built,omitempty"` // case → what it waits for
	Peers    []peerBuild       `json:"peers,omitempty"`     // the peer gateways of -peers

	root string
}

type machine struct {
	Cores    int    `json:"cores"`
	MemBytes int64  `json:"mem_bytes"`
	CPU      string `json:"cpu"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	// LoadAvg is /proc/loadavg's 1-minute load at the start and the end of the run: on a
	// shared machine it says how much else was running.
	LoadAvg [2]float64 `json:"loadavg"`
}

type settings struct {
	Smoke       bool   `json:"smoke"`
	Warmup      string `json:"warmup"`
	Duration    string `json:"duration"`
	Concurrency []int  `json:"concurrency"`
	Only        string `json:"only,omitempty"`
	Profiled    bool   `json:"profiled,omitempty"`
	Against     string `json:"against,omitempty"` // the other gateway binary of case@against
}

func newReport(ctx context.Context, root string, o runOptions) *report {
	r := &report{
		Date: time.Now().UTC().Format(time.RFC3339),
		root: root,
		Settings: settings{
			Smoke: o.smoke, Warmup: o.warmup.String(), Duration: o.duration.String(),
			Concurrency: o.concurrency, Only: o.only, Profiled: o.profileDir != "", Against: o.against,
		},
		Machine: machine{Cores: runtime.NumCPU(), Go: runtime.Version()},
	}
	if b, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(b))
	}
	if b, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--", "cmd", "internal", "go.mod", "go.sum").Output(); err == nil {
		r.Dirty = len(bytes.TrimSpace(b)) > 0
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				r.Machine.MemBytes = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				r.Machine.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	r.Machine.LoadAvg[0] = loadAvg()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Machine.Kernel = strings.TrimSpace(string(b))
	}
	return r
}

// loadAvg is the 1-minute load average, or 0 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func (r *report) fileName() string {
	t, _ := time.Parse(time.RFC3339, r.Date)
	name := t.Format("20060102-150405")
	if r.Commit != "" {
		name += "-" + r.Commit
	}
	return name + ".json"
}

func (r *report) writeJSON(name string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, append(b, '\n'), 0o644)
}

// readReport loads a results file written by writeJSON. Unknown fields are refused, so a
// file from a harness whose format has since changed says so instead of printing zeros.
func readReport(name string) (*report, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r report
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: not a results file of this harness: %w", name, err)
	}
	if r.Date == "" || len(r.Cases) == 0 {
		return nil, fmt.Errorf("%s: not a results file of this harness: no date or no cases", name)
	}
	return &r, nil
}

// failures counts failed requests and checks over the whole run.
func (r *report) failures() int64 {
	var n int64
	for _, c := range r.Cases {
		n += c.Errors
	}
	if s := r.Sessions; s != nil {
		n += s.OpenErrors + s.StreamErrors + s.CallErrors
		if s.LimitStatus != 503 {
			n++
		}
	}
	return n
}

func (r *report) byName() map[string]*caseResult {
	m := map[string]*caseResult{}
	for i := range r.Cases {
		m[r.Cases[i].Name] = &r.Cases[i]
	}
	return m
}

// markdown renders the run as a BENCHMARKS.md section.
func (r *report) markdown() string {
	var b strings.Builder
	day := r.Date
	if len(day) >= 10 {
		day = day[:10]
	}
	commit := r.Commit
	if r.Dirty {
		commit += " + uncommitted changes"
	}
	fmt.Fprintf(&b, "## Run of %s · commit %s\n\n", day, commit)
	fmt.Fprintf(&b, "Machine: %d cores (%s), %s memory, Linux %s, %s; load average %.1f at the start, %.1f at the end. ",
		r.Machine.Cores, r.Machine.CPU, gib(r.Machine.MemBytes), r.Machine.Kernel, r.Machine.Go, r.Machine.LoadAvg[0], r.Machine.LoadAvg[1])
	fmt.Fprintf(&b, "Closed loop, warm-up %s then %s measured per case; client, gateway and upstream share the cores.", r.Settings.Warmup, r.Settings.Duration)
	if r.Settings.Smoke {
		b.WriteString(" **Smoke run: numbers prove the harness works, nothing more.**")
	}
	if r.Settings.Profiled {
		b.WriteString(" **Profiled gateway: CPU numbers include the profiler.**")
	}
	b.WriteString("\n\n")
	if f := r.Fsync; f != nil {
		fmt.Fprintf(&b, "One durable append (write %d B + fsync, same disk): p50 %s, p99 %s, max %s over %d appends.\n\n",
			f.Bytes, ms(f.Latency.P50), ms(f.Latency.P99), ms(f.Latency.Max), f.Records)
	}

	cases := r.byName()
	r.peerTables(&b)
	b.WriteString("### Added latency and throughput against direct\n\n")
	b.WriteString("Each gateway case against the direct case of the same era, workload and concurrency (client → echo upstream over HTTP).\n\n")
	b.WriteString("| case | c | p50 direct → gateway | added p50 | p99 direct → gateway | added p99 | req/s direct → gateway | ratio | gateway CPU/call | gateway peak RSS | errors |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.Cases {
		if c.Path != pathGateway {
			continue
		}
		d := cases[c.baseline()]
		label := fmt.Sprintf("%s %s %s %s", c.Upstream, c.Era, c.Pipeline, c.Workload)
		if c.Build != "" {
			label += " @" + c.Build
		}
		if d == nil {
			fmt.Fprintf(&b, "| %s | %d | — → %s | — | — → %s | — | — → %.0f | — | %.1f µs | %s | %d |\n",
				label, c.Concurrency, ms(c.Latency.P50), ms(c.Latency.P99), c.Throughput, c.Gateway.CPUPerCallUS, mib(c.Gateway.PeakRSSBytes), c.Errors)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s → %s | %s | %s → %s | %s | %.0f → %.0f | %s | %.1f µs | %s | %d |\n",
			label, c.Concurrency,
			ms(d.Latency.P50), ms(c.Latency.P50), msDelta(c.Latency.P50-d.Latency.P50),
			ms(d.Latency.P99), ms(c.Latency.P99), msDelta(c.Latency.P99-d.Latency.P99),
			d.Throughput, c.Throughput, pct(c.Throughput, d.Throughput),
			c.Gateway.CPUPerCallUS, mib(c.Gateway.PeakRSSBytes), c.Errors+d.Errors)
	}
	if len(r.NotBuilt) > 0 {
		fmt.Fprintf(&b, "\nNot measured yet (%d cases), each stage adding to the ones before it:", len(r.NotBuilt))
		for _, s := range stages {
			if !s.Built {
				fmt.Fprintf(&b, " +%s (%s, issue %d: not yet built);", s.Name, s.Title, s.Issue)
			}
		}
		b.WriteString(" every one over HTTP and stdio upstreams, both eras, c=1 and c=64.\n")
	}
	if len(stages) > 0 {
		b.WriteString("\nPipelines (cumulative):")
		for _, s := range stages {
			if s.Built {
				fmt.Fprintf(&b, " +%s = %s;", s.Name, s.Title)
			}
		}
		b.WriteString(" redaction runs only with the audit log, so it is part of +audit.\n")
	}
	b.WriteString("\n### Every case\n\n")
	b.WriteString("| case | req/s | mean | p50 | p90 | p99 | max | errors | gateway CPU/call | gateway peak RSS | upstream CPU/call | client CPU s |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.Cases {
		gwCPU, gwRSS, upCPU := "—", "—", "—"
		if c.Gateway != nil {
			gwCPU, gwRSS = fmt.Sprintf("%.1f µs", c.Gateway.CPUPerCallUS), mib(c.Gateway.PeakRSSBytes)
		}
		if c.Echo != nil {
			upCPU = fmt.Sprintf("%.1f µs", c.Echo.CPUPerCallUS)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %d | %s | %s | %s | %.2f |\n",
			c.Name, c.Throughput, ms(c.Latency.Mean), ms(c.Latency.P50), ms(c.Latency.P90), ms(c.Latency.P99), ms(c.Latency.Max),
			c.Errors, gwCPU, gwRSS, upCPU, c.ClientCPUSeconds)
	}
	for _, c := range r.Cases {
		for k, n := range c.ErrorKinds {
			fmt.Fprintf(&b, "\n- %s: %d × `%s`", c.Name, n, k)
		}
	}

	if s := r.Sessions; s != nil {
		b.WriteString("\n\n### Held legacy sessions\n\n")
		fmt.Fprintf(&b, "| sessions opened | open time | initialize p50 / p99 | session beyond the limit | gateway RSS: idle → sessions → + a GET stream each | per session | per stream | peak RSS | calls on held sessions p50 / p99 | errors |\n")
		b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		fmt.Fprintf(&b, "| %d of %d | %.1f s | %s / %s | HTTP %d | %s → %s → %s | %s | %s | %s | %s / %s | %d |\n",
			s.Opened, s.Sessions, s.OpenSeconds, ms(s.OpenLatency.P50), ms(s.OpenLatency.P99), s.LimitStatus,
			mib(s.BaseRSSBytes), mib(s.RSSBytes), mib(s.StreamsRSS), kib(s.PerSessionB), kib(s.PerStreamB), mib(s.PeakRSSBytes),
			ms(s.CallLatency.P50), ms(s.CallLatency.P99), s.OpenErrors+s.StreamErrors+s.CallErrors)
	}
	b.WriteString("\n")
	r.stageCosts(&b, cases)
	r.targets(&b, cases)
	return b.String()
}

// stageCosts renders, for every upstream, era and concurrency where more than one pipeline ran
// on the echo workload, what each cumulative pipeline costs: p50 latency and gateway CPU per call.
func (r *report) stageCosts(b *strings.Builder, cases map[string]*caseResult) {
	pipes := pipelines()
	type row struct {
		up, era string
		n       int
	}
	var rows []row
	seen := map[row]bool{}
	for _, c := range r.Cases {
		k := row{c.Upstream, c.Era, c.Concurrency}
		if c.Path != pathGateway || c.Workload != workEcho.Name || c.Build != "" || c.Round > 1 || seen[k] {
			continue
		}
		n := 0
		for _, p := range pipes {
			if cases[stageCase(k.up, k.era, p.Name, k.n)] != nil {
				n++
			}
		}
		if n > 1 {
			seen[k] = true
			rows = append(rows, k)
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n### What each stage costs (echo)\n\n")
	b.WriteString("Each pipeline includes the stages before it. Per cell: p50 latency · gateway CPU per call.\n\n| upstream, era | c |")
	for _, p := range pipes {
		fmt.Fprintf(b, " %s |", p.Name)
	}
	b.WriteString("\n|---|--:|" + strings.Repeat("--:|", len(pipes)) + "\n")
	for _, k := range rows {
		fmt.Fprintf(b, "| %s %s | %d |", k.up, k.era, k.n)
		for _, p := range pipes {
			if c := cases[stageCase(k.up, k.era, p.Name, k.n)]; c != nil && c.Gateway != nil {
				fmt.Fprintf(b, " %s · %.0f µs |", ms(c.Latency.P50), c.Gateway.CPUPerCallUS)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
}

func stageCase(up, era, pipe string, n int) string {
	return fmt.Sprintf("gateway/%s/%s/%s/echo/c%d", up, era, pipe, n)
}

// targets states each issue-6 target against what this run can say about it.
func (r *report) targets(b *strings.Builder, cases map[string]*caseResult) {
	b.WriteString("\n### Targets\n\n")
	if r.Settings.Smoke {
		b.WriteString("**Not judged: this is a smoke run** (a few seconds per case, to prove the harness works). " +
			"\"no\" below says nothing about the targets; a full run (`go run ./bench`) judges them.\n\n")
	}
	b.WriteString("| target | this run | met |\n|---|---|---|\n")
	pipes := pipelines()
	full := pipes[len(pipes)-1].Name
	var fsync50, fsync99 float64
	if r.Fsync != nil {
		fsync50, fsync99 = r.Fsync.Latency.P50, r.Fsync.Latency.P99
	}
	for _, era := range []string{eraLegacy, eraModern} {
		for _, up := range []string{upstreamHTTP, upstreamStdio} {
			gw := cases[stageCase(up, era, full, 1)]
			none := cases[stageCase(up, era, "none", 1)]
			d := cases[fmt.Sprintf("direct/http/%s/echo/c1", era)]
			switch {
			case gw != nil && d != nil:
				added50, added99 := gw.Latency.P50-d.Latency.P50, gw.Latency.P99-d.Latency.P99
				fmt.Fprintf(b, "| full pipeline (%s), c=1, %s %s: p50 added ≤ fsync p50 + 0.15 ms | %s added, fsync p50 %s | %s |\n",
					full, up, era, ms(added50), ms(fsync50), yes(added50 <= fsync50+150))
				fmt.Fprintf(b, "| full pipeline (%s), c=1, %s %s: p99 added ≤ fsync p99 + 1 ms | %s added, fsync p99 %s | %s |\n",
					full, up, era, ms(added99), ms(fsync99), yes(added99 <= fsync99+1000))
			case none != nil && d != nil:
				fmt.Fprintf(b, "| full pipeline, c=1, %s %s: p50 added ≤ fsync + 0.15 ms, p99 ≤ fsync + 1 ms | not measured in this run; with nothing enabled %s (p50) and %s (p99) added, fsync p50 %s | — |\n",
					up, era, ms(none.Latency.P50-d.Latency.P50), ms(none.Latency.P99-d.Latency.P99), ms(fsync50))
			}
		}
	}
	for _, pipe := range []string{"none", full} {
		for _, era := range []string{eraLegacy, eraModern} {
			for _, up := range []string{upstreamHTTP, upstreamStdio} {
				gw := cases[stageCase(up, era, pipe, 64)]
				if gw == nil {
					continue
				}
				if d := cases[gw.baseline()]; d != nil && d.Throughput > 0 {
					ratio := gw.Throughput / d.Throughput
					fmt.Fprintf(b, "| throughput at c=64 ≥ 60 %% of direct (%s %s, pipeline %s) | %s | %s |\n", up, era, pipe, pct(gw.Throughput, d.Throughput), yes(ratio >= 0.6))
				}
			}
		}
	}
	for _, pipe := range []string{"none", full} {
		var best, worst *caseResult
		for i := range r.Cases {
			c := &r.Cases[i]
			if c.Gateway == nil || c.Workload != workEcho.Name || c.Pipeline != pipe {
				continue
			}
			if worst == nil || c.Gateway.CPUPerCallUS > worst.Gateway.CPUPerCallUS {
				worst = c
			}
			if best == nil || c.Gateway.CPUPerCallUS < best.Gateway.CPUPerCallUS {
				best = c
			}
		}
		if worst != nil {
			fmt.Fprintf(b, "| gateway CPU ≤ 40 µs per call (echo, pipeline %s) | %.1f µs (%s) … %.1f µs (%s) | %s |\n",
				pipe, best.Gateway.CPUPerCallUS, best.Name, worst.Gateway.CPUPerCallUS, worst.Name, yes(worst.Gateway.CPUPerCallUS <= 40))
		}
	}
	// Issue 17: a modern client in front of a legacy upstream costs no more than a legacy client.
	for _, pipe := range []string{"none", full} {
		for _, n := range []int{1, 64} {
			mixed := cases[stageCase(upstreamHTTPLegacy, eraModern, pipe, n)]
			legacy := cases[stageCase(upstreamHTTP, eraLegacy, pipe, n)]
			if mixed == nil || legacy == nil || mixed.Gateway == nil || legacy.Gateway == nil {
				continue
			}
			fmt.Fprintf(b, "| modern client before a legacy upstream ≤ legacy client (pipeline %s, c=%d): gateway CPU per call | %.1f µs against %.1f µs | %s |\n",
				pipe, n, mixed.Gateway.CPUPerCallUS, legacy.Gateway.CPUPerCallUS, yes(mixed.Gateway.CPUPerCallUS <= legacy.Gateway.CPUPerCallUS))
		}
	}
	if s := r.Sessions; s != nil {
		fmt.Fprintf(b, "| %d sessions in ≤ 1 GiB | %s RSS with sessions, %s with a GET stream each (peak %s) | %s |\n",
			s.Sessions, mib(s.RSSBytes), mib(s.StreamsRSS), mib(s.PeakRSSBytes), yes(s.PeakRSSBytes <= 1<<30 && s.Opened == int64(s.Sessions)))
	}
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// ms formats microseconds as milliseconds.
func ms(us float64) string { return fmt.Sprintf("%.3f ms", us/1000) }

func msDelta(us float64) string { return fmt.Sprintf("%+.3f ms", us/1000) }

func pct(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", 100*a/b)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10)) }
func gib(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
