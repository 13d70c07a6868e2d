// Package stdio runs an MCP server as a child process and exchanges newline-delimited JSON-RPC
// messages with it over its stdin and stdout.
//
// The package is a message-level transport for the gateway's stdio upstreams: one [Conn] is one
// incarnation of the server process. Request-id remapping, restarts (paced by [Backoff]) and
// protocol-era detection belong to the upstream layer above it.
//
// The command comes from the operator's configuration only; the gateway never passes caller
// input into the command line, the environment or the working directory (see [Command]).
//
// Process lifecycle, on Linux:
//   - The server leads a process group of its own, so the shutdown signals reach what it
//     starts (npx-style wrappers run the real server as a grandchild).
//   - When the server exits, whatever is left of its group is killed with SIGKILL before the
//     server is reaped: an incarnation ends as a whole, and no leftover process keeps the pipes
//     open. Holding the exited server unreaped until then guarantees the group id cannot have
//     been reused. Other Unix systems skip this step.
//   - If the gateway dies without calling Close, the server sees EOF on stdin, which the MCP
//     stdio transport defines as the signal to exit. (Pdeathsig is not used: Linux sends it
//     when the starting thread exits, not the gateway.)
package stdio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for [Options].
const (
	DefaultMaxMessageBytes = 16 << 20
	DefaultShutdownGrace   = 5 * time.Second
)

const (
	// stdoutBufferBytes is the read buffer for stdout; longer lines are assembled up to the
	// message limit.
	stdoutBufferBytes = 64 << 10
	// maxStderrLineBytes bounds one logged stderr line; the rest of a longer line is dropped.
	maxStderrLineBytes = 4 << 10
	// stderrQueueLines bounds the stderr lines waiting for the logger; when it is full, lines
	// are dropped and counted rather than making the server wait.
	stderrQueueLines = 256
	// exitDrainTimeout bounds each read of an output pipe once the process has been reaped
	// (see drainReader).
	exitDrainTimeout = 250 * time.Millisecond
	// killWait bounds the wait after SIGKILL, which only a process stuck in the kernel survives.
	killWait = 10 * time.Second
	// Non-JSON stdout lines: the first few are logged, then one in violationLogEvery.
	violationLogFirst = 10
	violationLogEvery = 1000
	violationExcerpt  = 200
)

// Sentinel errors; match them with [errors.Is].
var (
	// ErrExited reports that the server process is gone; the error wrapping it is an
	// [*ExitError] that says how it ended.
	ErrExited = errors.New("stdio: server process exited")
	// ErrClosed reports that [Conn.Close] was called.
	ErrClosed = errors.New("stdio: connection closed")
	// ErrMessageTooLarge reports a stdout line over [Options.MaxMessageBytes]. The connection
	// is shut down: the server is misbehaving and the stream cannot be trusted.
	ErrMessageTooLarge = errors.New("stdio: message from server exceeds the size limit")
	// ErrProtocol reports a server that broke the stdio transport rules in a way the
	// connection cannot survive, such as closing its stdout while it keeps running.
	ErrProtocol = errors.New("stdio: server violated the stdio transport")
	// ErrInvalidMessage reports a message that [Conn.Send] refuses to frame.
	ErrInvalidMessage = errors.New("stdio: invalid message")
)

// Options configures [Start]. The zero value, and a nil *Options, use the defaults.
type Options struct {
	// Logger receives the server's stderr lines (at info, with upstream=Name and
	// stream=stderr), protocol violations and lifecycle events. Nil discards them.
	Logger *slog.Logger
	// Name names the upstream in logs and errors; empty means the base name of the path.
	Name string
	// MaxMessageBytes bounds one message read from stdout, without its line terminator.
	// Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// ShutdownGrace is how long Close waits after closing stdin before sending SIGTERM, and
	// after SIGTERM before sending SIGKILL. Zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration
}

