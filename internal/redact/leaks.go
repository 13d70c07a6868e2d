package redact

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
)

// Bounds of what an upstream's error may carry to a client.
const (
	// MaxErrorMessage bounds an error message; the rest is cut.
	MaxErrorMessage = 1024
	// MaxErrorData bounds an error's data; larger data is dropped whole.
	MaxErrorData = 16 << 10
)

// leakDetectors find what an upstream's error must not tell a client, beyond the secrets and
// personal data the audit redactor's detectors find: URLs and DSNs with credentials, secrets
// written as key=value, bearer tokens, mcpguard API keys, and addresses of the internal network.
func leakDetectors() []detector {
	always := func(string, int) bool { return true }
	return []detector{
		{
			name: "url_credentials",
			want: func(s string, _ int) bool { return strings.Contains(s, "://") && strings.Contains(s, "@") },
			re:   regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s/@]*@[^\s'"<>]*`),
		},
		{
			name: "secret_assignment",
			want: func(s string, _ int) bool { return strings.ContainsAny(s, "=:") },
			re:   regexp.MustCompile(`(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|sslpassword)\s*[=:]\s*(?:"[^"]*"|'[^']*'|[^\s;,&]+)`),
		},
		{
			name: "bearer_token",
			want: func(s string, _ int) bool { return strings.Contains(strings.ToLower(s), "bearer") },
			re:   regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}`),
		},
		{
			name: "api_key",
			want: func(s string, _ int) bool { return strings.Contains(s, "mcpg_") },
			re:   regexp.MustCompile(`\bmcpg_[0-9a-f]{16}_[A-Za-z0-9_-]+`),
		},
		{
			name:  "internal_address",
			want:  func(_ string, digits int) bool { return digits >= 4 },
			re:    regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b`),
			valid: internalIPv4,
		},
		{
			name:  "internal_address",
			want:  func(s string, _ int) bool { return strings.Contains(s, ":") },
			re:    regexp.MustCompile(`\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\](?::\d{1,5})?|\b[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*:[0-9A-Fa-f]{0,4}\b`),
			valid: internalIPv6,
		},
		{
			name: "internal_host",
			want: always,
			re:   regexp.MustCompile(`(?i)\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:internal|local|localdomain|lan|corp|intranet|svc|cluster\.local))(?::\d{1,5})?\b`),
		},
	}
}

func internalIPv4(m string) bool {
	host, _, _ := strings.Cut(m, ":")
	a, err := netip.ParseAddr(host)
	return err == nil && isInternal(a)
}

func internalIPv6(m string) bool {
	host := m
	if strings.HasPrefix(m, "[") {
		host = m[1:strings.IndexByte(m, ']')]
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is6() && isInternal(a)
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), internal to a provider.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func isInternal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || cgnat.Contains(a)
}

// stackLine matches a line of a stack trace in the common runtimes: Go (goroutine headers and
// file.go:line frames), Java and JavaScript ("at …(…)"), Python ("Traceback", File "…", line N),
// and .NET ("at X in file:line N").
var stackLine = regexp.MustCompile(`^\s*(?:goroutine \d+ \[|panic: |Traceback \(most recent call last\)|File "[^"]+", line \d+|at [\w$.<>/@:-]+ ?\(|at [\w$.<>]+ in .+:line \d+|[\w./-]+\.(?:go|py|java|js|ts|cs|rb):\d+)`)

// Leaks is an upstream's error message as a client may see it: a stack trace is cut at its first
// frame, what the detectors find (credentials, secrets, personal data, internal addresses and
// host names) is replaced by "[redacted <kind>]", and the text is cut at MaxErrorMessage. Stats
// counts what was replaced, by kind ("stack_trace" for a cut trace).
func Leaks(msg string) (string, Stats) {
	stats := Stats{}
	if len(msg) > MaxErrorMessage {
		msg = strings.ToValidUTF8(msg[:MaxErrorMessage], "")
		stats["too_long"]++
	}
	if lines := strings.Split(msg, "\n"); len(lines) > 0 {
		for i, l := range lines {
			if stackLine.MatchString(l) {
				msg = strings.TrimRight(strings.Join(lines[:i], "\n"), " \t\n:")
				if msg != "" {
					msg += " "
				}
				msg += "[stack trace removed]"
				stats["stack_trace"]++
				break
			}
		}
	}
	msg = replaceFound(errorDetectors, msg, stats, func(name, _ string) string { return "[redacted " + name + "]" })
	return msg, stats
}

// errorDetectors are the leak detectors, then the audit redactor's.
var errorDetectors = append(leakDetectors(), newDetectors()...)

// secretDetectors are the leak detectors that find credentials, as opposed to internal
// addresses and host names.
var secretDetectors = func() []detector {
	var ds []detector
	for _, d := range leakDetectors() {
		switch d.name {
		case "url_credentials", "secret_assignment", "bearer_token", "api_key":
			ds = append(ds, d)
		}
	}
	return ds
}()

// Secrets is an upstream's error message as the operational log may record it: what Leaks
// would take away from a client to spare the operator a look at the upstream (stack traces,
// internal addresses and host names) stays, credentials do not, and the text is cut at
// 4*MaxErrorMessage.
func Secrets(msg string) string {
	if len(msg) > 4*MaxErrorMessage {
		msg = strings.ToValidUTF8(msg[:4*MaxErrorMessage], "")
	}
	return replaceFound(secretDetectors, msg, Stats{}, func(name, _ string) string { return "[redacted " + name + "]" })
}

// sensitiveKeys are DefaultSensitiveKeys, normalized.
var sensitiveKeys = func() []string {
	var ks []string
	for _, k := range DefaultSensitiveKeys() {
		ks = append(ks, normalizeKey(k))
	}
	return ks
}()

// LeaksJSON is an upstream's error data as a client may see it: every string passes Leaks, the
// value of every sensitive key (DefaultSensitiveKeys) becomes "[redacted]", and data larger
// than MaxErrorData, or not JSON, is dropped (nil).
func LeaksJSON(data []byte) ([]byte, Stats) {
	stats := Stats{}
	if len(data) == 0 {
		return data, stats
	}
	if len(data) > MaxErrorData {
		stats["too_large"]++
		return nil, stats
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		stats["not_json"]++
		return nil, stats
	}
	v = cleanValue(v, stats)
	out, err := json.Marshal(v)
	if err != nil {
		stats["not_json"]++
		return nil, stats
	}
	return out, stats
}

func cleanValue(v any, stats Stats) any {
	switch t := v.(type) {
	case string:
		s, st := Leaks(t)
		for k, n := range st {
			stats[k] += n
		}
		return s
	case []any:
		for i := range t {
			t[i] = cleanValue(t[i], stats)
		}
	case map[string]any:
		for k, e := range t {
			nk := normalizeKey(k)
			sensitive := false
			for _, s := range sensitiveKeys {
				if strings.HasSuffix(nk, s) {
					sensitive = true
					break
				}
			}
			if sensitive {
				t[k] = "[redacted]"
				stats["key"]++
				continue
			}
			t[k] = cleanValue(e, stats)
		}
	}
	return v
}
