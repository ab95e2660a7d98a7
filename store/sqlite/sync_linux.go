package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// syncData makes f's data durable with fdatasync(2): the data, and the
// metadata needed to read it back (its size, its blocks), but not its
// timestamps. Every write changes a file's modification time, and on ext4
// syncing that too (fsync) commits the filesystem's journal, which the
// writer's next append to the WAL may then wait for. SQLite syncs its own
// files the same way.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		switch {
		case errors.Is(err, syscall.EINTR):
		case err != nil:
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		default:
			return nil
		}
	}
}
