// Package mask hides personal data in tool results, by JSON path and by detector, as the
// policy's masking rules say for a caller: pseudonymised, partly masked or dropped.
//
// A Plan is what applies to one call: compiled once (the policy caches it per set of rules),
// immutable, safe for concurrent use. Apply reads a tools/call result as raw JSON once, copying
// what no rule touches byte for byte, and returns the masked result with the number of values
// each rule masked. It works on both eras' results: the content array (text blocks, and the
// text of embedded resources) and structuredContent. Nothing here does I/O.
package mask

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mcpguard/mcpguard/internal/redact"
)

// Action is what a rule does to a value it selects.
type Action uint8

// Actions, from the least to the most restrictive: where two rules select one value, the more
// restrictive one masks it.
const (
	// Partial keeps part of the value: the first and last 4 characters of an IBAN, the last 4
	// digits of a card or account number, an e-mail's first letter and domain, a name's
	// initials (see [partial]).
	Partial Action = iota + 1
	// Pseudonymise replaces the value with its token: TokenPrefix and 128 bits of
	// HMAC-SHA256 in hex, the same for the same value, so that rows still correlate.
	Pseudonymise
	// Drop removes the value: an object member is left out, an array element becomes null,
	// a span of text becomes "[redacted]".
	Drop
)

// Text of masked values.
const (
	// TokenPrefix starts every token, as in the audit log's redaction.
	TokenPrefix = redact.TokenPrefix
	// Dropped replaces a span of text that a drop rule found.
	Dropped = "[redacted]"

	tokenLen = len(TokenPrefix) + 32
)

var actionNames = [...]string{Partial: "partial", Pseudonymise: "pseudonymise", Drop: "drop"}

func (a Action) String() string {
	if a >= Partial && a <= Drop {
		return actionNames[a]
	}
	return "none"
}

