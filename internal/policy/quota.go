package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/go-json-experiment/json/jsontext"
)

// Quotas and rate limits are stateful, the policy is not: Decide names what an allowed call
// charges, requires and draws from (Decision.Charges, Requires, Marks, RateLimits), with keys
// that say whose counter it is and for which window, and the gateway executes that against a
// counter backend. Everything a key depends on — the quota, the principal's subject or the
// role, the window the call's time falls in, the arguments a sequence compares — is known
// when the call is decided.

// Bounds of quotas and rate limits.
const (
	// MaxQuotaWindow bounds a quota's per: (as a duration) and a sequence's within:.
	MaxQuotaWindow = 31 * 24 * time.Hour
	// maxRate bounds calls_per_second, burst and concurrent.
	maxRate = 1_000_000
	// maxKeyPart is the longest subject, role, rule or argument value a key holds as it is;
	// a longer one is replaced by its SHA-256.
	maxKeyPart = 64
)

type quotaKind uint8

const (
	quotaCount    quotaKind = iota // max_calls: per:
	quotaSum                       // sum: max: per:
	quotaSequence                  // after: same: within:
)

// quota is one compiled entry of a permission's quotas:.
type quota struct {
	name    string
	kind    quotaKind
	limit   float64     // max_calls or max
	sum     cel.Program // quotaSum
	sumText string
	per     window
	byRole  bool     // scope: role
	after   string   // quotaSequence: the exact, namespaced tool name
	same    []string // quotaSequence: argument names, sorted
	within  time.Duration
}

// calendar units of a window; zero means a fixed duration.
type calendarUnit uint8

const (
	fixedWindow calendarUnit = iota
	calMinute
	calHour
	calDay
)

// window is a quota's per:: a calendar minute, hour or day in the policy's time zone, or a
// fixed duration aligned to the Unix epoch.
type window struct {
	text  string // as written
	unit  calendarUnit
	every time.Duration // fixedWindow
}

// bounds returns the window t falls in.
func (w window) bounds(t time.Time, loc *time.Location) (start, end time.Time) {
	lt := t.In(loc)
	switch w.unit {
	case calDay:
		y, m, d := lt.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case calHour:
		start = lt.Add(-time.Duration(lt.Minute())*time.Minute - time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
		return start, start.Add(time.Hour)
	case calMinute:
		start = lt.Add(-time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
		return start, start.Add(time.Minute)
	}
	ns, every := t.UnixNano(), w.every.Nanoseconds()
	s := ns - ns%every
	if ns%every < 0 {
		s -= every
	}
	start = time.Unix(0, s).In(loc)
	return start, start.Add(w.every)
}

// appendLabel appends the label that names the window starting at start in a key: the local
// date for a day, the local hour or minute with the zone's offset (so that the hour a daylight
// saving change repeats is two windows), the start in Unix seconds for a duration.
func (w window) appendLabel(b []byte, start time.Time) []byte {
	switch w.unit {
	case calDay:
		return start.AppendFormat(b, "2006-01-02")
	case calHour:
		return start.AppendFormat(b, "2006-01-02T15Z0700")
	case calMinute:
		return start.AppendFormat(b, "2006-01-02T15:04Z0700")
	}
	b = append(b, '@')
	b = strconv.AppendInt(b, start.Unix(), 10)
	b = append(b, '/')
	return append(b, w.text...)
}

func parseWindow(s string) (window, error) {
	switch s {
	case "minute":
		return window{text: s, unit: calMinute}, nil
	case "hour":
		return window{text: s, unit: calHour}, nil
	case "day":
		return window{text: s, unit: calDay}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return window{}, fmt.Errorf(`%s is not a window: want minute, hour, day (calendar windows in the policy's time_zone) or a duration such as "15m" or "4h"`, quote(s))
	}
	if d < time.Second || d > MaxQuotaWindow || d%time.Second != 0 {
		return window{}, fmt.Errorf("%s is out of range: want whole seconds, from 1s to %v", quote(s), MaxQuotaWindow)
	}
	return window{text: s, unit: fixedWindow, every: d}, nil
}

// rateLimit is a compiled rate_limit: of a role or a permission.
type rateLimit struct {
	rule       string // "role:R/rate_limit" or "role:R/permission:N/rate_limit"
	keyPrefix  string // "r:role:<role>:" or "r:perm:<rule>:", followed by the subject
	rate       float64
	burst      int
	concurrent int
}

// markSpec is what a served call of a sequence's after: tool marks: its values of same.
type markSpec struct {
	same []string // sorted
	ttl  time.Duration
}

// validQuotaName reports whether s is 1 to 64 letters, digits, '.', '_' or '-', starting
// with a letter or digit: a name that reads well in reasons and needs no escaping in keys.
func validQuotaName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case i > 0 && (b == '.' || b == '_' || b == '-'):
		default:
			return false
		}
	}
	return true
}

