//go:build !unix

package h1

// open reports whether an idle connection can carry a request; without a way to look at it,
// it is taken as open, and a request that finds it closed before writing is sent again.
func (c *conn) open() bool { return true }
