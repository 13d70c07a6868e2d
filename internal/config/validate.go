package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks the configuration's meaning and returns a *[Problems]
// listing every problem, or nil. Problems carry paths but no lines; [Parse]
// adds the lines. Validate does not apply defaults and does not resolve
// secrets.
func (c *Config) Validate() error {
	v := &validator{}
	v.config(c)
	if len(v.list) == 0 {
		return nil
	}
	return &Problems{Kind: "config", List: v.list}
}

type validator struct {
	list []Problem
}

func (v *validator) add(path, format string, args ...any) {
	v.list = append(v.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) config(c *Config) {
	v.listen(c.Listen, c.AllowPublicListen || c.TLS != nil)
	if c.TLS != nil {
		v.tls(c.TLS)
	}
	v.endpointPath(c.Path)
	for i, o := range c.AllowedOrigins {
		v.origin(pathIndex("allowed_origins", i), o)
	}
	for i, h := range c.AllowedHosts {
		v.host(pathIndex("allowed_hosts", i), h)
	}
	if !validSeparator(c.NamespaceSeparator) {
		v.add("namespace_separator", `%s is not a valid separator: want 1 to 3 characters from ".", "_" and "-"`, quote(c.NamespaceSeparator))
	}
	v.limits(&c.Limits)
	v.containment(&c.Containment)
	if c.Compliance != nil {
		v.compliance(c.Compliance, c.Audit != nil)
	}
	if c.Tracing != nil {
		v.tracing(c.Tracing)
	}
	if c.Admin != nil {
		v.adminNetworks(c.Admin)
	}
	v.log(&c.Log)
	if c.Auth != nil {
		v.auth(c.Auth)
	}
	if c.Audit != nil {
		v.audit(c.Audit)
	}
	if a := c.Admin; a != nil {
		if a.Listen == "" {
			v.add("admin.listen", `required: the admin API's address, such as "127.0.0.1:8081"`)
		} else if a.Listen == c.Listen {
			v.add("admin.listen", "%s is the MCP endpoint's address: the admin API needs its own listener", quote(a.Listen))
		} else if host, _, err := net.SplitHostPort(a.Listen); err != nil {
			v.add("admin.listen", `%s is not host:port: want an address such as "127.0.0.1:8081"`, quote(a.Listen))
		} else if !c.AllowPublicListen && c.TLS == nil && !isLoopbackHost(host) {
			v.add("admin.listen", "%s would accept plain-HTTP admin connections from other machines; use a loopback address, or configure tls", quote(a.Listen))
		}
	}
	if a := c.Admin; a != nil && a.OIDC != nil {
		v.adminOIDC(a.OIDC, c.APIKeysDatabase != "")
	}
	if a := c.Admin; a != nil && a.Console && c.APIKeysDatabase == "" {
		v.add("admin.console", "true, but operators log in to the console with accounts kept in api_keys_database, which is not set")
	}
	if a := c.Admin; a != nil && a.Metrics != nil && a.Metrics.RequireAuth &&
		c.Auth == nil && c.APIKeysDatabase == "" && (c.TLS == nil || c.TLS.ClientCAFile == "") {
		v.add("admin.metrics.require_auth", "true, but nothing can authenticate a scraper: configure auth, api_keys_database or tls.client_ca_file, or set it to false")
	}
	if k := c.IdentityEncryptionKey; !k.IsZero() {
		v.referencedSecret("identity_encryption_key", k, true)
		if c.APIKeysDatabase == "" {
			v.add("identity_encryption_key", "set without api_keys_database: the key encrypts operators' TOTP secrets in that database; set api_keys_database or remove the key")
		}
	}
	if t := c.ToolPinning; t != nil {
		if t.Database == "" {
			v.add("tool_pinning.database", "required: the SQLite file that keeps approved tool definitions")
		}
		for i, s := range t.Screen {
			if _, err := regexp.Compile(s); err != nil {
				v.add(pathIndex("tool_pinning.screen", i), "%s is not a valid regular expression: %v", quote(s), err)
			}
		}
	}

	switch n := len(c.Upstreams); {
	case n == 0:
		v.add("upstreams", "at least one upstream is required")
	case n > maxUpstreams:
		v.add("upstreams", "%d upstreams is more than the maximum of %d", n, maxUpstreams)
	}
	if c.PolicyUpstream != "" {
		v.policyUpstream(c)
	}
	names, prefixes := map[string]int{}, map[string]int{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		path := pathIndex("upstreams", i)
		v.upstream(path, u, c.NamespaceSeparator)
		if u.Name != "" {
			if j, dup := names[u.Name]; dup {
				v.add(path+".name", "%s is already the name of upstreams[%d]", quote(u.Name), j)
			} else {
				names[u.Name] = i
			}
		}
		if u.Prefix != "" {
			if j, dup := prefixes[u.Prefix]; dup {
				v.add(path+".prefix", "%s is already the prefix of upstreams[%d] (prefix defaults to the name); prefixes must be unique", quote(u.Prefix), j)
			} else {
				prefixes[u.Prefix] = i
			}
		}
	}
}

// policyUpstream checks that policy_upstream names a configured upstream with a prefix.
func (v *validator) policyUpstream(c *Config) {
	if c.PolicyFile == "" {
		v.add("policy_upstream", "set without policy_file: it scopes the names of a policy; set policy_file or remove it")
	}
	var known []string
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if u.Name != c.PolicyUpstream {
			known = append(known, quote(u.Name))
			continue
		}
		if u.Prefix == "" {
			v.add("policy_upstream", "upstream %s has no prefix: its names are the gateway's names already; remove policy_upstream", quote(u.Name))
		}
		return
	}
	v.add("policy_upstream", "%s is not the name of a configured upstream; known: %s", quote(c.PolicyUpstream), strings.Join(known, ", "))
}

