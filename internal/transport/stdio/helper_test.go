package stdio

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run the test binary itself as the server process: with childModeEnv set, TestMain
// runs one of the behaviours below instead of the tests.
const childModeEnv = "STDIO_TEST_CHILD"

// noRaceExitSleep stops a race-enabled child from sleeping a second before a clean exit.
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

func runChild(mode string) int {
	out := bufio.NewWriter(os.Stdout)
	println := func(s string) {
		out.WriteString(s)
		out.WriteByte('\n')
		out.Flush()
	}
	switch mode {
	case "echo":
		// An MCP server in miniature: one line in, one line out, exit on stdin EOF.
	case "noise":
		println("Server started on stdio")
		println("")
		println("  \r")
		println(`{"jsonrpc":"2.0","method":"notifications/ready"}`)
	case "line":
		n, _ := strconv.Atoi(os.Getenv("LINE_BYTES"))
		println(`{"x":"` + strings.Repeat("a", n-8) + `"}`)
	case "crash":
		println(`{"jsonrpc":"2.0","method":"one"}`)
		println(`{"jsonrpc":"2.0","method":"two"}`)
		return 3
	case "burst":
		// More than the stdout pipe holds, all written before exiting.
		n, _ := strconv.Atoi(os.Getenv("MESSAGES"))
		for i := range n {
			println(fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, strings.Repeat("p", 1000)))
		}
		return 3
	case "env":
		wd, _ := os.Getwd()
		b, _ := json.Marshal(map[string]any{"env": os.Environ(), "wd": wd})
		println(string(b))
	case "stderr":
		fmt.Fprintln(os.Stderr, "hello from stderr")
		fmt.Fprintln(os.Stderr, strings.Repeat("x", 10000))
		fmt.Fprintln(os.Stderr, "after the long line")
	case "stderr-flood":
		// Far more than the pipe holds: the server would block if nobody drained stderr.
		line := strings.Repeat("e", 99)
		for range 5000 {
			fmt.Fprintln(os.Stderr, line)
		}
		println(`{"done":true}`)
	case "ignore-eof":
		// Keeps running after stdin closes; SIGTERM ends it.
		io.Copy(io.Discard, os.Stdin)
		sleepForever()
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		println(`{"ready":true}`)
		io.Copy(io.Discard, os.Stdin)
		sleepForever()
	case "no-read":
		signal.Ignore(syscall.SIGTERM)
		println(`{"ready":true}`)
		sleepForever()
	case "close-stdout":
		os.Stdout.Close()
		io.Copy(io.Discard, os.Stdin)
		sleepForever()
	case "spawn":
		return spawnGrandchild(println)
	case "grandchild":
		// Ignores stdin EOF and SIGTERM; only SIGKILL ends it. Reports readiness on fd 3.
		signal.Ignore(syscall.SIGTERM)
		ready := os.NewFile(3, "ready")
		ready.Write([]byte("ready\n"))
		ready.Close()
		sleepForever()
	default:
		fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
		return 2
	}
	echo(out)
	return 0
}

// spawnGrandchild starts a grandchild that shares this process's stdout, prints its pid, then
// either exits (leaving the grandchild holding stdout) or outlives stdin EOF and SIGTERM.
func spawnGrandchild(println func(string)) int {
	exe, _ := os.Executable()
	r, w, _ := os.Pipe()
	gc := exec.Command(exe)
	gc.Env = []string{childModeEnv + "=grandchild"}
	gc.Stdin = os.Stdin
	gc.Stdout = os.Stdout
	gc.ExtraFiles = []*os.File{w}
	if err := gc.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w.Close()
	bufio.NewReader(r).ReadString('\n')
	println(fmt.Sprintf(`{"grandchild":%d}`, gc.Process.Pid))
	if os.Getenv("SPAWN_THEN") == "exit" {
		return 0
	}
	signal.Ignore(syscall.SIGTERM)
	io.Copy(io.Discard, os.Stdin)
	sleepForever()
	return 0
}

func echo(out *bufio.Writer) {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := in.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			out.Write(line)
			line, err = in.ReadSlice('\n')
		}
		out.Write(line)
		if err != nil {
			out.Flush()
			return
		}
		if in.Buffered() == 0 {
			out.Flush()
		}
	}
}

func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// childCommand returns a Command that runs the test binary in the given mode.
func childCommand(t testing.TB, mode string, env ...string) Command {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Under -cover the child (this test binary) warns on stderr without a GOCOVERDIR, which
	// the stderr tests would read as the child's own output.
	cover := "GOCOVERDIR=" + t.TempDir()
	return Command{Path: exe, Env: append([]string{childModeEnv + "=" + mode, noRaceExitSleep, cover}, env...)}
}

// startChild starts the test binary in the given mode and closes it when the test ends.
func startChild(t testing.TB, mode string, opts *Options, env ...string) *Conn {
	t.Helper()
	c, err := Start(context.Background(), childCommand(t, mode, env...), opts)
	if err != nil {
		t.Fatalf("Start(%s): %v", mode, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvTimeout is Recv bounded by a generous test deadline.
func recvTimeout(t testing.TB, c *Conn) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Recv(ctx)
}

// logRecorder is a slog.Handler that keeps every record with its attributes flattened.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	attrs   []slog.Attr
	root    *logRecorder
	// block, when set, makes Handle wait until it is closed before recording a stderr line.
	block chan struct{}
}

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func newLogRecorder() *logRecorder {
	r := &logRecorder{}
	r.root = r
	return r
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	attrs := make(map[string]string)
	for _, a := range r.attrs {
		attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	if r.root.block != nil && attrs["stream"] == "stderr" {
		<-r.root.block
	}
	r.root.mu.Lock()
	r.root.records = append(r.root.records, logRecord{Level: rec.Level, Msg: rec.Message, Attrs: attrs})
	r.root.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{root: r.root, attrs: append(append([]slog.Attr{}, r.attrs...), as...)}
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

// find returns the records for which keep is true.
func (r *logRecorder) find(keep func(logRecord) bool) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.records {
		if keep(rec) {
			out = append(out, rec)
		}
	}
	return out
}

// processGone reports whether pid no longer names a live process: it does not exist, or it is
// a zombie that its new parent (init) has yet to reap.
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// waitGone waits until pid is gone.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