// rateLimit compiles a rate_limit:; nil when there is none or it is invalid.
func (c *compiler) rateLimit(rd *rateLimitDoc, path, rule, keyPrefix string) *rateLimit {
	if rd == nil {
		return nil
	}
	ok := true
	if !rd.HasRate && !rd.HasBurst && !rd.HasConcurrent {
		c.problem(path, "a rate limit needs calls_per_second:, concurrent: or both")
		return nil
	}
	rl := &rateLimit{rule: rule, keyPrefix: keyPrefix}
	if rd.HasRate {
		if rd.CallsPerSecond <= 0 || rd.CallsPerSecond > maxRate {
			c.problem(path+".calls_per_second", "%v is out of range: want more than 0 and at most %d", rd.CallsPerSecond, maxRate)
			ok = false
		}
		rl.rate = rd.CallsPerSecond
		rl.burst = max(1, int(math.Ceil(rd.CallsPerSecond)))
	}
	if rd.HasBurst {
		switch {
		case !rd.HasRate:
			c.problem(path+".burst", "burst: needs calls_per_second: (a bucket that never refills would refuse every call once empty)")
			ok = false
		case rd.Burst < 1 || rd.Burst > maxRate:
			c.problem(path+".burst", "%d is out of range: want 1 to %d", rd.Burst, maxRate)
			ok = false
		}
		rl.burst = int(rd.Burst)
	}
	if rd.HasConcurrent {
		if rd.Concurrent < 1 || rd.Concurrent > maxRate {
			c.problem(path+".concurrent", "%d is out of range: want 1 to %d", rd.Concurrent, maxRate)
			ok = false
		}
		rl.concurrent = int(rd.Concurrent)
	}
	if !ok {
		return nil
	}
	return rl
}

// limits compiles a permission's quotas: and rate_limit:.
func (c *compiler) limits(r *role, perm *permission, pd *permissionDoc, path string) {
	perm.role = r
	for i := range pd.Quotas {
		if q, ok := c.quota(perm, &pd.Quotas[i], pathIndex(path+".quotas", i)); ok {
			perm.quotas = append(perm.quotas, q)
			if q.kind == quotaSum || len(q.same) > 0 {
				perm.quotaArgs = true
			}
		}
	}
	perm.rate = c.rateLimit(pd.RateLimit, path+".rate_limit", perm.id+"/rate_limit", "r:perm:"+string(appendKeyPart(nil, perm.id))+":")
	perm.limited = len(perm.quotas) > 0 || perm.rate != nil || r.rate != nil
}

