// Package audit records every gateway event in a tamper-evident log: the record schema, group
// commit to a durable store, a Merkle tree with signed checkpoints, proofs and verification.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// SchemaVersion is the version of the record schema (the "v" field).
const SchemaVersion = 1

// Kind is what a record is about.
type Kind string

// Record kinds.
const (
	KindToolCall     Kind = "call"          // a forwarded request (tools/call, prompts/get, …) and its decision
	KindOutcome      Kind = "outcome"       // what the upstream answered to a call
	KindAuthFailure  Kind = "auth_failure"  // authentication refused
	KindPolicyDenial Kind = "policy_denial" // authorization denied a call
	KindRateLimit    Kind = "rate_limit"    // a client was rate limited or blocked
	KindApproval     Kind = "approval"      // a held call was approved or rejected
	KindQuarantine   Kind = "quarantine"    // a tool was quarantined after its definition changed
	KindAdmin        Kind = "admin"         // an administrative action
	KindPolicyReload Kind = "policy_reload" // the policy was reloaded (or a reload refused)
	KindBlock        Kind = "block"         // a client address was blocked, or a block lifted
	KindSuspend      Kind = "suspend"       // a principal was suspended, or a suspension lifted
	KindAlert        Kind = "alert"         // anomaly detection raised a signal
	KindErasure      Kind = "erasure"       // a data subject's key was destroyed (GDPR erasure); holds no personal data
	KindRetention    Kind = "retention"     // payloads past their retention were pruned; says which
	KindLegalHold    Kind = "legal_hold"    // a legal hold was placed or released
	KindSubject      Kind = "subject"       // a data-subject request (access, portability) was served
)

// Decisions.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// Record is one audit event, schema version 1. Field order here is the order of the canonical
// encoding; see docs/audit.md.
type Record struct {
	// Version and Seq are set by the log.
	Version int   `json:"v"`
	Seq     int64 `json:"seq"`
	// Time is when the event happened (UTC; set by the log when zero).
	Time       time.Time `json:"time"`
	Kind       Kind      `json:"kind"`
	RequestID  string    `json:"request_id,omitempty"`
	TraceID    string    `json:"trace_id,omitempty"`
	Principal  string    `json:"principal,omitempty"`
	Roles      []string  `json:"roles,omitempty"`
	AuthMethod string    `json:"auth_method,omitempty"`
	ClientIP   string    `json:"client_ip,omitempty"`
	Era        string    `json:"era,omitempty"`
	Method     string    `json:"method,omitempty"`
	Upstream   string    `json:"upstream,omitempty"`
	Tool       string    `json:"tool,omitempty"`
	// Arguments are redacted by the log before they are stored.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// Redactions counts the values the redactor replaced, by reason.
	Redactions map[string]int `json:"redactions,omitempty"`
	Decision   string         `json:"decision,omitempty"`
	Rule       string         `json:"rule,omitempty"`
	Reasons    []string       `json:"reasons,omitempty"`
	Outcome    *Outcome       `json:"outcome,omitempty"`
	// DurationMicros is how long the event took, in microseconds.
	DurationMicros int64 `json:"duration_us,omitempty"`
	RequestBytes   int64 `json:"request_bytes,omitempty"`
	ResponseBytes  int64 `json:"response_bytes,omitempty"`
	// Detail holds kind-specific fields (admin actions, policy versions), redacted like Arguments.
	Detail json.RawMessage `json:"detail,omitempty"`
	// Subjects name the data subjects the record is about, each by a keyed commitment, with
	// the personal data sealed under the subject's key (docs/gdpr.md). Not redacted: it holds
	// no clear personal data.
	Subjects []Sealed `json:"subjects,omitempty"`
}

// Sealed is one data subject of a record: the keyed commitment of the subject's identifier
// and, on records that keep personal data, the id of the subject's key and the ciphertext
// (base64 of the nonce and the AES-256-GCM sealed JSON; docs/gdpr.md). Erasure and
// data-subject request records carry only the commitment.
type Sealed struct {
	Commitment string `json:"c"`
	KeyID      string `json:"k,omitempty"`
	Ciphertext string `json:"ct,omitempty"`
}