// tls checks the HTTPS listener settings.
func (v *validator) tls(t *TLS) {
	for _, f := range []struct{ path, file string }{{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
		switch {
		case f.file == "":
			v.add(f.path, "required")
		case !filepath.IsAbs(f.file):
			v.add(f.path, "%s is not an absolute path", quote(f.file))
		}
	}
	if t.ClientCAFile != "" && !filepath.IsAbs(t.ClientCAFile) {
		v.add("tls.client_ca_file", "%s is not an absolute path", quote(t.ClientCAFile))
	}
	if t.ClientCAFile == "" && (t.RequireClientCert || len(t.ClientRoles) > 0 || t.RequireListed || len(t.ClientNames) > 0) {
		v.add("tls.client_ca_file", "required when client certificates are configured: the CAs that sign them")
	}
	for i, n := range t.ClientNames {
		switch n {
		case "uri", "dns", "email", "cn":
		default:
			v.add(pathIndex("tls.client_names", i), "unknown field %s: want uri, dns, email or cn", quote(n))
		}
	}
}

var (
	auditLogName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	sqlIdentifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// audit checks the audit-log settings.
func (v *validator) audit(a *Audit) {
	if a.Database.IsZero() {
		v.add("audit.database", "required: a SQLite file or a postgres:// DSN")
	}
	if a.SigningKeyFile == "" {
		v.add("audit.signing_key_file", "required: create one with `mcpguard audit keygen`")
	}
	if a.CheckpointDir == "" {
		v.add("audit.checkpoint_dir", "required: checkpoints kept outside the database are what detects a truncated or replaced log")
	}
	if a.RedactionKey.IsZero() {
		v.add("audit.redaction_key", "required: a secret reference (env:NAME or file:/path) to at least 32 random bytes")
	} else if !a.RedactionKey.IsReference() {
		v.add("audit.redaction_key", "must be a secret reference (env:NAME or file:/path): secrets are not written in configuration")
	}
	if a.CheckpointEvery < 0 {
		v.add("audit.checkpoint_every", "must not be negative")
	}
	if a.CheckpointInterval < 0 {
		v.add("audit.checkpoint_interval", "must not be negative")
	}
	if a.Log != "" && !auditLogName.MatchString(a.Log) {
		v.add("audit.log", "%s: use lower-case letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)", quote(a.Log))
	}
	if a.Schema != "" && !sqlIdentifier.MatchString(a.Schema) {
		v.add("audit.schema", "%s: use a lower-case SQL identifier (letters, digits and '_', at most 63, not starting with a digit)", quote(a.Schema))
	}
	if a.LeaseTTL != 0 && (a.LeaseTTL < time.Second || a.LeaseTTL > 5*time.Minute) {
		v.add("audit.lease_ttl", "must be between 1s and 5m")
	}
	names := map[string]int{}
	for i := range a.Sinks {
		path := pathIndex("audit.sinks", i)
		s := &a.Sinks[i]
		if s.Name == "" {
			v.add(path+".name", "required: names the sink in logs and metrics")
		} else if j, dup := names[s.Name]; dup {
			v.add(path+".name", "%s is already the name of audit.sinks[%d]", quote(s.Name), j)
		} else {
			names[s.Name] = i
		}
		if s.Buffer < 0 {
			v.add(path+".buffer", "must not be negative")
		}
		kinds := 0
		for _, set := range []bool{s.JSONL != nil, s.Syslog != nil, s.Webhook != nil} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			v.add(path, "want exactly one of jsonl, syslog or webhook, found %d", kinds)
		}
		if j := s.JSONL; j != nil {
			// A relative path is relative to the configuration file (Load resolves it).
			if j.Path == "" {
				v.add(path+".jsonl.path", "required")
			}
			if j.MaxSize < 0 {
				v.add(path+".jsonl.max_size", "must not be negative")
			}
			if j.MaxAge < 0 {
				v.add(path+".jsonl.max_age", "must not be negative")
			}
			if j.Keep < 0 {
				v.add(path+".jsonl.keep", "must not be negative")
			}
		}
		if sl := s.Syslog; sl != nil {
			v.syslogSink(path+".syslog", sl)
		}
		if w := s.Webhook; w != nil {
			if v.url(path+".webhook.url", w.URL) {
				v.add(path+".webhook.url", "%s would send audit records in clear: use https (http is allowed only to loopback)", quote(w.URL))
			}
			if !w.BearerToken.IsZero() && !w.BearerToken.IsReference() {
				v.add(path+".webhook.bearer_token", "must be a secret reference (env:NAME or file:/path): secrets are not written in configuration")
			}
			if w.BatchSize < 0 {
				v.add(path+".webhook.batch_size", "must not be negative")
			}
		}
	}
	keys := map[string]int{}
	for i, w := range a.Witnesses {
		path := pathIndex("audit.witnesses", i)
		// http is allowed anywhere: a checkpoint is public, and its cosignature is checked
		// with the witness's key, whatever carried it.
		v.url(path+".url", w.URL)
		switch j, dup := keys[w.Key]; {
		case w.Key == "":
			v.add(path+".key", "required: the witness's verifier key, as `mcpguard witness keygen` prints it")
		case !witnessKeyShape(w.Key):
			v.add(path+".key", "%s is not a witness verifier key (want name+keyid+base64, as `mcpguard witness keygen` prints it)", quote(w.Key))
		case dup:
			v.add(path+".key", "is already the key of audit.witnesses[%d]", j)
		default:
			keys[w.Key] = i
		}
	}
}

// witnessKeyShape reports whether key looks like a cosignature/v1 verifier key: a name, an
// 8-digit hex key id and the base64 of 0x04 and a 32-byte Ed25519 public key. The wiring
// checks the rest (the key id against the key).
func witnessKeyShape(key string) bool {
	parts := strings.SplitN(key, "+", 3) // base64 may hold "+" too
	if len(parts) != 3 || parts[0] == "" || strings.ContainsAny(parts[0], " \t\n") || len(parts[1]) != 8 {
		return false
	}
	if _, err := hex.DecodeString(parts[1]); err != nil {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	return err == nil && len(raw) == 33 && raw[0] == 0x04
}

// syslogSink checks one syslog export destination.
func (v *validator) syslogSink(path string, s *SyslogSink) {
	// The RFC 5424 facility names.
	syslogFacilities := []string{
		"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
		"security", "console", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
	}
	if s.Address == "" {
		v.add(path+".address", `required: the receiver's host:port, such as "siem.example.com:6514"`)
	} else if _, port, err := net.SplitHostPort(s.Address); err != nil || port == "" {
		v.add(path+".address", "%s is not host:port", quote(s.Address))
	}
	if !s.TLS && (s.CAFile != "" || s.ServerName != "") {
		v.add(path+".tls", "ca_file and server_name apply to TLS only: set tls: true")
	}
	if s.Facility != "" && !slices.Contains(syslogFacilities, strings.ToLower(s.Facility)) {
		v.add(path+".facility", "unknown facility %s: want one of %s", quote(s.Facility), strings.Join(syslogFacilities, ", "))
	}
	for _, f := range []struct {
		key, v string
		max    int
	}{{"app_name", s.AppName, 48}, {"hostname", s.Hostname, 255}} {
		if f.v != "" && (len(f.v) > f.max || strings.ContainsFunc(f.v, func(r rune) bool { return r < 33 || r > 126 })) {
			v.add(path+"."+f.key, "%s: want at most %d printable ASCII characters without spaces", quote(f.v), f.max)
		}
	}
}

// auth checks the resource-server settings.
func (v *validator) auth(a *Auth) {
	v.url("auth.resource", a.Resource)
	if u, err := url.Parse(a.Resource); err == nil && u.RawQuery != "" {
		v.add("auth.resource", "%s must not have a query: it is the canonical URI tokens are issued for", quote(a.Resource))
	}
	v.url("auth.issuer", a.Issuer)
	if a.JWKSURL != "" {
		v.url("auth.jwks_url", a.JWKSURL)
	}
	for i, alg := range a.Algorithms {
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA":
		case "none", "HS256", "HS384", "HS512":
			v.add(pathIndex("auth.algorithms", i), "%s is refused: only asymmetric algorithms keep a resource server from minting its own tokens", quote(alg))
		default:
			v.add(pathIndex("auth.algorithms", i), "unknown algorithm %s", quote(alg))
		}
	}
	if a.ClockSkew < 0 || a.ClockSkew > 5*time.Minute {
		v.add("auth.clock_skew", "%s is out of range: want 0 to 5m", a.ClockSkew)
	}
	if a.MaxTokenLifetime <= 0 || a.MaxTokenLifetime > MaxTokenLifetimeBound {
		v.add("auth.max_token_lifetime", "%s is out of range: want more than 0 and at most %s", a.MaxTokenLifetime, MaxTokenLifetimeBound)
	}
}

func (v *validator) listen(addr string, public bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add("listen", `%s is not host:port: want an address such as "127.0.0.1:8080"`, quote(addr))
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		v.add("listen", "%s has no valid port: want a number from 0 to 65535", quote(addr))
	}
	if host != "" && !validHostname(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			v.add("listen", "%s is not a valid host name or IP address", quote(host))
			return
		}
	}
	if !public && !isLoopbackHost(host) {
		what := quote(addr)
		if host == "" {
			what += " (every interface)"
		}
		v.add("listen", "%s would accept plain-HTTP connections from other machines; use a loopback address such as \"127.0.0.1:8080\", or set allow_public_listen: true", what)
	}
}

