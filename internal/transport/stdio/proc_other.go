//go:build !unix

package stdio

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr returns nil: process groups are a Unix notion.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup kills p; there is no group and no SIGTERM here, so a SIGTERM request is refused
// and the shutdown sequence moves on to the kill.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if sig != syscall.SIGKILL {
		return errors.ErrUnsupported
	}
	return p.Kill()
}
