//go:build unix

package h1

import "syscall"

// open reports whether an idle connection can carry a request: the upstream has neither
// closed it nor sent anything on it. It looks without blocking and without taking any byte.
func (c *conn) open() bool {
	if c.raw == nil {
		return true
	}
	if c.peek == nil {
		var buf [1]byte
		c.peek = func(fd uintptr) bool {
			_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			c.alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
			return true
		}
	}
	c.alive = false
	err := c.raw.Read(c.peek)
	return err == nil && c.alive
}
