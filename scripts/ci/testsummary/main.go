// Command testsummary reads `go test -json` on standard input and prints what a CI log needs:
// the output of every failed test and package, then how many tests passed, failed and were
// skipped, and each skipped test with its reason, so that no skip passes unseen. It exits 1 when
// anything failed or the stream held no test at all.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// maxKept bounds the output kept per test: a failed test's last lines are what explain it.
const maxKept = 200

type key struct{ pkg, test string }

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

func run(in io.Reader, out io.Writer) int {
	outputs := map[key][]string{}
	var passed, failed, skipped []key
	var failedPkgs []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Fprintln(out, sc.Text()) // go test's own messages (build errors) are not JSON
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			lines := append(outputs[k], e.Output)
			if len(lines) > maxKept {
				lines = lines[len(lines)-maxKept:]
			}
			outputs[k] = lines
		case "pass":
			if e.Test != "" {
				passed = append(passed, k)
			}
			delete(outputs, k)
		case "skip":
			if e.Test != "" {
				skipped = append(skipped, k)
			} else {
				delete(outputs, k)
			}
		case "fail":
			if e.Test != "" {
				failed = append(failed, k)
			} else {
				failedPkgs = append(failedPkgs, e.Package)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testsummary: reading go test -json:", err)
		return 1
	}
	for _, k := range failed {
		fmt.Fprintf(out, "\n=== FAILED %s %s\n%s", k.pkg, k.test, strings.Join(outputs[k], ""))
	}
	for _, p := range failedPkgs {
		if lines := outputs[key{p, ""}]; len(lines) > 0 {
			fmt.Fprintf(out, "\n=== FAILED package %s\n%s", p, strings.Join(lines, ""))
		}
	}
	fmt.Fprintf(out, "\ntests: %d passed, %d failed, %d skipped (subtests included); packages failed: %d\n",
		len(passed), len(failed), len(skipped), len(failedPkgs))
	if len(skipped) > 0 {
		fmt.Fprintln(out, "skipped, with the reason each gave:")
		slices.SortFunc(skipped, func(a, b key) int { return strings.Compare(a.pkg+" "+a.test, b.pkg+" "+b.test) })
		for _, k := range skipped {
			fmt.Fprintf(out, "  %s %s: %s\n", strings.TrimPrefix(k.pkg, "github.com/mcpguard/mcpguard/"), k.test, skipReason(outputs[k]))
		}
	}
	if len(failed) > 0 || len(failedPkgs) > 0 || len(passed)+len(skipped) == 0 {
		return 1
	}
	return 0
}

// skipReason is the message a skipped test gave: its output but for the lines go test adds
// (=== RUN, --- SKIP, …), which may come before or after it.
func skipReason(lines []string) string {
	var reason []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		reason = append(reason, t)
	}
	if len(reason) == 0 {
		return "(no reason given)"
	}
	return strings.Join(reason, " ")
}
