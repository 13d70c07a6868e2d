package contain_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// redisServer is a redis-server of the test's own on a free loopback port, which the test can
// stop (as a crash would) and start again on the same address, empty.
type redisServer struct {
	t      testing.TB
	bin    string
	dir    string
	addr   string
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan error
}

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server is not installed (apt-get install redis-server): the Redis backend is tested against a real server")
	}
	s := &redisServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.stop)
	// The port is free when asked for, and may be taken before redis-server binds it: then
	// another one is tried.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.addr = l.Addr().String()
		l.Close()
		if s.run() || attempt == 2 {
			break
		}
	}
	if s.cmd == nil {
		t.Fatalf("redis-server did not start:\n%s", s.out)
	}
	return s
}

// start starts the server again after stop, on the same address.
func (s *redisServer) start() {
	s.t.Helper()
	if !s.run() {
		s.t.Fatalf("redis-server did not start again on %s:\n%s", s.addr, s.out)
	}
}

// run starts redis-server and waits until it answers, reporting whether it does.
func (s *redisServer) run() bool {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no")
	s.out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !pingRedis(s.addr) {
		select {
		case <-exited:
			return false
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.cmd, s.exited = cmd, exited
	return true
}

// stop kills the server, as a crash would.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func pingRedis(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

var prefixes atomic.Int64

// newRedis returns a Redis backend on addr whose keys no other backend of the test sees.
func newRedis(t testing.TB, addr string) *contain.Redis {
	t.Helper()
	r, err := contain.NewRedis(context.Background(), contain.RedisOptions{
		Addr:   addr,
		Prefix: "test" + strconv.FormatInt(prefixes.Add(1), 10) + ":",
		// A loaded machine running the race detector can take more than the default to answer.
		Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// eventually polls cond until it holds, failing the test after 20 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// after waits until d has passed since t0.
func after(t testing.TB, t0 time.Time, d time.Duration) {
	t.Helper()
	eventually(t, "time passes", func() bool { return time.Since(t0) > d })
}
