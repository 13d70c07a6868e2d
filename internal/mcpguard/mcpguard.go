// Package mcpguard holds the shared vocabulary of the gateway: protocol eras, the authenticated
// principal, gateway error codes and sentinel errors. It imports only the standard library.
package mcpguard

import "errors"

// Era is the protocol generation a peer speaks.
type Era uint8

const (
	// EraUnknown means the era has not been determined yet.
	EraUnknown Era = iota
	// EraLegacy covers the initialize-handshake revisions (2024-11-05 through 2025-11-25).
	EraLegacy
	// EraModern covers the stateless revisions with per-request _meta (2026-07-28 onward).
	EraModern
)

func (e Era) String() string {
	switch e {
	case EraLegacy:
		return "legacy"
	case EraModern:
		return "modern"
	}
	return "unknown"
}

// Gateway JSON-RPC error codes. They sit outside the range JSON-RPC reserves for itself
// (-32768..-32000) so that a client can tell a gateway decision from an upstream's error.
const (
	CodeDeniedByPolicy     = -31001 // the call was denied by policy (HTTP 403)
	CodeRateLimited        = -31002 // rate limited or blocked (HTTP 429)
	CodeAuditUnavailable   = -31003 // a fail-closed store is down (HTTP 503)
	CodeUpstreamDown       = -31004 // the upstream is unreachable or crashed (HTTP 502)
	CodeUpstreamTimeout    = -31005 // the upstream did not answer in time (HTTP 504)
	CodeUpstreamBadReply   = -31006 // the upstream answered with something that is not MCP (HTTP 502)
	CodeToolQuarantined    = -31007 // the tool's definition changed and awaits review (HTTP 403)
	CodeGatewayOverloaded  = -31008 // too many sessions or in-flight calls (HTTP 503)
	CodeClientCannotAnswer = -31009 // the upstream asked the client something this client cannot answer
	CodeUpstreamShed       = -31010 // the upstream's circuit breaker is open or its call slots are full (HTTP 503)
)

// Sentinel errors shared across packages. Callers match them with errors.Is.
var (
	ErrUpstreamDown     = errors.New("upstream unavailable")
	ErrUpstreamTimeout  = errors.New("upstream timed out")
	ErrUpstreamBadReply = errors.New("upstream sent an invalid reply")
	ErrUnknownTarget    = errors.New("no upstream serves this name")
	ErrClosed           = errors.New("closed")
)
