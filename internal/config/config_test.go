package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Fake secrets used by the tests. No message may ever contain one of them.
var (
	fakeEnv = map[string]string{
		"UPSTREAM_KEY":  "k3y-s3cret",
		"TOKEN":         "t0ken-s3cret",
		"EMPTY":         "",
		"NEWLINE":       "l1ne\ns3cret",
		"AUDIT_KEY":     "0123456789abcdef0123456789abcdef-aud1t-s3cret",
		"CLIENT_SECRET": "cl1ent-s3cret",
		"IDENTITY_KEY":  "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", // 32 × "k"
		"SHORT_KEY":     "c3Nzc3Nzc3Nzc3Nzc3Nzcw==",                     // 16 bytes
		"HEX_KEY":       "6868686868686868686868686868686868686868686868686868686868686868",
		"NOT_A_KEY":     "n0t-a-k3y!",
	}
	fakeFiles = map[string]string{
		"/run/secrets/token": "f1le-s3cret\n",
		"/run/secrets/blank": "\r\n",
	}
	secretValues = []string{"k3y-s3cret", "t0ken-s3cret", "l1ne", "f1le-s3cret", "sk-live-0123456789", "hunter2", "aud1t-s3cret", "cl1ent-s3cret", "a2tra2tr", "c3Nzc3Nz", "68686868", "n0t-a-k3y",
		// Fragments of the test private keys in testdata/keys.
		"sDYMIAM0beBo2RPWOFlTg", "3MUPV+GmJOAcIwp+SihRA", "EIBs3Gt1SKxlq5L5Ml9Y"}
)

func lookupFakeEnv(name string) (string, bool) {
	v, ok := fakeEnv[name]
	return v, ok
}

func readFakeFile(path string) ([]byte, error) {
	if name, ok := strings.CutPrefix(path, "/fake/keys/"); ok {
		// Test-only private keys, generated with openssl (testdata/keys).
		data, err := os.ReadFile(filepath.Join("testdata", "keys", name))
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			pe.Path = path
		}
		return data, err
	}
	v, ok := fakeFiles[path]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	return []byte(v), nil
}

func parseFake(data []byte, source string) (*Config, error) {
	return parse(data, source, lookupFakeEnv, readFakeFile)
}

