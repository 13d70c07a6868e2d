package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/mcp"
)

// sessionsResult is the held-sessions measurement.
type sessionsResult struct {
	Sessions       int          `json:"sessions"`
	Opened         int64        `json:"opened"`
	OpenErrors     int64        `json:"open_errors"`
	OpenLatency    latencyStats `json:"open_latency_us"`
	OpenSeconds    float64      `json:"open_seconds"`
	LimitStatus    int          `json:"limit_status"` // HTTP status of one session beyond the limit
	BaseRSSBytes   int64        `json:"base_rss_bytes"`
	RSSBytes       int64        `json:"rss_bytes"`         // with every session open
	PerSessionB    int64        `json:"per_session_bytes"` // (RSSBytes - BaseRSSBytes) / opened
	Streams        int64        `json:"streams"`           // GET streams held open, one per session
	StreamErrors   int64        `json:"stream_errors"`
	StreamsRSS     int64        `json:"streams_rss_bytes"` // with every session and its GET stream open
	PerStreamB     int64        `json:"per_stream_bytes"`
	PeakRSSBytes   int64        `json:"peak_rss_bytes"`
	CallsAfter     int64        `json:"calls_after"` // echo calls on random held sessions
	CallErrors     int64        `json:"call_errors"`
	CallLatency    latencyStats `json:"call_latency_us"`
	GatewayCPUSecs float64      `json:"gateway_cpu_seconds"`
}

// runSessions opens n legacy sessions through the gateway (HTTP upstream, legacy) and holds
// them, then a GET stream on each, reading the gateway's memory at each step.
func (e *env) runSessions(ctx context.Context, n int) (sessionsResult, error) {
	res := sessionsResult{Sessions: n}
	echo, err := e.startEcho(ctx, benchCase{Upstream: upstreamHTTP, work: workEcho})
	if err != nil {
		return res, err
	}
	defer echo.stop()
	c := benchCase{Path: pathGateway, Upstream: upstreamHTTP, Era: eraLegacy, Pipeline: "none", Workload: "sessions", work: workEcho}
	// Every session comes from this one machine and principal: the per-address and per-principal
	// bounds, which protect a gateway from one client, are lifted to measure many clients.
	cfg := strings.Replace(e.gatewayConfig(c, echo.url, ""), "limits:\n",
		fmt.Sprintf("limits:\n  max_sessions: %d\n  max_sessions_per_principal: 0\n  max_sessions_per_address: 0\n", n), 1)
	gw, err := e.startGateway(ctx, "gateway/http/legacy/none/sessions", cfg, "", nil)
	if err != nil {
		return res, err
	}
	defer gw.stop()
	base, err := readProc(gw.pid())
	if err != nil {
		return res, err
	}
	res.BaseRSSBytes = base.RSS

	const openers = 32
	tr := newTransport(openers)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	clients := make([]*mcpClient, n)
	lat := make([]int64, n)
	var next, opened, failed atomic.Int64
	var wg sync.WaitGroup
	started := time.Now()
	for range openers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				cl := newMCPClient(hc, gw.url, eraLegacy, nil)
				t0 := time.Now()
				if err := cl.open(ctx); err != nil {
					if failed.Add(1) == 1 {
						e.logf("  session %d: %v", i, err)
					}
					continue
				}
				lat[i] = int64(time.Since(t0))
				clients[i] = cl
				opened.Add(1)
			}
		}()
	}
	wg.Wait()
	res.OpenSeconds = round2(time.Since(started).Seconds())
	res.Opened, res.OpenErrors = opened.Load(), failed.Load()
	var okLat []int64
	for i, l := range lat {
		if clients[i] != nil {
			okLat = append(okLat, l)
		}
	}
	res.OpenLatency = summarize(okLat)

	// One more session than the limit allows must be refused (503), not accepted.
	extra := newMCPClient(hc, gw.url, eraLegacy, nil)
	if err := extra.open(ctx); err == nil {
		res.LimitStatus = http.StatusOK
	} else if _, rest, ok := strings.Cut(err.Error(), "HTTP "); ok {
		fmt.Sscan(rest, &res.LimitStatus)
	}

	time.Sleep(500 * time.Millisecond) // let the allocator settle before reading RSS
	s, err := readProc(gw.pid())
	if err != nil {
		return res, err
	}
	res.RSSBytes = s.RSS
	if res.Opened > 0 {
		res.PerSessionB = (s.RSS - base.RSS) / res.Opened
	}

	conns := e.holdStreams(ctx, gw.url, clients, &res)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if s2, err := readProc(gw.pid()); err == nil {
		res.StreamsRSS = s2.RSS
		if res.Streams > 0 {
			res.PerStreamB = (s2.RSS - s.RSS) / res.Streams
		}
	}

	// The sessions still work: echo calls on random ones.
	var callLat []int64
	for k := 0; k < 200 && res.Opened > 0; k++ {
		cl := clients[rand.IntN(n)]
		if cl == nil {
			continue
		}
		w, err := workerFor(cl, workEcho, k)
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		res.CallsAfter++
		if err := w(ctx, int64(k+1)); err != nil {
			res.CallErrors++
			continue
		}
		callLat = append(callLat, int64(time.Since(t0)))
	}
	res.CallLatency = summarize(callLat)
	if end, err := readProc(gw.pid()); err == nil {
		res.PeakRSSBytes = end.PeakRS
		res.GatewayCPUSecs = round2((end.CPU - base.CPU).Seconds())
	}
	return res, gw.alive()
}

