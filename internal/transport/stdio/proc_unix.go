//go:build unix

package stdio

import (
	"os"
	"syscall"
)

// sysProcAttr puts the server in a process group of its own, led by the server, so that
// signalGroup reaches the processes it starts too (npx and similar wrappers run the real
// server as a grandchild).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to every process in the group that p leads. The caller guarantees that
// p has not been reaped yet, so its id still names this group and no other.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	return syscall.Kill(-p.Pid, sig)
}