// ExitError describes how a server process ended. It matches [ErrExited].
type ExitError struct {
	Name   string        // upstream name
	PID    int           // process id
	Uptime time.Duration // time from start to exit
	// State is the process state from wait; nil only if waiting failed (see WaitErr).
	State   *os.ProcessState
	WaitErr error
}

func (e *ExitError) Error() string {
	how := "state unknown"
	switch {
	case e.State != nil:
		how = e.State.String()
	case e.WaitErr != nil:
		how = "wait failed: " + e.WaitErr.Error()
	}
	return fmt.Sprintf("stdio upstream %q (pid %d) exited after %s: %s", e.Name, e.PID, e.Uptime.Round(time.Millisecond), how)
}

// Is makes ExitError match ErrExited.
func (e *ExitError) Is(target error) bool { return target == ErrExited }

// Unwrap returns the wait error, if any.
func (e *ExitError) Unwrap() error { return e.WaitErr }

// ExitCode returns the exit code, or -1 if the process was killed by a signal or its state is
// unknown.
func (e *ExitError) ExitCode() int {
	if e.State == nil {
		return -1
	}
	return e.State.ExitCode()
}

// Conn is one running incarnation of a stdio server process. Its methods are safe for
// concurrent use. Always call Close, also after the process has exited on its own: it releases
// the goroutines and pipes of the connection.
type Conn struct {
	name    string
	pid     int
	log     *slog.Logger
	maxMsg  int
	grace   time.Duration
	started time.Time

	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	stderr *os.File

	// wlock has one slot, held by whoever is writing to stdin, so that messages never
	// interleave and a waiting Send can give up when its context ends.
	wlock chan struct{}

	msgs       chan []byte   // unbuffered: the stdout reader hands over one message at a time
	readerDone chan struct{} // closed when the stdout reader has stopped; readErr is set before
	readErr    error

	closing   chan struct{} // closed by Close
	closeOnce sync.Once

	shutdownOnce sync.Once
	shutdownDone chan struct{} // closed when the shutdown sequence has finished
	shutdownErr  error
	finishOnce   sync.Once

	mu     sync.Mutex // held while signalling the process group and while reaping
	reaped bool

	done    chan struct{} // closed when the process has exited and been reaped
	exitErr *ExitError

	stderrDropped atomic.Int64
	readers       sync.WaitGroup // stdout reader, stderr reader, stderr logger
}

