package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpguard/mcpguard/internal/problems"
)

// maxVisits bounds the YAML nodes the decoder visits, so that aliases
// pointing at large anchored nodes cannot multiply the work.
const maxVisits = 100_000

// maxProblems bounds the problems listed for one file; a file with more is
// not worth reading further.
const maxProblems = 200

// parse is Parse with the secret lookups injected.
func parse(data []byte, source string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, &Problems{Source: source, Kind: "config", List: []Problem{{
			Message: fmt.Sprintf("the file is %d bytes; a configuration may be at most %v", len(data), ByteSize(MaxConfigBytes)),
		}}}
	}
	root, probs := parseYAML(data)
	if probs != nil {
		return nil, &Problems{Source: source, Kind: "config", List: probs}
	}

	d := &decoder{lines: map[string]int{}, broken: map[string]bool{}, visits: maxVisits}
	cfg := defaults()
	if root != nil {
		d.root(root, cfg)
	}
	d.applyUpstreamDefaults(cfg)

	// Once the visit budget is spent the configuration is incomplete, and
	// checking it would only report what was not read.
	var late []Problem
	if err := cfg.Validate(); err != nil && !d.exhausted {
		late = append(late, err.(*Problems).List...)
	}
	if !d.exhausted {
		late = append(late, resolveSecrets(cfg, lookupEnv, readFile)...)
	}
	d.suppressDerived(late)
	for _, p := range late {
		if d.isBroken(p.Path) {
			continue // a consequence of a problem already reported
		}
		p.Line = d.lineOf(p.Path)
		d.problems = append(d.problems, p)
	}
	if len(d.problems) > 0 {
		slices.SortStableFunc(d.problems, func(a, b Problem) int { return a.Line - b.Line })
		if n := len(d.problems); n > maxProblems {
			d.problems = append(d.problems[:maxProblems], Problem{Message: fmt.Sprintf("and %d more problems", n-maxProblems)})
		}
		return nil, &Problems{Source: source, Kind: "config", List: d.problems}
	}
	return cfg, nil
}

