package stdio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEchoManyConcurrentMessages(t *testing.T) {
	t.Parallel()
	c := startChild(t, "echo", nil)

	const senders, perSender = 8, 100
	big := strings.Repeat("b", 200<<10) // larger than a pipe buffer: written in several pieces
	want := make(map[string]bool)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		msgs := make([]string, perSender)
		for i := range msgs {
			pad := ""
			if i%25 == 0 {
				pad = big
			}
			msgs[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":"%d-%d","params":{"pad":"%s"}}`, s, i, pad)
			want[msgs[i]] = true
		}
		wg.Go(func() {
			for _, m := range msgs {
				if err := c.Send(context.Background(), []byte(m)); err != nil {
					errs <- err
					return
				}
			}
		})
	}

	got := make(map[string]bool)
	for range senders * perSender {
		msg, err := recvTimeout(t, c)
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", len(got), err)
		}
		if got[string(msg)] {
			t.Fatalf("message received twice: %.80s", msg)
		}
		got[string(msg)] = true
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Send: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("echoed messages differ (-sent +received):\n%.2000s", diff)
	}

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var ee *ExitError
	if !errors.As(c.ExitErr(), &ee) || ee.ExitCode() != 0 {
		t.Errorf("ExitErr() = %v, want a clean exit after stdin closed", c.ExitErr())
	}
}

func TestStdoutNoiseIsSkippedAndLogged(t *testing.T) {
	t.Parallel()
	rec := newLogRecorder()
	c := startChild(t, "noise", &Options{Logger: slog.New(rec), Name: "noisy"})

	msg, err := recvTimeout(t, c)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if want := `{"jsonrpc":"2.0","method":"notifications/ready"}`; string(msg) != want {
		t.Errorf("first message = %s, want %s", msg, want)
	}
	violations := rec.find(func(r logRecord) bool { return r.Attrs["stream"] == "stdout" })
	want := []logRecord{{
		Level: slog.LevelWarn,
		Msg:   "stdio upstream wrote a non-JSON line to stdout; skipped",
		Attrs: map[string]string{
			"upstream": "noisy", "pid": fmt.Sprint(c.PID()), "stream": "stdout",
			"line": "Server started on stdio", "bytes": "23", "violations": "1",
		},
	}}
	if diff := cmp.Diff(want, violations); diff != "" {
		t.Errorf("protocol violation log (-want +got):\n%s", diff)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	const limit = 100 << 10
	for _, tc := range []struct {
		name    string
		bytes   int
		wantErr error
	}{
		{name: "at the limit", bytes: limit},
		{name: "one byte over", bytes: limit + 1, wantErr: ErrMessageTooLarge},
		{name: "far over", bytes: 8 * limit, wantErr: ErrMessageTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startChild(t, "line", &Options{MaxMessageBytes: limit}, fmt.Sprintf("LINE_BYTES=%d", tc.bytes))
			msg, err := recvTimeout(t, c)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Recv() error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil {
				if len(msg) != tc.bytes {
					t.Errorf("Recv() returned %d bytes, want %d", len(msg), tc.bytes)
				}
				return
			}
			// The misbehaving server is shut down without waiting for Close.
			select {
			case <-c.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("server still running after an over-long line")
			}
			if _, err := recvTimeout(t, c); !errors.Is(err, ErrMessageTooLarge) {
				t.Errorf("second Recv() error = %v, want it to keep reporting %v", err, ErrMessageTooLarge)
			}
		})
	}
}

func TestCrashReportsExitStatus(t *testing.T) {
	t.Parallel()
	c := startChild(t, "crash", nil)
	for _, want := range []string{"one", "two"} {
		msg, err := recvTimeout(t, c)
		if err != nil {
			t.Fatalf("Recv: %v (messages written before the crash must be delivered)", err)
		}
		if !strings.Contains(string(msg), want) {
			t.Errorf("Recv() = %s, want message %q", msg, want)
		}
	}
	_, err := recvTimeout(t, c)
	if !errors.Is(err, ErrExited) {
		t.Fatalf("Recv() after crash error = %v, want ErrExited", err)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Recv() error = %v, want exit code 3", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q does not say the exit status", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done() not closed after Recv reported the exit")
	}
	if !errors.Is(c.Send(context.Background(), []byte(`{}`)), ErrExited) {
		t.Error("Send after exit does not report ErrExited")
	}
}