// Start launches the server process described by cmd and connects to its stdin and stdout;
// its stderr is logged. ctx bounds only the start: cancelling it later does not affect the
// process, which lives until Close or until it exits.
func Start(ctx context.Context, cmd Command, opts *Options) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = filepath.Base(cmd.Path)
	}
	switch {
	case o.MaxMessageBytes < 0:
		return nil, fmt.Errorf("start stdio upstream %q: MaxMessageBytes is negative (%d)", o.Name, o.MaxMessageBytes)
	case o.MaxMessageBytes == 0:
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	switch {
	case o.ShutdownGrace < 0:
		return nil, fmt.Errorf("start stdio upstream %q: ShutdownGrace is negative (%s)", o.Name, o.ShutdownGrace)
	case o.ShutdownGrace == 0:
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	path, err := cmd.resolve()
	if err == nil {
		err = checkArgs(cmd.Args)
	}
	if err == nil {
		err = checkEnv(cmd.Env)
	}
	if err != nil {
		return nil, fmt.Errorf("start stdio upstream %q: %w", o.Name, err)
	}

	// Pipes made here rather than by exec.Cmd: exec's StdoutPipe is closed by Wait, which
	// would lose what the process wrote just before exiting, and any other writer would cost
	// a copying goroutine. Our ends are close-on-exec, so no other child inherits them.
	var pipes [6]*os.File // stdin r/w, stdout r/w, stderr r/w
	closeAll := func(fs ...*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := 0; i < len(pipes); i += 2 {
		if pipes[i], pipes[i+1], err = os.Pipe(); err != nil {
			closeAll(pipes[:]...)
			return nil, fmt.Errorf("start stdio upstream %q: %w", o.Name, err)
		}
	}
	stdinR, stdinW, stdoutR, stdoutW, stderrR, stderrW := pipes[0], pipes[1], pipes[2], pipes[3], pipes[4], pipes[5]

	ec := &exec.Cmd{
		Path: path,
		Args: append([]string{cmd.Path}, cmd.Args...),
		// Never nil: a nil Env would make exec hand the gateway's environment to the process.
		Env:         append(make([]string, 0, len(cmd.Env)), cmd.Env...),
		Dir:         cmd.Dir,
		Stdin:       stdinR,
		Stdout:      stdoutW,
		Stderr:      stderrW,
		SysProcAttr: sysProcAttr(),
	}
	err = ec.Start()
	closeAll(stdinR, stdoutW, stderrW) // the child holds its own copies now
	if err != nil {
		closeAll(stdinW, stdoutR, stderrR)
		return nil, fmt.Errorf("start stdio upstream %q: %w", o.Name, err)
	}

	c := &Conn{
		name:         o.Name,
		pid:          ec.Process.Pid,
		maxMsg:       o.MaxMessageBytes,
		grace:        o.ShutdownGrace,
		started:      time.Now(),
		cmd:          ec,
		stdin:        stdinW,
		stdout:       stdoutR,
		stderr:       stderrR,
		wlock:        make(chan struct{}, 1),
		msgs:         make(chan []byte),
		readerDone:   make(chan struct{}),
		closing:      make(chan struct{}),
		shutdownDone: make(chan struct{}),
		done:         make(chan struct{}),
	}
	c.log = o.Logger.With("upstream", c.name, "pid", c.pid)
	c.log.Debug("stdio upstream started", "path", path)

	stderrLines := make(chan stderrLine, stderrQueueLines)
	c.readers.Add(3)
	go c.reap()
	go c.readStdout()
	go c.readStderr(stderrLines)
	go c.logStderr(stderrLines)
	return c, nil
}

// PID returns the process id of the server.
func (c *Conn) PID() int { return c.pid }

// Done returns a channel that is closed when the server process has exited.
func (c *Conn) Done() <-chan struct{} { return c.done }

// ExitErr returns nil while the process runs, and afterwards an [*ExitError] (matching
// [ErrExited]) that says how it ended, also when it exited with status 0.
func (c *Conn) ExitErr() error {
	select {
	case <-c.done:
		return c.exitErr
	default:
		return nil
	}
}

// Send writes msg and a newline to the server's stdin. msg must be one JSON-RPC message on a
// single line: an empty message or one containing a raw CR or LF is refused with
// ErrInvalidMessage (JSON never needs either outside strings, where they are escaped). Send does
// not otherwise validate msg.
//
// Concurrent Sends never interleave. If ctx ends while Send waits for its turn or for the
// server to read, Send returns the context's error; if by then part of msg was already written,
// the rest is written in the background so that the stream stays framed, and the message may
// still reach the server.
func (c *Conn) Send(ctx context.Context, msg []byte) error {
	if len(msg) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidMessage)
	}
	// Two IndexByte scans (vectorised) are far faster than one IndexAny on large messages.
	for _, b := range []byte{'\n', '\r'} {
		if i := bytes.IndexByte(msg, b); i >= 0 {
			return fmt.Errorf("%w: raw line break at byte %d; a stdio message must be a single line", ErrInvalidMessage, i)
		}
	}
	if err := c.stopped(); err != nil {
		return err
	}
	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		return c.ctxErr("send to", ctx)
	case <-c.closing:
		return c.closedErr()
	case <-c.done:
		return c.stopped()
	}
	if ctx.Err() != nil {
		<-c.wlock
		return c.ctxErr("send to", ctx)
	}

	buf := make([]byte, len(msg)+1)
	copy(buf, msg)
	buf[len(msg)] = '\n'
	n, err := c.write(ctx, buf)
	if err == nil {
		<-c.wlock
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		if n == 0 {
			<-c.wlock
			return c.ctxErr("send to", ctx)
		}
		// Keep the lock until the message is complete; closing stdin ends this write if the
		// server never reads again.
		go func() {
			_, _ = c.stdin.Write(buf[n:])
			<-c.wlock
		}()
		return fmt.Errorf("send to stdio upstream %q: %w (%d of %d bytes were written; the rest follows in the background)", c.name, ctx.Err(), n, len(buf))
	}
	<-c.wlock
	switch {
	case errors.Is(err, os.ErrClosed):
		return c.closedErr()
	case errors.Is(err, syscall.EPIPE):
		select {
		case <-c.done:
			return fmt.Errorf("send to stdio upstream %q: %w", c.name, c.exitErr)
		default:
			return fmt.Errorf("send to stdio upstream %q: server closed its stdin: %w", c.name, err)
		}
	}
	return fmt.Errorf("send to stdio upstream %q: %w", c.name, err)
}

