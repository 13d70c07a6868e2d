package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Compliance configures data subjects and retention (docs/gdpr.md): where subject identifiers
// appear in tool arguments, the secret that keys their commitments and wraps their keys, and
// how long each kind of audit record is kept. It needs the audit section.
type Compliance struct {
	// SubjectKey is the deployment secret of data subjects: it keys the commitments that name
	// subjects in the log and wraps every subject key. A reference; at least 32 bytes. Required
	// with Subjects. Lose it and no sealed data can be read again.
	SubjectKey Secret
	// Subjects say which arguments of which tools hold a subject identifier.
	Subjects []SubjectTool
	// Retention maps a record kind ("call", "outcome", "auth_failure", …) to how long its
	// records are kept ("7y", "18mo", "90d", "12h"). Kinds not listed are kept for ever.
	Retention map[string]string
	// RetentionEvery is how often the gateway applies the retention. Default 1h.
	RetentionEvery time.Duration
}

// SubjectTool names the arguments of one tool that hold a data subject's identifier.
type SubjectTool struct {
	// Tool is the tool's name as clients call it (and audit records name it).
	Tool string
	// Arguments are paths of object keys joined by dots ("client_id", "order.client.id").
	Arguments []string
}

// DefaultRetentionEvery is the default Compliance.RetentionEvery.
const DefaultRetentionEvery = time.Hour

// Bounds of the compliance section.
const (
	maxSubjectTools = 1000
	maxSubjectPaths = 16
)

// RetentionKinds are the record kinds a retention may be set for. Retention, erasure and
// legal-hold records are never pruned: verification and erasure depend on them.
var RetentionKinds = []string{"call", "outcome", "auth_failure", "policy_denial", "rate_limit", "approval", "quarantine",
	"admin", "policy_reload", "block", "suspend", "alert", "subject"}

// Retention is a parsed retention period: whole years, months, days and hours.
type Retention struct {
	Years, Months, Days, Hours int
}

// ParseRetention parses a retention period: a positive whole number and a unit, y (years), mo
// (months), w (weeks), d (days) or h (hours): "7y", "18mo", "90d".
func ParseRetention(s string) (Retention, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 6 {
		return Retention{}, fmt.Errorf("%s is not a retention: want a whole number and a unit, such as 7y, 18mo, 90d", quote(s))
	}
	n, _ := strconv.Atoi(s[:i])
	if n <= 0 {
		return Retention{}, fmt.Errorf("%s is not a retention: it must be more than zero", quote(s))
	}
	switch s[i:] {
	case "y":
		if n > 100 {
			return Retention{}, fmt.Errorf("%s is over 100 years", quote(s))
		}
		return Retention{Years: n}, nil
	case "mo":
		return Retention{Months: n}, nil
	case "w":
		return Retention{Days: 7 * n}, nil
	case "d":
		return Retention{Days: n}, nil
	case "h":
		return Retention{Hours: n}, nil
	}
	return Retention{}, fmt.Errorf("%s has unit %s: want y (years), mo (months), w (weeks), d (days) or h (hours)", quote(s), quote(s[i:]))
}

// Before returns the cut-off at now: records dated before it are past the retention.
func (r Retention) Before(now time.Time) time.Time {
	return now.AddDate(-r.Years, -r.Months, -r.Days).Add(-time.Duration(r.Hours) * time.Hour)
}

