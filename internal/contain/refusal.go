package contain

import (
	"net/http"
	"time"
)

// Refusal kinds: what stopped a request, as the audit record's kind names it.
const (
	KindNetwork     = "network"                 // the client's address is outside the allowed networks
	KindBlocked     = "block"                   // the client's address is blocked
	KindSuspended   = "suspend"                 // the principal is suspended
	KindRateLimit   = "rate_limit"              // a rate limit or concurrency limit is reached
	KindQuota       = "quota"                   // a policy quota (count, running total or sequence) refuses the call
	KindUnavailable = "containment_unavailable" // the limit's state could not be read (fail closed)
)

// Refusal is a request the containment step stopped: never forwarded, answered with Status,
// and recorded.
type Refusal struct {
	// Kind is one of the Kind constants.
	Kind string
	// Name is the limit, quota, block or network list that refused (for example
	// "per_principal", a quota's name, "allowed_networks").
	Name string
	// Rule is the policy rule the limit belongs to, when it comes from the policy.
	Rule string
	// Reason says why, in words an operator and the client's developer understand. It never
	// names another principal.
	Reason string
	// RetryAfter, when positive, is when the same request may succeed (Retry-After).
	RetryAfter time.Duration
}

// Status is the HTTP status of the refusal: 429 for limits and quotas, 503 when the state of a
// limit could not be read, 403 otherwise.
func (r *Refusal) Status() int {
	switch r.Kind {
	case KindRateLimit, KindQuota:
		return http.StatusTooManyRequests
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusForbidden
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds (at least 1), for the
// Retry-After header; 0 when there is none.
func (r *Refusal) RetryAfterSeconds() int {
	if r.RetryAfter <= 0 {
		return 0
	}
	s := int((r.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}
