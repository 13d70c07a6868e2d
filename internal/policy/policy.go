// Package policy compiles role policy files and decides, without I/O, whether a principal may call a tool, read a resource or get a prompt.
package policy

import (
	"net/netip"
	"time"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// Kind is the kind of MCP object a call addresses.
type Kind uint8

const (
	// KindTool is a tools/call, addressed by the gateway's namespaced tool name.
	KindTool Kind = iota
	// KindResource is a resources/read (or subscription), addressed by URI.
	KindResource
	// KindPrompt is a prompts/get, addressed by the namespaced prompt name.
	KindPrompt
	numKinds
)

func (k Kind) String() string {
	switch k {
	case KindTool:
		return "tool"
	case KindResource:
		return "resource"
	case KindPrompt:
		return "prompt"
	}
	return "unknown"
}

// denyKey is the policy key that lists names of this kind to deny.
func (k Kind) denyKey() string {
	switch k {
	case KindResource:
		return "deny_resources"
	case KindPrompt:
		return "deny_prompts"
	}
	return "deny_tools"
}

// Principal is the authenticated caller, as the authenticators produce it. The policy reads
// Subject (bindings' principals:), Roles (asserted roles, added to those the bindings give;
// names the policy does not define grant nothing), Groups and Scopes (bindings' groups: and
// scopes:) and Claims (bindings' claims:, and principal.claims in when: conditions).
type Principal = mcpguard.Principal

// Call is one request to decide on.
type Call struct {
	Kind Kind
	// Name is the namespaced tool or prompt name (e.g.
	// "finance.get_stock_analysis") or the resource URI.
	Name string
	// Arguments is the call's "arguments" object as raw JSON, already
	// parsed strictly by the gateway; nil or "null" means none. Resources
	// have none.
	Arguments []byte
	// Args is Arguments already decoded by the caller (objects as map[string]any, numbers as
	// encoding/json's Number), so that a call is decoded once; when set, Arguments is not read.
	// The policy does not modify it.
	Args map[string]any
	// Time is when the call arrived; when: conditions see it as now, hour,
	// minute and weekday (in the policy's time_zone). The zero time is
	// treated as the Unix epoch.
	Time time.Time
	// SourceIP is the client's address; invalid when unknown.
	SourceIP netip.Addr
	// Completion marks a completion/complete request for the prompt or resource: it is
	// decided by the same roles, deny lists and when: conditions, but not by argument
	// constraints (it carries a partial value of one argument, not the call's arguments),
	// and needs no approval (it is not the call).
	Completion bool
}

// Approval says that an allowed call must wait for a human.
type Approval struct {
	// ApproverRole is the operator role allowed to approve the call.
	ApproverRole string
	// Timeout is how long the call may wait; when it passes, the call is
	// denied.
	Timeout time.Duration
}

// Decision is the outcome of [Policy.Decide].
type Decision struct {
	// Allow reports whether the call may proceed (after approval, when
	// RequireApproval is set).
	Allow bool
	// Rule is the stable id of the rule that decided: "role:R/permission:N",
	// "role:R/deny_tools" (or deny_resources, deny_prompts), or
	// "default-deny" when no rule names the call.
	Rule string
	// Reasons explain a denial in words a policy author understands, one
	// per failed check; empty for an allowed call.
	Reasons []string
	// RequireApproval is set when the allowing permission requires a human
	// to approve the call first.
	RequireApproval *Approval

	// The stateful limits of an allowed call, which the policy names and the gateway enforces
	// against a counter backend (internal/contain, Guard.Limit); nil for a denied call and for a call
	// the policy limits in none of these ways.

	// Charges are what the call adds to the count and sum quotas of the allowing permission,
	// in the order the permission lists them.
	Charges []Charge
	// Requires are the sequence quotas of the allowing permission: marks that must exist for
	// the call to proceed.
	Requires []Requirement
	// Marks are set once the call is served, because it is the after: call of some sequence
	// quota of the policy.
	Marks []Mark
	// RateLimits are the rate limits of the allowing permission's role and of the permission.
	RateLimits []RateLimit
}

// Charge is what one call adds to one count or sum quota.
type Charge struct {
	// Quota is the quota's name, unique in the policy file.
	Quota string
	// Rule is the allowing permission's rule id.
	Rule string
	// Key identifies the counter: the quota, whom it counts (the principal's subject, or the
	// role with scope: role) and the window, e.g. "q:daily-notional:s:5:alice:2026-12-06".
	// Parts an attacker chooses are length-prefixed (or hashed, when long), so no two
	// counters share a key.
	Key string
	// Amount is what the call adds: 1 for a count quota, the sum's value for a sum quota.
	Amount float64
	// Limit is the most the counter may reach within its window.
	Limit float64
	// Expires is the end of the window: the counter is forgotten then.
	Expires time.Time
	// Per is the window as the policy writes it: "minute", "hour", "day" or a duration ("15m").
	Per string
	// Sum is the sum's expression; "" for a count quota, whose unit is calls.
	Sum string
}

// Requirement says that the call proceeds only if an earlier call left a mark: a sequence
// quota.
type Requirement struct {
	// Quota is the quota's name.
	Quota string
	// Rule is the allowing permission's rule id.
	Rule string
	// Key is the mark to look for, byte for byte the Key of the Mark that a served call of
	// After, by the same principal with the same values of Same, leaves.
	Key string
	// After is the namespaced tool that must have been called first.
	After string
	// Same names the arguments whose values both calls share.
	Same []string
	// Within is how long ago the earlier call may have been served.
	Within time.Duration
}

// Mark is what a served call leaves for the sequence quotas that name it as after:.
type Mark struct {
	// Key is the mark, as the Requirement of a later call builds it.
	Key string
	// TTL is how long the mark lasts: the longest within: of the quotas that read it.
	TTL time.Duration
}

// RateLimit is a token bucket (and a bound on concurrent calls) that the call draws from.
type RateLimit struct {
	// Rule is the rule that sets the limit: "role:R/rate_limit" or
	// "role:R/permission:N/rate_limit".
	Rule string
	// Key identifies the bucket: the limit and the principal's subject, e.g.
	// "r:role:18:PortfolioManagerAI:s:5:alice".
	Key string
	// Rate is how many calls a second the bucket refills; 0 when the limit only bounds
	// concurrent calls.
	Rate float64
	// Burst is how many calls the full bucket allows at once.
	Burst int
	// Concurrent bounds the calls in progress at once; 0 means no bound.
	Concurrent int
}

// RuleDefaultDeny is the Rule of a decision no rule made.
const RuleDefaultDeny = "default-deny"
