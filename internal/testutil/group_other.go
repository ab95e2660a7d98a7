//go:build !unix

package testutil

import (
	"os"
	"syscall"
)

// groupAttr: without process groups, a child is on its own.
func groupAttr() *syscall.SysProcAttr { return nil }

// signalGroup signals p alone: there are no process groups to signal.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return p.Kill()
	}
	return p.Signal(sig)
}