func (c *compiler) quota(perm *permission, qd *quotaDoc, path string) (quota, bool) {
	q := quota{name: qd.Name}
	if c.d.broken[path] {
		return q, false // not a mapping, as reported
	}
	ok := true
	bad := func(p, format string, args ...any) {
		c.problem(p, format, args...)
		ok = false
	}
	switch first, dup := c.quotaNames[qd.Name]; {
	case qd.Name == "":
		if !c.d.broken[path+".name"] {
			bad(path, "name: is required (it names the quota in reasons and audit records)")
		}
	case !validQuotaName(qd.Name):
		bad(path+".name", "%s is not a quota name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit", quote(qd.Name))
	case dup:
		bad(path+".name", "duplicate quota name %s (first at %s); a quota's name is unique in the file", quote(qd.Name), first)
	default:
		c.quotaNames[qd.Name] = path
	}
	var kinds []string
	if qd.HasMaxCalls {
		kinds = append(kinds, "max_calls")
	}
	if qd.Sum != "" || qd.HasMax {
		kinds = append(kinds, "sum")
	}
	if qd.After != "" || qd.HasSame || qd.Within != "" {
		kinds = append(kinds, "after")
	}
	switch len(kinds) {
	case 0:
		for _, k := range []string{"max_calls", "sum", "max", "after", "same", "within"} {
			if c.d.broken[path+"."+k] {
				return q, false // its value was reported
			}
		}
		bad(path, "a quota needs one of max_calls: (at most N calls per window), sum: with max: (a running total per window) or after: with within: (a sequence)")
		return q, false
	case 1:
	default:
		bad(path, "a quota is of one kind, not %s: write one quota for each", strings.Join(kinds, " and "))
		return q, false
	}
	switch kinds[0] {
	case "max_calls":
		q.kind = quotaCount
		if qd.MaxCalls < 1 {
			bad(path+".max_calls", "%d is out of range: want at least 1", qd.MaxCalls)
		}
		q.limit = float64(qd.MaxCalls)
	case "sum":
		q.kind = quotaSum
		switch {
		case qd.Sum == "":
			if !c.d.broken[path+".sum"] {
				bad(path, "max: needs sum: (the expression whose running total it bounds); a count of calls is max_calls:")
			}
		case perm.kind == KindResource:
			bad(path+".sum", "a resource read has no arguments to sum")
		default:
			q.sumText = qd.Sum
			prg, err := c.compileSum(qd.Sum)
			if err != nil {
				bad(path+".sum", "%v", err)
			}
			q.sum = prg
		}
		switch {
		case !qd.HasMax:
			if !c.d.broken[path+".max"] {
				bad(path, "sum: needs max: (the most the total may reach per window)")
			}
		case qd.Max <= 0:
			bad(path+".max", "%v is out of range: want more than 0", qd.Max)
		}
		q.limit = qd.Max
	case "after":
		q.kind = quotaSequence
		c.sequence(perm, qd, &q, path, bad)
	}
	if q.kind != quotaSequence {
		if qd.Per == "" {
			if !c.d.broken[path+".per"] {
				bad(path, "per: is required: minute, hour, day or a duration such as \"15m\"")
			}
		} else if w, err := parseWindow(qd.Per); err != nil {
			bad(path+".per", "%v", err)
		} else {
			q.per = w
		}
	}
	switch qd.Scope {
	case "", "principal":
	case "role":
		if q.kind == quotaSequence {
			bad(path+".scope", "a sequence is always per principal (the same principal's earlier call); leave scope: out")
		}
		q.byRole = true
	default:
		bad(path+".scope", "%s is not principal or role", quote(qd.Scope))
	}
	return q, ok
}

// sequence compiles the after:, same: and within: of a sequence quota, and records the
// after: tool so that its calls leave the marks the quota looks for.
func (c *compiler) sequence(perm *permission, qd *quotaDoc, q *quota, path string, bad func(string, string, ...any)) {
	if qd.Per != "" {
		bad(path+".per", "a sequence has no per:; within: is how long the earlier call counts")
	}
	switch {
	case qd.After == "":
		if !c.d.broken[path+".after"] {
			bad(path, "after: is required (the tool that must be called first)")
		}
	case strings.Contains(qd.After, "*"):
		bad(path+".after", "%s is a pattern; after: names exactly one tool", quote(qd.After))
	default:
		q.after = c.scoped(KindTool, qd.After)
	}
	switch {
	case qd.Within == "":
		if !c.d.broken[path+".within"] {
			bad(path, "within: is required (how long ago the earlier call may be, such as \"10m\")")
		}
	default:
		d, err := time.ParseDuration(qd.Within)
		switch {
		case err != nil:
			bad(path+".within", `%s is not a duration: want a number with a unit, such as "90s" or "10m"`, quote(qd.Within))
		case d <= 0 || d > MaxQuotaWindow:
			bad(path+".within", "%v is out of range: want more than 0 and at most %v", d, MaxQuotaWindow)
		default:
			q.within = d
		}
	}
	if perm.kind == KindResource && len(qd.Same) > 0 {
		bad(path+".same", "a resource read has no arguments to compare")
	}
	for i, name := range qd.Same {
		switch {
		case name == "":
			bad(pathIndex(path+".same", i), "an argument name is required")
		case slices.Contains(q.same, name):
			bad(pathIndex(path+".same", i), "%s is listed twice", quote(name))
		default:
			q.same = append(q.same, name)
		}
	}
	slices.Sort(q.same)
	if q.after != "" && q.within > 0 {
		c.seqs = append(c.seqs, struct {
			after string
			spec  markSpec
		}{q.after, markSpec{same: q.same, ttl: q.within}})
	}
}