// Outcome is what became of a forwarded call.
type Outcome struct {
	Status    string `json:"status"` // "ok", "error" (a JSON-RPC error), "tool_error" (isError result), "timeout", "upstream_down", "cancelled"
	ErrorCode int    `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
	// ResultDigest is the SHA-256 of the result body ("sha256:" and hex), stored instead of it:
	// the body the client received, masked when the policy masked it.
	ResultDigest string `json:"result_digest,omitempty"`
	// Masked counts the values of the result that the policy's masking rules masked before it
	// reached the client, by rule name; nil when none was (docs/policy.md, "Result masking").
	Masked map[string]int `json:"masked,omitempty"`
}

// body is Record without the fields the writer adds, so that the expensive part of the encoding
// happens in the caller's goroutine.
type body struct {
	Time           string          `json:"time"`
	Kind           Kind            `json:"kind"`
	RequestID      string          `json:"request_id,omitempty"`
	TraceID        string          `json:"trace_id,omitempty"`
	Principal      string          `json:"principal,omitempty"`
	Roles          []string        `json:"roles,omitempty"`
	AuthMethod     string          `json:"auth_method,omitempty"`
	ClientIP       string          `json:"client_ip,omitempty"`
	Era            string          `json:"era,omitempty"`
	Method         string          `json:"method,omitempty"`
	Upstream       string          `json:"upstream,omitempty"`
	Tool           string          `json:"tool,omitempty"`
	Arguments      json.RawMessage `json:"arguments,omitempty"`
	Redactions     map[string]int  `json:"redactions,omitempty"`
	Decision       string          `json:"decision,omitempty"`
	Rule           string          `json:"rule,omitempty"`
	Reasons        []string        `json:"reasons,omitempty"`
	Outcome        *Outcome        `json:"outcome,omitempty"`
	DurationMicros int64           `json:"duration_us,omitempty"`
	RequestBytes   int64           `json:"request_bytes,omitempty"`
	ResponseBytes  int64           `json:"response_bytes,omitempty"`
	Detail         json.RawMessage `json:"detail,omitempty"`
	Subjects       []Sealed        `json:"subjects,omitempty"`
}

// timeFormat is RFC 3339 in UTC with exactly nine fractional digits, so that every time has one
// spelling and times sort as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// encodeBody returns the canonical encoding of r without its leading "{" and the version and
// sequence fields: `"time":…}`.
func encodeBody(r *Record) ([]byte, error) {
	b, err := encodeBodyRoomy(r)
	if err != nil {
		return nil, err
	}
	return b[prefixRoom:], nil
}

// prefixRoom is the room encodeBodyRoomy leaves for canonicalInPlace's prefix, `{"v":1,"seq":N,`
// with N up to 19 digits.
const prefixRoom = 40

// encodeBodyRoomy is encodeBody into a buffer whose first prefixRoom bytes are left for the
// version and sequence fields, so that the writer completes the record where it is
// (canonicalInPlace) instead of copying it. A call's record without its arguments and detail is
// 400–600 bytes; 640 spares it a second buffer.
func encodeBodyRoomy(r *Record) ([]byte, error) {
	return appendBody(make([]byte, prefixRoom, prefixRoom+640+len(r.Arguments)+len(r.Detail)), r)
}

// canonicalInPlace is canonical for a body from encodeBodyRoomy: it writes the prefix into the
// room before the body and returns the record, which shares roomy's array.
func canonicalInPlace(roomy []byte, seq int64) []byte {
	var p [prefixRoom]byte
	prefix := canonical(p[:0], seq, nil)
	start := prefixRoom - len(prefix)
	copy(roomy[start:], prefix)
	return roomy[start:]
}

// encodeBodyReflect is encodeBody by encoding/json, the definition appendBody is held to.
func encodeBodyReflect(r *Record) ([]byte, error) {
	b, err := json.Marshal(body{
		Time: r.Time.UTC().Format(timeFormat), Kind: r.Kind, RequestID: r.RequestID, TraceID: r.TraceID,
		Principal: r.Principal, Roles: r.Roles, AuthMethod: r.AuthMethod, ClientIP: r.ClientIP, Era: r.Era,
		Method: r.Method, Upstream: r.Upstream, Tool: r.Tool, Arguments: r.Arguments, Redactions: r.Redactions,
		Decision: r.Decision, Rule: r.Rule, Reasons: r.Reasons, Outcome: r.Outcome,
		DurationMicros: r.DurationMicros, RequestBytes: r.RequestBytes, ResponseBytes: r.ResponseBytes, Detail: r.Detail,
		Subjects: r.Subjects,
	})
	if err != nil {
		return nil, fmt.Errorf("encode audit record: %w", err)
	}
	return b[1:], nil
}

// canonical joins the version and sequence prefix to an encoded body.
func canonical(dst []byte, seq int64, encodedBody []byte) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, SchemaVersion, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ',')
	return append(dst, encodedBody...)
}

// Canonical returns the canonical encoding of r: the bytes that are stored and hashed.
func Canonical(r *Record) ([]byte, error) {
	b, err := encodeBody(r)
	if err != nil {
		return nil, err
	}
	return canonical(nil, r.Seq, b), nil
}

// ParseRecord decodes a record's canonical encoding and checks that it is canonical: encoding
// the decoded record again must give the same bytes.
func ParseRecord(data []byte) (*Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode audit record: %w", err)
	}
	if r.Version != SchemaVersion {
		return nil, fmt.Errorf("decode audit record: schema version %d, this build reads %d", r.Version, SchemaVersion)
	}
	again, err := Canonical(&r)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("decode audit record: the encoding is not canonical")
	}
	return &r, nil
}

// compactOrQuote returns raw compacted, or, when it is not valid JSON, a JSON string with its
// digest (the log stores only valid JSON).
func compactOrQuote(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err == nil {
		return b.Bytes()
	}
	return []byte(`"` + Digest(raw) + `"`)
}

// Digest returns "sha256:" and the hex SHA-256 of b: how result bodies are stored.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}
