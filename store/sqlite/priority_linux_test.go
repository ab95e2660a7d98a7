package sqlite

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mplogin/mplogin/internal/testutil"
)

// TestRaiseWriter: with RaiseWriter, the writer's thread runs at nice -10
// wherever the process may ask for it, and the Store says so at info where
// it may not. Which of the two this process is, the test finds out by
// asking for it on a thread of its own.
func TestRaiseWriter(t *testing.T) {
	var logged testutil.Buffer
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "p.db"),
		Options{RaiseWriter: true, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	// A write has gone through the batcher: it has raised its thread, or
	// tried to, before taking any.
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	allowed := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread ends with this goroutine.
		runtime.LockOSThread()
		allowed <- syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), writerNice)
	}()
	tid := int(s.writerThread.Load())
	if err := <-allowed; err != nil {
		if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
			t.Fatalf("setpriority on a thread of the test: %v", err)
		}
		if tid != 0 {
			t.Fatalf("the writer's thread %d is raised where the test's may not be", tid)
		}
		if !strings.Contains(logged.String(), "level=INFO msg=\"sqlite: the writer runs at the priority of the process's other threads") {
			t.Fatalf("not raised, and not said so: %q", logged.String())
		}
		t.Logf("this process may not raise a thread (%v): the writer runs unraised, as logged", err)
		return
	}
	if tid == 0 {
		t.Fatalf("the process may raise a thread, and the writer's is not: %q", logged.String())
	}
	if got := threadNice(t, tid); got != writerNice {
		t.Fatalf("the writer's thread %d runs at nice %d, want %d", tid, got, writerNice)
	}
	if got := threadNice(t, syscall.Gettid()); got == writerNice {
		t.Fatalf("the test's own thread runs at nice %d too: the raise was not the writer's alone", got)
	}
}

// threadNice reads a thread's nice value from /proc (the 19th field of its
// stat, counted after the command's closing parenthesis).
func threadNice(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		t.Fatal(err)
	}
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	fields := strings.Fields(rest)
	// After the command: state is field 3, nice field 19.
	n, err := strconv.Atoi(fields[19-3])
	if err != nil {
		t.Fatalf("stat of thread %d: %q: %v", tid, b, err)
	}
	return n
}