// holdStreams opens the standalone GET stream of every session on its own connection and
// leaves it open; it returns the connections.
func (e *env) holdStreams(ctx context.Context, rawURL string, clients []*mcpClient, res *sessionsResult) []net.Conn {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	conns := make([]net.Conn, len(clients))
	var next, ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(clients) || ctx.Err() != nil {
					return
				}
				if clients[i] == nil {
					continue
				}
				c, err := openStream(ctx, u, clients[i].session)
				if err != nil {
					if failed.Add(1) == 1 {
						e.logf("  stream %d: %v", i, err)
					}
					continue
				}
				conns[i] = c
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Streams, res.StreamErrors = ok.Load(), failed.Load()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// openStream sends a GET for a session's stream on a fresh connection and reads the response
// head; the connection is left open with the stream running.
func openStream(ctx context.Context, u *url.URL, session string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s: %s\r\n%s: %s\r\n\r\n",
		u.Path, u.Host, mcp.HeaderSessionID, session, mcp.HeaderProtocolVersion, mcp.LatestLegacy)
	r := bufio.NewReaderSize(c, 1024)
	status, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200") {
		c.Close()
		return nil, fmt.Errorf("GET stream: %s", strings.TrimSpace(status))
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// fsyncResult is the cost of one durable append on the disk the audit store would use.
type fsyncResult struct {
	Dir     string       `json:"dir"`
	Records int          `json:"records"`
	Bytes   int          `json:"bytes_per_record"`
	Latency latencyStats `json:"latency_us"`
}

// measureFsync appends n records of 512 bytes to a scratch file in dir, each followed by
// fsync, and reports how long each append took.
func measureFsync(dir string, n int) (fsyncResult, error) {
	res := fsyncResult{Dir: dir, Records: n, Bytes: 512}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	f, err := os.CreateTemp(dir, ".fsync-probe-*")
	if err != nil {
		return res, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := make([]byte, res.Bytes)
	for i := range rec {
		rec[i] = 'a' + byte(i%26)
	}
	lat := make([]int64, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := f.Write(rec); err != nil {
			return res, err
		}
		if err := f.Sync(); err != nil {
			return res, err
		}
		lat = append(lat, int64(time.Since(t0)))
	}
	res.Latency = summarize(lat)
	return res, nil
}
