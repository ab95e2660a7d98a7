package testutil

import "syscall"

// groupAttr puts a child in a process group of its own, and has the kernel
// kill it when the thread that started it, and so the test process, dies.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