func TestSlowConsumerGetsEverythingWrittenBeforeExit(t *testing.T) {
	t.Parallel()
	const n = 50 // ~50 KB: fits in the pipe, so the server can exit while nobody reads
	c := startChild(t, "burst", nil, fmt.Sprintf("MESSAGES=%d", n))
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("server did not exit")
	}
	time.Sleep(3 * exitDrainTimeout) // the consumer is slow; nothing may be lost meanwhile
	for i := range n {
		msg, err := recvTimeout(t, c)
		if err != nil {
			t.Fatalf("Recv #%d: %v", i, err)
		}
		if want := fmt.Sprintf(`{"seq":%d,`, i); !strings.HasPrefix(string(msg), want) {
			t.Fatalf("Recv #%d = %.40s, want prefix %s", i, msg, want)
		}
	}
	if _, err := recvTimeout(t, c); !errors.Is(err, ErrExited) {
		t.Errorf("Recv after the last message: error = %v, want ErrExited", err)
	}
}

func TestCloseEscalation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		mode       string
		grace      time.Duration
		wantSignal syscall.Signal // 0: exited by itself after stdin closed
	}{
		// All the time it needs to see EOF.
		{name: "exits on stdin EOF", mode: "echo", grace: 10 * time.Second},
		{name: "ignores stdin EOF", mode: "ignore-eof", grace: 200 * time.Millisecond, wantSignal: syscall.SIGTERM},
		{name: "ignores SIGTERM", mode: "ignore-term", grace: 200 * time.Millisecond, wantSignal: syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startChild(t, tc.mode, &Options{ShutdownGrace: tc.grace})
			switch tc.mode {
			case "echo": // make sure it runs
				if err := c.Send(context.Background(), []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
				fallthrough
			case "ignore-term": // its first line says SIGTERM is ignored from here on
				if _, err := recvTimeout(t, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			var ee *ExitError
			if !errors.As(c.ExitErr(), &ee) {
				t.Fatalf("ExitErr() = %v, want *ExitError", c.ExitErr())
			}
			ws := ee.State.Sys().(syscall.WaitStatus)
			var gotSignal syscall.Signal
			if ws.Signaled() {
				gotSignal = ws.Signal()
			}
			if gotSignal != tc.wantSignal {
				t.Errorf("process ended with %q, want signal %v", ee.State, tc.wantSignal)
			}
			if !processGone(c.PID()) {
				t.Errorf("process %d is still there after Close (zombie?)", c.PID())
			}
			// Close is idempotent and the connection stays closed.
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := recvTimeout(t, c); !errors.Is(err, ErrClosed) {
				t.Errorf("Recv after Close error = %v, want ErrClosed", err)
			}
			if err := c.Send(context.Background(), []byte(`{}`)); !errors.Is(err, ErrClosed) {
				t.Errorf("Send after Close error = %v, want ErrClosed", err)
			}
		})
	}
}

func TestGrandchildrenDoNotOutliveTheServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		then string
	}{
		{name: "closed by the gateway", then: "wait"},
		{name: "server exits and leaves the grandchild holding stdout", then: "exit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startChild(t, "spawn", &Options{ShutdownGrace: 200 * time.Millisecond}, "SPAWN_THEN="+tc.then)
			msg, err := recvTimeout(t, c)
			if err != nil {
				t.Fatal(err)
			}
			var hello struct{ Grandchild int }
			if err := json.Unmarshal(msg, &hello); err != nil || hello.Grandchild == 0 {
				t.Fatalf("bad hello %s: %v", msg, err)
			}
			if tc.then == "exit" {
				// Recv must see the end although the grandchild still held stdout.
				if _, err := recvTimeout(t, c); !errors.Is(err, ErrExited) {
					t.Fatalf("Recv() error = %v, want ErrExited", err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			waitGone(t, hello.Grandchild)
		})
	}
}

func TestEnvironmentIsExactlyTheGivenOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := childCommand(t, "env", "GREETING=hello world", "EMPTY=", "MULTI=a=b")
	cmd.Dir = dir
	c, err := Start(context.Background(), cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg, err := recvTimeout(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Env []string
		WD  string
	}
	if err := json.Unmarshal(msg, &got); err != nil {
		t.Fatal(err)
	}
	// The gateway's own variables (PATH, HOME, ...) must not leak, nor may PWD be added.
	if diff := cmp.Diff(slices.Sorted(slices.Values(cmd.Env)), slices.Sorted(slices.Values(got.Env))); diff != "" {
		t.Errorf("child environment (-given +seen):\n%s", diff)
	}
	if got.WD != dir {
		t.Errorf("child working directory = %q, want %q", got.WD, dir)
	}
}

func TestStderrIsLogged(t *testing.T) {
	t.Parallel()
	rec := newLogRecorder()
	c := startChild(t, "stderr", &Options{Logger: slog.New(rec), Name: "chatty"})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := rec.find(func(r logRecord) bool { return r.Attrs["stream"] == "stderr" })
	attrs := map[string]string{"upstream": "chatty", "pid": fmt.Sprint(c.PID()), "stream": "stderr"}
	truncated := map[string]string{"truncated": "true"}
	for k, v := range attrs {
		truncated[k] = v
	}
	want := []logRecord{
		{Level: slog.LevelInfo, Msg: "hello from stderr", Attrs: attrs},
		{Level: slog.LevelInfo, Msg: strings.Repeat("x", maxStderrLineBytes), Attrs: truncated},
		{Level: slog.LevelInfo, Msg: "after the long line", Attrs: attrs},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stderr log (-want +got):\n%.3000s", diff)
	}
}

func TestSlowLoggerDoesNotBlockTheServer(t *testing.T) {
	t.Parallel()
	rec := newLogRecorder()
	rec.block = make(chan struct{})
	c := startChild(t, "stderr-flood", &Options{Logger: slog.New(rec)})

	// The logger is stuck, yet the server gets its 500 KB of stderr out and answers.
	msg, err := recvTimeout(t, c)
	if err != nil {
		t.Fatalf("Recv while the logger is blocked: %v", err)
	}
	if string(msg) != `{"done":true}` {
		t.Errorf("Recv() = %s", msg)
	}
	close(rec.block)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	dropped := rec.find(func(r logRecord) bool { return r.Attrs["dropped"] != "" })
	if len(dropped) == 0 {
		t.Error("no log record reports the dropped stderr lines")
	}
}

func TestStdoutClosedWhileRunning(t *testing.T) {
	t.Parallel()
	c := startChild(t, "close-stdout", &Options{ShutdownGrace: 100 * time.Millisecond})
	if _, err := recvTimeout(t, c); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Recv() error = %v, want ErrProtocol", err)
	}
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("server not shut down after closing its stdout")
	}
}

