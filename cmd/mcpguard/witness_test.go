package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gateway"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
	"github.com/mcpguard/mcpguard/internal/witness"
)

// TestWitnessCatchesTruncation is issue 16's "with a witness configured, truncation plus
// deletion of the newest external checkpoint makes verify fail". A gateway with an audit log and
// a witness on loopback serves calls; every checkpoint is cosigned. An insider then truncates the
// database to an earlier checkpoint (rebuilding it so that every record, hash and search summary
// is consistent) and deletes the newer checkpoint files and cosigned copies. audit verify passes
// without the witness — nothing left in the operator's reach says the log was longer — and
// fails with it, because the witness still holds the larger checkpoint it cosigned.
func TestWitnessCatchesTruncation(t *testing.T) {
	dir := t.TempDir()
	if out, err := run(t, "audit", "keygen", "--name", "ops-log", "--dir", dir); err != nil {
		t.Fatalf("audit keygen: %v\n%s", err, out)
	}
	out, err := run(t, "witness", "keygen", "--name", "w1", "--dir", dir)
	if err != nil {
		t.Fatalf("witness keygen: %v\n%s", err, out)
	}
	wpub := filepath.Join(dir, "w1.pub")
	vkey, err := os.ReadFile(wpub)
	if err != nil || !strings.Contains(out, strings.TrimSpace(string(vkey))) {
		t.Fatalf("witness keygen printed %q, wrote %q (%v)", out, vkey, err)
	}
	if out, err := run(t, "witness", "keygen", "--name", "w1", "--dir", dir); err == nil {
		t.Fatalf("witness keygen overwrote a key:\n%s", out)
	}

	// The witness, as `mcpguard witness` builds it, on loopback.
	wsrv := startWitness(t, dir)

	// The gateway, with the witness in its configuration.
	db, cps := filepath.Join(dir, "audit.db"), filepath.Join(dir, "checkpoints")
	if err := os.WriteFile(filepath.Join(dir, "redaction.key"), []byte("sixteen bytes or more of redaction key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "mcpguard.yaml")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
audit:
  database: audit.db
  signing_key_file: ops-log.key
  checkpoint_dir: checkpoints
  checkpoint_every: 4
  redaction_key: file:%s
  witnesses:
    - url: %s
      key: %s
upstreams:
  - name: finance
    stdio: {command: "@self", args: [demo-server]}
`, filepath.Join(dir, "redaction.key"), wsrv.URL, strings.TrimSpace(string(vkey)))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	serveCalls(t, cfgPath, 10)

	sizes := checkpointSizes(t, cps, "checkpoint-")
	witnessed := checkpointSizes(t, cps, "witnessed-")
	if len(sizes) < 3 || len(witnessed) == 0 || witnessed[len(witnessed)-1] != sizes[len(sizes)-1] {
		t.Fatalf("checkpoints at %v, cosigned copies at %v: want several, the newest cosigned (the gateway closed cleanly)", sizes, witnessed)
	}
	newest, keep := sizes[len(sizes)-1], sizes[len(sizes)-2]

	verify := func(extra ...string) (string, int) {
		t.Helper()
		out, err := run(t, append([]string{"audit", "verify", "--quiet", "--db", db, "--key", filepath.Join(dir, "ops-log.pub"), "--checkpoints", cps}, extra...)...)
		if err == nil {
			return out, exitVerified
		}
		return out + "\nerror: " + err.Error(), exitCode(err)
	}
	withWitness := []string{"--witness", wpub, "--witness-url", wsrv.URL}
	if out, code := verify(withWitness...); code != exitVerified || !strings.Contains(out, fmt.Sprintf("witness w1: its newest cosigned checkpoint covers %d records", newest)) {
		t.Fatalf("verify of the untouched log with the witness: exit %d, want 0 and the witness's %d records\n%s", code, newest, out)
	}

	// The insider: the database cut back to the previous checkpoint, the newer checkpoint
	// files and their cosigned copies deleted.
	truncateLog(t, db, keep)
	for _, prefix := range []string{"checkpoint-", "witnessed-"} {
		for _, n := range checkpointSizes(t, cps, prefix) {
			if n > keep {
				matches, _ := filepath.Glob(filepath.Join(cps, fmt.Sprintf("%s%020d*", prefix, n)))
				for _, m := range matches {
					if err := os.Remove(m); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}

	out, code := verify()
	if code != exitVerified || !strings.Contains(out, fmt.Sprintf("OK: %d records, %d covered", keep, keep)) {
		t.Fatalf("without the witness, the truncated log should look intact (that is the attack): exit %d\n%s", code, out)
	}
	out, code = verify("--witness", wpub)
	if code != exitVerified || !strings.Contains(out, "no --witness-url") {
		t.Errorf("with the witness's key but only the directory's copies (deleted too): exit %d, want 0 and a warning that the copies can be deleted\n%s", code, out)
	}
	out, code = verify(withWitness...)
	want := fmt.Sprintf("TAMPERED: record %d: the checkpoint the witness at %s cosigned covers %d records but the log holds %d: the tail was truncated", keep, wsrv.URL, newest, keep)
	if code != exitTampered || !strings.Contains(out, want) {
		t.Errorf("with the witness: exit %d, want 1 and %q\n%s", code, want, out)
	}

	// A required witness that holds nothing of this log is a failure too.
	other := startWitnessNamed(t, dir, "w2")
	out, code = verify("--witness", filepath.Join(dir, "w2.pub"), "--witness-url", other.URL)
	if code != exitTampered || !strings.Contains(out, "witness w2: no checkpoint of this log cosigned by it was found") {
		t.Errorf("a witness that never cosigned: exit %d, want 1\n%s", code, out)
	}
	// An unreachable witness is "could not be read".
	out, code = verify("--witness", wpub, "--witness-url", "http://127.0.0.1:1")
	if code != exitUsage {
		t.Errorf("an unreachable witness: exit %d, want 2\n%s", code, out)
	}
}

// startWitness serves a witness with the key w1 of dir for the log key ops-log.pub.
func startWitness(t *testing.T, dir string) *httptest.Server { return startWitnessNamed(t, dir, "w1") }

func startWitnessNamed(t *testing.T, dir, name string) *httptest.Server {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, name+".key")); err != nil {
		if out, err := run(t, "witness", "keygen", "--name", name, "--dir", dir); err != nil {
			t.Fatalf("witness keygen: %v\n%s", err, out)
		}
	}
	signer, err := witness.LoadCosigner(filepath.Join(dir, name+".key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := readLogKey(filepath.Join(dir, "ops-log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(filepath.Join(dir, name+"-state"), signer, []witness.Log{{Origin: audit.DefaultOrigin, Verifiers: []note.Verifier{lv}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// serveCalls runs the gateway of cfgPath, makes n tool calls through it, and closes it (which
// signs and has cosigned a final checkpoint).
func serveCalls(t *testing.T, cfgPath string, n int) {
	t.Helper()
	ctx := t.Context()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := wiring.Build(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	g.Start(ctx)
	srv := httptest.NewServer(g.Handler())
	c := streamhttp.New(srv.URL+"/mcp", nil)
	h := http.Header{}
	init, err := rpc(ctx, c, h, 1, "initialize", `{"protocolVersion":"`+mcp.LatestLegacy+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`)
	if err != nil || init.Error != nil {
		t.Fatalf("initialize: %v %+v", err, init)
	}
	h.Set(mcp.HeaderProtocolVersion, mcp.LatestLegacy)
	h.Set(mcp.HeaderSessionID, init.header.Get(mcp.HeaderSessionID))
	for i := range n {
		r, err := rpc(ctx, c, h, 10+i, "tools/call", `{"name":"finance.get_stock_analysis","arguments":{"symbol":"FPT"}}`)
		if err != nil || r.Error != nil || r.Status != http.StatusOK {
			t.Fatalf("call %d: %v %+v", i, err, r)
		}
	}
	_ = c.Delete(context.WithoutCancel(ctx), h)
	srv.Close()
	if err := g.Close(); err != nil {
		t.Fatalf("closing the gateway: %v", err)
	}
}

// checkpointSizes lists the sizes in the names of the files of dir starting with prefix.
func checkpointSizes(t *testing.T, dir, prefix string) []int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || len(rest) < 20 {
			continue
		}
		n, err := strconv.ParseInt(rest[:20], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if !slices.Contains(sizes, n) {
			sizes = append(sizes, n)
		}
	}
	slices.Sort(sizes)
	return sizes
}

// truncateLog replaces the audit database with one holding only its first n records and the
// checkpoints up to n, as an insider with the store's own code would: every record, tree hash
// and search summary of the result is consistent.
func truncateLog(t *testing.T, db string, n int64) {
	t.Helper()
	ctx := context.Background()
	src, err := sqlite.Open(ctx, db, &sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var recs []store.Record
	err = src.Scan(ctx, 0, func(r *store.Record) error {
		if r.Seq < n {
			c := *r
			c.Data, c.Hashes = slices.Clone(r.Data), slices.Clone(r.Hashes)
			recs = append(recs, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cps, err := src.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	cut := db + ".cut"
	dst, err := sqlite.Open(ctx, cut, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cps {
		if c.Size <= n {
			if err := dst.AddCheckpoint(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.Rename(cut+suffix, db+suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// TestWitnessCommand runs `mcpguard witness` as an operator would: it refuses a key others can
// read, then serves the protocol on loopback until its context ends.
func TestWitnessCommand(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"audit", "keygen", "--name", "ops-log", "--dir", dir}, {"witness", "keygen", "--name", "w1", "--dir", dir}} {
		if out, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	key := filepath.Join(dir, "w1.key")
	args := []string{"witness", "--key-file", key, "--state", filepath.Join(dir, "state"), "--log-key", filepath.Join(dir, "ops-log.pub")}
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, append(args, "--listen", "127.0.0.1:0")...); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a group-readable key: %v\n%s", err, out)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	root := newRoot()
	root.SetArgs(append(args, "--listen", addr))
	var sink strings.Builder
	root.SetOut(&sink)
	root.SetErr(&sink)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	url := "http://" + addr + "/" + witness.OriginHash(audit.DefaultOrigin) + "/checkpoint"
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s from a new witness: %d, want 404", url, resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the witness never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for the listener, not a timing assertion
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("witness after its context ended: %v", err)
	}
}