// TestGolden parses every testdata/*.yaml and compares the problems it
// reports with testdata/*.golden ("no problems" for a valid file).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseFake(data, filepath.Base(file))
			var got string
			switch {
			case err == nil:
				got = "no problems\n"
				if verr := cfg.Validate(); verr != nil {
					t.Errorf("Parse accepted the file but Validate says: %v", verr)
				}
			default:
				var probs *Problems
				if !errors.As(err, &probs) {
					t.Fatalf("error is %T, want *Problems: %v", err, err)
				}
				got = err.Error() + "\n"
			}
			if strings.HasPrefix(name, "valid_") != (err == nil) {
				t.Errorf("valid_* files must parse and others must not; got:\n%s", got)
			}
			for _, s := range secretValues {
				if strings.Contains(got, s) {
					t.Errorf("output reveals secret %q:\n%s", s, got)
				}
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("problems differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestQuickstartLoads(t *testing.T) {
	// `mcpguard quickstart` sets the redaction key from the key file it creates.
	t.Setenv("MCPGUARD_QUICKSTART_REDACTION_KEY", strings.Repeat("k", 32))
	cfg, err := Load("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatalf("examples/quickstart.yaml does not load:\n%v", err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Path != "/mcp" {
		t.Errorf("listen, path = %q, %q; want 127.0.0.1:8080, /mcp", cfg.Listen, cfg.Path)
	}
	if len(cfg.Upstreams) != 1 {
		t.Fatalf("got %d upstreams, want 1", len(cfg.Upstreams))
	}
	u := cfg.Upstreams[0]
	if u.Name != "finance" || u.Stdio == nil || u.Stdio.Command != SelfCommand || !cmp.Equal(u.Stdio.Args, []string{"demo-server"}) {
		t.Errorf("upstream = %+v, stdio %+v; want finance running @self demo-server", u, u.Stdio)
	}
	// Relative paths are relative to the configuration file: the policy next to it, the audit
	// state in .mcpguard-quickstart/ at the repository root.
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if got, want := abs(cfg.PolicyFile), filepath.Join(root, "examples/policies/quickstart.yaml"); got != want {
		t.Errorf("policy_file = %s, want %s", got, want)
	}
	if cfg.Audit == nil {
		t.Fatal("no audit section")
	}
	state := filepath.Join(root, ".mcpguard-quickstart")
	for _, c := range []struct{ key, got, want string }{
		{"database", abs(cfg.Audit.Database.Reveal()), filepath.Join(state, "audit.db")},
		{"signing_key_file", abs(cfg.Audit.SigningKeyFile), filepath.Join(state, "quickstart-log.key")},
		{"checkpoint_dir", abs(cfg.Audit.CheckpointDir), filepath.Join(state, "checkpoints")},
	} {
		if c.got != c.want {
			t.Errorf("audit.%s = %s, want %s", c.key, c.got, c.want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := parseFake([]byte(`
upstreams:
  - name: finance
    stdio: {command: "@self"}
  - name: crm
    http: {url: "https://crm.example.com/mcp"}
  - name: docs
    sse: {url: "http://127.0.0.1:3002/sse"}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:             "127.0.0.1:8080",
		Path:               "/mcp",
		NamespaceSeparator: ".",
		Limits: Limits{
			MaxBodyBytes:            4 * MiB,
			MaxHeaderBytes:          64 * KiB,
			MaxJSONDepth:            64,
			MaxSessions:             10000,
			MaxSessionsPerPrincipal: 256,
			MaxSessionsPerAddress:   256,
			SessionIdleTimeout:      30 * time.Minute,
			ShutdownGrace:           10 * time.Second,
			RequestTimeout:          60 * time.Second,
			MaxMessageBytes:         16 * MiB,
		},
		Log: Log{Level: slog.LevelInfo, Format: LogFormatText},
		Upstreams: []Upstream{
			{Name: "finance", Prefix: "finance", Timeout: 60 * time.Second, Breaker: DefaultBreaker(), Stdio: &Stdio{
				Command: "@self", MinBackoff: 250 * time.Millisecond, MaxBackoff: 30 * time.Second, ShutdownGrace: 5 * time.Second,
			}},
			{Name: "crm", Prefix: "crm", Timeout: 60 * time.Second, Breaker: DefaultBreaker(), HTTP: &HTTP{URL: "https://crm.example.com/mcp", Era: EraAuto}},
			{Name: "docs", Prefix: "docs", Timeout: 60 * time.Second, Breaker: DefaultBreaker(), SSE: &SSE{URL: "http://127.0.0.1:3002/sse"}},
		},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// parseTestdata parses testdata/name with the fake secrets, failing the test on any problem.
func parseTestdata(t *testing.T, name string) *Config {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseFake(data, name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// resolvedFake returns the secret written as text, resolved with the fake secrets.
func resolvedFake(t *testing.T, text string) Secret {
	t.Helper()
	s := NewSecret(text)
	if err := s.Resolve(lookupFakeEnv, readFakeFile); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseValues(t *testing.T) {
	cfg := parseTestdata(t, "valid_full.yaml")
	resolved := func(text string) Secret { return resolvedFake(t, text) }
	want := &Config{
		Listen:             "0.0.0.0:9090",
		AllowPublicListen:  true,
		Path:               "/gateway/mcp",
		AllowedOrigins:     []string{"https://app.example.com", "http://intranet.example:8443"},
		AllowedHosts:       []string{"gateway.example.com", "gateway.example.com:9090", "[::1]:9090"},
		NamespaceSeparator: "__",
		Limits: Limits{
			MaxBodyBytes:            MiB,
			MaxHeaderBytes:          16 * KiB,
			MaxJSONDepth:            32,
			MaxSessions:             500,
			MaxSessionsPerPrincipal: 256,
			MaxSessionsPerAddress:   256,
			SessionIdleTimeout:      10 * time.Minute,
			DrainDelay:              6 * time.Second,
			ShutdownGrace:           30 * time.Second,
			RequestTimeout:          2 * time.Minute,
			MaxMessageBytes:         32 * MiB,
		},
		Log: Log{Level: slog.LevelDebug, Format: LogFormatJSON},
		Upstreams: []Upstream{
			{Name: "finance", Prefix: "fin", Timeout: 15 * time.Second,
				Breaker:  Breaker{Failures: 3, FailureRatio: 0.25, MinCalls: 40, Window: 5 * time.Minute, CoolDown: 30 * time.Second, HalfOpenCalls: 2},
				Bulkhead: Bulkhead{Concurrent: 64, Queue: 128, QueueWait: 250 * time.Millisecond},
				Stdio: &Stdio{
					Command: "/usr/local/bin/finance-server",
					Args:    []string{"--port", "3001", "--verbose"},
					Env: map[string]Secret{
						"API_KEY":     resolved("env:UPSTREAM_KEY"),
						"DB_PASSWORD": resolved("file:/run/secrets/token"),
						"MODE":        NewSecret("production"),
					},
					Dir:           "/var/lib/finance",
					MinBackoff:    100 * time.Millisecond,
					MaxBackoff:    time.Minute,
					ShutdownGrace: 2 * time.Second,
				}},
			{Name: "crm", Prefix: "", Timeout: 2 * time.Minute, Breaker: Breaker{Disabled: true, Failures: DefaultBreakerFailures, FailureRatio: DefaultBreakerFailureRatio,
				MinCalls: DefaultBreakerMinCalls, Window: DefaultBreakerWindow, CoolDown: DefaultBreakerCoolDown, HalfOpenCalls: DefaultBreakerHalfOpenCalls}, HTTP: &HTTP{
				URL: "https://crm.example.com/mcp",
				Era: EraModern,
				Headers: map[string]Secret{
					"X-Api-Key": resolved("env:UPSTREAM_KEY"),
					"X-Tenant":  NewSecret("acme"),
				},
				BearerToken: resolved("file:/run/secrets/token"),
			}},
			{Name: "legacy-docs", Prefix: "", Timeout: 2 * time.Minute, Breaker: DefaultBreaker(), SSE: &SSE{
				URL:         "http://127.0.0.1:3002/sse",
				Headers:     map[string]Secret{},
				BearerToken: resolved("env:TOKEN"),
			}},
			{Name: "local-http", Prefix: "local-http", Timeout: 2 * time.Minute, Breaker: DefaultBreaker(), HTTP: &HTTP{
				URL:     "http://localhost:3001/mcp",
				Era:     EraLegacy,
				Headers: map[string]Secret{"Authorization": resolved("env:TOKEN")},
			}},
		},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if got := cfg.Upstreams[1].HTTP.BearerToken.Reveal(); got != "f1le-s3cret" {
		t.Errorf("file secret resolved to %q, want the file without its trailing newline", got)
	}
}

func TestParsePrefixAndTimeout(t *testing.T) {
	tests := []struct {
		name        string
		upstream    string
		wantPrefix  string
		wantTimeout time.Duration
	}{
		{"absent prefix is the name", "name: finance", "finance", 45 * time.Second},
		{"empty prefix disables namespacing", `{name: finance, prefix: ""}`, "", 45 * time.Second},
		{"explicit prefix", "{name: finance, prefix: fin}", "fin", 45 * time.Second},
		{"own timeout wins", "{name: finance, timeout: 5s}", "finance", 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// limits come after upstreams: the default timeout must still
			// be taken from them.
			doc := "upstreams:\n  - " + strings.TrimSuffix(strings.TrimPrefix(tt.upstream, "{"), "}") + "\n    stdio: {command: a}\nlimits: {request_timeout: 45s}\n"
			if strings.HasPrefix(tt.upstream, "{") {
				doc = "upstreams:\n  - " + strings.TrimSuffix(tt.upstream, "}") + ", stdio: {command: a}}\nlimits: {request_timeout: 45s}\n"
			}
			cfg, err := parseFake([]byte(doc), "t.yaml")
			if err != nil {
				t.Fatalf("%s\n%v", doc, err)
			}
			u := cfg.Upstreams[0]
			if u.Prefix != tt.wantPrefix || u.Timeout != tt.wantTimeout {
				t.Errorf("prefix, timeout = %q, %v; want %q, %v", u.Prefix, u.Timeout, tt.wantPrefix, tt.wantTimeout)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := write("token", "from-file\n")
	t.Setenv("MCPGUARD_CONFIG_TEST_TOKEN", "from-env")

	t.Run("resolves secrets from the environment and files", func(t *testing.T) {
		p := write("ok.yaml", `
upstreams:
  - name: a
    http:
      url: https://a.example.com/mcp
      bearer_token: env:MCPGUARD_CONFIG_TEST_TOKEN
      headers: {X-Key: "file:`+secretFile+`"}
`)
		cfg, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		h := cfg.Upstreams[0].HTTP
		if h.BearerToken.Reveal() != "from-env" || h.Headers["X-Key"].Reveal() != "from-file" {
			t.Errorf("bearer, header = %q, %q; want from-env, from-file", h.BearerToken.Reveal(), h.Headers["X-Key"].Reveal())
		}
	})
	t.Run("invalid file names itself in the error", func(t *testing.T) {
		p := write("bad.yaml", "listn: x\n")
		_, err := Load(p)
		var probs *Problems
		if !errors.As(err, &probs) || probs.Source != p {
			t.Fatalf("err = %v, want *Problems with source %s", err, p)
		}
		if !strings.HasPrefix(err.Error(), p+": 2 problems:\n") {
			t.Errorf("error = %q, want it to start with the path and the count", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "absent.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("file too large is refused unread", func(t *testing.T) {
		p := write("big.yaml", "# "+strings.Repeat("x", MaxConfigBytes)+"\n")
		_, err := Load(p)
		if !errors.Is(err, errTooLarge) {
			t.Errorf("err = %v, want a too-large error", err)
		}
	})
	t.Run("secret file that is not a regular file", func(t *testing.T) {
		p := write("dir.yaml", `
upstreams:
  - name: a
    http: {url: "https://a.example.com/mcp", bearer_token: "file:`+dir+`"}
`)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
			t.Errorf("err = %v, want a not-a-regular-file problem", err)
		}
	})
}

func TestParseTooLarge(t *testing.T) {
	_, err := parseFake(make([]byte, MaxConfigBytes+1), "big.yaml")
	want := "big.yaml: 1 problem:\n\tthe file is 1048577 bytes; a configuration may be at most 1MiB"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestAliasBudget(t *testing.T) {
	// Each list item is an alias to a large anchored list of headers; the
	// walk would visit millions of nodes without the budget.
	var b strings.Builder
	b.WriteString("x: &h\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  X-H%d: v\n", i)
	}
	b.WriteString("upstreams:\n")
	for range 2000 {
		b.WriteString("  - {name: a, http: {url: 'https://a.example.com', headers: *h}}\n")
	}
	start := time.Now()
	_, err := parseFake([]byte(b.String()), "alias.yaml")
	if err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Errorf("err = %.300v, want a too-complex problem", err)
	}
	t.Logf("rejected in %v", time.Since(start))
}

func TestValidateProgrammatic(t *testing.T) {
	t.Run("zero config reports what is missing", func(t *testing.T) {
		err := (&Config{}).Validate()
		var probs *Problems
		if !errors.As(err, &probs) {
			t.Fatalf("err = %v, want *Problems", err)
		}
		var got []string
		for _, p := range probs.List {
			if p.Line != 0 {
				t.Errorf("problem %v has a line; Validate has no file", p)
			}
			got = append(got, p.String())
		}
		want := []string{
			`listen: "" is not host:port: want an address such as "127.0.0.1:8080"`,
			`path: "" must start with "/"`,
			`namespace_separator: "" is not a valid separator: want 1 to 3 characters from ".", "_" and "-"`,
			`limits.max_body_bytes: 0B is out of range: want 1KiB to 64MiB`,
			`limits.max_header_bytes: 0B is out of range: want 1KiB to 1MiB`,
			`limits.max_json_depth: 0 is out of range: want 8 to 512`,
			`limits.max_sessions: 0 is out of range: want 1 to 1000000`,
			`limits.session_idle_timeout: 0s must be longer than zero`,
			`limits.shutdown_grace: 0s is out of range: want 1s to 1h`,
			`limits.request_timeout: 0s must be longer than zero`,
			`limits.max_message_bytes: 0B is out of range: want 1KiB to 256MiB`,
			`log.format: unknown format "": want text or json`,
			`upstreams: at least one upstream is required`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	t.Run("parsed config re-validates", func(t *testing.T) {
		cfg, err := parseFake([]byte("upstreams: [{name: a, stdio: {command: a}}]"), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate = %v, want nil", err)
		}
		cfg.Upstreams = append(cfg.Upstreams, cfg.Upstreams[0])
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `upstreams[1].name: "a" is already the name of upstreams[0]`) {
			t.Errorf("Validate after duplicating an upstream = %v", err)
		}
	})
}

func TestProblemsError(t *testing.T) {
	tests := []struct {
		name string
		p    Problems
		want string
	}{
		{"one", Problems{Source: "a.yaml", List: []Problem{{Line: 3, Message: `unknown key "listn" (did you mean "listen"?)`}}},
			"a.yaml: 1 problem:\n\tline 3: unknown key \"listn\" (did you mean \"listen\"?)"},
		{"several, with and without lines", Problems{Source: "b.yaml", List: []Problem{
			{Path: "upstreams", Message: "at least one upstream is required"},
			{Line: 12, Path: "upstreams[0].http.url", Message: `"ftp://x" is not an http(s) URL`},
		}}, "b.yaml: 2 problems:\n\tupstreams: at least one upstream is required\n\tline 12: upstreams[0].http.url: \"ftp://x\" is not an http(s) URL"},
		{"no source", Problems{Kind: "config", List: []Problem{{Path: "path", Message: "bad"}}}, "config: 1 problem:\n\tpath: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestQuoteBoundsEcho(t *testing.T) {
	long := strings.Repeat("é", 100)
	got := quote(long)
	if len(got) > maxQuoted+8 || !strings.HasSuffix(got, "...") {
		t.Errorf("quote(200 bytes) = %s (%d bytes), want at most ~%d bytes ending in ...", got, len(got), maxQuoted)
	}
}