// isLoopbackHost reports whether host (a name or an IP address without
// brackets) refers to this machine only.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// validHostname reports whether s is a syntactically valid DNS name.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (v *validator) endpointPath(p string) {
	switch {
	case !strings.HasPrefix(p, "/"):
		v.add("path", `%s must start with "/"`, quote(p))
	case strings.ContainsAny(p, "?#%") || hasControlOrSpace(p):
		v.add("path", "%s must be a plain URL path, without query, fragment, escapes, spaces or control characters", quote(p))
	case p != "/" && pathpkg.Clean(p) != strings.TrimSuffix(p, "/"):
		v.add("path", `%s is not a clean path: remove empty, "." and ".." segments`, quote(p))
	}
}

func hasControlOrSpace(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

func (v *validator) origin(path, o string) {
	switch o {
	case "*":
		v.add(path, `"*" would let every web site use the gateway through a visitor's browser; list each origin, such as "https://app.example.com"`)
		return
	case "null":
		v.add(path, `"null" is the origin of sandboxed frames and local files, which any page can create; it cannot be allowed`)
		return
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		v.add(path, `%s is not an origin: want scheme://host[:port] with an http or https scheme and nothing after, such as "https://app.example.com"`, quote(o))
		return
	}
	if o != strings.ToLower(o) {
		v.add(path, "%s must be lower case, as browsers send it", quote(o))
	}
}

func (v *validator) host(path, h string) {
	switch {
	case h == "":
		v.add(path, "must not be empty")
		return
	case h == "*" || strings.Contains(h, "*"):
		v.add(path, "%s: wildcards are not supported; list each host name", quote(h))
		return
	case strings.Contains(h, "/"):
		v.add(path, "%s is not a Host header value: want host or host:port, without scheme or path", quote(h))
		return
	}
	host := h
	if hp, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
			v.add(path, "%s has no valid port", quote(h))
			return
		}
		host = hp
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		host = h[1 : len(h)-1]
	}
	if !validHostname(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			v.add(path, "%s is not a host name, IP address or host:port", quote(h))
		}
	}
}

