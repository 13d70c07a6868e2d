package anomaly

import "fmt"

// Action is a response to a signal. The gateway executes actions; this package only names them.
type Action uint8

// The actions, in the order Playbook.Actions returns them.
const (
	ActionAlert            Action = iota // tell people (log, SIEM, notification)
	ActionRequireApproval                // the principal's further calls need a human's approval
	ActionSuspendPrincipal               // refuse every call of the principal until lifted
	ActionBlockAddress                   // refuse every call from the signal's address until lifted
	ActionEscalate                       // open an incident for the security team
	numActions
)

var actionNames = [numActions]string{"alert", "require_approval", "suspend_principal", "block_address", "escalate"}

func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ParseAction returns the action named name: alert, require_approval, suspend_principal,
// block_address or escalate.
func ParseAction(name string) (Action, error) {
	for a, n := range actionNames {
		if n == name {
			return Action(a), nil
		}
	}
	return 0, fmt.Errorf("unknown action %q: want alert, require_approval, suspend_principal, block_address or escalate", name)
}

// MarshalText returns the action's name.
func (a Action) MarshalText() ([]byte, error) {
	if a >= numActions {
		return nil, fmt.Errorf("invalid action %d", uint8(a))
	}
	return []byte(actionNames[a]), nil
}

// UnmarshalText parses an action's name (ParseAction).
func (a *Action) UnmarshalText(text []byte) error {
	v, err := ParseAction(string(text))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Rule names the actions for the signals of one kind (or of every kind, KindAny) at or above a
// severity.
type Rule struct {
	Signal      Kind
	MinSeverity Severity
	Actions     []Action
}

// Playbook maps signals to actions. Every matching rule contributes: the order of the rules
// does not matter.
type Playbook []Rule

// Actions returns the union of the actions of the rules that match s, each once, in the order of
// the Action constants (alert first, escalate last); nil when no rule matches.
func (p Playbook) Actions(s Signal) []Action {
	var set uint32
	for _, r := range p {
		if (r.Signal == KindAny || r.Signal == s.Kind) && s.Severity >= r.MinSeverity {
			for _, a := range r.Actions {
				set |= 1 << a
			}
		}
	}
	if set == 0 {
		return nil
	}
	var out []Action
	for a := range numActions {
		if set&(1<<a) != 0 {
			out = append(out, a)
		}
	}
	return out
}
