package report

import (
	"encoding/json"
	"time"
)

// Report is the evidence of one period, as the JSON form carries it and the HTML shows it.
// Every list is bounded by MaxRows (its Total says how many there were); counts cover every
// record of the period.
type Report struct {
	Version int       `json:"version"`
	Origin  string    `json:"origin"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Built   time.Time `json:"built"`
	// Elapsed is how long the build took, in milliseconds.
	Elapsed int64 `json:"elapsed_ms"`
	// LogKey names the key that signs the log's checkpoints and this report.
	LogKey     string   `json:"log_key"`
	OrderTools []string `json:"order_tools"`
	MaxRows    int      `json:"max_rows"`

	Verification     Verification `json:"verification"`
	Checkpoints      []Checkpoint `json:"checkpoints"`
	CheckpointsTotal int64        `json:"checkpoints_total"`
	Witnesses        []string     `json:"witnesses,omitempty"`

	Activity Activity `json:"activity"`
	SOX      SOX      `json:"sox"`
	MiFID    MiFID    `json:"mifid"`
	GDPR     GDPR     `json:"gdpr"`
	Security Security `json:"security"`
	// Controls is the mapping of controls to regulations, each row naming the evidence that
	// covers it.
	Controls []Control `json:"controls"`
}

// Verification is what verifying the whole log found before the report was built.
type Verification struct {
	Status              string   `json:"status"` // always "verified": a log that does not verify gets no report
	Records             int64    `json:"records"`
	Covered             int64    `json:"covered"`
	DatabaseCheckpoints int      `json:"database_checkpoints"`
	ExternalCheckpoints int      `json:"external_checkpoints"`
	NewestExternal      int64    `json:"newest_external"`
	Warnings            []string `json:"warnings,omitempty"`
	ElapsedMillis       int64    `json:"elapsed_ms"`
}

// Checkpoint is one signed tree size of the log, where copies of it were found, and which of
// the configured witnesses cosigned it.
type Checkpoint struct {
	Size      int64     `json:"size"`
	Time      time.Time `json:"time,omitzero"`
	RootHash  string    `json:"root_hash"`
	Sources   []string  `json:"sources"`
	Witnesses []string  `json:"witnesses,omitempty"`
}

// Activity counts the records of the period.
type Activity struct {
	Records int64            `json:"records"`
	ByKind  map[string]int64 `json:"by_kind"`
	// Pruned counts the records of the period that retention pruned to their indexed fields.
	Pruned int64 `json:"pruned"`
	// Series are the calls, denials and errors per interval of the chart: an hour (or two)
	// for a period of up to two days, else a day or several, as Bucket says; at most 62.
	Bucket  string     `json:"bucket"`
	Series  []Interval `json:"series"`
	ByTool  []Count    `json:"by_tool"`
	ByActor []Count    `json:"by_principal"`
	// ByAuthMethod counts the calls by how their principal authenticated.
	ByAuthMethod []Count `json:"calls_by_auth_method"`
}

// Interval is one bar of the activity chart.
type Interval struct {
	Start   time.Time `json:"start"`
	Calls   int64     `json:"calls"`
	Denials int64     `json:"denials"`
	Errors  int64     `json:"errors"`
}

// Count is a name and how often it occurred.
type Count struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// Ref points at a record of the log, so that a reader can prove it with `mcpguard audit proof`.
type Ref struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
}

// SOX is the evidence of changes to access and of segregation of duties.
type SOX struct {
	AccessChanges      []AccessChange  `json:"access_changes"`
	AccessChangesTotal int64           `json:"access_changes_total"`
	PolicyVersions     []PolicyVersion `json:"policy_versions"`
	PolicyTotal        int64           `json:"policy_versions_total"`
	Approvals          []Approval      `json:"approvals"`
	ApprovalsTotal     int64           `json:"approvals_total"`
	// Violations are the approvals whose approver is the requester, or that were granted with
	// no approver named: every one, up to MaxRows.
	Violations      []Approval `json:"violations"`
	ViolationsTotal int64      `json:"violations_total"`
}

// AccessChange is an administrative act (kind admin or a refused one): API keys, operators,
// tool approvals, blocks.
type AccessChange struct {
	Ref
	Actor      string          `json:"actor"`
	AuthMethod string          `json:"auth_method,omitempty"`
	Act        string          `json:"act"`
	Result     string          `json:"result"`
	Target     json.RawMessage `json:"target,omitempty"`
	Reason     string          `json:"reason,omitempty"`
}

// PolicyVersion is a policy reload: the file's hash, the one it replaced, and what changed.
type PolicyVersion struct {
	Ref
	File     string `json:"file,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Previous string `json:"previous_sha256,omitempty"`
	Change   string `json:"change,omitempty"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
}

// Approval is a decision on a held call.
type Approval struct {
	Ref
	ID           string `json:"id"`
	Tool         string `json:"tool"`
	Requester    string `json:"requester"`
	Approver     string `json:"approver,omitempty"`
	ApproverRole string `json:"approver_role,omitempty"`
	Status       string `json:"status"`
	Violation    string `json:"violation,omitempty"`
}

// MiFID is the evidence of order-type calls and of record keeping.
type MiFID struct {
	Orders      []Order `json:"orders"`
	OrdersTotal int64   `json:"orders_total"`
	// Retention is the retention in force as the log last recorded it (kind retention), or
	// empty when the log records none.
	Retention []Retention `json:"retention"`
}

// Order is one call of an order tool: who, when, the arguments as stored (redacted), the
// approval it was held for and its outcome.
type Order struct {
	Ref
	RequestID string          `json:"request_id"`
	Principal string          `json:"principal"`
	Roles     []string        `json:"roles,omitempty"`
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Rule      string          `json:"rule,omitempty"`
	Decision  string          `json:"decision"`
	// Approval is the id and approver of the approval granted for this call, if it was held.
	Approval string `json:"approval,omitempty"`
	Approver string `json:"approver,omitempty"`
	Outcome  string `json:"outcome"`
	Error    string `json:"error,omitempty"`
}

// Retention is a retention or pruning record, as much of it as the report could read.
type Retention struct {
	Ref
	Summary string `json:"summary"`
}

// GDPR is the evidence of data-subject requests, erasures, retention, legal holds and
// masking.
type GDPR struct {
	Requests        []SubjectEvent   `json:"requests"`
	RequestsTotal   int64            `json:"requests_total"`
	Erasures        []SubjectEvent   `json:"erasures"`
	ErasuresTotal   int64            `json:"erasures_total"`
	Holds           []SubjectEvent   `json:"legal_holds"`
	HoldsTotal      int64            `json:"legal_holds_total"`
	Pruning         []SubjectEvent   `json:"pruning"`
	PruningTotal    int64            `json:"pruning_total"`
	Masked          map[string]int64 `json:"masked_by_rule"`
	MaskedResults   int64            `json:"masked_results"`
	Redacted        map[string]int64 `json:"redacted_by_reason"`
	MedianMillis    int64            `json:"median_completion_ms"`
	MaxMillis       int64            `json:"max_completion_ms"`
	CompletionKnown int64            `json:"completion_known"`
}

// SubjectEvent is a record of kind subject, erasure, retention or legal_hold, as much of it as
// the report could read: the Detail's fields are read defensively, and the rest is summed up.
type SubjectEvent struct {
	Ref
	Actor   string `json:"actor,omitempty"`
	Action  string `json:"action,omitempty"`
	Subject string `json:"subject,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	// CompletionMillis is the time from the request to this record, when the record says when
	// the request was received (or how long it took); -1 when it does not.
	CompletionMillis int64  `json:"completion_ms"`
	Summary          string `json:"summary,omitempty"`
}

// Security is denials, anomalies and the responses to them.
type Security struct {
	DenialsByRule   []Count `json:"denials_by_rule"`
	Denials         int64   `json:"denials"`
	AuthFailures    int64   `json:"auth_failures"`
	RateLimited     int64   `json:"rate_limited"`
	Quarantines     int64   `json:"quarantines"`
	Alerts          []Event `json:"alerts"`
	AlertsTotal     int64   `json:"alerts_total"`
	Responses       []Event `json:"responses"`
	ResponsesTotal  int64   `json:"responses_total"`
	ResponsesByKind []Count `json:"responses_by_action"`
}

// Event is an alert, a block or a suspension.
type Event struct {
	Ref
	Kind   string `json:"kind"`
	Action string `json:"action,omitempty"`
	Target string `json:"target,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
	Signal string `json:"signal,omitempty"`
}

// Control is one row of the mapping of controls to regulations: the feature, the requirement,
// the regulations, and the evidence in this report that covers it.
type Control struct {
	Feature     string   `json:"feature"`
	Requirement string   `json:"requirement"`
	Regulations []string `json:"regulations"`
	Evidence    []string `json:"evidence"`
	// Anchor is the id of the report section holding the evidence.
	Anchors []string `json:"sections"`
}