// validSeparator reports whether s is 1 to 3 characters from
// separatorCharset.
func validSeparator(s string) bool {
	if len(s) < 1 || len(s) > 3 {
		return false
	}
	for _, c := range []byte(s) {
		if !strings.ContainsRune(separatorCharset, rune(c)) {
			return false
		}
	}
	return true
}

func (v *validator) limits(l *Limits) {
	v.sizeRange("limits.max_body_bytes", l.MaxBodyBytes, minBodyBytes, maxBodyBytes)
	v.sizeRange("limits.max_header_bytes", l.MaxHeaderBytes, minHeaderBytes, maxHeaderBytes)
	if l.MaxJSONDepth < minJSONDepth || l.MaxJSONDepth > maxJSONDepth {
		v.add("limits.max_json_depth", "%d is out of range: want %d to %d", l.MaxJSONDepth, minJSONDepth, maxJSONDepth)
	}
	if l.MaxSessions < 1 || l.MaxSessions > maxSessions {
		v.add("limits.max_sessions", "%d is out of range: want 1 to %d", l.MaxSessions, maxSessions)
	}
	for _, b := range []struct {
		key string
		n   int
	}{{"max_sessions_per_principal", l.MaxSessionsPerPrincipal}, {"max_sessions_per_address", l.MaxSessionsPerAddress}} {
		if b.n < 0 || (b.n > l.MaxSessions && l.MaxSessions >= 1) {
			v.add("limits."+b.key, "%d is out of range: want 0 (unbounded) to max_sessions (%d)", b.n, l.MaxSessions)
		}
	}
	v.positive("limits.session_idle_timeout", l.SessionIdleTimeout)
	if l.DrainDelay < 0 || l.DrainDelay > 5*time.Minute {
		v.add("limits.drain_delay", "%v is out of range: want 0s to 5m", l.DrainDelay)
	}
	if l.ShutdownGrace < time.Second || l.ShutdownGrace > time.Hour {
		v.add("limits.shutdown_grace", "%v is out of range: want 1s to 1h", l.ShutdownGrace)
	}
	v.positive("limits.request_timeout", l.RequestTimeout)
	v.sizeRange("limits.max_message_bytes", l.MaxMessageBytes, minMessageBytes, maxMessageBytes)
}

func (v *validator) sizeRange(path string, s, lo, hi ByteSize) {
	if s < lo || s > hi {
		v.add(path, "%v is out of range: want %v to %v", s, lo, hi)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.add(path, "%v must be longer than zero", d)
	}
}

func (v *validator) log(l *Log) {
	switch l.Level {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		v.add("log.level", "unknown level %v: want debug, info, warn or error", l.Level)
	}
	switch l.Format {
	case LogFormatText, LogFormatJSON:
	default:
		v.add("log.format", "unknown format %s: want text or json", quote(string(l.Format)))
	}
}