func TestSendRejectsUnframeableMessages(t *testing.T) {
	t.Parallel()
	c := startChild(t, "echo", nil)
	for _, tc := range []struct {
		name string
		msg  string
	}{
		{name: "empty", msg: ""},
		{name: "raw newline", msg: "{\"a\":\n1}"},
		{name: "raw carriage return", msg: "{\"a\":\r1}"},
		{name: "trailing newline", msg: "{}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Send(context.Background(), []byte(tc.msg)); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Send(%q) error = %v, want ErrInvalidMessage", tc.msg, err)
			}
		})
	}
	// Nothing of the refused messages reached the server.
	if err := c.Send(context.Background(), []byte(`{"ok":1}`)); err != nil {
		t.Fatal(err)
	}
	if msg, err := recvTimeout(t, c); err != nil || string(msg) != `{"ok":1}` {
		t.Errorf("Recv() = %s, %v; want the only valid message", msg, err)
	}
}

func TestSendRespectsContext(t *testing.T) {
	t.Parallel()
	c := startChild(t, "no-read", &Options{ShutdownGrace: 100 * time.Millisecond})
	if _, err := recvTimeout(t, c); err != nil {
		t.Fatal(err)
	}
	big := []byte(`{"pad":"` + strings.Repeat("p", 4<<20) + `"}`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Send(ctx, big); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a server that never reads: error = %v, want DeadlineExceeded", err)
	}
	// The first message still owns the stream; a second one waits for its turn and gives up.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := c.Send(ctx2, []byte(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Send: error = %v, want DeadlineExceeded", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close with a write in flight: %v", err)
	}
}