// yamlErrLine matches the position the YAML parser puts in its errors.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data as exactly one YAML document and returns its root
// node, or nil for an empty document.
func parseYAML(data []byte) (*yaml.Node, []Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []Problem{yamlProblem(err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, []Problem{yamlProblem(err)}
	default:
		return nil, []Problem{{Line: extra.Line, Message: "a second YAML document; a configuration file holds exactly one"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// yamlProblem turns a YAML syntax error into a Problem.
func yamlProblem(err error) Problem {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Message: "invalid YAML: " + m[2]}
	}
	return Problem{Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// decoder walks the YAML node tree into a Config, collecting every problem
// instead of stopping at the first.
type decoder struct {
	problems  []Problem
	lines     problems.Lines  // path → line where it is written
	broken    map[string]bool // paths whose problems are consequences of another
	visits    int             // nodes left to visit
	exhausted bool
	upstreams []upstreamKeys

	// offered, when set, is told the keys every mapping accepts, with the mapping's path: the
	// configuration reference (docs/configuration.md) is checked against it.
	offered func(path string, keys []string)
}

// upstreamKeys records which defaulted keys an upstream wrote.
type upstreamKeys struct {
	prefix, timeout bool
}

// field decodes the value of one known key.
type field struct {
	key    string
	decode func(n *yaml.Node, path string)
}

func keysOf(fields []field) []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

func (d *decoder) add(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// wrongType reports that the value at path is not what the schema wants and
// marks the path broken, so that checks on the value it left behind are not
// reported as well.
func (d *decoder) wrongType(n *yaml.Node, path, want string) {
	if path == "" {
		want = "a mapping of keys such as listen: and upstreams:"
	}
	d.add(n.Line, path, "expected %s, got %s", want, describe(n))
	d.broken[path] = true
}

// isBroken reports whether path or one of its ancestors is broken.
func (d *decoder) isBroken(path string) bool {
	for {
		if d.broken[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// lineOf returns the line where path, or the nearest enclosing path, is
// written.
func (d *decoder) lineOf(path string) int { return d.lines.Of(path) }

// visit follows an alias to its anchored node and counts the visit; it
// returns nil once the visit budget is spent.
func (d *decoder) visit(n *yaml.Node) *yaml.Node {
	if d.exhausted {
		return nil
	}
	d.visits--
	if d.visits < 0 {
		d.exhausted = true
		d.add(0, "", "the document is too complex (aliases expand to more than %d nodes); the rest was not read", maxVisits)
		return nil
	}
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// describe names the kind of value n holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "the string " + quote(n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		case "!!null":
			return "no value"
		case "!!timestamp":
			return "the timestamp " + n.Value
		case "!!binary":
			return "binary data"
		}
		return "a value tagged " + quote(n.Tag)
	}
	return "an unsupported YAML node"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// mapping decodes the mapping n with fields, reporting unknown and
// duplicate keys. A null value is an empty mapping. elsewhere maps keys
// that belong to another section to a hint saying where.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field, elsewhere map[string]string) {
	if n = d.visit(n); n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, "a mapping")
		return
	}
	if d.offered != nil {
		d.offered(path, keysOf(fields))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content) && !d.exhausted; i += 2 {
		k, v := d.visit(n.Content[i]), n.Content[i+1]
		if k == nil {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.add(k.Line, path, "a key must be a plain name, not %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.add(k.Line, path, `merge keys ("<<") are not supported; write the keys out`)
			d.broken[path] = true // what the merge would have supplied is missing
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			d.add(k.Line, path, "duplicate key %s (first at line %d)", quote(key), first)
			continue
		}
		seen[key] = k.Line
		idx := slices.IndexFunc(fields, func(f field) bool { return f.key == key })
		if idx < 0 {
			d.add(k.Line, path, "unknown key %s%s", quote(key), hint(key, keysOf(fields), elsewhere))
			continue
		}
		child := pathKey(path, key)
		d.lines[child] = k.Line
		fields[idx].decode(v, child)
	}
}

// hint suggests what an unknown key was meant to be.
func hint(key string, known []string, elsewhere map[string]string) string {
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf(" (did you mean %s?)", quote(s))
	}
	if where, ok := elsewhere[key]; ok {
		return " (" + where + ")"
	}
	if len(known) > 0 {
		return "; known keys: " + strings.Join(known, ", ")
	}
	return ""
}

// suggest returns the known key closest to key, or "" when none is close.
// Keys that differ only in case, "_" or "-" always match.
func suggest(key string, known []string) string {
	fold := strings.NewReplacer("_", "", "-", "")
	folded := strings.ToLower(fold.Replace(key))
	best, bestDist := "", 3
	for _, k := range known {
		if strings.ToLower(fold.Replace(k)) == folded {
			return k
		}
		limit := 2
		if len(k) <= 4 {
			limit = 1
		}
		if dist := levenshtein(key, k, limit+1); dist <= limit && dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// levenshtein returns the edit distance between a and b, or ceiling when it
// is at least ceiling.
func levenshtein(a, b string, ceiling int) int {
	if diff := len(a) - len(b); diff >= ceiling || -diff >= ceiling {
		return ceiling
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], ceiling)
}

// scalar returns n as a scalar node with tag, or reports it and returns nil.
func (d *decoder) scalar(n *yaml.Node, path, tag, want string) *yaml.Node {
	if n = d.visit(n); n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		d.wrongType(n, path, want)
		return nil
	}
	return n
}

// text decodes a string; ok is false when the value was reported.
func (d *decoder) text(n *yaml.Node, path string) (s string, ok bool) {
	if n = d.scalar(n, path, "!!str", "a string"); n != nil {
		return n.Value, true
	}
	return "", false
}

func (d *decoder) str(dst *string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if s, ok := d.text(n, path); ok {
			*dst = s
		}
	}
}

func (d *decoder) boolean(dst *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.scalar(n, path, "!!bool", "true or false"); n != nil {
			*dst = strings.EqualFold(n.Value, "true")
		}
	}
}

func (d *decoder) integer(dst *int) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.scalar(n, path, "!!int", "an integer"); n == nil {
			return
		}
		var v int
		if err := n.Decode(&v); err != nil {
			d.add(n.Line, path, "%s is not an integer in range", quote(n.Value))
			d.broken[path] = true
			return
		}
		*dst = v
	}
}

func (d *decoder) duration(dst *time.Duration) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.visit(n); n == nil {
			return
		}
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			d.add(n.Line, path, `expected a duration such as "30s", got %s (a unit is required: ms, s, m or h)`, describe(n))
			d.broken[path] = true
			return
		}
		if n = d.scalar(n, path, "!!str", `a duration such as "30s"`); n == nil {
			return
		}
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			d.add(n.Line, path, `%s is not a duration: want a number with a unit, such as "250ms", "30s" or "5m"`, quote(n.Value))
			d.broken[path] = true
			return
		}
		*dst = v
	}
}

