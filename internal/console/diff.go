package console

import (
	"bytes"
	"encoding/json"
	"strings"
)

// maxDiffLines bounds each side of a definition diff: past it the lines are shown as a whole
// replacement, without the quadratic search for common lines.
const maxDiffLines = 2000

// diffLine is one line of a diff: Op is "ins", "del" or "" (unchanged).
type diffLine struct {
	Op   string
	Text string
}

// prettyJSON indents a JSON document for reading, one member per line; text that is not JSON
// is returned as it is.
func prettyJSON(s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		return s
	}
	return b.String()
}

// lineDiff compares two texts line by line (longest common subsequence) and returns the lines
// of both in order, those only in old marked "del", those only in cur marked "ins".
func lineDiff(old, cur string) []diffLine {
	var a, b []string
	if old != "" {
		a = strings.Split(old, "\n")
	}
	if cur != "" {
		b = strings.Split(cur, "\n")
	}
	if len(a) > maxDiffLines || len(b) > maxDiffLines {
		out := make([]diffLine, 0, len(a)+len(b))
		for _, l := range a {
			out = append(out, diffLine{"del", l})
		}
		for _, l := range b {
			out = append(out, diffLine{"ins", l})
		}
		return out
	}
	// lcs[i][j] is the length of the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, diffLine{"", a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, diffLine{"del", a[i]})
			i++
		default:
			out = append(out, diffLine{"ins", b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, diffLine{"del", a[i]})
	}
	for ; j < len(b); j++ {
		out = append(out, diffLine{"ins", b[j]})
	}
	return out
}
