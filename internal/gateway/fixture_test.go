package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"
)

// TestMain lets the test binary double as a stdio MCP upstream (legacy era, hand-written so that
// the test controls every byte): with MCPGUARD_TEST_UPSTREAM=1 it serves on stdin/stdout and
// appends every message it receives to the file named by MCPGUARD_TEST_RECORD.
func TestMain(m *testing.M) {
	if os.Getenv("MCPGUARD_TEST_UPSTREAM") == "1" {
		recordingUpstream()
		os.Exit(0)
	}
	if cfg := os.Getenv("MCPGUARD_TEST_GATEWAY_CONFIG"); cfg != "" {
		gatewayProcess(cfg)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func recordingUpstream() {
	rec, err := os.OpenFile(os.Getenv("MCPGUARD_TEST_RECORD"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	send := func(v any) {
		b, _ := json.Marshal(v)
		out.Write(append(b, '\n'))
		out.Flush()
	}
	asks := map[string]json.RawMessage{} // our elicitation request id → the tools/call id waiting for it
	nextAsk := 0
	for in.Scan() {
		line := in.Bytes()
		rec.Write(append(append([]byte(nil), line...), '\n'))
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
			Params struct {
				Name      string         `json:"name"`
				Arguments map[string]any `json:"arguments"`
				Meta      map[string]any `json:"_meta"`
			} `json:"params"`
		}
		if json.Unmarshal(line, &msg) != nil || msg.ID == nil {
			continue
		}
		if msg.Method == "" { // the client's answer to our elicitation
			if callID, ok := asks[string(msg.ID)]; ok {
				delete(asks, string(msg.ID))
				answer := string(msg.Result)
				if msg.Error != nil {
					answer = "error " + string(msg.Error)
				}
				send(map[string]any{"jsonrpc": "2.0", "id": callID, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": "answer: " + answer}}}})
			}
			continue
		}
		result := func(r any) { send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": r}) }
		switch msg.Method {
		case "initialize":
			result(map[string]any{
				"protocolVersion": "2025-11-25",
				"capabilities":    map[string]any{"tools": map[string]any{"listChanged": true}},
				"serverInfo":      map[string]any{"name": "recorder", "version": "1"},
			})
		case "tools/list":
			schema := map[string]any{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}
			result(map[string]any{"tools": []any{
				map[string]any{"name": "echo", "description": echoDescription(), "inputSchema": schema},
				map[string]any{"name": "crash", "description": "Exits the server mid-call.", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "progress", "description": "Reports progress, then echoes.", "inputSchema": schema},
				map[string]any{"name": "ask", "description": "Asks the user for a name (elicitation).", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "slow", "description": "Never answers.", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "change", "description": "Announces a changed tool list.", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "leak", "description": "Fails with an error that names its database.", "inputSchema": map[string]any{"type": "object"}},
			}})
		case "tools/call":
			switch msg.Params.Name {
			case "crash":
				os.Exit(3)
			case "slow":
				continue
			case "change":
				send(map[string]any{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
			case "ask":
				nextAsk++
				askID := fmt.Sprintf(`"ask-%d"`, nextAsk)
				asks[askID] = msg.ID
				send(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(askID), "method": "elicitation/create", "params": map[string]any{
					"message": "Your name?", "requestedSchema": map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
				}})
				continue
			case "leak":
				send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{
					"code":    -32603,
					"message": leakMessage,
					"data": map[string]any{"dsn": "postgres://trader:S3cr3tPW@10.20.30.40:5432/trades",
						"detail": "connect to db-primary.corp.internal:5432 as trader password=S3cr3tPW", "retry": true},
				}})
				continue
			case "progress":
				if tok, ok := msg.Params.Meta["progressToken"]; ok {
					send(map[string]any{"jsonrpc": "2.0", "method": "notifications/progress", "params": map[string]any{"progressToken": tok, "progress": 1, "total": 2}})
				}
			}
			text, _ := msg.Params.Arguments["text"].(string)
			result(map[string]any{"content": []any{map[string]any{"type": "text", "text": "echo: " + text}}})
		default:
			send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{"code": -32601, "message": "method not found"}})
		}
	}
}

// leakMessage is the error of the recording upstream's leak tool: what an upstream written in
// haste answers when its database is down.
const leakMessage = "pq: connection to postgres://trader:S3cr3tPW@10.20.30.40:5432/trades failed: dial tcp 10.20.30.40:5432: connection refused\n" +
	"goroutine 7 [running]:\nmain.query(0xc000012345)\n\t/srv/trades/db.go:88 +0x1d"

func bufioScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return sc
}

func readRecord(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// echoDescription is the echo tool's description: the content of MCPGUARD_TEST_DESC_FILE when
// set, so a test can change a tool's definition under the gateway.
func echoDescription() string {
	if f := os.Getenv("MCPGUARD_TEST_DESC_FILE"); f != "" {
		if b, err := os.ReadFile(f); err == nil {
			return string(b)
		}
	}
	return "Echoes text."
}