func (d *decoder) size(dst *ByteSize) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.visit(n); n == nil {
			return
		}
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!str") {
			d.wrongType(n, path, `a size such as "4MiB" or a number of bytes`)
			return
		}
		v, err := ParseByteSize(n.Value)
		if err != nil {
			d.add(n.Line, path, "%s is not a size: %v", quote(n.Value), err)
			d.broken[path] = true
			return
		}
		*dst = v
	}
}

func (d *decoder) strList(dst *[]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.visit(n); n == nil || isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.wrongType(n, path, "a list of strings")
			return
		}
		out := make([]string, len(n.Content))
		for i, item := range n.Content {
			p := pathIndex(path, i)
			d.lines[p] = item.Line
			d.str(&out[i])(item, p)
		}
		*dst = out
	}
}

func (d *decoder) secret(dst *Secret) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		var s string
		d.str(&s)(n, path)
		*dst = NewSecret(s)
	}
}

func (d *decoder) secrets(dst *map[string]Secret) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.visit(n); n == nil || isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.wrongType(n, path, "a mapping of names to strings")
			return
		}
		m := make(map[string]Secret, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content) && !d.exhausted; i += 2 {
			k := d.visit(n.Content[i])
			if k == nil {
				return
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				d.add(k.Line, path, "a name must be a string, not %s", describe(k))
				continue
			}
			p := pathKey(path, k.Value)
			if _, dup := m[k.Value]; dup {
				d.add(k.Line, path, "duplicate key %s (first at line %d)", quote(k.Value), d.lines[p])
				continue
			}
			d.lines[p] = k.Line
			var s Secret
			d.secret(&s)(n.Content[i+1], p)
			m[k.Value] = s
		}
		*dst = m
	}
}

// defaults returns the configuration an empty file describes.
func defaults() *Config {
	return &Config{
		Listen:             DefaultListen,
		Path:               DefaultPath,
		NamespaceSeparator: DefaultNamespaceSeparator,
		Limits: Limits{
			MaxBodyBytes:            DefaultMaxBodyBytes,
			MaxHeaderBytes:          DefaultMaxHeaderBytes,
			MaxJSONDepth:            DefaultMaxJSONDepth,
			MaxSessions:             DefaultMaxSessions,
			MaxSessionsPerPrincipal: DefaultMaxSessionsPerClient,
			MaxSessionsPerAddress:   DefaultMaxSessionsPerClient,
			SessionIdleTimeout:      DefaultSessionIdleTimeout,
			ShutdownGrace:           DefaultDrainGrace,
			RequestTimeout:          DefaultRequestTimeout,
			MaxMessageBytes:         DefaultMaxMessageBytes,
		},
		Log: Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
	}
}