func (v *validator) upstream(path string, u *Upstream, sep string) {
	switch {
	case u.Name == "":
		v.add(path+".name", "required")
	case !validName(u.Name):
		v.add(path+".name", "%s is not a valid name: want 1 to 32 characters, lower-case letters, digits, \"_\" and \"-\", starting with a letter or digit", quote(u.Name))
	}
	if u.Prefix != "" {
		switch {
		case !validPrefix(u.Prefix):
			v.add(path+".prefix", "%s is not a valid prefix: want 1 to 32 characters, letters, digits, \"_\", \"-\" and \".\", starting with a letter or digit (or \"\" for no namespacing)", quote(u.Prefix))
		case validSeparator(sep) && strings.ContainsAny(u.Prefix, sep):
			v.add(path+".prefix", "%s contains a character of namespace_separator %s, which would make namespaced names ambiguous; set a prefix without it (prefix defaults to the name) or change the separator", quote(u.Prefix), quote(sep))
		}
	}
	v.positive(path+".timeout", u.Timeout)
	v.resilience(path, u)

	var set []string
	for _, t := range []struct {
		name string
		on   bool
	}{{"stdio", u.Stdio != nil}, {"http", u.HTTP != nil}, {"sse", u.SSE != nil}} {
		if t.on {
			set = append(set, t.name)
		}
	}
	switch len(set) {
	case 0:
		v.add(path, "needs exactly one of stdio, http or sse")
	case 1:
	default:
		v.add(path, "has %s; set exactly one of stdio, http or sse", strings.Join(set, " and "))
	}
	if u.Stdio != nil {
		v.stdio(path+".stdio", u.Stdio)
	}
	if u.HTTP != nil {
		p := path + ".http"
		remote := v.url(p+".url", u.HTTP.URL)
		switch u.HTTP.Era {
		case EraAuto, EraModern, EraLegacy:
		default:
			v.add(p+".era", "unknown era %s: want auto, modern or legacy", quote(string(u.HTTP.Era)))
		}
		v.credentials(p, u.HTTP.Headers, u.HTTP.BearerToken, remote)
		v.clientCredentials(p, u.HTTP.ClientCredentials, u.HTTP.Headers, u.HTTP.BearerToken, remote)
		if u.HTTP.TLSInsecureSkipVerify {
			if pu, err := url.Parse(u.HTTP.URL); err == nil && pu.Scheme != "https" {
				v.add(p+".tls_insecure_skip_verify", "true, but %s is not an https URL: there is no certificate to verify; remove it", quote(u.HTTP.URL))
			}
		}
	}
	if u.SSE != nil {
		p := path + ".sse"
		remote := v.url(p+".url", u.SSE.URL)
		v.credentials(p, u.SSE.Headers, u.SSE.BearerToken, remote)
		v.clientCredentials(p, u.SSE.ClientCredentials, u.SSE.Headers, u.SSE.BearerToken, remote)
	}
}

// clientCredentials checks an upstream's client_credentials section against the transport's
// other credentials. cleartext reports a plain-http upstream on a remote host.
func (v *validator) clientCredentials(path string, cc *ClientCredentials, headers map[string]Secret, token Secret, cleartext bool) {
	if cc == nil {
		return
	}
	p := path + ".client_credentials"
	if !token.IsZero() {
		v.add(p, "conflicts with bearer_token; set one or the other")
	}
	for _, name := range sortedKeys(headers) {
		if http.CanonicalHeaderKey(name) == "Authorization" {
			v.add(p, "conflicts with headers.%s; set one or the other", name)
		}
	}
	if cleartext {
		v.add(p, "the access token would be sent in clear text over plain http to a remote host; use an https URL")
	}
	if cc.ClientID == "" {
		v.add(p+".client_id", "required: the gateway's client identifier at the authorization server")
	}
	v.clientAuth(p, cc)
	if cc.TokenURL != "" && cc.Issuer != "" {
		v.add(p, "token_url and issuer are exclusive: set token_url to skip discovery, or issuer to discover the token endpoint")
	}
	if cc.TokenURL != "" && v.url(p+".token_url", cc.TokenURL) {
		what := "the client secret"
		if cc.AuthMethod == PrivateKeyJWT {
			what = "the client assertion"
		}
		v.add(p+".token_url", "%s would receive %s in clear text: use https (http is allowed only to loopback)", quote(cc.TokenURL), what)
	}
	if cc.Issuer != "" {
		v.issuer(p+".issuer", cc.Issuer)
	}
	v.scopes(p+".scopes", cc.Scopes)
	if cc.Resource != "" {
		v.url(p+".resource", cc.Resource)
	}
}

