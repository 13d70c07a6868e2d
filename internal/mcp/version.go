package mcp

import (
	"slices"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// Protocol versions, named after the dated revisions of the specification.
const (
	Version20241105 = "2024-11-05" // legacy; HTTP+SSE transport (deprecated)
	Version20250326 = "2025-03-26" // legacy; introduced Streamable HTTP
	Version20250618 = "2025-06-18" // legacy; introduced the MCP-Protocol-Version header
	Version20251125 = "2025-11-25" // legacy; the last revision with the initialize handshake
	Version20260728 = "2026-07-28" // modern; stateless, per-request _meta

	// Latest is the newest revision the gateway speaks.
	Latest = Version20260728
	// LatestLegacy is the newest revision that uses the initialize handshake. A dual-era
	// client falls back to it when a server is not modern.
	LatestLegacy = Version20251125
	// VersionWithoutHeader is the revision a server MAY assume for a Streamable HTTP request
	// that carries no MCP-Protocol-Version header (clients older than 2025-06-18 did not
	// send one).
	VersionWithoutHeader = Version20250326
)

// Era is the family of protocol revisions a peer or a request belongs to: the vocabulary type,
// so that every package speaks of eras the same way.
type Era = mcpguard.Era

// The eras. Modern revisions (2026-07-28 and later) convey version, identity and capabilities
// in every request's _meta; legacy revisions (2025-11-25 and earlier) establish a session with
// an initialize handshake.
const (
	EraUnknown = mcpguard.EraUnknown
	EraLegacy  = mcpguard.EraLegacy
	EraModern  = mcpguard.EraModern
)

// versions lists every known revision, newest first. It is never handed out: callers get
// copies, so nothing can modify it.
var versions = [...]struct {
	version string
	era     Era
}{
	{Version20260728, EraModern},
	{Version20251125, EraLegacy},
	{Version20250618, EraLegacy},
	{Version20250326, EraLegacy},
	{Version20241105, EraLegacy},
}

// EraOf returns the era of the known revision v, or EraUnknown when v is not a revision this
// package knows (including any future revision: its rules cannot be assumed).
func EraOf(v string) Era {
	for _, k := range versions {
		if k.version == v {
			return k.era
		}
	}
	return EraUnknown
}

// IsModern reports whether v is a known modern revision (2026-07-28).
func IsModern(v string) bool { return EraOf(v) == EraModern }

// IsLegacy reports whether v is a known legacy revision (2024-11-05 through 2025-11-25).
func IsLegacy(v string) bool { return EraOf(v) == EraLegacy }

// IsKnown reports whether v is any revision this package knows.
func IsKnown(v string) bool { return EraOf(v) != EraUnknown }

// Supported returns every known revision, newest first.
func Supported() []string {
	out := make([]string, 0, len(versions))
	for _, k := range versions {
		out = append(out, k.version)
	}
	return out
}

// SupportedModern returns the known modern revisions, newest first.
func SupportedModern() []string { return supportedIn(EraModern) }

// SupportedLegacy returns the known legacy revisions, newest first.
func SupportedLegacy() []string { return supportedIn(EraLegacy) }

func supportedIn(era Era) []string {
	var out []string
	for _, k := range versions {
		if k.era == era {
			out = append(out, k.version)
		}
	}
	return out
}

// streamableHTTPVersions are the revisions a client can speak over Streamable HTTP: every
// known revision except 2024-11-05, which had only the HTTP+SSE transport. They are what an
// UnsupportedProtocolVersion error lists.
func streamableHTTPVersions() []string {
	return slices.DeleteFunc(Supported(), func(v string) bool { return v == Version20241105 })
}

// Negotiate returns the newest revision that appears both in offered (for example the
// "supported" list of an UnsupportedProtocolVersion error or a DiscoverResult's
// supportedVersions) and in mine, and whether there is one. Order within offered does not
// matter; mine is searched newest first by date.
func Negotiate(offered, mine []string) (string, bool) {
	best := ""
	for _, v := range mine {
		if slices.Contains(offered, v) && IsKnown(v) && v > best {
			best = v // revisions are ISO dates, so string order is date order
		}
	}
	return best, best != ""
}
