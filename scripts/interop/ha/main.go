// Command ha-load is the HA interop stage's load: workers that send stateless (2026-07-28)
// tools/call requests to the load balancer in front of the gateways until SIGTERM or SIGINT, then
// print one JSON line: how many calls were answered 200 with a result, and every other answer
// (by HTTP status or JSON-RPC error) and transport error, each with up to five examples and the
// time it happened, so that a failure can be placed against the rolling restart's log.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

const protocol = "2026-07-28"

type tally struct {
	mu       sync.Mutex
	OK       int                 `json:"ok"`
	Failures map[string]int      `json:"failures"`
	Examples map[string][]string `json:"examples"`
}

func (t *tally) fail(kind, example string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Failures[kind]++
	if len(t.Examples[kind]) < 5 {
		t.Examples[kind] = append(t.Examples[kind], time.Now().Format("15:04:05.000")+" "+example)
	}
}

func main() {
	url := flag.String("url", "", "the load balancer's MCP endpoint (required)")
	tool := flag.String("tool", "", "the tool to call (required)")
	args := flag.String("args", "{}", "the call's arguments, a JSON object")
	workers := flag.Int("workers", 4, "concurrent callers")
	probe := flag.Duration("probe", 0, "instead of a load: one call at a time until one is answered as -until says, for at most this long; prints the tally and the time it took (waited_ms)")
	until := flag.String("until", "ok", "with -probe: ok (answered with a result), refused (503 with Retry-After), unauthorized (401), or any failure kind of the tally (http_403, …)")
	bearer := flag.String("bearer", "", "an API key or token sent as Authorization: Bearer")
	duration := flag.Duration("duration", 0, "end the load after this long instead of at SIGTERM, and print its rate (calls_per_second)")
	flag.Parse()
	log.SetPrefix("ha-load: ")
	log.SetFlags(0)
	if *url == "" || *tool == "" || !json.Valid([]byte(*args)) {
		log.Fatal("usage: ha-load -url URL -tool NAME [-args JSON] [-workers N]")
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{
		"name": *tool, "arguments": json.RawMessage(*args),
		"_meta": map[string]any{
			"io.modelcontextprotocol/protocolVersion":    protocol,
			"io.modelcontextprotocol/clientCapabilities": map[string]any{},
			"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "interop-ha-load", "version": "1"},
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	t := &tally{Failures: map[string]int{}, Examples: map[string][]string{}}
	client := &http.Client{Timeout: 30 * time.Second}
	if *probe > 0 {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, *probe)
		defer cancel()
		done := func() bool {
			switch *until {
			case "ok":
				return t.OK > 0
			case "refused":
				return t.Failures["http_503_retry_after"] > 0
			case "unauthorized":
				return t.Failures["http_401"] > 0
			}
			return t.Failures[*until] > 0
		}
		for pctx.Err() == nil && !done() {
			call(pctx, client, *url, *tool, *bearer, body, t)
			if !done() {
				select {
				case <-pctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		out, _ := json.Marshal(map[string]any{"ok": t.OK, "failures": t.Failures, "examples": t.Examples, "waited_ms": time.Since(start).Milliseconds()})
		fmt.Println(string(out))
		if !done() {
			os.Exit(1)
		}
		return
	}
	// Workers share the URLs (comma-separated) in turn: a load spread over instances directly,
	// with no balancer in between, for the throughput phase.
	urls := strings.Split(*url, ",")
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = *workers
	client.Transport = transport
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				call(ctx, client, urls[w%len(urls)], *tool, *bearer, body, t)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	if *duration > 0 {
		out, _ := json.Marshal(map[string]any{"ok": t.OK, "failures": t.Failures, "examples": t.Examples,
			"calls_per_second": float64(t.OK) / time.Since(start).Seconds()})
		fmt.Println(string(out))
		return
	}
	out, _ := json.Marshal(t)
	fmt.Println(string(out))
}

// answerEvent is the data of the event stream's message that answers id 1 (nil when none does).
func answerEvent(stream []byte) []byte {
	for _, event := range bytes.Split(bytes.ReplaceAll(stream, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		var data [][]byte
		for _, line := range bytes.Split(event, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				data = append(data, bytes.TrimPrefix(d, []byte(" ")))
			}
		}
		msg := bytes.Join(data, []byte("\n"))
		var id struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(msg, &id) == nil && string(id.ID) == "1" {
			return msg
		}
	}
	return nil
}

// call sends one call and tallies its answer. A call cut short by the end of the run is not
// counted either way.
func call(ctx context.Context, client *http.Client, url, tool, bearer string, body []byte, t *tally) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.fail("request", err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", protocol)
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.fail("transport", err.Error())
		}
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if ctx.Err() == nil {
			t.fail("transport", "reading the answer: "+err.Error())
		}
		return
	}
	var msg struct {
		Result *struct {
			IsError bool `json:"isError"`
		} `json:"result"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw = answerEvent(raw)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		t.fail("http_503_retry_after", string(bytes.TrimSpace(raw[:min(len(raw), 300)])))
	case resp.StatusCode != http.StatusOK:
		t.fail(fmt.Sprintf("http_%d", resp.StatusCode), string(bytes.TrimSpace(raw[:min(len(raw), 300)])))
	case json.Unmarshal(raw, &msg) != nil:
		t.fail("not_json", string(raw[:min(len(raw), 300)]))
	case msg.Error != nil:
		t.fail(fmt.Sprintf("jsonrpc_%d", msg.Error.Code), msg.Error.Message)
	case msg.Result == nil || msg.Result.IsError:
		t.fail("tool_error", string(raw[:min(len(raw), 300)]))
	default:
		t.mu.Lock()
		t.OK++
		t.mu.Unlock()
	}
}
