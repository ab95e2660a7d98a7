//go:build linux

package sqlite

import (
	"runtime"
	"syscall"
)

// raiseThread gives the calling goroutine a thread of its own, for good, and
// asks the kernel to schedule that thread at writerNice. A goroutine that
// ends while locked takes its thread with it, so no other goroutine ever
// runs at the raised priority. It returns the thread's id; on failure, the
// goroutine is unlocked again.
func raiseThread() (tid int, err error) {
	runtime.LockOSThread()
	tid = syscall.Gettid()
	// On Linux a nice value belongs to a thread: PRIO_PROCESS with a
	// thread id changes that thread alone.
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, writerNice); err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	return tid, nil
}