func (d *decoder) root(n *yaml.Node, c *Config) {
	limits, log := d.limitsFields(&c.Limits), d.logFields(&c.Log)
	elsewhere := map[string]string{}
	for _, k := range keysOf(limits) {
		elsewhere[k] = `it belongs under "limits"`
	}
	for _, k := range keysOf(log) {
		elsewhere[k] = `it belongs under "log"`
	}
	d.mapping(n, "", []field{
		{"listen", d.str(&c.Listen)},
		{"allow_public_listen", d.boolean(&c.AllowPublicListen)},
		{"path", d.str(&c.Path)},
		{"allowed_origins", d.strList(&c.AllowedOrigins)},
		{"allowed_hosts", d.strList(&c.AllowedHosts)},
		{"namespace_separator", d.str(&c.NamespaceSeparator)},
		{"limits", func(n *yaml.Node, path string) { d.mapping(n, path, limits, nil) }},
		{"log", func(n *yaml.Node, path string) { d.mapping(n, path, log, nil) }},
		{"upstreams", func(n *yaml.Node, path string) { d.upstreamList(n, path, c) }},
		{"policy_file", d.str(&c.PolicyFile)},
		{"policy_upstream", d.str(&c.PolicyUpstream)},
		{"api_keys_database", d.str(&c.APIKeysDatabase)},
		{"identity_encryption_key", d.secret(&c.IdentityEncryptionKey)},
		{"admin", func(n *yaml.Node, path string) {
			c.Admin = &Admin{}
			d.mapping(n, path, []field{
				{"listen", d.str(&c.Admin.Listen)},
				{"allowed_networks", d.strList(&c.Admin.AllowedNetworks)},
				{"denied_networks", d.strList(&c.Admin.DeniedNetworks)},
				{"console", d.boolean(&c.Admin.Console)},
				{"metrics", func(n *yaml.Node, path string) {
					c.Admin.Metrics = &AdminMetrics{}
					d.mapping(n, path, []field{{"require_auth", d.boolean(&c.Admin.Metrics.RequireAuth)}}, nil)
				}},
				{"oidc", func(n *yaml.Node, path string) {
					c.Admin.OIDC = &AdminOIDC{Scopes: slices.Clone(DefaultOIDCScopes), OperatorClaim: DefaultOperatorClaim}
					d.mapping(n, path, d.adminOIDCFields(c.Admin.OIDC), nil)
				}},
			}, nil)
		}},
		{"tool_pinning", func(n *yaml.Node, path string) {
			c.ToolPinning = &ToolPinning{}
			d.mapping(n, path, []field{
				{"database", d.str(&c.ToolPinning.Database)},
				{"trust_on_first_use", d.boolean(&c.ToolPinning.TrustOnFirstUse)},
				{"screen", d.strList(&c.ToolPinning.Screen)},
			}, nil)
		}},
		{"audit", func(n *yaml.Node, path string) {
			c.Audit = &Audit{}
			d.mapping(n, path, []field{
				{"database", d.secret(&c.Audit.Database)},
				{"signing_key_file", d.str(&c.Audit.SigningKeyFile)},
				{"checkpoint_dir", d.str(&c.Audit.CheckpointDir)},
				{"checkpoint_every", d.integer(&c.Audit.CheckpointEvery)},
				{"checkpoint_interval", d.duration(&c.Audit.CheckpointInterval)},
				{"log", d.str(&c.Audit.Log)},
				{"schema", d.str(&c.Audit.Schema)},
				{"lease_ttl", d.duration(&c.Audit.LeaseTTL)},
				{"redaction_key", d.secret(&c.Audit.RedactionKey)},
				{"sensitive_keys", d.strList(&c.Audit.SensitiveKeys)},
				{"keep_in_clear", d.strList(&c.Audit.KeepInClear)},
				{"sinks", func(n *yaml.Node, path string) { d.sinkList(n, path, &c.Audit.Sinks) }},
				{"witnesses", func(n *yaml.Node, path string) { d.witnessList(n, path, &c.Audit.Witnesses) }},
			}, nil)
		}},
		{"containment", func(n *yaml.Node, path string) { d.mapping(n, path, d.containmentFields(&c.Containment), nil) }},
		{"compliance", func(n *yaml.Node, path string) {
			c.Compliance = &Compliance{RetentionEvery: DefaultRetentionEvery}
			d.mapping(n, path, d.complianceFields(c.Compliance), nil)
		}},
		{"tracing", func(n *yaml.Node, path string) { d.tracing(n, path, c) }},
		{"tls", func(n *yaml.Node, path string) {
			c.TLS = &TLS{}
			d.mapping(n, path, d.tlsFields(c.TLS), nil)
		}},
		{"auth", func(n *yaml.Node, path string) {
			c.Auth = &Auth{MaxTokenLifetime: DefaultMaxTokenLifetime}
			d.mapping(n, path, d.authFields(c.Auth), nil)
		}},
	}, elsewhere)
}

func (d *decoder) tlsFields(t *TLS) []field {
	return []field{
		{"cert_file", d.str(&t.CertFile)},
		{"key_file", d.str(&t.KeyFile)},
		{"client_ca_file", d.str(&t.ClientCAFile)},
		{"require_client_cert", d.boolean(&t.RequireClientCert)},
		{"client_names", d.strList(&t.ClientNames)},
		{"client_roles", func(n *yaml.Node, path string) {
			n = d.visit(n)
			if n.Kind != yaml.MappingNode {
				d.wrongType(n, path, "a mapping of principal names to role lists")
				return
			}
			t.ClientRoles = map[string][]string{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				var roles []string
				d.strList(&roles)(n.Content[i+1], path+"."+n.Content[i].Value)
				t.ClientRoles[n.Content[i].Value] = roles
			}
		}},
		{"require_listed", d.boolean(&t.RequireListed)},
	}
}