func (d *decoder) complianceFields(c *Compliance) []field {
	return []field{
		{"subject_key", d.secret(&c.SubjectKey)},
		{"subjects", func(n *yaml.Node, path string) {
			if n = d.visit(n); n == nil || isNull(n) {
				return
			}
			if n.Kind != yaml.SequenceNode {
				d.wrongType(n, path, "a list of tools and their subject arguments")
				return
			}
			c.Subjects = make([]SubjectTool, len(n.Content))
			for i, item := range n.Content {
				p := pathIndex(path, i)
				d.lines[p] = item.Line
				d.mapping(item, p, []field{
					{"tool", d.str(&c.Subjects[i].Tool)},
					{"arguments", d.strList(&c.Subjects[i].Arguments)},
				}, nil)
			}
		}},
		{"retention", func(n *yaml.Node, path string) {
			if n = d.visit(n); n == nil || isNull(n) {
				return
			}
			if n.Kind != yaml.MappingNode {
				d.wrongType(n, path, "a mapping of record kinds to retentions, such as {call: 7y}")
				return
			}
			c.Retention = map[string]string{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				p := pathKey(path, k)
				d.lines[p] = n.Content[i].Line
				var v string
				d.str(&v)(n.Content[i+1], p)
				if _, dup := c.Retention[k]; dup {
					d.add(n.Content[i].Line, p, "%s is given twice", quote(k))
				}
				c.Retention[k] = v
			}
		}},
		{"retention_every", d.duration(&c.RetentionEvery)},
	}
}

// compliance checks the compliance section.
func (v *validator) compliance(c *Compliance, hasAudit bool) {
	if !hasAudit {
		v.add("compliance", "data subjects and retention act on the audit log: configure the audit section too")
	}
	if len(c.Subjects) > 0 && c.SubjectKey.IsZero() {
		v.add("compliance.subject_key", "required with subjects: a reference (env:NAME or file:/path) to at least 32 random bytes")
	}
	if !c.SubjectKey.IsZero() && !c.SubjectKey.IsReference() {
		v.add("compliance.subject_key", "write it as a reference (env:NAME or file:/path), never inline")
	}
	if len(c.Subjects) > maxSubjectTools {
		v.add("compliance.subjects", "%d tools; at most %d", len(c.Subjects), maxSubjectTools)
	}
	seen := map[string]bool{}
	for i, s := range c.Subjects {
		p := pathIndex("compliance.subjects", i)
		switch {
		case s.Tool == "":
			v.add(p+".tool", "required: the tool's name as clients call it")
		case seen[s.Tool]:
			v.add(p+".tool", "%s is listed twice: put all its arguments in one entry", quote(s.Tool))
		}
		seen[s.Tool] = true
		if len(s.Arguments) == 0 || len(s.Arguments) > maxSubjectPaths {
			v.add(p+".arguments", "want 1 to %d argument paths, got %d", maxSubjectPaths, len(s.Arguments))
		}
		for j, a := range s.Arguments {
			if !subjectPath(a) {
				v.add(pathIndex(p+".arguments", j), "%s is not an argument path: object keys joined by dots, each followed by [*] where it holds an array, such as client_id, order.client.id or transfers[*].client_id", quote(a))
			}
		}
	}
	for _, k := range sortedKeys(c.Retention) {
		p := pathKey("compliance.retention", k)
		if !slices.Contains(RetentionKinds, k) {
			if k == "retention" || k == "erasure" || k == "legal_hold" {
				v.add(p, "%s records are never pruned: verification and erasure depend on them", k)
			} else {
				v.add(p, "%s is not a record kind: want one of %s", quote(k), strings.Join(RetentionKinds, ", "))
			}
			continue
		}
		if _, err := ParseRetention(c.Retention[k]); err != nil {
			v.add(p, "%v", err)
		}
	}
	if c.RetentionEvery < 0 || (c.RetentionEvery > 0 && c.RetentionEvery < time.Minute) {
		v.add("compliance.retention_every", "%v: at least 1m (0: the default, 1h)", c.RetentionEvery)
	}
}

// subjectPath reports whether a is an argument path as gdpr.ParsePath reads it: object keys
// joined by dots, each followed by any number of "[*]" (every element of an array).
func subjectPath(a string) bool {
	if a == "" {
		return false
	}
	for _, part := range strings.Split(a, ".") {
		for strings.HasSuffix(part, "[*]") {
			part = strings.TrimSuffix(part, "[*]")
		}
		if part == "" || strings.ContainsAny(part, "[]") {
			return false
		}
	}
	return true
}
