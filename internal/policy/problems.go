package policy

import "github.com/mcpguard/mcpguard/internal/problems"

// Problem is one thing wrong with a policy file: its line, the path of the
// offending value and what to do about it.
type Problem = problems.Problem

// Problems is the error returned for an invalid policy; it lists every problem
// found, ordered by line.
type Problems = problems.Problems

func quote(s string) string                 { return problems.Quote(s) }
func pathKey(parent, key string) string     { return problems.PathKey(parent, key) }
func pathIndex(parent string, i int) string { return problems.PathIndex(parent, i) }

// maxQuoted is how much of a value a message shows, in bytes.
const maxQuoted = problems.MaxQuoted
