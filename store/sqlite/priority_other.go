//go:build !linux

package sqlite

import "errors"

// raiseThread: only Linux gives a thread a priority of its own.
func raiseThread() (tid int, err error) {
	return 0, errors.ErrUnsupported
}
