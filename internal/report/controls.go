package report

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// Section ids of the report, which the controls point at.
const (
	secVerification = "verification"
	secCheckpoints  = "checkpoints"
	secActivity     = "activity"
	secSOXAccess    = "sox-access"
	secSOXPolicy    = "sox-policy"
	secSOXDuties    = "sox-duties"
	secMiFIDOrders  = "mifid-orders"
	secMiFIDRetain  = "mifid-retention"
	secGDPRRequests = "gdpr-requests"
	secGDPRMasking  = "gdpr-masking"
	secGDPRErasure  = "gdpr-erasure"
	secSecurity     = "security"
)

// seedControls is the mapping of MCP features to compliance requirements and regulations that
// the report is built around (docs/report.md, "The mapping table"): every row is a section of
// the report that names the evidence covering it.
var seedControls = []Control{
	{Feature: "Granular Access Control (Tool-level)", Requirement: "Least Privilege, Data Minimization", Regulations: []string{"GDPR", "GLBA", "MiFID II"}},
	{Feature: "Comprehensive Audit Trails (Tool Invocation)", Requirement: "Decision Transparency, Accountability, Non-repudiation", Regulations: []string{"GDPR", "MiFID II", "SOX"}},
	{Feature: "Structured Tool Definitions", Requirement: "Predictable Agent Behavior, Reduced Error Rate", Regulations: []string{"MiFID II (Algorithmic Trading)", "SOX"}},
	{Feature: "Secure Communication (TLS)", Requirement: "Data Confidentiality, Integrity", Regulations: []string{"GDPR", "GLBA"}},
	{Feature: "Input/Output Validation within Tools", Requirement: "Data Integrity, Error Prevention", Regulations: []string{"SOX", "MiFID II"}},
}

// controls fills the mapping table's evidence from the collected report.
func controls(r *Report) []Control {
	out := make([]Control, len(seedControls))
	copy(out, seedControls)
	masked := int64(0)
	for _, n := range r.GDPR.Masked {
		masked += n
	}
	redacted := int64(0)
	for _, n := range r.GDPR.Redacted {
		redacted += n
	}
	cosigned := 0
	for _, c := range r.Checkpoints {
		if len(c.Witnesses) > 0 {
			cosigned++
		}
	}
	errors := int64(0)
	for _, b := range r.Activity.Series {
		errors += b.Errors
	}
	out[0].Evidence = []string{
		fmt.Sprintf("%d calls refused by the policy, rate limits or containment, by rule", r.Security.Denials),
		fmt.Sprintf("%d changes to access (API keys, operators, tool approvals, blocks) and %d policy reloads with their hashes", r.SOX.AccessChangesTotal, r.SOX.PolicyTotal),
		fmt.Sprintf("%d values masked in %d results, by masking rule", masked, r.GDPR.MaskedResults),
	}
	out[0].Anchors = []string{secSecurity, secSOXAccess, secSOXPolicy, secGDPRMasking}
	out[1].Evidence = []string{
		fmt.Sprintf("the whole log (%d records) verified before this report was built; %d records are covered by signed checkpoints", r.Verification.Records, r.Verification.Covered),
		fmt.Sprintf("%d checkpoints in the chain, %d of those listed cosigned by a witness", r.CheckpointsTotal, cosigned),
		fmt.Sprintf("%d records in the period; %d order-type calls with principal, time, arguments, approval and outcome", r.Activity.Records, r.MiFID.OrdersTotal),
		fmt.Sprintf("%d approvals, %d segregation-of-duties violations", r.SOX.ApprovalsTotal, r.SOX.ViolationsTotal),
	}
	out[1].Anchors = []string{secVerification, secCheckpoints, secMiFIDOrders, secSOXDuties}
	out[2].Evidence = []string{
		fmt.Sprintf("%d tools quarantined after their definition changed, and the approvals of new definitions among the access changes", r.Security.Quarantines),
		fmt.Sprintf("%d order-type calls (tools %s), each traced to its decision and outcome", r.MiFID.OrdersTotal, strings.Join(r.OrderTools, ", ")),
	}
	out[2].Anchors = []string{secSecurity, secSOXAccess, secMiFIDOrders}
	auth := make([]string, 0, len(r.Activity.ByAuthMethod))
	for _, c := range r.Activity.ByAuthMethod {
		auth = append(auth, fmt.Sprintf("%s %d", c.Name, c.Count))
	}
	authText := "none in the period"
	if len(auth) > 0 {
		authText = strings.Join(auth, ", ")
	}
	out[3].Evidence = []string{
		"the log does not record the transport of each call: whether TLS is on is in the gateway's configuration (tls:), which a reader should check",
		"calls by authentication method: " + authText,
		fmt.Sprintf("%d authentication failures", r.Security.AuthFailures),
	}
	out[3].Anchors = []string{secActivity, secSecurity}
	out[4].Evidence = []string{
		fmt.Sprintf("%d argument values redacted before they were stored, by reason", redacted),
		fmt.Sprintf("%d calls ended in an error or a tool error", errors),
		fmt.Sprintf("%d calls refused before they reached a tool", r.Security.Denials),
	}
	out[4].Anchors = []string{secGDPRMasking, secActivity, secSecurity}
	return out
}

// maxRetention bounds the retention records shown as in force.
const maxRetention = 10

// retention keeps the newest retention records written before the period ends: what the log
// says was pruned and under which retention. They may predate the period.
func (c *collector) retention(sr *store.Record) error {
	var rec audit.Record
	if err := decode(sr.Data, &rec); err != nil {
		return fmt.Errorf("record %d: %w", sr.Seq, err)
	}
	ring := &c.r.MiFID.Retention
	*ring = append(*ring, Retention{Ref: Ref{Seq: rec.Seq, Time: rec.Time.UTC()}, Summary: retentionSummary(&rec)})
	if len(*ring) > maxRetention {
		*ring = (*ring)[1:]
	}
	return nil
}

// retentionDetail is the Detail of a retention record (audit.RetentionDetail), read leniently.
type retentionDetail struct {
	Policies []struct {
		Kind      string `json:"kind"`
		Retention string `json:"retention"`
		Before    string `json:"before"`
	} `json:"policies"`
	Pruned *int64 `json:"pruned"`
	Held   int64  `json:"held"`
}

// retentionSummary says which retention a retention record applied and what it pruned; a
// Detail of another shape is summed up as it is.
func retentionSummary(rec *audit.Record) string {
	var d retentionDetail
	if json.Unmarshal(rec.Detail, &d) != nil || len(d.Policies) == 0 {
		ev := subjectEvent(Ref{}, rec)
		return strings.TrimSpace(strings.Join([]string{ev.Action, ev.Outcome, ev.Summary}, " "))
	}
	var b strings.Builder
	for i, p := range d.Policies {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s kept %s (records before %s pruned)", clip(p.Kind, 40), clip(p.Retention, 20), clip(p.Before, 40))
	}
	if d.Pruned != nil {
		fmt.Fprintf(&b, "; %d records pruned", *d.Pruned)
	}
	if d.Held > 0 {
		fmt.Fprintf(&b, ", %d kept under a legal hold", d.Held)
	}
	return clip(b.String(), maxSummaryBytes)
}