// marks indexes, by after: tool, what its calls mark: one spec per distinct same:, with the
// longest within: of the quotas that read it.
func (c *compiler) marks() {
	for _, s := range c.seqs {
		if c.p.marks == nil {
			c.p.marks = map[string][]markSpec{}
		}
		specs := c.p.marks[s.after]
		i := slices.IndexFunc(specs, func(m markSpec) bool { return slices.Equal(m.same, s.spec.same) })
		if i < 0 {
			c.p.marks[s.after] = append(specs, s.spec)
			continue
		}
		specs[i].ttl = max(specs[i].ttl, s.spec.ttl)
	}
}

// compileSum type-checks and plans a sum: in the environment of when: conditions; it must
// yield a number (a dyn, such as args.quantity, is checked when it is evaluated).
func (c *compiler) compileSum(text string) (cel.Program, error) {
	return c.compileCEL(text, "sum", "a number (int or double)", func(t *cel.Type) bool {
		return t.IsExactType(cel.IntType) || t.IsExactType(cel.UintType) || t.IsExactType(cel.DoubleType) || t.IsExactType(cel.DynType)
	})
}

// limits fills d with what the call charges, requires and draws from under perm, or appends
// to reasons why perm cannot allow it: a sum that cannot be evaluated or is not a finite
// number of at least 0, an argument a sequence compares that the call lacks. st is set when
// perm.quotaArgs.
func (p *Policy) limits(perm *permission, st *evalState, pr *Principal, c *Call, d *Decision, reasons []string) []string {
	t := c.Time
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	for i := range perm.quotas {
		q := &perm.quotas[i]
		switch q.kind {
		case quotaCount, quotaSum:
			amount := 1.0
			if q.kind == quotaSum {
				v, why := q.evalSum(st)
				if why != "" {
					reasons = append(reasons, why)
					continue
				}
				amount = v
			}
			start, end := q.per.bounds(t, p.loc)
			var buf [160]byte
			key := append(buf[:0], "q:"...)
			key = append(key, q.name...)
			if q.byRole {
				key = append(key, ":r:"...)
				key = appendKeyPart(key, perm.role.name)
			} else {
				key = append(key, ":s:"...)
				key = appendKeyPart(key, pr.Subject)
			}
			key = append(key, ':')
			key = q.per.appendLabel(key, start)
			if d.Charges == nil {
				d.Charges = make([]Charge, 0, len(perm.quotas))
			}
			d.Charges = append(d.Charges, Charge{
				Quota: q.name, Rule: perm.id, Key: string(key), Amount: amount, Limit: q.limit,
				Expires: end, Per: q.per.text, Sum: q.sumText,
			})
		case quotaSequence:
			var args map[string]any
			if len(q.same) > 0 {
				var err error
				if args, err = st.arguments(); err != nil {
					reasons = append(reasons, fmt.Sprintf("quota %s: %v", quote(q.name), err))
					continue
				}
			}
			key, missing := sequenceKey(pr.Subject, q.after, q.same, args)
			if missing != "" {
				reasons = append(reasons, fmt.Sprintf("quota %s: argument %s is missing; the sequence compares its value with the earlier call of %s", quote(q.name), quote(missing), q.after))
				continue
			}
			d.Requires = append(d.Requires, Requirement{Quota: q.name, Rule: perm.id, Key: key, After: q.after, Same: q.same, Within: q.within})
		}
	}
	if rl := perm.role.rate; rl != nil {
		d.RateLimits = append(d.RateLimits, rl.limit(pr.Subject))
	}
	if rl := perm.rate; rl != nil {
		d.RateLimits = append(d.RateLimits, rl.limit(pr.Subject))
	}
	return reasons
}

func (rl *rateLimit) limit(subject string) RateLimit {
	var buf [160]byte
	key := append(buf[:0], rl.keyPrefix...)
	key = append(key, "s:"...)
	key = appendKeyPart(key, subject)
	return RateLimit{Rule: rl.rule, Key: string(key), Rate: rl.rate, Burst: rl.burst, Concurrent: rl.concurrent}
}