// ParseAction returns the action of a name: "pseudonymise", "partial" or "drop".
func ParseAction(name string) (Action, error) {
	for a := Partial; a <= Drop; a++ {
		if actionNames[a] == name {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%q is not an action: want pseudonymise, partial or drop", name)
}

// Rule is one masking rule: what it selects — values by path in the structured result, or data
// that detectors find in text — and what it does to them.
type Rule struct {
	// Name names the rule in Stats and in audit records.
	Name   string
	Action Action
	// Paths select values of structuredContent, and of a text block that holds JSON (a tool
	// that returns structured content also returns it serialised as text).
	Paths []Path
	// Detectors look into the text of content blocks and into every string (and every long
	// number) of structuredContent, member names included.
	Detectors []Detector
}

// Plan is the masking that applies to one call: its rules merged.
type Plan struct {
	rules []string // rule names, by index
	root  *node    // the paths; nil when none
	det   [numDetectors]detAction
	anyDt bool
	d     *Detection
	walks sync.Pool // of *walker
}

// detAction is what a detector's finds become, and under which rule they count.
type detAction struct {
	act  Action // 0: the detector is off
	rule int
}

// node is a step of the paths' trie. Several nodes can match one value (a "*" and a name);
// the walker follows all of them.
type node struct {
	members map[string]*node
	indices map[int]*node
	any     *node
	act     Action // a path ends here; 0 when none does
	rule    int
}

// NewPlan merges rules into a plan. Where two rules select the same value, or name the same
// detector, the more restrictive action wins (drop over pseudonymise over partial), and the
// first such rule is counted. d says what the names and account-number detectors look for;
// nil finds nothing for them.
func NewPlan(rules []*Rule, d *Detection) *Plan {
	if d == nil {
		d = &Detection{}
	}
	p := &Plan{d: d}
	for i, r := range rules {
		p.rules = append(p.rules, r.Name)
		for _, path := range r.Paths {
			if p.root == nil {
				p.root = &node{}
			}
			n := p.root
			for _, s := range path.segs {
				n = n.child(s)
			}
			if r.Action > n.act {
				n.act, n.rule = r.Action, i
			}
		}
		for _, det := range r.Detectors {
			if det < numDetectors && r.Action > p.det[det].act {
				p.det[det] = detAction{r.Action, i}
				p.anyDt = true
			}
		}
	}
	return p
}

func (n *node) child(s segment) *node {
	var c **node
	switch s.kind {
	case segAny:
		c = &n.any
	case segIndex:
		if n.indices == nil {
			n.indices = map[int]*node{}
		}
		nc := n.indices[s.index]
		if nc == nil {
			nc = &node{}
			n.indices[s.index] = nc
		}
		return nc
	default:
		if n.members == nil {
			n.members = map[string]*node{}
		}
		nc := n.members[s.name]
		if nc == nil {
			nc = &node{}
			n.members[s.name] = nc
		}
		return nc
	}
	if *c == nil {
		*c = &node{}
	}
	return *c
}

// Rules returns the names of the plan's rules.
func (p *Plan) Rules() []string {
	if p == nil {
		return nil
	}
	return p.rules
}

// Tokenizer makes the token of a value: TokenPrefix and 32 lower-case hex digits, keyed so that
// nobody without the key can compute or reverse it. *redact.Redactor is one.
type Tokenizer interface {
	Token(value []byte) string
}

// Options bound and key one Apply. A nil *Options means the defaults and no Tokenizer.
type Options struct {
	// Token makes pseudonymise's tokens. Without one, pseudonymise drops instead: a value is
	// never replaced by an unkeyed hash, which anyone could reverse by trying a list of names.
	Token Tokenizer
	// MaxBytes bounds the result and the masked result; 0 means DefaultMaxBytes.
	MaxBytes int
	// MaxDepth bounds the nesting of objects and arrays; 0 means DefaultMaxDepth.
	MaxDepth int
}

// Defaults of Options.
const (
	DefaultMaxBytes = 4 << 20
	DefaultMaxDepth = 64
)

// Stats counts the values each rule masked, by rule name.
type Stats map[string]int

// Errors of Apply. The result is then not masked: the caller must not pass it on.
var (
	ErrNotResult = errors.New("mask: the result is not a JSON object")
	ErrInvalid   = errors.New("mask: the result is not valid JSON")
	ErrTooLarge  = errors.New("mask: the result is too large")
	ErrTooDeep   = errors.New("mask: the result is nested too deeply")
)

// Apply masks a tools/call result (a CallToolResult object, raw JSON) under the plan. It
// returns the result unchanged, and nil Stats, when nothing was masked; a nil plan masks
// nothing. On error the result is not to be used: it could not be read, or masking it would
// pass a bound.
func (p *Plan) Apply(result []byte, opts *Options) ([]byte, Stats, error) {
	if p == nil {
		return result, nil, nil
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if len(result) > o.MaxBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(result), o.MaxBytes)
	}
	w, _ := p.walks.Get().(*walker)
	if w == nil {
		w = &walker{p: p, counts: make([]int, len(p.rules))}
	}
	defer p.putWalker(w)
	w.tok, w.maxBytes, w.maxDepth = o.Token, o.MaxBytes, o.MaxDepth
	w.in, w.out = result, make([]byte, 0, len(result)+len(result)/8+64)
	if err := w.result(); err != nil {
		return nil, nil, err
	}
	if !w.changed {
		return result, nil, nil
	}
	st := Stats{}
	for i, n := range w.counts {
		if n > 0 {
			st[p.rules[i]] += n
		}
	}
	return w.out, st, nil
}

func (p *Plan) putWalker(w *walker) {
	clear(w.counts)
	w.in, w.out, w.tok, w.changed, w.depth = nil, nil, nil, false, 0
	w.nodes = w.nodes[:0]
	if cap(w.text) > 1<<16 {
		w.text = nil
	}
	if cap(w.sub) > 1<<16 {
		w.sub = nil
	}
	p.walks.Put(w)
}
