package main

import (
	"fmt"
	"strings"
)

// Where a case's client sends its requests: straight to the echo upstream, through mcpguard, or
// through a peer gateway (the path is then the peer's name, see peerList).
const (
	pathDirect  = "direct"  // straight to the echo upstream
	pathGateway = "gateway" // through mcpguard
)

// Which echo upstream a case runs, and how mcpguard reaches it.
const (
	upstreamHTTP  = "http"  // the in-repo fast echo over Streamable HTTP, in the client's era
	upstreamStdio = "stdio" // the in-repo fast echo as a child process, in the client's era
	// upstreamSDK is the go-sdk stack: the official SDK's echo server over Streamable HTTP,
	// driven by the SDK's own client (bench/sdk.go), legacy era.
	upstreamSDK = "sdk"
	// upstreamHTTPLegacy is the in-repo fast echo over Streamable HTTP configured as a legacy
	// upstream (era: legacy) whatever the client's era: a modern client in front of a legacy
	// server, against the legacy client of upstreamHTTP in front of the same server.
	upstreamHTTPLegacy = "http-legacy"
)

// workload is what each request does.
type workload struct {
	Name  string
	Tools int // tools the echo upstream lists
	// Blob, when positive, makes each request a tools/call of blob with this many bytes;
	// List makes it tools/list; otherwise it is a tools/call of echo.
	Blob int
	List bool
}

var (
	workEcho = workload{Name: "echo", Tools: 2}
	workList = workload{Name: "list1000", Tools: 1000, List: true}
	workBlob = workload{Name: "blob1MiB", Tools: 2, Blob: 1 << 20}
)

// stage is one step of the gateway pipeline a case can enable. The stages are cumulative in
// this order; each names the issue that builds it. A stage that is not built yet is listed in
// the report and skipped.
type stage struct {
	Name  string
	Title string
	Issue int
	Built bool
	// Config returns YAML merged into the gateway configuration (top-level keys); caseDir is a
	// fresh directory of the case on the repository's disk. Header returns the client headers
	// the stage needs (a bearer token, for instance). Either may be nil.
	Config func(f *fixture, caseDir string) string
	Header func(f *fixture) map[string]string
}

// stages lists the pipeline in order. When a stage lands, set Built and fill Config and
// Header; every gateway case then runs with it and the stages before it.
//
// Redaction has no stage of its own: the gateway redacts what it writes to the audit log, and
// an audit section requires a redaction key, so redaction cannot be switched on without the
// durable log. "+audit" is both.
var stages = []stage{
	{Name: "auth", Title: "JWT bearer authentication (RS256, JWKS on loopback)", Issue: 3, Built: true, Config: authConfig, Header: bearerHeader},
	{Name: "policy", Title: "role policy with an argument schema", Issue: 4, Built: true, Config: policyConfig},
	{Name: "audit", Title: "redaction and durable audit (SQLite)", Issue: 5, Built: true, Config: auditConfig},
	{Name: "limits", Title: "containment with local rate limits per principal, address, tool and upstream, the full pipeline", Issue: 13, Built: true, Config: limitsConfig},
}

// pipeline is a prefix of stages: none, +auth, +auth+policy, ….
type pipeline struct {
	Name   string
	Stages []stage
}

// pipelines returns the cumulative pipelines: "none" and one per stage.
func pipelines() []pipeline {
	out := []pipeline{{Name: "none"}}
	for i, s := range stages {
		out = append(out, pipeline{Name: "+" + s.Name, Stages: stages[:i+1]})
	}
	return out
}

// config is the YAML of every stage of p, for one case.
func (p pipeline) config(f *fixture, caseDir string) string {
	var cfg string
	for _, s := range p.Stages {
		if s.Config != nil {
			cfg += s.Config(f, caseDir)
		}
	}
	return cfg
}

// header is the client headers every stage of p needs.
func (p pipeline) header(f *fixture) map[string]string {
	h := map[string]string{}
	for _, s := range p.Stages {
		if s.Header != nil {
			for k, v := range s.Header(f) {
				h[k] = v
			}
		}
	}
	return h
}

// built reports whether every stage of p exists, and names the first missing one.
func (p pipeline) built() (bool, string) {
	for _, s := range p.Stages {
		if !s.Built {
			return false, fmt.Sprintf("%s (issue %d)", s.Title, s.Issue)
		}
	}
	return true, ""
}

// benchCase is one measurement: a client era, a path, an upstream transport, a pipeline, a
// workload and a concurrency.
type benchCase struct {
	Path        string `json:"path"`
	Upstream    string `json:"upstream"`
	Era         string `json:"era"`
	Pipeline    string `json:"pipeline,omitempty"`
	Workload    string `json:"workload"`
	Concurrency int    `json:"concurrency"`
	// Build is "" for the gateway built from this tree, or "against" for the binary given
	// with -against, to compare two builds in one run.
	Build string `json:"build,omitempty"`
	// Round numbers the repetitions of a case (-repeat); 0 and 1 are the first.
	Round int      `json:"round,omitempty"`
	pipe  pipeline `json:"-"`
	work  workload `json:"-"`
}

