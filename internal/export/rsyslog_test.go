package export_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/export"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// TestSyslogRealRsyslog sends records to a real rsyslogd (Debian's rsyslog package) listening
// on loopback with imtcp, and reads back what its omfile action wrote. Skipped when rsyslogd
// is not installed.
func TestSyslogRealRsyslog(t *testing.T) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr != nil {
			testenv.Missing(t, "rsyslogd is not installed (apt-get install rsyslog)")
		}
		bin = "/usr/sbin/rsyslogd"
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	out := filepath.Join(dir, "out.log")
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imtcp")
template(name="fields" type="string" string="%%pri%%|%%timestamp:::date-rfc3339%%|%%hostname%%|%%app-name%%|%%procid%%|%%msgid%%|%%msg%%\n")
ruleset(name="audit") { action(type="omfile" file=%q template="fields") }
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="audit")
`, dir, out, port)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		testenv.Missing(t, "rsyslogd does not start here: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", stderr.String())
		}
	})
	// Wait for the listener.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd is not listening on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	local3 := 19
	s, err := export.NewSyslog("rsyslog", addr, &export.SyslogOptions{
		Options: fastOptions(), Facility: &local3, AppName: "mcpguard", Hostname: "gw-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, 0, 500)
	offerAll(s, recs)
	waitDelivered(t, s, 500)
	closeSink(t, s)

	var lines []string
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		b, _ := os.ReadFile(out)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) >= 500 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(lines) != 500 {
		t.Fatalf("rsyslog wrote %d lines, want 500", len(lines))
	}
	pid := strconv.Itoa(os.Getpid())
	for i, line := range lines {
		pri, kind := "158", "call" // local3.info: 19*8+6
		if i%5 == 4 {
			pri, kind = "156", "policy_denial" // local3.warning: 19*8+4
		}
		want := strings.Join([]string{pri, recs[i].Time.Format("2006-01-02T15:04:05.000000Z"), "gw-test", "mcpguard", pid, kind, string(recs[i].Data)}, "|")
		if line != want {
			t.Fatalf("rsyslog line %d:\n got %s\nwant %s", i, line, want)
		}
	}
}