func TestRecvRespectsContext(t *testing.T) {
	t.Parallel()
	c := startChild(t, "echo", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv() with nothing to read: error = %v, want DeadlineExceeded", err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	exe := childCommand(t, "echo").Path
	ctxCanceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		cmd     Command
		opts    *Options
		wantErr string
	}{
		{name: "missing program", cmd: Command{Path: "/nonexistent/mcp-server"}, wantErr: "no such file"},
		{name: "relative path", cmd: Command{Path: "./server"}, wantErr: "relative path"},
		{name: "bare name without PATH", cmd: Command{Path: "server"}, wantErr: "Env has no PATH"},
		{name: "bad env entry", cmd: Command{Path: exe, Env: []string{"NOEQUALS"}}, wantErr: "Env[0] is not a KEY=value entry"},
		{name: "duplicate env key", cmd: Command{Path: exe, Env: []string{"TOKEN=s3cret", "TOKEN=other"}}, wantErr: "Env[1] sets TOKEN again"},
		{name: "missing directory", cmd: Command{Path: exe, Dir: "/nonexistent/dir"}, wantErr: "no such file"},
		{name: "negative size limit", cmd: Command{Path: exe}, opts: &Options{MaxMessageBytes: -1}, wantErr: "MaxMessageBytes is negative"},
		{name: "negative grace", cmd: Command{Path: exe}, opts: &Options{ShutdownGrace: -1}, wantErr: "ShutdownGrace is negative"},
		{name: "context canceled", ctx: ctxCanceled, cmd: Command{Path: exe}, wantErr: "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			c, err := Start(ctx, tc.cmd, tc.opts)
			if err == nil {
				c.Close()
				t.Fatalf("Start succeeded, want error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Start error = %q, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Start error %q reveals an environment value", err)
			}
		})
	}
}

func TestBareNameIsLookedUpInTheGivenPATH(t *testing.T) {
	t.Parallel()
	exe := childCommand(t, "echo").Path
	bin := t.TempDir()
	if err := os.Symlink(exe, bin+"/mcp-echo"); err != nil {
		t.Fatal(err)
	}
	notExec := t.TempDir()
	if err := os.WriteFile(notExec+"/mcp-echo", []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		path     string
		wantPath string // empty: not found
	}{
		{name: "found", path: bin, wantPath: bin + "/mcp-echo"},
		{name: "found after a non-executable match", path: notExec + ":" + bin, wantPath: bin + "/mcp-echo"},
		{name: "relative entries are ignored", path: "relative/dir::.", wantPath: ""},
		{name: "only a non-executable match", path: notExec, wantPath: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := Command{Path: "mcp-echo", Env: []string{"PATH=" + tc.path}}
			got, err := cmd.resolve()
			if tc.wantPath == "" {
				if err == nil {
					t.Errorf("resolve() = %q, want not found", got)
				}
				return
			}
			if err != nil || got != tc.wantPath {
				t.Errorf("resolve() = %q, %v; want %q", got, err, tc.wantPath)
			}
		})
	}

	// End to end: the gateway's PATH does not have the name; the given one does.
	c, err := Start(context.Background(), Command{Path: "mcp-echo", Env: []string{childModeEnv + "=echo", noRaceExitSleep, "PATH=" + bin}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(context.Background(), []byte(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	if msg, err := recvTimeout(t, c); err != nil || string(msg) != `{"id":1}` {
		t.Errorf("Recv() = %s, %v", msg, err)
	}
}

// TestNoGoroutineLeak runs every way a connection can end and checks that none leaves a
// goroutine behind. It does not run in parallel: it counts the goroutines of the whole binary.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	grace := &Options{ShutdownGrace: 50 * time.Millisecond}
	run := func(mode string, opts *Options, env []string, use func(c *Conn)) {
		c, err := Start(context.Background(), childCommand(t, mode, env...), opts)
		if err != nil {
			t.Fatal(err)
		}
		use(c)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		run("echo", nil, nil, func(c *Conn) {
			c.Send(context.Background(), []byte(`{}`))
			recvTimeout(t, c)
		})
		run("echo", nil, nil, func(*Conn) {}) // never read
		run("crash", nil, nil, func(c *Conn) { <-c.Done() })
		run("ignore-term", grace, nil, func(c *Conn) { recvTimeout(t, c) })
		run("line", &Options{MaxMessageBytes: 10}, []string{"LINE_BYTES=100"}, func(c *Conn) { recvTimeout(t, c) })
		run("no-read", grace, nil, func(c *Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			c.Send(ctx, []byte(`{"pad":"`+strings.Repeat("p", 1<<20)+`"}`)) // partly written
		})
		run("spawn", grace, []string{"SPAWN_THEN=exit"}, func(c *Conn) { recvTimeout(t, c) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := runtime.NumGoroutine()
		if after <= before+1 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	c := startChild(b, "echo", nil)
	msg := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