func (d *decoder) authFields(a *Auth) []field {
	return []field{
		{"resource", d.str(&a.Resource)},
		{"issuer", d.str(&a.Issuer)},
		{"jwks_url", d.str(&a.JWKSURL)},
		{"extra_audiences", d.strList(&a.ExtraAudiences)},
		{"algorithms", d.strList(&a.Algorithms)},
		{"roles_claim", d.str(&a.RolesClaim)},
		{"groups_claim", d.str(&a.GroupsClaim)},
		{"required_scopes", d.strList(&a.RequiredScopes)},
		{"clock_skew", d.duration(&a.ClockSkew)},
		{"max_token_lifetime", d.duration(&a.MaxTokenLifetime)},
	}
}

func (d *decoder) limitsFields(l *Limits) []field {
	return []field{
		{"max_body_bytes", d.size(&l.MaxBodyBytes)},
		{"max_header_bytes", d.size(&l.MaxHeaderBytes)},
		{"max_json_depth", d.integer(&l.MaxJSONDepth)},
		{"max_sessions", d.integer(&l.MaxSessions)},
		{"max_sessions_per_principal", d.integer(&l.MaxSessionsPerPrincipal)},
		{"max_sessions_per_address", d.integer(&l.MaxSessionsPerAddress)},
		{"session_idle_timeout", d.duration(&l.SessionIdleTimeout)},
		{"drain_delay", d.duration(&l.DrainDelay)},
		{"shutdown_grace", d.duration(&l.ShutdownGrace)},
		{"request_timeout", d.duration(&l.RequestTimeout)},
		{"max_message_bytes", d.size(&l.MaxMessageBytes)},
	}
}

func (d *decoder) logFields(l *Log) []field {
	return []field{
		{"level", func(n *yaml.Node, path string) {
			s, ok := d.text(n, path)
			if !ok {
				return
			}
			var lvl slog.Level
			switch s {
			case "debug":
				lvl = slog.LevelDebug
			case "info":
				lvl = slog.LevelInfo
			case "warn":
				lvl = slog.LevelWarn
			case "error":
				lvl = slog.LevelError
			default:
				d.add(d.lines[path], path, "unknown level %s: want debug, info, warn or error", quote(s))
				d.broken[path] = true
				return
			}
			l.Level = lvl
		}},
		{"format", func(n *yaml.Node, path string) {
			if s, ok := d.text(n, path); ok {
				l.Format = LogFormat(s)
			}
		}},
	}
}

func (d *decoder) upstreamList(n *yaml.Node, path string, c *Config) {
	if n = d.visit(n); n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, path, "a list of upstreams")
		return
	}
	c.Upstreams = make([]Upstream, len(n.Content))
	d.upstreams = make([]upstreamKeys, len(n.Content))
	for i, item := range n.Content {
		p := pathIndex(path, i)
		d.lines[p] = item.Line
		if isNull(item) {
			d.wrongType(item, p, "an upstream (a mapping with name and one of stdio, http or sse)")
			continue
		}
		d.upstream(item, p, &c.Upstreams[i], &d.upstreams[i])
	}
}