// write writes buf to stdin, cutting the write short when ctx ends.
func (c *Conn) write(ctx context.Context, buf []byte) (int, error) {
	if ctx.Done() == nil {
		return c.stdin.Write(buf)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.stdin.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	n, err := c.stdin.Write(buf)
	if !stop() {
		<-fired
		_ = c.stdin.SetWriteDeadline(time.Time{})
	}
	return n, err
}

// Recv returns the next message from the server's stdout. Blank lines are skipped; lines that
// do not start like a JSON object or array (log output printed to stdout by mistake) are
// logged as protocol violations and skipped. Whether a message is valid JSON-RPC is for the
// caller's parser to decide.
//
// Once stdout has ended and the process has exited, Recv returns an error matching ErrExited
// (an [*ExitError]); after Close it returns ErrClosed. A line over MaxMessageBytes, or a server
// that closes stdout but keeps running, ends the connection: Recv then returns
// ErrMessageTooLarge or ErrProtocol and the process is shut down as by Close. Messages
// written before the process exited are delivered before the exit is reported.
func (c *Conn) Recv(ctx context.Context) ([]byte, error) {
	select {
	case msg := <-c.msgs:
		return msg, nil
	case <-c.readerDone:
		return nil, c.recvErr()
	case <-c.closing:
		return nil, c.closedErr()
	case <-ctx.Done():
		return nil, c.ctxErr("receive from", ctx)
	}
}

// recvErr is the error Recv reports once the stdout reader has stopped.
func (c *Conn) recvErr() error {
	select {
	case <-c.closing:
		return c.closedErr()
	default:
	}
	if c.readErr != nil {
		return c.readErr
	}
	if err := c.stopped(); err != nil {
		return err
	}
	return c.closedErr() // not reached: the reader stops only after exit or Close
}

// stopped returns ErrClosed after Close, the exit error once the process is gone, and nil
// while the connection is usable.
func (c *Conn) stopped() error {
	select {
	case <-c.closing:
		return c.closedErr()
	default:
	}
	select {
	case <-c.done:
		return c.exitErr
	default:
		return nil
	}
}

// Close shuts the server down as the MCP stdio transport specifies: it closes the server's
// stdin, waits up to ShutdownGrace for it to exit, then sends SIGTERM to its process group,
// waits up to ShutdownGrace again, then sends SIGKILL. Close returns once the process has been
// reaped and the connection's goroutines have stopped; how the process ended is in ExitErr.
// Close is idempotent; every call waits and returns the same result, which is nil unless the
// process survived SIGKILL.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	c.startShutdown()
	<-c.shutdownDone
	// Take the write slot for good: stdin is closed, so a background write has ended or is
	// about to, and no Send can start a new one.
	c.finishOnce.Do(func() {
		c.wlock <- struct{}{}
		if c.shutdownErr == nil {
			c.readers.Wait()
		}
	})
	return c.shutdownErr
}

