package config

import (
	"strings"
	"testing"
	"time"
)

func TestBreakerAndBulkheadProblems(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"ratio over 1", "breaker: {failure_ratio: 1.5}", "upstreams[0].breaker.failure_ratio: 1.5 is out of range: want 0 (this rule off) to 1"},
		{"nothing opens it", "breaker: {failures: 0, failure_ratio: 0}", "nothing opens the circuit: set one, or disabled: true"},
		{"cool-down too short", "breaker: {cool_down: 1ms}", "upstreams[0].breaker.cool_down: 1ms is out of range: want 100ms to 1h"},
		{"negative failures", "breaker: {failures: -1}", "upstreams[0].breaker.failures: -1 is out of range"},
		{"unknown key", "breaker: {failure: 3}", `unknown key "failure"`},
		{"queue without concurrent", "bulkhead: {queue: 10}", "upstreams[0].bulkhead: queue and queue_wait need concurrent"},
		{"negative concurrent", "bulkhead: {concurrent: -2}", "upstreams[0].bulkhead.concurrent: -2 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFake([]byte("upstreams: [{name: a, stdio: {command: a}, "+tt.yaml+"}]"), "t.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	// A disabled breaker is not checked further; a zero Breaker built in code is the default.
	cfg, err := parseFake([]byte("upstreams: [{name: a, stdio: {command: a}, breaker: {disabled: true, failure_ratio: 7}}]"), "t.yaml")
	if err != nil {
		t.Fatalf("disabled breaker with an odd value: %v", err)
	}
	cfg.Upstreams[0].Breaker = Breaker{}
	if err := cfg.Validate(); err != nil {
		t.Errorf("zero Breaker: %v, want the defaults to apply", err)
	}
	if b := DefaultBreaker(); b.Failures != 5 || b.CoolDown != 5*time.Second {
		t.Errorf("DefaultBreaker = %+v, want 5 failures and a 5s cool-down as documented", b)
	}
}