func (d *decoder) upstream(n *yaml.Node, path string, u *Upstream, seen *upstreamKeys) {
	stdio, http, sse := d.stdioFields(new(Stdio)), d.httpFields(new(HTTP)), d.sseFields(new(SSE))
	elsewhere := map[string]string{}
	for _, t := range []struct {
		name   string
		fields []field
	}{{"sse", sse}, {"http", http}, {"stdio", stdio}} {
		for _, k := range keysOf(t.fields) {
			if prev, ok := elsewhere[k]; ok {
				elsewhere[k] = `"` + t.name + `" or ` + prev
			} else {
				elsewhere[k] = `"` + t.name + `"`
			}
		}
	}
	for k, v := range elsewhere {
		elsewhere[k] = "it belongs under " + v
	}
	u.Breaker = DefaultBreaker()
	d.mapping(n, path, append([]field{
		{"name", d.str(&u.Name)},
		{"prefix", func(n *yaml.Node, path string) {
			if v := d.visit(n); v != nil && isNull(v) {
				d.add(v.Line, path, `no value is ambiguous: write prefix: "" for no namespacing, or remove the key to use the upstream's name`)
				d.broken[path] = true
				return
			}
			seen.prefix = true
			d.str(&u.Prefix)(n, path)
		}},
		{"timeout", func(n *yaml.Node, path string) {
			seen.timeout = true
			d.duration(&u.Timeout)(n, path)
		}},
		{"stdio", func(n *yaml.Node, path string) {
			u.Stdio = &Stdio{MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff, ShutdownGrace: DefaultShutdownGrace}
			d.mapping(n, path, d.stdioFields(u.Stdio), d.misplaced("stdio", http, sse))
		}},
		{"http", func(n *yaml.Node, path string) {
			u.HTTP = &HTTP{Era: DefaultEra}
			d.mapping(n, path, d.httpFields(u.HTTP), d.misplaced("http", stdio, sse))
		}},
		{"sse", func(n *yaml.Node, path string) {
			u.SSE = &SSE{}
			d.mapping(n, path, d.sseFields(u.SSE), d.misplaced("sse", stdio, http))
		}},
	}, d.resilience(u)...), elsewhere)
}

func (d *decoder) witnessList(n *yaml.Node, path string, dst *[]Witness) {
	if n = d.visit(n); n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, path, "a list of witnesses")
		return
	}
	ws := make([]Witness, len(n.Content))
	for i, item := range n.Content {
		p := pathIndex(path, i)
		d.lines[p] = item.Line
		if isNull(item) {
			d.wrongType(item, p, "a witness (a mapping with url and key)")
			continue
		}
		d.mapping(item, p, []field{
			{"url", d.str(&ws[i].URL)},
			{"key", d.str(&ws[i].Key)},
		}, nil)
	}
	*dst = ws
}

func (d *decoder) sinkList(n *yaml.Node, path string, dst *[]Sink) {
	if n = d.visit(n); n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, path, "a list of sinks")
		return
	}
	sinks := make([]Sink, len(n.Content))
	for i, item := range n.Content {
		p := pathIndex(path, i)
		d.lines[p] = item.Line
		if isNull(item) {
			d.wrongType(item, p, "a sink (a mapping with name and one of jsonl, syslog or webhook)")
			continue
		}
		s := &sinks[i]
		d.mapping(item, p, []field{
			{"name", d.str(&s.Name)},
			{"buffer", d.integer(&s.Buffer)},
			{"jsonl", func(n *yaml.Node, path string) {
				s.JSONL = &JSONLSink{}
				d.mapping(n, path, []field{
					{"path", d.str(&s.JSONL.Path)},
					{"max_size", d.size(&s.JSONL.MaxSize)},
					{"max_age", d.duration(&s.JSONL.MaxAge)},
					{"keep", d.integer(&s.JSONL.Keep)},
				}, nil)
			}},
			{"syslog", func(n *yaml.Node, path string) {
				s.Syslog = &SyslogSink{}
				d.mapping(n, path, []field{
					{"address", d.str(&s.Syslog.Address)},
					{"tls", d.boolean(&s.Syslog.TLS)},
					{"ca_file", d.str(&s.Syslog.CAFile)},
					{"server_name", d.str(&s.Syslog.ServerName)},
					{"facility", d.str(&s.Syslog.Facility)},
					{"app_name", d.str(&s.Syslog.AppName)},
					{"hostname", d.str(&s.Syslog.Hostname)},
				}, nil)
			}},
			{"webhook", func(n *yaml.Node, path string) {
				s.Webhook = &WebhookSink{}
				d.mapping(n, path, []field{
					{"url", d.str(&s.Webhook.URL)},
					{"bearer_token", d.secret(&s.Webhook.BearerToken)},
					{"batch_size", d.integer(&s.Webhook.BatchSize)},
				}, nil)
			}},
		}, nil)
	}
	*dst = sinks
}

// misplaced returns hints for keys of other transports written under the
// transport named section.
func (d *decoder) misplaced(section string, others ...[]field) map[string]string {
	up := "it belongs to the upstream itself, not under " + quote(section)
	m := map[string]string{"name": up, "prefix": up, "timeout": up}
	for _, fields := range others {
		for _, k := range keysOf(fields) {
			if _, ok := m[k]; !ok {
				m[k] = "it is a key of another transport; an upstream has exactly one of stdio, http or sse"
			}
		}
	}
	return m
}

