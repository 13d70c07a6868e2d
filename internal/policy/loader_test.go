package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	policyV1 = "roles:\n  - role: R\n    permissions:\n      - tool_name: one\n"
	policyV2 = "roles:\n  - role: R\n    permissions:\n      - tool_name: two\n"
	// policyBad has two problems; both must be reported.
	policyBad = "roles:\n  - role: R\n    permissions:\n      - tool_name: two\n        action: delete\n    deny_tool: [x]\n"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// allows reports which of the tools "one" and "two" the policy allows.
func allows(p *Policy) string {
	var got []string
	for _, tool := range []string{"one", "two"} {
		if p.Decide(roles("R"), Call{Name: tool}).Allow {
			got = append(got, tool)
		}
	}
	return strings.Join(got, ",")
}

func TestLoaderReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyV1)
	l, err := NewLoader(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := allows(l.Policy()); got != "one" {
		t.Fatalf("initial policy allows %q, want one", got)
	}

	writeFile(t, path, policyBad)
	err = l.Reload()
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 2 {
		t.Fatalf("Reload of an invalid policy = %v, want *Problems listing 2 problems", err)
	}
	if got := allows(l.Policy()); got != "one" {
		t.Errorf("after a rejected reload the policy allows %q, want the previous one (one)", got)
	}
	if l.Err() == nil {
		t.Error("Err() = nil after a rejected reload")
	}

	writeFile(t, path, policyV2)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := allows(l.Policy()); got != "two" {
		t.Errorf("after a good reload the policy allows %q, want two", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err == nil {
		t.Error("Reload of a missing file succeeded")
	}
	if got := allows(l.Policy()); got != "two" {
		t.Errorf("after the file vanished the policy allows %q, want two", got)
	}
}

func TestNewLoaderRejectsInvalid(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyBad)
	if _, err := NewLoader(path, nil); err == nil {
		t.Fatal("NewLoader accepted an invalid policy")
	}
}

type reload struct {
	allows string
	err    error
}

func TestLoaderWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, policyV1)
	events := make(chan reload, 16)
	l, err := NewLoader(path, &LoaderOptions{
		Debounce: 20 * time.Millisecond,
		OnReload: func(ev Reload) { events <- reload{allows(ev.Current), ev.Err} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.Watch(ctx); err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	defer wg.Wait()
	defer cancel()
	// The watcher registers asynchronously; nudge the file until the first
	// event proves it is watching.
	waitFor := func(what string, ok func(reload) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-events:
				if ok(r) {
					return
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := range 200 {
			// New bytes each time: the same bytes again are not reloaded.
			_ = os.WriteFile(path, fmt.Appendf([]byte(policyV1), "# nudge %d\n", i), 0o600)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	waitFor("the watcher to see a write", func(r reload) bool { return r.err == nil })
	close(stop)
	<-stopped

	writeFile(t, path, policyBad)
	waitFor("the invalid policy to be rejected", func(r reload) bool {
		var probs *Problems
		if errors.As(r.err, &probs) {
			if len(probs.List) != 2 {
				t.Errorf("rejection lists %d problems, want 2: %v", len(probs.List), r.err)
			}
			if r.allows != "one" {
				t.Errorf("after the rejection the policy allows %q, want one", r.allows)
			}
			return true
		}
		return false
	})

	// An editor that writes a temporary file and renames it over the policy.
	tmp := filepath.Join(dir, ".policy.yaml.swp")
	writeFile(t, tmp, policyV2)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFor("the renamed policy to be loaded", func(r reload) bool { return r.err == nil && r.allows == "two" })
	if got := allows(l.Policy()); got != "two" {
		t.Errorf("policy in force allows %q, want two", got)
	}
}

// TestReloadOnlyOnNewContent: a save without a change, a touch or a SIGHUP reloads nothing and
// reports nothing; a real change is reported once, with the file's SHA-256, the one it replaces
// and what changed by role; a comment changes the hash and no role.
func TestReloadOnlyOnNewContent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyV1)
	var got []Reload
	l, err := NewLoader(path, &LoaderOptions{OnReload: func(ev Reload) { got = append(got, ev) }})
	if err != nil {
		t.Fatal(err)
	}
	v1 := l.Policy().SHA256()
	if v1 != hashHex([]byte(policyV1)) {
		t.Fatalf("SHA256() = %s, not the hash of the file's bytes", v1)
	}
	for range 3 {
		writeFile(t, path, policyV1)
		if err := l.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 0 {
		t.Fatalf("unchanged content was reported %d times", len(got))
	}

	v2 := policyV1 + "  - role: Auditor\n    permissions:\n      - tool_name: \"*\"\n"
	v2 = strings.Replace(v2, "tool_name: one", "tool_name: two", 1)
	writeFile(t, path, v2)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	_ = l.Reload() // the same bytes again
	if len(got) != 1 {
		t.Fatalf("one change was reported %d times", len(got))
	}
	ev := got[0]
	if ev.SHA256 != hashHex([]byte(v2)) || ev.Previous.SHA256() != v1 || ev.Err != nil {
		t.Errorf("reload = sha %s previous %s err %v; want the new file's hash and %s", ev.SHA256, ev.Previous.SHA256(), ev.Err, v1)
	}
	if s := ev.Change.String(); s != "roles added: Auditor; roles changed: R" {
		t.Errorf("change = %q", s)
	}

	writeFile(t, path, "# reviewed 2026-12-05\n"+v2)
	_ = l.Reload()
	if len(got) != 2 || !got[1].Change.Empty() || got[1].SHA256 == ev.SHA256 {
		t.Fatalf("a comment: want a new hash and no role changed, got %+v", got[len(got)-1])
	}

	writeFile(t, path, policyBad)
	_ = l.Reload()
	_ = l.Reload()
	if len(got) != 3 || got[2].Err == nil || got[2].Current != got[2].Previous {
		t.Fatalf("a rejected file: want one report with its error and the previous policy in force, got %d reports", len(got))
	}
}

// A change that raises no event in the watched directory — the file written through a link in
// another directory, as another machine writes a file on shared storage — is seen by the poll.
func TestLoaderWatchPollsForUnannouncedChanges(t *testing.T) {
	t.Parallel()
	dir, other := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, policyV1)
	alias := filepath.Join(other, "policy.yaml")
	if err := os.Link(path, alias); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	l, err := NewLoader(path, &LoaderOptions{PollEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.Watch(ctx); err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	defer wg.Wait()
	defer cancel()
	// In place, through the other name: the same inode, no event in dir.
	f, err := os.OpenFile(alias, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(policyV2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for deadline := time.Now().Add(30 * time.Second); allows(l.Policy()) != "two"; {
		if time.Now().After(deadline) {
			t.Fatalf("the policy written through another directory was never loaded: it allows %q", allows(l.Policy()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
