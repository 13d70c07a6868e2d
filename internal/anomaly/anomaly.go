// Package anomaly learns how each principal normally behaves from its own calls and reports
// departures from it as signals with a severity; a Playbook maps signals to response actions.
//
// The gateway feeds one Event per call with Detector.Observe, which never blocks: the event
// goes into a bounded queue and one goroutine (Detector.Run) keeps every profile and raises the
// signals. Nothing here is on the request path and nothing here acts: the gateway executes the
// actions a Playbook names. State is in memory, bounded, and per instance: profiles are not
// shared between the instances of a deployment and are relearned after a restart.
package anomaly

import (
	"fmt"
	"net/netip"
	"time"
)

// Event is what the gateway reports about one call once its outcome is known. It carries no
// arguments and no results.
type Event struct {
	Time      time.Time  // when the call was made; windows and hours are measured in event time
	Principal string     // stable identity key of the caller; events without one are ignored
	Address   netip.Addr // the caller's address, when known
	Tool      string     // namespaced tool name; "" for calls that are not tool calls
	Denied    bool       // policy denied the call
	Failed    bool       // the upstream failed the call
}

// Signal is one departure from a principal's normal behaviour.
type Signal struct {
	Kind      Kind
	Severity  Severity
	Principal string
	Address   netip.Addr // of the call that raised the signal
	Tool      string     // of the call that raised the signal; "" for calls that are not tool calls
	Detail    string     // for people: what was seen and against which threshold
	Time      time.Time  // of the call that raised the signal
}

// Kind is the kind of a signal.
type Kind uint8

// The kinds of signal. KindAny is not the kind of any signal: in a Rule it matches them all.
const (
	KindAny         Kind = iota // "*"
	KindUnusualHour             // a call in an hour the principal does not work in
	KindNewTool                 // the first use of a tool by a principal with a learned profile
	KindDenialBurst             // many policy denials in a short window: privilege-escalation probing
	KindVolumeSpike             // far more calls in a minute than the principal's learned rate
	numKinds
)

var kindNames = [numKinds]string{"*", "unusual_hour", "new_tool", "denial_burst", "volume_spike"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind returns the kind named name: unusual_hour, new_tool, denial_burst, volume_spike or
// "*" (KindAny).
func ParseKind(name string) (Kind, error) {
	for k, n := range kindNames {
		if n == name {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q: want unusual_hour, new_tool, denial_burst, volume_spike or \"*\"", name)
}

// MarshalText returns the kind's name.
func (k Kind) MarshalText() ([]byte, error) {
	if k >= numKinds {
		return nil, fmt.Errorf("invalid signal kind %d", uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText parses a kind's name (ParseKind).
func (k *Kind) UnmarshalText(text []byte) error {
	v, err := ParseKind(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Severity orders signals. The zero value is SeverityLow, so a Rule without a MinSeverity
// matches every severity.
type Severity uint8

// Severities, lowest first.
const (
	SeverityLow Severity = iota
	SeverityMedium
	SeverityHigh
	SeverityCritical
	numSeverities
)

var severityNames = [numSeverities]string{"low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < numSeverities {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// ParseSeverity returns the severity named name: low, medium, high or critical.
func ParseSeverity(name string) (Severity, error) {
	for s, n := range severityNames {
		if n == name {
			return Severity(s), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: want low, medium, high or critical", name)
}

// MarshalText returns the severity's name.
func (s Severity) MarshalText() ([]byte, error) {
	if s >= numSeverities {
		return nil, fmt.Errorf("invalid severity %d", uint8(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText parses a severity's name (ParseSeverity).
func (s *Severity) UnmarshalText(text []byte) error {
	v, err := ParseSeverity(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
