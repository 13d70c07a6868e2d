package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// fingerprints are what Diff compares: the hash of the policy's bytes, and of the meaning of
// each role (its permissions, denials and bindings) and of the policy-wide settings, so that a
// comment or a reordering changes the file's hash but no role.
type fingerprints struct {
	file     string            // hex SHA-256 of the file's bytes
	roles    map[string]string // role name → hash of its definition and its bindings
	settings string            // hash of time_zone and unconstrained_arguments
	masking  string            // hash of the masking: section
}

func fingerprint(data []byte, doc *document) fingerprints {
	f := fingerprints{file: hashHex(data), roles: map[string]string{}}
	byRole := map[string][]bindingDoc{}
	for _, b := range doc.Bindings {
		byRole[b.Role] = append(byRole[b.Role], b)
	}
	for i := range doc.Roles {
		r := &doc.Roles[i]
		f.roles[r.Name] = hashJSON(struct {
			Role     *roleDoc
			Bindings []bindingDoc
		}{r, byRole[r.Name]})
	}
	f.settings = hashJSON([]string{doc.TimeZone, doc.UnconstrainedArguments})
	f.masking = hashJSON(doc.Masking)
	return f
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// hashJSON hashes v's JSON encoding (maps in key order, so equal values hash equally).
func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // the decoded document holds only JSON values
		return hashHex([]byte(err.Error()))
	}
	return hashHex(b)
}

// SHA256 is the hex SHA-256 of the bytes the policy was compiled from: what an auditor compares
// with the file under change control.
func (p *Policy) SHA256() string { return p.fp.file }

// Change is what changed from one policy to the next, by role name.
type Change struct {
	Added, Removed, Changed []string
	// Settings is true when time_zone or unconstrained_arguments changed.
	Settings bool
	// Masking is true when the masking: section changed (a role's unmasked access is part of
	// the role).
	Masking bool
}

// Diff says what changed from old to new. Two policies that differ only in comments, layout or
// the order of their roles have no change, though their SHA256 differ.
func Diff(old, new *Policy) Change {
	var c Change
	for name, h := range new.fp.roles {
		switch oh, ok := old.fp.roles[name]; {
		case !ok:
			c.Added = append(c.Added, name)
		case oh != h:
			c.Changed = append(c.Changed, name)
		}
	}
	for name := range old.fp.roles {
		if _, ok := new.fp.roles[name]; !ok {
			c.Removed = append(c.Removed, name)
		}
	}
	slices.Sort(c.Added)
	slices.Sort(c.Removed)
	slices.Sort(c.Changed)
	c.Settings = old.fp.settings != new.fp.settings
	c.Masking = old.fp.masking != new.fp.masking
	return c
}

// Empty reports whether nothing that decides a call changed.
func (c Change) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.Changed) == 0 && !c.Settings && !c.Masking
}

// String summarizes the change in one line, as the audit record and the log show it.
func (c Change) String() string {
	var parts []string
	for _, l := range []struct {
		what  string
		names []string
	}{{"added", c.Added}, {"removed", c.Removed}, {"changed", c.Changed}} {
		if len(l.names) > 0 {
			parts = append(parts, "roles "+l.what+": "+strings.Join(l.names, ", "))
		}
	}
	if c.Settings {
		parts = append(parts, "time_zone or unconstrained_arguments changed")
	}
	if c.Masking {
		parts = append(parts, "masking rules changed")
	}
	if len(parts) == 0 {
		return "no role changed (comments or layout only)"
	}
	return strings.Join(parts, "; ")
}
