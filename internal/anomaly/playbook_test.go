package anomaly

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlaybookActions(t *testing.T) {
	t.Parallel()
	// The seed's incident response: probing suspends the principal, anything critical opens
	// an incident, and everything at medium or above is alerted on.
	book := Playbook{
		{Signal: KindAny, MinSeverity: SeverityMedium, Actions: []Action{ActionAlert}},
		{Signal: KindDenialBurst, Actions: []Action{ActionSuspendPrincipal, ActionAlert}},
		{Signal: KindVolumeSpike, MinSeverity: SeverityHigh, Actions: []Action{ActionBlockAddress, ActionRequireApproval}},
		{Signal: KindAny, MinSeverity: SeverityCritical, Actions: []Action{ActionEscalate, ActionSuspendPrincipal}},
	}
	tests := []struct {
		name string
		s    Signal
		want []Action
	}{
		{"low new tool: below every rule", Signal{Kind: KindNewTool, Severity: SeverityLow}, nil},
		{"medium unusual hour", Signal{Kind: KindUnusualHour, Severity: SeverityMedium}, []Action{ActionAlert}},
		{"denial burst: alert once", Signal{Kind: KindDenialBurst, Severity: SeverityHigh}, []Action{ActionAlert, ActionSuspendPrincipal}},
		{"medium volume spike", Signal{Kind: KindVolumeSpike, Severity: SeverityMedium}, []Action{ActionAlert}},
		{"high volume spike, in the fixed order", Signal{Kind: KindVolumeSpike, Severity: SeverityHigh}, []Action{ActionAlert, ActionRequireApproval, ActionBlockAddress}},
		{"critical denial burst", Signal{Kind: KindDenialBurst, Severity: SeverityCritical}, []Action{ActionAlert, ActionSuspendPrincipal, ActionEscalate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, book.Actions(tt.s)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
	if got := Playbook(nil).Actions(Signal{Kind: KindDenialBurst, Severity: SeverityCritical}); got != nil {
		t.Errorf("an empty playbook names %v", got)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for k := range numKinds {
		if got, err := ParseKind(k.String()); got != k || err != nil {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	for s := range numSeverities {
		if got, err := ParseSeverity(s.String()); got != s || err != nil {
			t.Errorf("ParseSeverity(%q) = %v, %v", s.String(), got, err)
		}
	}
	for a := range numActions {
		if got, err := ParseAction(a.String()); got != a || err != nil {
			t.Errorf("ParseAction(%q) = %v, %v", a.String(), got, err)
		}
	}
	errs := []struct {
		err  error
		want string
	}{
		{second(ParseKind("brute_force")), `unknown signal "brute_force": want unusual_hour, new_tool, denial_burst, volume_spike or "*"`},
		{second(ParseSeverity("High")), `unknown severity "High": want low, medium, high or critical`},
		{second(ParseAction("block_ip")), `unknown action "block_ip": want alert, require_approval, suspend_principal, block_address or escalate`},
	}
	for _, e := range errs {
		if e.err == nil || e.err.Error() != e.want {
			t.Errorf("got error %v, want %s", e.err, e.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestText: signals and rules read and write their names, so a Signal is legible as JSON and a
// Rule decodes from configuration as written.
func TestText(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Signal{Kind: KindDenialBurst, Severity: SeverityHigh, Principal: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Kind":"denial_burst","Severity":"high"`) {
		t.Errorf("signal as JSON: %s", b)
	}
	var r Rule
	if err := json.Unmarshal([]byte(`{"Signal":"*","MinSeverity":"medium","Actions":["escalate","alert"]}`), &r); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Rule{Signal: KindAny, MinSeverity: SeverityMedium, Actions: []Action{ActionEscalate, ActionAlert}}, r); diff != "" {
		t.Errorf("rule (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"Actions":["shutdown"]}`), &r); err == nil || !strings.Contains(err.Error(), `unknown action "shutdown"`) {
		t.Errorf("an unknown action decodes: %v", err)
	}
}