// startShutdown starts the shutdown sequence once, for Close or for a fatal stream error.
func (c *Conn) startShutdown() {
	c.shutdownOnce.Do(func() { go c.shutdown() })
}

// shutdown runs the MCP stdio shutdown sequence: close stdin, SIGTERM, SIGKILL.
func (c *Conn) shutdown() {
	defer close(c.shutdownDone)
	_ = c.stdin.Close()
	if c.waitExit(c.grace) {
		return
	}
	c.log.Warn("stdio upstream still running after stdin was closed; sending SIGTERM", "grace", c.grace)
	c.signal(syscall.SIGTERM)
	if c.waitExit(c.grace) {
		return
	}
	c.log.Warn("stdio upstream still running after SIGTERM; sending SIGKILL", "grace", c.grace)
	c.signal(syscall.SIGKILL)
	if c.waitExit(killWait) {
		return
	}
	c.shutdownErr = fmt.Errorf("stdio upstream %q (pid %d) did not exit %s after SIGKILL", c.name, c.pid, killWait)
	c.log.Error("stdio upstream survived SIGKILL", "waited", killWait)
}

// waitExit reports whether the process exits within d.
func (c *Conn) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// signal sends sig to the process group, unless the leader has been reaped: its id may then
// belong to someone else.
func (c *Conn) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reaped {
		return
	}
	if err := signalGroup(c.cmd.Process, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		c.log.Warn("signal stdio upstream", "signal", sig.String(), "err", err)
	}
}

// reap waits for the process to exit, kills whatever else is left of its process group, reaps
// it and closes done.
func (c *Conn) reap() {
	if waitExited(c.pid) == nil {
		// The leader is a zombie and still holds the group id: the rest of this incarnation
		// (grandchildren that would otherwise keep the pipes open) can be killed safely.
		c.mu.Lock()
		if err := signalGroup(c.cmd.Process, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			c.log.Warn("kill what is left of the stdio upstream's process group", "err", err)
		}
		waitErr := c.cmd.Wait()
		c.reaped = true
		c.mu.Unlock()
		c.exited(waitErr)
		return
	}
	waitErr := c.cmd.Wait()
	c.mu.Lock()
	c.reaped = true
	c.mu.Unlock()
	c.exited(waitErr)
}

// exited records how the process ended and closes done.
func (c *Conn) exited(waitErr error) {
	e := &ExitError{Name: c.name, PID: c.pid, Uptime: time.Since(c.started), State: c.cmd.ProcessState}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		e.WaitErr = waitErr
	}
	c.exitErr = e
	// Wake readers blocked on an empty pipe; see drainReader.
	deadline := time.Now().Add(exitDrainTimeout)
	_ = c.stdout.SetReadDeadline(deadline)
	_ = c.stderr.SetReadDeadline(deadline)
	level := slog.LevelInfo
	select {
	case <-c.closing:
	default:
		level = slog.LevelWarn // nobody asked it to stop
	}
	c.log.Log(context.Background(), level, "stdio upstream exited", "status", e.statusString(), "uptime", e.Uptime.Round(time.Millisecond))
	close(c.done)
}

func (e *ExitError) statusString() string {
	if e.State == nil {
		return "unknown"
	}
	return e.State.String()
}

// errStopped ends the stdout reader when Close was called.
var errStopped = errors.New("stopped")

// readStdout delivers stdout messages to Recv until stdout ends, then records why.
func (c *Conn) readStdout() {
	defer c.readers.Done()
	defer close(c.readerDone)
	defer c.stdout.Close()

	err := c.readMessages()
	switch {
	case err == errStopped:
	case err != nil:
		c.readErr = err
		c.log.Error("stdio upstream connection failed; shutting it down", "err", err)
		c.startShutdown()
	default:
		// stdout ended. The process normally exits at the same moment; wait for it so that
		// Recv can report how it ended.
		t := time.NewTimer(c.grace)
		defer t.Stop()
		select {
		case <-c.done:
		case <-c.closing:
		case <-t.C:
			c.readErr = fmt.Errorf("%w: upstream %q (pid %d) closed its stdout but kept running", ErrProtocol, c.name, c.pid)
			c.log.Error("stdio upstream closed its stdout but kept running; shutting it down")
			c.startShutdown()
		}
	}
}

