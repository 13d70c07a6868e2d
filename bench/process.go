package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxLogLines bounds the lines of a child's output kept for error messages.
const maxLogLines = 40

// child is a process the harness started: the gateway, a peer or the echo upstream.
type child struct {
	name string
	cmd  *exec.Cmd
	url  string
	done chan struct{}

	mu   sync.Mutex
	tail []string // last lines of its output
	err  error    // how it exited
}

// startChild runs argv with env (nil: the harness's own environment) and waits until it prints
// a line containing marker followed by a URL (or until ctx ends); with no marker it returns once
// the process has started, and the caller sets url and polls it. Its output is drained for as
// long as it runs.
func startChild(ctx context.Context, name string, argv []string, marker string, env []string) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdin = nil
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	urlc := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.tail = append(c.tail, line)
			if len(c.tail) > maxLogLines {
				c.tail = c.tail[len(c.tail)-maxLogLines:]
			}
			c.mu.Unlock()
			if _, rest, ok := strings.Cut(line, marker); ok && marker != "" {
				select {
				case urlc <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		<-drained
		err := cmd.Wait()
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	}()
	if marker == "" {
		return c, nil
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case c.url = <-urlc:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before serving: %v\n%s", name, c.exitErr(), c.output())
	case <-t.C:
		c.stop()
		return nil, fmt.Errorf("%s did not start within 30s\n%s", name, c.output())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exitErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// output is the tail of what the process printed, for error messages.
func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "  " + strings.Join(c.tail, "\n  ")
}

// alive reports an error when the process has exited.
func (c *child) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited: %v\n%s", c.name, c.exitErr(), c.output())
	default:
		return nil
	}
}

// stop asks the process to exit (SIGTERM) and kills it after 10 seconds.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// buildGateway compiles cmd/mcpguard once into dir.
func buildGateway(ctx context.Context, root, dir string) (string, error) {
	bin := dir + "/mcpguard"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mcpguard")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mcpguard: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the main module (where go.mod is).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the harness inside the mcpguard module (go run ./bench)")
	}
	return strings.TrimSuffix(mod, "/go.mod"), nil
}
