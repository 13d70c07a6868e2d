package mcp

// Method names. Which revisions define each one, who sends it, and whether it carries an
// Mcp-Name source is recorded in the method table (see [LookupMethod]).
const (
	MethodInitialize             = "initialize"
	MethodPing                   = "ping"
	MethodServerDiscover         = "server/discover"
	MethodSubscriptionsListen    = "subscriptions/listen"
	MethodToolsList              = "tools/list"
	MethodToolsCall              = "tools/call"
	MethodPromptsList            = "prompts/list"
	MethodPromptsGet             = "prompts/get"
	MethodResourcesList          = "resources/list"
	MethodResourcesRead          = "resources/read"
	MethodResourcesTemplatesList = "resources/templates/list"
	MethodResourcesSubscribe     = "resources/subscribe"
	MethodResourcesUnsubscribe   = "resources/unsubscribe"
	MethodCompletionComplete     = "completion/complete"
	MethodLoggingSetLevel        = "logging/setLevel"
	MethodSamplingCreateMessage  = "sampling/createMessage"
	MethodElicitationCreate      = "elicitation/create"
	MethodRootsList              = "roots/list"
	MethodTasksGet               = "tasks/get"
	MethodTasksResult            = "tasks/result"
	MethodTasksList              = "tasks/list"
	MethodTasksCancel            = "tasks/cancel"
	MethodTasksUpdate            = "tasks/update"
	MethodSkillsList             = "skills/list"
	MethodSkillsGet              = "skills/get"

	NotificationInitialized               = "notifications/initialized"
	NotificationCancelled                 = "notifications/cancelled"
	NotificationProgress                  = "notifications/progress"
	NotificationMessage                   = "notifications/message"
	NotificationResourcesUpdated          = "notifications/resources/updated"
	NotificationResourcesListChanged      = "notifications/resources/list_changed"
	NotificationToolsListChanged          = "notifications/tools/list_changed"
	NotificationPromptsListChanged        = "notifications/prompts/list_changed"
	NotificationRootsListChanged          = "notifications/roots/list_changed"
	NotificationElicitationComplete       = "notifications/elicitation/complete"
	NotificationTasksStatus               = "notifications/tasks/status"
	NotificationSubscriptionsAcknowledged = "notifications/subscriptions/acknowledged"
)

// MethodKind tells how a method travels.
type MethodKind uint8

// The method kinds.
const (
	// KindRequest is a JSON-RPC request: it has an id and gets a response.
	KindRequest MethodKind = iota + 1
	// KindNotification is a JSON-RPC notification: no id, no response.
	KindNotification
	// KindInputRequest is a modern server-to-client request: not a JSON-RPC message of its
	// own but an entry of an InputRequiredResult's inputRequests (MRTR), answered through
	// the retried request's inputResponses.
	KindInputRequest
)

// String returns "request", "notification" or "input request".
func (k MethodKind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindInputRequest:
		return "input request"
	default:
		return "invalid"
	}
}

// Sender tells which side originates a method.
type Sender uint8

// The senders. SenderBoth means either side may send it.
const (
	SenderClient Sender = 1 << iota
	SenderServer
	SenderBoth = SenderClient | SenderServer
)

// MethodInfo describes one method in one range of revisions.
type MethodInfo struct {
	Method string
	Kind   MethodKind
	Sender Sender
	// Since and Until are the first and last revisions (inclusive) that define the method
	// this way; Until is "" while the latest revision still does.
	Since, Until string
	// Extension is the extension that defines the method in these revisions, "" for the
	// core protocol.
	Extension string
	// NameParam is the params member mirrored into the Mcp-Name header in modern
	// revisions ("name", "uri" or "taskId"), "" when the method has none.
	NameParam string
	// InputRequired reports whether a modern server may answer the method with an
	// InputRequiredResult (MRTR).
	InputRequired bool
}

// In reports whether the method exists in revision v.
func (m MethodInfo) In(v string) bool {
	if !IsKnown(v) || v < m.Since {
		return false
	}
	return m.Until == "" || v <= m.Until
}

// Short names for the revisions, to keep the table readable.
const (
	r241105 = Version20241105
	r250618 = Version20250618
	r251125 = Version20251125
	r260728 = Version20260728
)

