//go:build !linux

package stdio

import "errors"

// waitExited is not available here: the process is reaped without first signalling what is left
// of its group.
func waitExited(int) error { return errors.ErrUnsupported }
