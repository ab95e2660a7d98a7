package sqlite_test

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/store/sqlite"
)

// holderEnv, when set, makes the test binary a process that holds the
// store at that path open until its stdin closes (TestLockHolder).
const holderEnv = "MPLOGIN_SQLITE_LOCK_HOLDER"

// TestLockHolder is the other process of TestOpenRefusedWhileAnotherHoldsIt.
func TestLockHolder(t *testing.T) {
	path := os.Getenv(holderEnv)
	if path == "" {
		t.Skip("run by TestOpenRefusedWhileAnotherHoldsIt")
	}
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{CacheSessions: 10})
	if err != nil {
		t.Fatalf("holder: Open: %v", err)
	}
	os.Stdout.WriteString("\nopen\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		t.Fatalf("holder: Close: %v", err)
	}
}

// TestOpenRefusedWhileAnotherHoldsIt: while another process has the file
// open, Open fails with ErrInUse and an error naming the file; once that
// process has ended, Open succeeds.
func TestOpenRefusedWhileAnotherHoldsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), holderEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	var out strings.Builder
	for lines.Scan() && lines.Text() != "open" {
		out.WriteString(lines.Text() + "\n")
	}
	if lines.Err() != nil || lines.Text() != "open" {
		t.Fatalf("the other process did not open the store: %v\n%s%s", lines.Err(), out.String(), stderr.String())
	}

	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded while another process had the file open")
	}
	if !errors.Is(err, sqlite.ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open while another process has the file: %v; want ErrInUse naming %s", err, path)
	}
	t.Logf("refused: %v", err)

	stdin.Close()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the other process: %v\n%s", err, stderr.String())
	}
	s = mustOpen(t, path, sqlite.Options{})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after the other process ended: %v", err)
	}
}

// TestOpenRefusedTwiceInOneProcess: each Store has caches of its own, so a
// second Store of one file is refused in the same process too, and
// allowed again once the first is closed.
func TestOpenRefusedTwiceInOneProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twice.db")
	s := mustOpen(t, path, sqlite.Options{})
	if s2, err := sqlite.Open(t.Context(), path, sqlite.Options{}); !errors.Is(err, sqlite.ErrInUse) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second Open of an open file: %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, sqlite.Options{})
}