// methodTable describes every method of every known revision. It is never modified and never
// handed out: callers get copies of its entries.
//
// Sources: the TypeScript schemas of 2025-06-18, 2025-11-25 and 2026-07-28; MRTR
// (2026-07-28 basic/patterns/mrtr); Streamable HTTP "Standard Request Headers"; the tasks
// extension's routing headers (SEP-2663, as exercised by the conformance suite).
var methodTable = [...]MethodInfo{
	// Lifecycle and discovery.
	{Method: MethodInitialize, Kind: KindRequest, Sender: SenderClient, Since: r241105, Until: r251125},
	{Method: NotificationInitialized, Kind: KindNotification, Sender: SenderClient, Since: r241105, Until: r251125},
	{Method: MethodPing, Kind: KindRequest, Sender: SenderBoth, Since: r241105, Until: r251125},
	{Method: MethodServerDiscover, Kind: KindRequest, Sender: SenderClient, Since: r260728},
	{Method: MethodSubscriptionsListen, Kind: KindRequest, Sender: SenderClient, Since: r260728},
	{Method: NotificationSubscriptionsAcknowledged, Kind: KindNotification, Sender: SenderServer, Since: r260728},

	// Server features.
	{Method: MethodToolsList, Kind: KindRequest, Sender: SenderClient, Since: r241105},
	{Method: MethodToolsCall, Kind: KindRequest, Sender: SenderClient, Since: r241105, NameParam: "name", InputRequired: true},
	{Method: MethodPromptsList, Kind: KindRequest, Sender: SenderClient, Since: r241105},
	{Method: MethodPromptsGet, Kind: KindRequest, Sender: SenderClient, Since: r241105, NameParam: "name", InputRequired: true},
	{Method: MethodResourcesList, Kind: KindRequest, Sender: SenderClient, Since: r241105},
	{Method: MethodResourcesTemplatesList, Kind: KindRequest, Sender: SenderClient, Since: r241105},
	{Method: MethodResourcesRead, Kind: KindRequest, Sender: SenderClient, Since: r241105, NameParam: "uri", InputRequired: true},
	{Method: MethodResourcesSubscribe, Kind: KindRequest, Sender: SenderClient, Since: r241105, Until: r251125},
	{Method: MethodResourcesUnsubscribe, Kind: KindRequest, Sender: SenderClient, Since: r241105, Until: r251125},
	{Method: MethodCompletionComplete, Kind: KindRequest, Sender: SenderClient, Since: r241105},
	{Method: MethodLoggingSetLevel, Kind: KindRequest, Sender: SenderClient, Since: r241105, Until: r251125},

	// Client features: server-to-client requests in legacy revisions, MRTR input
	// requests in modern ones.
	{Method: MethodSamplingCreateMessage, Kind: KindRequest, Sender: SenderServer, Since: r241105, Until: r251125},
	{Method: MethodSamplingCreateMessage, Kind: KindInputRequest, Sender: SenderServer, Since: r260728},
	{Method: MethodRootsList, Kind: KindRequest, Sender: SenderServer, Since: r241105, Until: r251125},
	{Method: MethodRootsList, Kind: KindInputRequest, Sender: SenderServer, Since: r260728},
	{Method: MethodElicitationCreate, Kind: KindRequest, Sender: SenderServer, Since: r250618, Until: r251125},
	{Method: MethodElicitationCreate, Kind: KindInputRequest, Sender: SenderServer, Since: r260728},

	// Tasks: experimental core in 2025-11-25 (either side may be the receiver), the
	// tasks extension in modern revisions.
	{Method: MethodTasksGet, Kind: KindRequest, Sender: SenderBoth, Since: r251125, Until: r251125},
	{Method: MethodTasksResult, Kind: KindRequest, Sender: SenderBoth, Since: r251125, Until: r251125},
	{Method: MethodTasksList, Kind: KindRequest, Sender: SenderBoth, Since: r251125, Until: r251125},
	{Method: MethodTasksCancel, Kind: KindRequest, Sender: SenderBoth, Since: r251125, Until: r251125},
	{Method: NotificationTasksStatus, Kind: KindNotification, Sender: SenderBoth, Since: r251125, Until: r251125},
	{Method: MethodTasksGet, Kind: KindRequest, Sender: SenderClient, Since: r260728, Extension: ExtensionTasks, NameParam: "taskId"},
	{Method: MethodTasksUpdate, Kind: KindRequest, Sender: SenderClient, Since: r260728, Extension: ExtensionTasks, NameParam: "taskId"},
	{Method: MethodTasksCancel, Kind: KindRequest, Sender: SenderClient, Since: r260728, Extension: ExtensionTasks, NameParam: "taskId"},
	{Method: NotificationTasksStatus, Kind: KindNotification, Sender: SenderServer, Since: r260728, Extension: ExtensionTasks},

	// Skills extension (SEP-2640, stable spec of modelcontextprotocol/ext-skills): written
	// against 2026-07-28; the SDKs serve it in 2025-11-25 sessions too. A skill is addressed
	// by the URI of its SKILL.md.
	{Method: MethodSkillsList, Kind: KindRequest, Sender: SenderClient, Since: r251125, Extension: ExtensionSkills},
	{Method: MethodSkillsGet, Kind: KindRequest, Sender: SenderClient, Since: r251125, Extension: ExtensionSkills},

	// Notifications.
	{Method: NotificationCancelled, Kind: KindNotification, Sender: SenderBoth, Since: r241105, Until: r251125},
	// Modern: only on stdio; on Streamable HTTP closing the response stream cancels.
	{Method: NotificationCancelled, Kind: KindNotification, Sender: SenderClient, Since: r260728},
	{Method: NotificationProgress, Kind: KindNotification, Sender: SenderBoth, Since: r241105, Until: r251125},
	{Method: NotificationProgress, Kind: KindNotification, Sender: SenderServer, Since: r260728},
	{Method: NotificationMessage, Kind: KindNotification, Sender: SenderServer, Since: r241105},
	{Method: NotificationResourcesUpdated, Kind: KindNotification, Sender: SenderServer, Since: r241105},
	{Method: NotificationResourcesListChanged, Kind: KindNotification, Sender: SenderServer, Since: r241105},
	{Method: NotificationToolsListChanged, Kind: KindNotification, Sender: SenderServer, Since: r241105},
	{Method: NotificationPromptsListChanged, Kind: KindNotification, Sender: SenderServer, Since: r241105},
	{Method: NotificationRootsListChanged, Kind: KindNotification, Sender: SenderClient, Since: r241105, Until: r251125},
	{Method: NotificationElicitationComplete, Kind: KindNotification, Sender: SenderServer, Since: r251125, Until: r251125},
}

