package streamhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/testenv"
)

// The MCP conformance suite (npm @modelcontextprotocol/conformance) runs a client command
// against scripted servers. This test binary doubles as that client: when the environment
// variable below is set, TestMain runs one scenario against the URL given as the last
// argument instead of the tests.
const conformanceClientEnv = "STREAMHTTP_CONFORMANCE_CLIENT"

func TestMain(m *testing.M) {
	if os.Getenv(conformanceClientEnv) == "1" {
		if err := conformanceClient(os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, "conformance client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// conformanceClient drives a legacy-era session through this package by hand-written JSON:
// initialize, initialized, tools/list, and a call of every listed tool.
func conformanceClient(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := New(url, nil)
	roundTrip := func(msg string, id string, h http.Header) (*Reply, []string, error) {
		var rawID []byte
		if id != "" {
			rawID = []byte(id)
		}
		r, err := c.Post(ctx, []byte(msg), rawID, h)
		if err != nil {
			return nil, nil, err
		}
		defer r.Close()
		var msgs []string
		for {
			m, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				return r, msgs, nil
			}
			if err != nil {
				return r, msgs, err
			}
			msgs = append(msgs, string(m))
		}
	}
	r, _, err := roundTrip(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpguard-streamhttp","version":"0"}}}`, "1", nil)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	h := http.Header{"Mcp-Protocol-Version": {"2025-11-25"}}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" {
		h.Set("Mcp-Session-Id", sid)
	}
	if _, _, err := roundTrip(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, "", h); err != nil {
		return fmt.Errorf("initialized: %w", err)
	}
	_, msgs, err := roundTrip(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "2", h)
	if err != nil || len(msgs) == 0 {
		return fmt.Errorf("tools/list: %v, %d messages", err, len(msgs))
	}
	var list struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(msgs[len(msgs)-1]), &list); err != nil {
		return fmt.Errorf("tools/list result: %w", err)
	}
	for i, tool := range list.Result.Tools {
		name, _ := json.Marshal(tool.Name)
		id := fmt.Sprint(10 + i)
		_, msgs, err := roundTrip(`{"jsonrpc":"2.0","id":`+id+`,"method":"tools/call","params":{"name":`+string(name)+`,"arguments":{}}}`, id, h)
		if err != nil {
			return fmt.Errorf("tools/call %s: %w", tool.Name, err)
		}
		if len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1], `"result"`) {
			return fmt.Errorf("tools/call %s: no result in %q", tool.Name, msgs)
		}
	}
	return nil
}

// TestConformanceSuite runs the suite's client scenarios about this transport. It needs
// Node 22 and the suite: set MCPGUARD_CONFORMANCE_JS to its dist/index.js and, if node on
// PATH is older, MCPGUARD_NODE to a Node 22 binary.
func TestConformanceSuite(t *testing.T) {
	js := os.Getenv("MCPGUARD_CONFORMANCE_JS")
	if js == "" {
		testenv.Missing(t, "MCPGUARD_CONFORMANCE_JS is not set (the conformance suite's dist/index.js; scripts/interop/install-peers.sh installs it)")
	}
	node := os.Getenv("MCPGUARD_NODE")
	if node == "" {
		node = "node"
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(exe, ' ') {
		t.Skip("the suite splits its client command on spaces; the test binary's path has one")
	}
	for scenario, must := range map[string][]string{
		"sse-retry":  {"client-sse-graceful-reconnect", "client-sse-retry-timing", "client-sse-last-event-id"},
		"initialize": {"mcp-client-initialization"},
	} {
		t.Run(scenario, func(t *testing.T) {
			out := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, js, "client", "--command", exe+" -test.run=^$", "--scenario", scenario, "-o", out)
			cmd.Env = append(os.Environ(), conformanceClientEnv+"=1")
			log, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("conformance client --scenario %s: %v\n%s", scenario, err, log)
			}
			checks := readChecks(t, out)
			if len(checks) == 0 {
				t.Fatalf("no checks recorded under %s\n%s", out, log)
			}
			passed := map[string]bool{}
			for _, c := range checks {
				switch c.Status {
				case "SUCCESS":
					passed[c.ID] = true
					t.Logf("check %s: SUCCESS", c.ID)
				case "INFO":
				default:
					t.Errorf("check %s: %s: %s", c.ID, c.Status, c.ErrorMessage)
				}
			}
			for _, id := range must {
				if !passed[id] {
					t.Errorf("check %s did not succeed", id)
				}
			}
		})
	}
}

type check struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ErrorMessage string `json:"errorMessage"`
}

// readChecks reads every checks.json the suite wrote under dir.
func readChecks(t *testing.T, dir string) []check {
	t.Helper()
	var all []check
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "checks.json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var cs []check
		if err := json.Unmarshal(b, &cs); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		all = append(all, cs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}
