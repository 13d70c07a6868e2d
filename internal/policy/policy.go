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
}

// RuleDefaultDeny is the Rule of a decision no rule made.
const RuleDefaultDeny = "default-deny"
