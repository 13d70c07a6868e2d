package stdio

import (
	"errors"

	"golang.org/x/sys/unix"
)

// waitExited blocks until the process pid has exited, leaving it unreaped: as a zombie it keeps
// its id, and with it the id of its process group, reserved until exec.Cmd.Wait reaps it. This
// lets the rest of the group be signalled after the leader is gone without any risk of hitting
// a group that reused the id.
func waitExited(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