// clientAuth checks the credentials of a client_credentials section at path for its auth_method:
// client_secret for the secret methods, private_key and its companions for private_key_jwt.
func (v *validator) clientAuth(p string, cc *ClientCredentials) {
	switch cc.AuthMethod {
	case ClientSecretBasic, ClientSecretPost:
		v.referencedSecret(p+".client_secret", cc.ClientSecret, true)
		for _, f := range []struct {
			key string
			set bool
		}{{"private_key", !cc.PrivateKey.IsZero()}, {"key_id", cc.KeyID != ""}, {"algorithm", cc.Algorithm != ""}, {"assertion_audience", cc.AssertionAudience != ""}, {"certificate", !cc.Certificate.IsZero()}} {
			if f.set {
				v.add(p+"."+f.key, "used only with auth_method: %s; remove it, or set that method", PrivateKeyJWT)
			}
		}
		return
	case PrivateKeyJWT:
	default:
		v.add(p+".auth_method", "unknown method %s: want %s, %s or %s", quote(string(cc.AuthMethod)), ClientSecretBasic, ClientSecretPost, PrivateKeyJWT)
		v.referencedSecret(p+".client_secret", cc.ClientSecret, false)
		return
	}
	if !cc.ClientSecret.IsZero() {
		v.add(p+".client_secret", "not used with auth_method: %s, which signs with private_key; remove it", PrivateKeyJWT)
	}
	if cc.PrivateKey.IsZero() {
		v.add(p+".private_key", `required with auth_method: %s: the PEM private key that signs the client assertion, as "file:/path"`, PrivateKeyJWT)
	} else {
		v.referencedSecret(p+".private_key", cc.PrivateKey, true)
	}
	if !cc.Certificate.IsZero() {
		v.referencedSecret(p+".certificate", cc.Certificate, true)
	}
	if cc.KeyID != "" && (len(cc.KeyID) > 256 || !validHeaderValue(cc.KeyID)) {
		v.add(p+".key_id", "must be at most 256 printable characters")
	}
	if cc.Algorithm != "" && !slices.Contains(assertionAlgorithms, cc.Algorithm) {
		v.add(p+".algorithm", "unknown algorithm %s: want one of %s, or leave it out to use the key's usual one", quote(cc.Algorithm), strings.Join(assertionAlgorithms, ", "))
	}
	switch cc.AssertionAudience {
	case "":
	case AudienceIssuer:
		if cc.TokenURL != "" {
			v.add(p+".assertion_audience", "%s needs the issuer, which token_url leaves unknown: set issuer instead of token_url, or write the issuer's URL here", AudienceIssuer)
		}
	default:
		v.url(p+".assertion_audience", cc.AssertionAudience)
	}
}

// adminOIDC checks the operator login settings. identities reports whether api_keys_database,
// which holds the operator accounts, is set.
func (v *validator) adminOIDC(o *AdminOIDC, identities bool) {
	const p = "admin.oidc"
	if !identities {
		v.add(p, "needs api_keys_database: the operator accounts an OpenID Connect login maps to are kept there")
	}
	if o.Issuer == "" {
		v.add(p+".issuer", "required: the provider's issuer URL, exactly as it writes \"iss\"")
	} else {
		v.issuer(p+".issuer", o.Issuer)
	}
	if o.ClientID == "" {
		v.add(p+".client_id", "required: the gateway's client identifier at the provider")
	}
	v.referencedSecret(p+".client_secret", o.ClientSecret, false)
	if o.RedirectURL == "" {
		v.add(p+".redirect_url", "required: the admin API's callback URL, such as \"https://admin.example.com%s\"", OIDCCallbackPath)
	} else if u, err := url.Parse(o.RedirectURL); v.url(p+".redirect_url", o.RedirectURL) {
		v.add(p+".redirect_url", "%s would carry the authorization code in clear text: use https (http is allowed only to loopback)", quote(o.RedirectURL))
	} else if err == nil && (u.Path != OIDCCallbackPath || u.RawQuery != "") {
		v.add(p+".redirect_url", "%s must have the path %s and no query: it is where the admin API receives the login", quote(o.RedirectURL), OIDCCallbackPath)
	}
	v.scopes(p+".scopes", o.Scopes)
	if !slices.Contains(o.Scopes, "openid") {
		v.add(p+".scopes", `must include "openid": without it the provider returns no id_token`)
	}
	if o.OperatorClaim == "" {
		v.add(p+".operator_claim", `required: the id_token claim that names the operator, such as "preferred_username" or "email"`)
	}
	for i, m := range o.RequiredAMR {
		if m == "" || hasControlOrSpace(m) {
			v.add(pathIndex(p+".required_amr", i), "%s is not an authentication method: want a value such as \"mfa\" or \"hwk\"", quote(m))
		}
	}
}

// issuer checks an authorization server's issuer identifier (RFC 8414 section 2): https, or
// http to loopback, without query or fragment.
func (v *validator) issuer(path, raw string) {
	if v.url(path, raw) {
		v.add(path, "%s is plain http to a remote host, whose metadata could be forged in transit: use https (http is allowed only to loopback)", quote(raw))
		return
	}
	if u, err := url.Parse(raw); err == nil && (u.RawQuery != "" || u.ForceQuery) {
		v.add(path, "%s must not have a query: an issuer identifier is scheme, host and optional path", quote(raw))
	}
}

// scopes checks OAuth scope values (RFC 6749 section 3.3: printable ASCII without space,
// double quote or backslash).
func (v *validator) scopes(path string, scopes []string) {
	for i, s := range scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
			v.add(pathIndex(path, i), "%s is not a scope: want printable ASCII without spaces, quotes or backslashes", quote(s))
		}
	}
}

// referencedSecret checks a credential that must be written as a secret reference.
func (v *validator) referencedSecret(path string, s Secret, required bool) {
	switch {
	case s.IsZero():
		if required {
			v.add(path, `required: a secret reference such as "env:NAME" or "file:/path"`)
		}
	case !s.IsReference():
		// Never echo the value: it is a credential.
		v.add(path, `a secret must not be written in the configuration; reference it as "env:NAME" or "file:/path"`)
	default:
		v.secretText(path, s)
	}
}

