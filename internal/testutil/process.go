package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build returns the path of the program pkg (the import path of a main
// package) built for this run of the tests. The first call builds it and
// later calls find it, so that a program is built once however many tests
// run it; two tests building at once each build, and either result is the
// same program. It goes beside the test binary: go test's work directory,
// which go test removes when the run ends, so that nothing is left behind
// and no later run finds a stale build.
//
// Build skips the test with -short (building and running a program is not
// short) and fails it when the program does not build.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a program; skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	sum := sha256.Sum256([]byte(pkg))
	dir := filepath.Join(filepath.Dir(exe), "testutil-build", hex.EncodeToString(sum[:8]))
	bin := filepath.Join(dir, path.Base(pkg))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	tmp, err := os.MkdirTemp(dir, "tmp-")
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("go", "build", "-o", filepath.Join(tmp, path.Base(pkg)), pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	// Whole or not at all, for a test that finds it.
	if err := os.Rename(filepath.Join(tmp, path.Base(pkg)), bin); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return bin
}

// ProcessOptions says how StartProcess runs a program.
type ProcessOptions struct {
	// Dir is the working directory; "" is the test's.
	Dir string
	// Env is the whole environment, as in exec.Cmd; nil is the test's.
	Env []string
	// Ready matches the line, on stdout or stderr, by which the program
	// says it is ready (listening, say); WaitReady waits for it.
	Ready *regexp.Regexp
	// Stdout and Stderr receive what the program writes there. Unset, it
	// is collected in a Buffer (Process.Stdout, Process.Stderr); a program
	// that writes without bound (a soak's log) needs a writer that keeps
	// only what the test looks at.
	Stdout, Stderr io.Writer
}

// Process is a program a test runs. It runs in a process group of its
// own, so that stopping it reaches whatever it started (a shell's command,
// go run's program), and on Linux it is killed when the test process dies
// without stopping it. The group is killed when the test ends.
type Process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *Buffer // nil where ProcessOptions gave a writer

	ready     chan struct{} // closed when the Ready line was seen
	readyMu   sync.Mutex
	readyRe   *regexp.Regexp
	readyLine []string // the Ready line's submatches

	done chan struct{} // closed when the process has exited and been waited for
	err  error         // Wait's result, once done is closed
}

// StartProcess starts the program at path with args; name is what errors
// call it.
func StartProcess(t testing.TB, name, path string, args []string, o ProcessOptions) *Process {
	t.Helper()
	p := &Process{name: name, cmd: exec.Command(path, args...), readyRe: o.Ready,
		ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = o.Dir, o.Env
	p.cmd.SysProcAttr = groupAttr()
	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		p.stdout = &Buffer{}
		stdout = p.stdout
	}
	if stderr == nil {
		p.stderr = &Buffer{}
		stderr = p.stderr
	}
	p.cmd.Stdout, p.cmd.Stderr = &lineWatch{p: p, next: stdout}, &lineWatch{p: p, next: stderr}
	// A child that leaves its output open in something it started must
	// not hold up Wait for ever.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Pid is the process's id, and its group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended (exec.Cmd.Wait), once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stdout and Stderr are what the process wrote there so far, where
// ProcessOptions gave no writer of its own.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr: see Stdout.
func (p *Process) Stderr() string { return p.stderr.String() }

// WaitReady waits up to timeout for the line ProcessOptions.Ready matches,
// and returns its submatches. It fails at once when the process exits
// first.
func (p *Process) WaitReady(timeout time.Duration) ([]string, error) {
	if p.readyRe == nil {
		return nil, fmt.Errorf("%s: no Ready line to wait for", p.name)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.ready:
	case <-p.done:
		// Its output is read to the end before done: a line written
		// before it exited has been seen.
		select {
		case <-p.ready:
		default:
			return nil, fmt.Errorf("%s exited before it was ready: %v\n%s", p.name, p.err, p.stderrTail())
		}
	case <-t.C:
		return nil, fmt.Errorf("%s not ready within %v\n%s", p.name, timeout, p.stderrTail())
	}
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	return p.readyLine, nil
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error { return signalGroup(p.cmd.Process, sig) }

// Stop sends sig to the process's group and waits up to grace for the
// process to exit, then kills the group. It returns nil only when the
// process exited with status 0 on sig; an error that wraps
// *exec.ExitError when it exited otherwise.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) error {
	if p.Exited() {
		if p.err != nil {
			return fmt.Errorf("%s had already exited: %w", p.name, p.err)
		}
		return fmt.Errorf("%s had already exited", p.name)
	}
	_ = p.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		_ = p.Signal(syscall.SIGKILL) // whatever it left in its group
		if p.err != nil {
			return fmt.Errorf("%s: exit after %v: %w", p.name, sig, p.err)
		}
		return nil
	case <-t.C:
		p.Kill()
		return fmt.Errorf("%s did not stop within %v of %v; killed", p.name, grace, sig)
	}
}

// Kill kills the process's group at once and waits for the process. It
// may be called at any time, and again.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// stderrTail is the end of what the process wrote to stderr, for errors.
func (p *Process) stderrTail() string {
	if p.stderr == nil {
		return ""
	}
	s := p.stderr.String()
	if len(s) > 4096 {
		s = "…" + s[len(s)-4096:]
	}
	return s
}

// lineWatch passes a stream on to next, looking at each line for the
// process's Ready line until it has been seen.
type lineWatch struct {
	p       *Process
	next    io.Writer
	partial []byte
}

func (w *lineWatch) Write(b []byte) (int, error) {
	n, err := w.next.Write(b)
	p := w.p
	if p.readyRe == nil {
		return n, err
	}
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	if p.readyLine != nil {
		return n, err
	}
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
		if m := p.readyRe.FindStringSubmatch(line); m != nil {
			p.readyLine, w.partial = m, nil
			close(p.ready)
			break
		}
	}
	if len(w.partial) > 64<<10 { // no line this long is the Ready line
		w.partial = nil
	}
	return n, err
}
