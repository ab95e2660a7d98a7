//go:build !linux

package sqlite

import "os"

// syncData makes f's data durable; where there is no fdatasync(2), with
// fsync.
func syncData(f *os.File) error { return f.Sync() }