// validName reports whether s matches [a-z0-9][a-z0-9_-]{0,31}.
func validName(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validPrefix reports whether s matches [A-Za-z0-9][A-Za-z0-9_.-]{0,31}.
func validPrefix(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) stdio(path string, s *Stdio) {
	switch {
	case s.Command == "":
		v.add(path+".command", "required")
	case strings.ContainsRune(s.Command, 0):
		v.add(path+".command", "must not contain NUL")
	case s.Command == SelfCommand, filepath.IsAbs(s.Command):
	case strings.ContainsRune(s.Command, '/'):
		v.add(path+".command", "%s is a relative path, which would depend on the gateway's working directory: want %q, an absolute path, or a name looked up on PATH", quote(s.Command), SelfCommand)
	}
	for i, a := range s.Args {
		if strings.ContainsRune(a, 0) {
			v.add(pathIndex(path+".args", i), "must not contain NUL")
		}
	}
	for _, name := range sortedKeys(s.Env) {
		p := pathKey(path+".env", name)
		if !isEnvName(name) {
			v.add(p, "%s is not a valid environment variable name: want [A-Za-z_][A-Za-z0-9_]*", quote(name))
		}
		v.secretText(p, s.Env[name])
	}
	if s.Dir != "" && (!filepath.IsAbs(s.Dir) || strings.ContainsRune(s.Dir, 0)) {
		v.add(path+".dir", "%s must be an absolute path", quote(s.Dir))
	}
	v.positive(path+".min_backoff", s.MinBackoff)
	v.positive(path+".max_backoff", s.MaxBackoff)
	if s.MinBackoff > 0 && s.MaxBackoff > 0 && s.MinBackoff > s.MaxBackoff {
		v.add(path+".min_backoff", "%v is longer than max_backoff %v", s.MinBackoff, s.MaxBackoff)
	}
	v.positive(path+".shutdown_grace", s.ShutdownGrace)
}

// url checks an upstream URL and reports whether credentials sent to it
// would cross the network in clear text (plain http to a host that is not
// loopback).
func (v *validator) url(path, raw string) (cleartext bool) {
	if raw == "" {
		v.add(path, "required")
		return false
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.add(path, "%s is not a valid URL", quote(raw))
		return false
	}
	switch {
	case u.User != nil:
		// Do not echo the URL: it holds a credential.
		v.add(path, "must not contain user information (user:password@); use bearer_token or headers with a secret reference")
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(path, "%s is not an http(s) URL", quote(raw))
	case u.Host == "" || u.Hostname() == "":
		v.add(path, "%s has no host", quote(raw))
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.add(path, "%s must not have a fragment", quote(raw))
	default:
		return u.Scheme == "http" && !isLoopbackHost(u.Hostname())
	}
	return false
}

// gatewayHeaders are request headers the gateway sets itself; an upstream
// configuration may not override them.
func gatewayHeader(canonical string) bool {
	switch canonical {
	case "Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Upgrade", "Te", "Trailer", "Proxy-Connection", "Accept", "Last-Event-Id",
		"Mcp-Session-Id", "Mcp-Protocol-Version", "Mcp-Method", "Mcp-Name":
		return true
	}
	return false
}

// credentials checks an HTTP upstream's headers and bearer token.
func (v *validator) credentials(path string, headers map[string]Secret, token Secret, cleartext bool) {
	const clear = "would be sent in clear text over plain http to a remote host; use an https URL"
	canonical := map[string]string{}
	for _, name := range sortedKeys(headers) {
		p := pathKey(path+".headers", name)
		val := headers[name]
		if !validHeaderName(name) {
			v.add(p, "%s is not a valid header name", quote(name))
			continue
		}
		c := http.CanonicalHeaderKey(name)
		if prev, dup := canonical[c]; dup {
			v.add(p, "%s is the same header as %s (names are case-insensitive)", quote(name), quote(prev))
			continue
		}
		canonical[c] = name
		switch {
		case gatewayHeader(c):
			v.add(p, "%s is set by the gateway and cannot be configured", c)
			continue
		case (c == "Authorization" || c == "Proxy-Authorization") && !val.IsReference():
			v.add(p, `a credential must not be written in the configuration; reference it as "env:NAME" or "file:/path"`)
			continue
		case c == "Authorization" && !token.IsZero():
			v.add(p, "conflicts with bearer_token; set one or the other")
			continue
		}
		if !v.secretText(p, val) {
			continue
		}
		if !val.IsReference() && !validHeaderValue(val.Reveal()) {
			v.add(p, "the value contains a line break or control character")
		}
		if val.IsReference() && cleartext {
			v.add(p, "this secret %s", clear)
		}
	}
	if token.IsZero() {
		return
	}
	p := path + ".bearer_token"
	if !token.IsReference() {
		// Never echo the value: it is a credential.
		v.add(p, `a token must not be written in the configuration; reference it as "env:NAME" or "file:/path"`)
		return
	}
	if v.secretText(p, token) && cleartext {
		v.add(p, "the token %s", clear)
	}
}

// secretText reports a malformed reference, or NUL in a literal, and
// returns whether the secret is well formed.
func (v *validator) secretText(path string, s Secret) bool {
	if s.IsReference() {
		if err := checkReference(s.Reference()); err != nil {
			v.add(path, "%v", err)
			return false
		}
		return true
	}
	if strings.ContainsRune(s.Reveal(), 0) {
		v.add(path, "the value contains NUL")
		return false
	}
	return true
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a header value: no
// control characters other than horizontal tab.
func validHeaderValue(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// resolveSecrets resolves every secret reference in c and returns a problem
// for each that fails. References already reported as malformed are
// skipped. Messages never contain a secret's value.
func resolveSecrets(c *Config, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) []Problem {
	var list []Problem
	resolve := func(path string, s *Secret, header bool) {
		if !s.IsReference() || checkReference(s.Reference()) != nil {
			return
		}
		if err := s.Resolve(lookupEnv, readFile); err != nil {
			list = append(list, Problem{Path: path, Message: fmt.Sprintf("%s: %v", s.Reference(), err)})
			return
		}
		switch val := s.Reveal(); {
		case header && !validHeaderValue(val):
			list = append(list, Problem{Path: path, Message: fmt.Sprintf("%s: the value contains a line break or control character and cannot be sent in a header", s.Reference())})
		case strings.ContainsRune(val, 0):
			list = append(list, Problem{Path: path, Message: fmt.Sprintf("%s: the value contains NUL", s.Reference())})
		}
	}
	headers := func(path string, m map[string]Secret) {
		for _, name := range sortedKeys(m) {
			s := m[name]
			resolve(pathKey(path, name), &s, true)
			m[name] = s
		}
	}
	assertionKey := func(path string, cc *ClientCredentials) {
		resolve(path+".private_key", &cc.PrivateKey, false)
		if cc.AuthMethod == PrivateKeyJWT && cc.PrivateKey.IsReference() && cc.PrivateKey.Resolved() {
			list = append(list, checkAssertionKey(path, cc)...)
		}
		resolve(path+".certificate", &cc.Certificate, false)
		if cc.AuthMethod == PrivateKeyJWT && cc.Certificate.IsReference() && cc.Certificate.Resolved() && cc.PrivateKey.Resolved() {
			list = append(list, checkAssertionCertificate(path, cc)...)
		}
	}
	resolve("identity_encryption_key", &c.IdentityEncryptionKey, false)
	if cp := c.Compliance; cp != nil {
		resolve("compliance.subject_key", &cp.SubjectKey, false)
	}
	if r := c.Containment.Redis; r != nil {
		resolve("containment.redis.password", &r.Password, false)
	}
	if w := c.Containment.NotifyWebhook; w != nil {
		resolve("containment.notify_webhook.bearer_token", &w.BearerToken, true)
	}
	if t := c.Tracing; t != nil {
		headers("tracing.headers", t.Headers)
	}
	if k := c.IdentityEncryptionKey; k.IsReference() && k.Resolved() {
		if _, err := decodeIdentityKey(k.Reveal()); err != nil {
			list = append(list, Problem{Path: "identity_encryption_key", Message: fmt.Sprintf("%s: %v", k.Reference(), err)})
		}
	}
	if a := c.Admin; a != nil && a.OIDC != nil {
		resolve("admin.oidc.client_secret", &a.OIDC.ClientSecret, false)
	}
	if a := c.Audit; a != nil {
		resolve("audit.database", &a.Database, false)
		resolve("audit.redaction_key", &a.RedactionKey, false)
		if a.RedactionKey.Resolved() && !a.RedactionKey.IsZero() && len(a.RedactionKey.Reveal()) < 32 {
			list = append(list, Problem{Path: "audit.redaction_key", Message: "too short: want at least 32 bytes"})
		}
		for i := range a.Sinks {
			if w := a.Sinks[i].Webhook; w != nil {
				resolve(pathIndex("audit.sinks", i)+".webhook.bearer_token", &w.BearerToken, true)
			}
		}
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		path := pathIndex("upstreams", i)
		if u.Stdio != nil {
			env := u.Stdio.Env
			for _, name := range sortedKeys(env) {
				s := env[name]
				resolve(pathKey(path+".stdio.env", name), &s, false)
				env[name] = s
			}
		}
		if u.HTTP != nil {
			headers(path+".http.headers", u.HTTP.Headers)
			resolve(path+".http.bearer_token", &u.HTTP.BearerToken, true)
			if cc := u.HTTP.ClientCredentials; cc != nil {
				resolve(path+".http.client_credentials.client_secret", &cc.ClientSecret, false)
				assertionKey(path+".http.client_credentials", cc)
			}
		}
		if u.SSE != nil {
			headers(path+".sse.headers", u.SSE.Headers)
			resolve(path+".sse.bearer_token", &u.SSE.BearerToken, true)
			if cc := u.SSE.ClientCredentials; cc != nil {
				resolve(path+".sse.client_credentials.client_secret", &cc.ClientSecret, false)
				assertionKey(path+".sse.client_credentials", cc)
			}
		}
	}
	return list
}
