package mcp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEras(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v      string
		era    Era
		modern bool
	}{
		{"2024-11-05", EraLegacy, false},
		{"2025-03-26", EraLegacy, false},
		{"2025-06-18", EraLegacy, false},
		{"2025-11-25", EraLegacy, false},
		{"2026-07-28", EraModern, true},
		{"2027-01-01", EraUnknown, false},
		{"DRAFT-2026-v1", EraUnknown, false},
		{"", EraUnknown, false},
		{" 2026-07-28", EraUnknown, false},
	}
	for _, tt := range tests {
		if got := EraOf(tt.v); got != tt.era {
			t.Errorf("EraOf(%q) = %v, want %v", tt.v, got, tt.era)
		}
		if got := IsModern(tt.v); got != tt.modern {
			t.Errorf("IsModern(%q) = %v, want %v", tt.v, got, tt.modern)
		}
		if got := IsLegacy(tt.v); got != (tt.era == EraLegacy) {
			t.Errorf("IsLegacy(%q) = %v", tt.v, got)
		}
	}
	if !IsModern(Latest) || !IsLegacy(LatestLegacy) || !IsLegacy(VersionWithoutHeader) {
		t.Errorf("Latest, LatestLegacy or VersionWithoutHeader is in the wrong era")
	}
}

func TestSupportedLists(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff([]string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}, Supported()); diff != "" {
		t.Errorf("Supported (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}, SupportedLegacy()); diff != "" {
		t.Errorf("SupportedLegacy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"2026-07-28"}, SupportedModern()); diff != "" {
		t.Errorf("SupportedModern (-want +got):\n%s", diff)
	}
	// The lists are copies.
	SupportedLegacy()[0] = "tampered"
	if SupportedLegacy()[0] != "2025-11-25" {
		t.Error("modifying a returned list changed the package's list")
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		offered, mine []string
		want          string
		ok            bool
	}{
		{"newest common", []string{"2025-06-18", "2026-07-28", "2025-11-25"}, Supported(), "2026-07-28", true},
		{"legacy only", []string{"2025-11-25", "2025-06-18"}, Supported(), "2025-11-25", true},
		{"modern client, legacy server", []string{"2025-11-25"}, SupportedModern(), "", false},
		{"future versions only", []string{"2027-01-01"}, Supported(), "", false},
		{"nothing offered", nil, Supported(), "", false},
		{"unknown versions on our side are ignored", []string{"2099-01-01"}, []string{"2099-01-01"}, "", false},
	}
	for _, tt := range tests {
		got, ok := Negotiate(tt.offered, tt.mine)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: Negotiate = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   int64
		name   string
		modern bool
	}{
		{-32020, "HeaderMismatch", true},
		{-32021, "MissingRequiredClientCapability", true},
		{-32022, "UnsupportedProtocolVersion", true},
		{-32002, "Resource not found", false},
		{-32042, "URLElicitationRequired", false},
		{-32602, "Invalid params", false},
		{-32601, "Method not found", false},
		{-32000, "", false},
		{-32023, "", false},
	}
	for _, tt := range tests {
		if got := CodeName(tt.code); got != tt.name {
			t.Errorf("CodeName(%d) = %q, want %q", tt.code, got, tt.name)
		}
		if got := IsModernErrorCode(tt.code); got != tt.modern {
			t.Errorf("IsModernErrorCode(%d) = %v, want %v", tt.code, got, tt.modern)
		}
	}
}
