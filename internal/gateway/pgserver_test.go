package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpguard/mcpguard/internal/testenv"
)

// pgServer is a PostgreSQL server of the test's own — a new cluster in a temporary directory,
// on a free loopback port — which the test can stop, as an outage would, and start again on
// the same port with its data. The machine's own server is never touched. It runs as the
// postgres account (PostgreSQL refuses root), so the test needs root and Debian's PostgreSQL.
type pgServer struct {
	t         testing.TB
	bin, data string
	port      string
	cred      *syscall.Credential
	cmd       *exec.Cmd
	out       *bytes.Buffer
	exited    chan error
}

func startPostgres(t testing.TB) *pgServer {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		testenv.Missing(t, "PostgreSQL's server binaries are not installed (apt-get install postgresql): the outage test runs a server of its own")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the outage test starts its own PostgreSQL as the postgres account, which needs root")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		testenv.Missing(t, "there is no postgres account to run the test's own PostgreSQL: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Under a directory of its own that the postgres account may enter (a test's TempDir is
	// private to root).
	root, err := os.MkdirTemp("", "mcpguard-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &pgServer{t: t, bin: filepath.Dir(bins[len(bins)-1]), data: filepath.Join(root, "data"),
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := os.Mkdir(s.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(s.data, uid, gid); err != nil {
		t.Fatal(err)
	}
	initdb := exec.Command(filepath.Join(s.bin, "initdb"), "-D", s.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Dir = root
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(s.stop)
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, s.port, _ = net.SplitHostPort(l.Addr().String())
		l.Close()
		if s.run() || attempt == 2 {
			break
		}
	}
	if s.cmd == nil {
		t.Fatalf("the test's PostgreSQL did not start:\n%s", s.out)
	}
	return s
}

// dsn is the server's database URL.
func (s *pgServer) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable&connect_timeout=2", s.port)
}

// run starts the server and waits until it answers, reporting whether it does.
func (s *pgServer) run() bool {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data, "-p", s.port, "-k", s.data,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Dir = s.data
	s.out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting postgres: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.dsn())
		if err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		cancel()
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return false
}

// stop shuts the server down at once (SIGINT: PostgreSQL's fast shutdown, every connection
// cut) and waits until it has exited.
func (s *pgServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// start starts the server again after stop, on the same port, with its data.
func (s *pgServer) start() {
	s.t.Helper()
	if !s.run() {
		s.t.Fatalf("the test's PostgreSQL did not start again on port %s:\n%s", s.port, s.out)
	}
}