// readMessages reads stdout lines and hands messages to Recv. It returns nil when stdout ends.
func (c *Conn) readMessages() error {
	br := bufio.NewReaderSize(drainReader{c.stdout, c.done}, stdoutBufferBytes)
	// A line longer than the buffer is kept as the buffer-sized pieces read so far and joined
	// once at its end: one allocation and two copies, where growing one slice would copy and
	// clear it again at every step.
	var long [][]byte
	longBytes := 0
	var violations int
	for {
		frag, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, bytes.Clone(frag))
			longBytes += len(frag)
			// +1: a trailing CR of a CRLF terminator is not part of the message.
			if longBytes > c.maxMsg+1 {
				return fmt.Errorf("%w: upstream %q (pid %d) wrote a line of more than %d bytes to stdout", ErrMessageTooLarge, c.name, c.pid, c.maxMsg)
			}
			continue
		}
		if err != nil {
			if n := longBytes + len(frag); n > 0 {
				c.log.Warn("stdio upstream left an unterminated line on stdout; discarded", "stream", "stdout", "bytes", n)
			}
			if err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return fmt.Errorf("read stdout of stdio upstream %q: %w", c.name, err)
		}
		line, owned := frag, false
		if long != nil {
			line, owned = bytes.Join(append(long, frag), nil), true
			long, longBytes = nil, 0
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		if len(line) > c.maxMsg {
			return fmt.Errorf("%w: upstream %q (pid %d) wrote a line of %d bytes to stdout (limit %d)", ErrMessageTooLarge, c.name, c.pid, len(line), c.maxMsg)
		}
		switch first := firstNonSpace(line); first {
		case 0:
			continue // blank line
		case '{', '[':
		default:
			violations++
			if violations <= violationLogFirst || violations%violationLogEvery == 0 {
				c.log.Warn("stdio upstream wrote a non-JSON line to stdout; skipped",
					"stream", "stdout", "line", excerpt(line, violationExcerpt), "bytes", len(line), "violations", violations)
			}
			continue
		}
		if !owned {
			line = bytes.Clone(line)
		}
		select {
		case c.msgs <- line:
		case <-c.closing:
			return errStopped
		}
	}
}

// drainReader reads one of the process's output pipes. Once the process has exited, the pipe
// holds at most what it wrote before exiting, and only a process that escaped its group could
// still be holding the pipe open: each read then waits at most exitDrainTimeout for data, so
// the reader ends, yet a slow consumer still receives everything that was written.
type drainReader struct {
	f      *os.File
	exited <-chan struct{}
}

func (r drainReader) Read(p []byte) (int, error) {
	select {
	case <-r.exited:
		_ = r.f.SetReadDeadline(time.Now().Add(exitDrainTimeout))
	default:
	}
	return r.f.Read(p)
}

// firstNonSpace returns the first byte of b that is not JSON whitespace, or 0 if none.
func firstNonSpace(b []byte) byte {
	for _, ch := range b {
		switch ch {
		case ' ', '\t', '\r', '\n':
		default:
			return ch
		}
	}
	return 0
}

// excerpt returns at most n bytes of b as valid UTF-8, marked when cut.
func excerpt(b []byte, n int) string {
	cut := len(b) > n
	if cut {
		b = b[:n]
	}
	s := string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
	if cut {
		s += "…"
	}
	return s
}

func (c *Conn) closedErr() error {
	return fmt.Errorf("stdio upstream %q: %w", c.name, ErrClosed)
}

// ctxErr reports that ctx ended during op; it matches ctx.Err().
func (c *Conn) ctxErr(op string, ctx context.Context) error {
	return fmt.Errorf("%s stdio upstream %q: %w", op, c.name, ctx.Err())
}
