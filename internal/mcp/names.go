package mcp

// HTTP header names of the Streamable HTTP transport. Header names are case-insensitive; these
// are the spellings the specification uses.
const (
	// HeaderProtocolVersion carries the protocol version on every POST (2025-06-18 and later).
	// In modern revisions it MUST equal _meta "io.modelcontextprotocol/protocolVersion".
	HeaderProtocolVersion = "MCP-Protocol-Version"
	// HeaderSessionID carries the legacy session id (2025-03-26 through 2025-11-25). Modern
	// servers ignore it.
	HeaderSessionID = "Mcp-Session-Id"
	// HeaderLastEventID resumes a legacy SSE stream. Modern streams are not resumable.
	HeaderLastEventID = "Last-Event-ID"
	// HeaderMethod mirrors the JSON-RPC method of every modern request.
	HeaderMethod = "Mcp-Method"
	// HeaderName mirrors params.name or params.uri of the methods that have one (see
	// [NameParam]), Base64-sentinel encoded when not header-safe.
	HeaderName = "Mcp-Name"
	// HeaderParamPrefix prefixes the headers that mirror tool arguments annotated with
	// x-mcp-header: the annotation "Region" yields the header "Mcp-Param-Region".
	HeaderParamPrefix = "Mcp-Param-"
)

// SchemaKeywordHeader is the JSON Schema extension keyword that designates a tool parameter to
// be mirrored into an Mcp-Param-{name} header.
const SchemaKeywordHeader = "x-mcp-header"

// Reserved _meta keys (2026-07-28 basic/index, "Reserved keys" and "Per-request protocol
// fields").
const (
	MetaProgressToken = "progressToken"

	// MetaProtocolVersion (string) is required on every modern request.
	MetaProtocolVersion = "io.modelcontextprotocol/protocolVersion"
	// MetaClientInfo (Implementation) is optional; clients SHOULD send it.
	MetaClientInfo = "io.modelcontextprotocol/clientInfo"
	// MetaClientCapabilities (ClientCapabilities) is required on every modern request.
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	// MetaLogLevel (LoggingLevel) is optional: the minimum level the server should emit for
	// the request. It replaces logging/setLevel.
	MetaLogLevel = "io.modelcontextprotocol/logLevel"
	// MetaSubscriptionID correlates a notification on a subscriptions/listen stream with the
	// subscription that asked for it.
	MetaSubscriptionID = "io.modelcontextprotocol/subscriptionId"
	// MetaServerInfo (Implementation) is what servers SHOULD put in every result's _meta.
	MetaServerInfo = "io.modelcontextprotocol/serverInfo"
	// MetaRelatedTask associates a message with a task (2025-11-25 core; the tasks extension
	// in modern revisions).
	MetaRelatedTask = "io.modelcontextprotocol/related-task"

	// OpenTelemetry trace context; values follow W3C Trace Context and W3C Baggage.
	MetaTraceparent = "traceparent"
	MetaTracestate  = "tracestate"
	MetaBaggage     = "baggage"
)

// ExtensionTasks is the identifier of the tasks extension (SEP-2663), advertised under
// capabilities.extensions.
const ExtensionTasks = "io.modelcontextprotocol/tasks"

// ExtensionSkills is the skills extension (SEP-2640): skills/list and skills/get, announced as
// capabilities.extensions["io.modelcontextprotocol/skills"].
const ExtensionSkills = "io.modelcontextprotocol/skills"

// Values of a modern result's "resultType". An absent resultType means ResultTypeComplete
// (results from legacy servers have none).
const (
	ResultTypeComplete      = "complete"
	ResultTypeInputRequired = "input_required"
)

// Members of modern request params and results used by multi round-trip requests (MRTR).
const (
	ParamInputResponses = "inputResponses" // request params: the client's answers
	ParamRequestState   = "requestState"   // request params and InputRequiredResult: opaque, echoed verbatim
	ResultInputRequests = "inputRequests"  // InputRequiredResult: what the server needs
)

// Members of DiscoverResult and of the data of the modern errors.
const (
	ResultSupportedVersions       = "supportedVersions"    // DiscoverResult
	ErrorDataSupported            = "supported"            // UnsupportedProtocolVersion
	ErrorDataRequested            = "requested"            // UnsupportedProtocolVersion
	ErrorDataRequiredCapabilities = "requiredCapabilities" // MissingRequiredClientCapability
)

// JSON-RPC error codes that MCP uses. The standard JSON-RPC codes are repeated here because
// MCP gives some of them specific meanings (see [CodeName]).
const (
	CodeParseError     int64 = -32700
	CodeInvalidRequest int64 = -32600
	CodeMethodNotFound int64 = -32601 // modern HTTP: with status 404
	CodeInvalidParams  int64 = -32602 // also: a modern request missing a required _meta field (HTTP 400); resource not found since 2026-07-28
	CodeInternalError  int64 = -32603

	// CodeHeaderMismatch (HeaderMismatch): HTTP headers do not match the request body, or a
	// required header is missing or malformed. HTTP 400.
	CodeHeaderMismatch int64 = -32020
	// CodeMissingRequiredClientCapability (MissingRequiredClientCapability): serving the
	// request needs a capability the client did not declare; data.requiredCapabilities lists
	// them. HTTP 400.
	CodeMissingRequiredClientCapability int64 = -32021
	// CodeUnsupportedProtocolVersion (UnsupportedProtocolVersion): the server does not
	// implement the requested version; data.supported lists those it does, data.requested
	// echoes the request. HTTP 400.
	CodeUnsupportedProtocolVersion int64 = -32022

	// CodeResourceNotFoundLegacy was "resource not found" in 2025-11-25 and earlier. Modern
	// implementations MUST NOT emit it (they use -32602) but clients SHOULD still accept it.
	CodeResourceNotFoundLegacy int64 = -32002
	// CodeURLElicitationRequired was defined by 2025-11-25 only. Modern implementations MUST
	// NOT emit it.
	CodeURLElicitationRequired int64 = -32042
)

// IsModernErrorCode reports whether code is one of the error codes the 2026-07-28 revision
// defines in the range it reserves for the specification (-32020 to -32099). Legacy
// implementations never emit them, so seeing one identifies a modern peer.
func IsModernErrorCode(code int64) bool {
	switch code {
	case CodeHeaderMismatch, CodeMissingRequiredClientCapability, CodeUnsupportedProtocolVersion:
		return true
	}
	return false
}

// CodeName returns the specification's name for an error code, or "" for codes it does not
// name. Codes from -32000 to -32019 other than -32002 carry no meaning a receiver may assume.
func CodeName(code int64) string {
	switch code {
	case CodeParseError:
		return "Parse error"
	case CodeInvalidRequest:
		return "Invalid Request"
	case CodeMethodNotFound:
		return "Method not found"
	case CodeInvalidParams:
		return "Invalid params"
	case CodeInternalError:
		return "Internal error"
	case CodeHeaderMismatch:
		return "HeaderMismatch"
	case CodeMissingRequiredClientCapability:
		return "MissingRequiredClientCapability"
	case CodeUnsupportedProtocolVersion:
		return "UnsupportedProtocolVersion"
	case CodeResourceNotFoundLegacy:
		return "Resource not found"
	case CodeURLElicitationRequired:
		return "URLElicitationRequired"
	}
	return ""
}