// LookupMethod returns how revision v defines method, and false when v does not define it
// (or v is not a known revision). Methods of the tasks extension are reported with their
// Extension set; whether the extension was negotiated is for the caller to check.
func LookupMethod(method, v string) (MethodInfo, bool) {
	for _, m := range methodTable {
		if m.Method == method && m.In(v) {
			return m, true
		}
	}
	return MethodInfo{}, false
}

// MethodsIn returns every method revision v defines, in table order.
func MethodsIn(v string) []MethodInfo {
	var out []MethodInfo
	for _, m := range methodTable {
		if m.In(v) {
			out = append(out, m)
		}
	}
	return out
}

// MethodsByEra returns the methods defined by the latest revision of each era: the legacy
// ones (as of 2025-11-25) and the modern ones (as of 2026-07-28).
func MethodsByEra() map[Era][]MethodInfo {
	return map[Era][]MethodInfo{
		EraLegacy: MethodsIn(LatestLegacy),
		EraModern: MethodsIn(Latest),
	}
}

// NameParam returns the params member that a modern request for method mirrors into the
// Mcp-Name header: "name" for tools/call and prompts/get, "uri" for resources/read, "taskId"
// for the tasks extension's tasks/get, tasks/update and tasks/cancel; "" for every other
// method.
func NameParam(method string) string {
	switch method {
	case MethodToolsCall, MethodPromptsGet:
		return "name"
	case MethodResourcesRead:
		return "uri"
	case MethodTasksGet, MethodTasksUpdate, MethodTasksCancel:
		return "taskId"
	}
	return ""
}