// Name identifies the case, e.g. gateway/http/modern/none/echo/c64, direct/sdk/legacy/echo/c1
// or hyprmcp/sdk/legacy/echo/c64; a round after the first adds #N.
func (c benchCase) Name() string {
	var name string
	if c.Path == pathGateway {
		name = fmt.Sprintf("gateway/%s/%s/%s/%s/c%d", c.Upstream, c.Era, c.Pipeline, c.Workload, c.Concurrency)
		if c.Build != "" {
			name += "@" + c.Build
		}
	} else {
		name = fmt.Sprintf("%s/%s/%s/%s/c%d", c.Path, c.Upstream, c.Era, c.Workload, c.Concurrency)
	}
	if c.Round > 1 {
		name += fmt.Sprintf("#%d", c.Round)
	}
	return name
}

// baseline names the direct case a gateway or peer case is compared with: same upstream stack,
// era, workload, concurrency and round, straight to the echo upstream over HTTP (a client
// reaches a stdio server through the gateway only, so HTTP to the server is the baseline there
// too).
func (c benchCase) baseline() string {
	up := upstreamHTTP
	if c.Upstream == upstreamSDK {
		up = upstreamSDK
	}
	name := fmt.Sprintf("direct/%s/%s/%s/c%d", up, c.Era, c.Workload, c.Concurrency)
	if c.Round > 1 {
		name += fmt.Sprintf("#%d", c.Round)
	}
	return name
}

// plan lists every case of a full run, the skipped ones (pipelines not built yet) with the
// reason, in the order they run. peers names the peer gateways to measure too: each runs next
// to direct and mcpguard on the echo workload in the legacy era (the one they all speak), on the
// in-repo fast echo and on the go-sdk stack, so that every path of one comparison runs within
// seconds of the others.
func plan(concurrency []int, peers []string) (run []benchCase, skipped map[string]string) {
	skipped = map[string]string{}
	add := func(c benchCase) {
		if c.Path == pathGateway {
			if ok, missing := c.pipe.built(); !ok {
				skipped[c.Name()] = "not yet built: " + missing
				return
			}
		}
		run = append(run, c)
	}
	eras := []string{eraLegacy, eraModern}
	addPeers := func(up, era string, w workload, n int) {
		if era != eraLegacy || w.Name != workEcho.Name {
			return
		}
		for _, p := range peers {
			add(benchCase{Path: p, Upstream: up, Era: era, Workload: w.Name, Concurrency: n, work: w})
		}
	}
	matrix := func(w workload, pipes []pipeline, concs []int) {
		for _, era := range eras {
			for _, n := range concs {
				add(benchCase{Path: pathDirect, Upstream: upstreamHTTP, Era: era, Workload: w.Name, Concurrency: n, work: w})
				addPeers(upstreamHTTP, era, w, n)
				for _, p := range pipes {
					for _, up := range []string{upstreamHTTP, upstreamStdio} {
						add(benchCase{Path: pathGateway, Upstream: up, Era: era, Pipeline: p.Name, Workload: w.Name, Concurrency: n, pipe: p, work: w})
					}
				}
			}
		}
	}
	matrix(workEcho, pipelines(), concurrency)
	// The go-sdk stack: mcpguard with nothing enabled and with the full pipeline, between direct
	// and the peers.
	pipes := pipelines()
	sdkPipes := []pipeline{pipes[0]}
	if len(pipes) > 1 {
		sdkPipes = append(sdkPipes, pipes[len(pipes)-1])
	}
	for _, n := range concurrency {
		add(benchCase{Path: pathDirect, Upstream: upstreamSDK, Era: eraLegacy, Workload: workEcho.Name, Concurrency: n, work: workEcho})
		addPeers(upstreamSDK, eraLegacy, workEcho, n)
		for _, p := range sdkPipes {
			add(benchCase{Path: pathGateway, Upstream: upstreamSDK, Era: eraLegacy, Pipeline: p.Name, Workload: workEcho.Name, Concurrency: n, pipe: p, work: workEcho})
		}
	}
	// A modern client in front of a legacy upstream, with nothing enabled and the full pipeline.
	for _, n := range concurrency {
		for _, p := range sdkPipes {
			add(benchCase{Path: pathGateway, Upstream: upstreamHTTPLegacy, Era: eraModern, Pipeline: p.Name, Workload: workEcho.Name, Concurrency: n, pipe: p, work: workEcho})
		}
	}
	none := pipelines()[:1]
	matrix(workList, none, concurrency[:1])
	matrix(workBlob, none, concurrency)
	return run, skipped
}

// withAgainst puts before every gateway case the same case on the -against binary.
func withAgainst(cases []benchCase) []benchCase {
	var out []benchCase
	for _, c := range cases {
		if c.Path == pathGateway {
			a := c
			a.Build = "against"
			out = append(out, a)
		}
		out = append(out, c)
	}
	return out
}

// repeated runs the whole list n times, numbering the rounds. Every second round runs in the
// opposite order: a machine growing busier (or quieter) during a run would otherwise always
// favour the paths that come first in a comparison (mcpguard's come last).
func repeated(cases []benchCase, n int) []benchCase {
	if n <= 1 {
		return cases
	}
	var out []benchCase
	for r := 1; r <= n; r++ {
		round := make([]benchCase, len(cases))
		for i, c := range cases {
			c.Round = r
			if r%2 == 0 {
				i = len(cases) - 1 - i
			}
			round[i] = c
		}
		out = append(out, round...)
	}
	return out
}

// selectCases keeps the cases whose name contains one of the comma-separated filters.
func selectCases(cases []benchCase, filter string) []benchCase {
	if filter == "" {
		return cases
	}
	var out []benchCase
	for _, c := range cases {
		for _, f := range strings.Split(filter, ",") {
			if f != "" && strings.Contains(c.Name(), f) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}
