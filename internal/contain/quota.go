package contain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/policy"
)

// The policy decides without state: an allowed call's Decision names what it charges
// (Charges), what must have happened before (Requires), what it leaves for later calls (Marks)
// and the buckets it draws from (RateLimits). Guard.Limit checks the Requires and takes the
// RateLimits and Charges, with the configuration's rate limits, in one Backend.Admit
// (limit.go); Guard.Refund gives the Charges back when the admitted call is then not
// forwarded; Marks records, once the call has been served, what it leaves for sequences.

// Marks records, once an allowed call has been served, the marks it leaves for the sequence
// quotas that name it as after:. A mark that cannot be recorded is reported in err; the later
// call that requires it will be refused (fail closed).
func Marks(ctx context.Context, b Backend, d *policy.Decision) error {
	if d == nil || !d.Allow {
		return nil
	}
	var errs []error
	for _, m := range d.Marks {
		if err := b.Mark(ctx, m.Key, m.TTL); err != nil {
			errs = append(errs, fmt.Errorf("mark for sequence quotas: %w", err))
		}
	}
	return errors.Join(errs...)
}

// chargeReason says, for a refused charge, what the total would have been, the limit and the
// total as it stands: `quota "daily-notional": 1 050 000 of 1 000 000 per day would be
// exceeded (now 950 000)`.
func chargeReason(ch *policy.Charge, total float64) string {
	unit := ""
	if ch.Sum == "" {
		unit = " calls"
	}
	return fmt.Sprintf("quota %q: %s of %s%s per %s would be exceeded (now %s)",
		ch.Quota, groupDigits(total+ch.Amount), groupDigits(ch.Limit), unit, ch.Per, groupDigits(total))
}

func requirementReason(r *policy.Requirement) string {
	same := ""
	if len(r.Same) > 0 {
		same = " with the same " + strings.Join(r.Same, ", ")
	}
	return fmt.Sprintf("quota %q: this call must follow a call of %s%s by the same principal within %s, and none was served",
		r.Quota, r.After, same, shortDuration(r.Within))
}

// groupDigits writes a number with its thousands apart, as reasons show amounts: 1 050 000,
// 402.5, 12 345.25.
func groupDigits(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if math.Abs(v) >= 1e21 || strings.ContainsAny(s, "eE") {
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	if dot := strings.IndexByte(s, '.'); dot >= 0 && len(s)-dot > 3 {
		s = strconv.FormatFloat(v, 'f', 2, 64) // cents, not float noise
	}
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// shortDuration writes 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