func (d *decoder) stdioFields(s *Stdio) []field {
	return []field{
		{"command", d.str(&s.Command)},
		{"args", d.strList(&s.Args)},
		{"env", d.secrets(&s.Env)},
		{"dir", d.str(&s.Dir)},
		{"min_backoff", d.duration(&s.MinBackoff)},
		{"max_backoff", d.duration(&s.MaxBackoff)},
		{"shutdown_grace", d.duration(&s.ShutdownGrace)},
	}
}

func (d *decoder) httpFields(h *HTTP) []field {
	return []field{
		{"url", d.str(&h.URL)},
		{"era", func(n *yaml.Node, path string) {
			if s, ok := d.text(n, path); ok {
				h.Era = Era(s)
			}
		}},
		{"headers", d.secrets(&h.Headers)},
		{"bearer_token", d.secret(&h.BearerToken)},
		{"client_credentials", d.clientCredentials(&h.ClientCredentials)},
		{"tls_insecure_skip_verify", d.boolean(&h.TLSInsecureSkipVerify)},
	}
}

func (d *decoder) sseFields(s *SSE) []field {
	return []field{
		{"url", d.str(&s.URL)},
		{"headers", d.secrets(&s.Headers)},
		{"bearer_token", d.secret(&s.BearerToken)},
		{"client_credentials", d.clientCredentials(&s.ClientCredentials)},
	}
}

// clientCredentials decodes an upstream's client_credentials section.
func (d *decoder) clientCredentials(dst **ClientCredentials) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		cc := &ClientCredentials{AuthMethod: DefaultClientAuthMethod}
		*dst = cc
		d.mapping(n, path, []field{
			{"client_id", d.str(&cc.ClientID)},
			{"client_secret", d.secret(&cc.ClientSecret)},
			{"token_url", d.str(&cc.TokenURL)},
			{"issuer", d.str(&cc.Issuer)},
			{"scopes", d.strList(&cc.Scopes)},
			{"resource", d.str(&cc.Resource)},
			{"auth_method", func(n *yaml.Node, path string) {
				if s, ok := d.text(n, path); ok {
					cc.AuthMethod = ClientAuthMethod(s)
				}
			}},
			{"private_key", d.secret(&cc.PrivateKey)},
			{"key_id", d.str(&cc.KeyID)},
			{"algorithm", d.str(&cc.Algorithm)},
			{"assertion_audience", d.str(&cc.AssertionAudience)},
			{"certificate", d.secret(&cc.Certificate)},
		}, map[string]string{"bearer_token": "it belongs to the upstream's transport, and cannot be combined with client_credentials"})
	}
}

func (d *decoder) adminOIDCFields(o *AdminOIDC) []field {
	return []field{
		{"issuer", d.str(&o.Issuer)},
		{"client_id", d.str(&o.ClientID)},
		{"client_secret", d.secret(&o.ClientSecret)},
		{"redirect_url", d.str(&o.RedirectURL)},
		{"scopes", d.strList(&o.Scopes)},
		{"operator_claim", d.str(&o.OperatorClaim)},
		{"required_amr", d.strList(&o.RequiredAMR)},
	}
}

// suppressDerived marks as broken the defaulted values whose problems are
// consequences of another problem: a timeout taken from an invalid
// limits.request_timeout, a prefix taken from an invalid or duplicate name.
func (d *decoder) suppressDerived(late []Problem) {
	reported := map[string]bool{}
	for _, p := range late {
		reported[p.Path] = true
	}
	for i, seen := range d.upstreams {
		path := pathIndex("upstreams", i)
		if !seen.timeout && reported["limits.request_timeout"] {
			d.broken[path+".timeout"] = true
		}
		if !seen.prefix && reported[path+".name"] {
			d.broken[path+".prefix"] = true
		}
	}
}

// applyUpstreamDefaults fills the upstream keys whose default depends on
// other values.
func (d *decoder) applyUpstreamDefaults(c *Config) {
	for i := range c.Upstreams {
		u, seen := &c.Upstreams[i], d.upstreams[i]
		if !seen.prefix {
			u.Prefix = u.Name
		}
		if !seen.timeout {
			u.Timeout = c.Limits.RequestTimeout
		}
	}
}
