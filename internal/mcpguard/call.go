package mcpguard

import "net/netip"

// CallKind is what a call addresses.
type CallKind uint8

const (
	// CallEvery addresses every upstream: the list methods and logging/setLevel.
	CallEvery CallKind = iota
	// CallTool addresses one tool by its exposed name (tools/call).
	CallTool
	// CallPrompt addresses one prompt by its exposed name (prompts/get, and completion/complete
	// of a prompt's argument).
	CallPrompt
	// CallResource addresses one resource by URI (resources/read, subscribe, unsubscribe,
	// completion/complete of a template's argument, skills/get).
	CallResource
)

func (k CallKind) String() string {
	switch k {
	case CallTool:
		return "tool"
	case CallPrompt:
		return "prompt"
	case CallResource:
		return "resource"
	}
	return "every"
}

// Call is one client request on its way to an upstream, read from its params once. Every step of
// the pipeline reads the Call; none re-parses the request.
type Call struct {
	// Method is the JSON-RPC method (tools/call, prompts/get, …).
	Method string
	// Kind is what the call addresses; Target names it as the client sees it: the namespaced
	// tool or prompt name, or the resource URI. Empty for CallEvery.
	Kind   CallKind
	Target string
	// Upstream is the name of the upstream that serves the call and UpstreamTarget the target's
	// name there (the tool name without its namespace). Set by the route step; empty for
	// CallEvery.
	Upstream       string
	UpstreamTarget string
	// Arguments is the raw "arguments" object of tools/call and prompts/get (nil when absent).
	Arguments []byte
	// Args is Arguments decoded once, by the route step when the target declares a schema
	// (objects as map[string]any, numbers as encoding/json's Number); nil otherwise.
	Args map[string]any
	// Params is the raw params object as the client sent it.
	Params []byte
	// Meta is the raw params._meta object, nil when absent.
	Meta []byte
	// Era is the protocol era the client speaks.
	Era Era
	// ClientAddr is the client's network address; invalid when unknown (stdio).
	ClientAddr netip.Addr
	// RequestID correlates the call's audit records; TraceID is the W3C trace the call belongs
	// to, empty when none.
	RequestID string
	TraceID   string
}