// evalSum evaluates a sum: for the call; on failure it returns the reason instead.
func (q *quota) evalSum(st *evalState) (float64, string) {
	out, _, err := q.sum.Eval((*activation)(st))
	if err != nil {
		return 0, fmt.Sprintf("quota %s: the sum could not be evaluated (%v): %s", quote(q.name), err, q.sumText)
	}
	var v float64
	switch out := out.(type) {
	case types.Int:
		v = float64(out)
	case types.Uint:
		v = float64(out)
	case types.Double:
		v = float64(out)
	default:
		return 0, fmt.Sprintf("quota %s: the sum yields %s, not a number: %s", quote(q.name), out.Type().TypeName(), q.sumText)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Sprintf("quota %s: the sum is %v; it must be a finite number of at least 0: %s", quote(q.name), v, q.sumText)
	}
	return v, ""
}

// marksFor appends to d the marks that a served call of tool c.Name leaves. st is the decision's
// state (its arguments); a spec whose arguments the call lacks marks nothing, since no call
// can require that mark.
func (p *Policy) marksFor(specs []markSpec, st *evalState, pr *Principal, c *Call, d *Decision) {
	args, err := st.arguments()
	if err != nil {
		return
	}
	for _, s := range specs {
		key, missing := sequenceKey(pr.Subject, c.Name, s.same, args)
		if missing == "" {
			d.Marks = append(d.Marks, Mark{Key: key, TTL: s.ttl})
		}
	}
}

// sequenceKey is the key of the mark that a call of after by subject, with args, leaves for
// the sequences comparing same (sorted): "m:" + after + subject + the canonical JSON of the
// object of those arguments, each part length-prefixed or hashed. missing names the first
// argument of same that args lacks.
func sequenceKey(subject, after string, same []string, args map[string]any) (key, missing string) {
	var vbuf [128]byte
	vals := vbuf[:0]
	if len(same) > 0 {
		vals = append(vals, '{')
		for i, name := range same {
			v, ok := args[name]
			if !ok {
				return "", name
			}
			if i > 0 {
				vals = append(vals, ',')
			}
			vals = appendJSONString(vals, name)
			vals = append(vals, ':')
			vals = appendCanonical(vals, v)
		}
		vals = append(vals, '}')
	}
	var buf [256]byte
	b := append(buf[:0], "m:"...)
	b = appendKeyPart(b, after)
	b = append(b, ":s:"...)
	b = appendKeyPart(b, subject)
	b = append(b, ':')
	b = appendKeyPart(b, vals)
	return string(b), ""
}

// appendKeyPart appends s so that no two strings append the same bytes and a key stays short:
// its length, ':' and s itself; or, when s is longer than maxKeyPart bytes, "h:" and the hex
// SHA-256 of s. An attacker-chosen subject can so never end where another part begins.
func appendKeyPart[S ~string | ~[]byte](b []byte, s S) []byte {
	if len(s) > maxKeyPart {
		sum := sha256.Sum256([]byte(s))
		b = append(b, "h:"...)
		return hex.AppendEncode(b, sum[:])
	}
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// appendCanonical appends the canonical JSON of a decoded argument value: object members in
// order of their names, no spaces, and a number written one way whatever its text ("1",
// "1.0" and "1e0" are all 1), so that two calls with equal values build equal keys.
func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case string:
		return appendJSONString(b, v)
	case json.Number:
		return appendNumber(b, string(v))
	case float64:
		return appendFloat(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case map[string]any:
		names := make([]string, 0, len(v))
		for name := range v {
			names = append(names, name)
		}
		slices.Sort(names)
		b = append(b, '{')
		for i, name := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, name)
			b = append(b, ':')
			b = appendCanonical(b, v[name])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	}
	// A type the argument decoders do not produce: its JSON encoding.
	enc, err := json.Marshal(v)
	if err != nil {
		return fmt.Appendf(b, "!%T", v)
	}
	return append(b, enc...)
}

func appendJSONString(b []byte, s string) []byte {
	out, err := jsontext.AppendQuote(b, s)
	if err != nil { // invalid UTF-8, which the gateway refuses: keep such strings apart
		return strconv.AppendQuote(append(b, '!'), s)
	}
	return out
}

func appendNumber(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.AppendInt(b, i, 10)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil { // out of range: the text, as written, tells such numbers apart
		return append(b, s...)
	}
	return appendFloat(b, f)
}

func appendFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
