//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile creates (0600) and locks the file at path, exclusively and
// without waiting; ErrInUse when another holds it. The lock is a flock on
// a file of its own, not a POSIX lock like SQLite's: those belong to the
// process, so a second Store in this process would get one too, and
// closing any descriptor of a file drops them all. A flock belongs to its
// open file: a second Store is refused whether it is in this process or
// another, and no descriptor SQLite opens or closes touches it. The kernel
// drops it when the process ends, however it ends.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// modesMeaningful: file modes say who may read a file.
const modesMeaningful = true
