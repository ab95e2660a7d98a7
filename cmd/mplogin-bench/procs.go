package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the harness started. It runs in a process group of its
// own, so that stopping it reaches anything it started, and it gets SIGKILL
// if the harness dies without stopping it (Pdeathsig; the Go runtime does
// not end the threads that start processes here). When ctx ends, the group
// is killed too (exec.CommandContext with a group-wide Cancel).
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string        // its stderr
	line    chan string   // its first line on stdout
	done    chan struct{} // closed when it has exited and been waited for
	err     error         // Wait's error, once done is closed
}

// startChild starts bin with args; its stderr goes to logPath.
func startChild(ctx context.Context, name, logPath, bin string, args ...string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor after Start
	c := &child{name: name, logPath: logPath, line: make(chan string, 1), done: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, bin, args...)
	c.cmd.Stdin = nil
	c.cmd.Stdout = &firstLine{ch: c.line}
	c.cmd.Stderr = logf
	c.cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.cmd.Cancel = func() error { return killGroup(c.cmd.Process.Pid, syscall.SIGKILL) }
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func killGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's group, waits up to grace for the child
// to exit, then kills the group. It returns an error if the child did not
// exit cleanly (status 0) on SIGTERM. Calling it twice is harmless.
func (c *child) stop(grace time.Duration) error {
	if c.exited() {
		return c.exitError()
	}
	_ = killGroup(c.pid(), syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		// The group may still hold something the child started.
		_ = killGroup(c.pid(), syscall.SIGKILL)
		return c.exitError()
	case <-t.C:
		_ = killGroup(c.pid(), syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", c.name, grace)
	}
}

func (c *child) exitError() error {
	if c.err != nil {
		return fmt.Errorf("%s: %w; its stderr ends with:\n%s", c.name, c.err, c.logTail(2048))
	}
	return nil
}

// logTail returns the last n bytes of the child's stderr.
func (c *child) logTail(n int64) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

// firstLine is a Writer that delivers the first line written to it and
// discards the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	ch   chan<- string
}

func (w *firstLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.ch <- string(w.buf[:i])
		w.sent, w.buf = true, nil
	} else if len(w.buf) > 4096 {
		w.ch <- string(w.buf)
		w.sent, w.buf = true, nil
	}
	return len(p), nil
}

// waitLine waits up to timeout for the child's first line on stdout.
func (c *child) waitLine(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-c.line:
		return l, nil
	case <-c.done:
		// It may have printed its line and then exited.
		select {
		case l := <-c.line:
			return l, nil
		default:
		}
		return "", fmt.Errorf("%s exited before printing its address: %v\n%s", c.name, c.err, c.logTail(2048))
	case <-t.C:
		return "", fmt.Errorf("%s printed no address within %v\n%s", c.name, timeout, c.logTail(2048))
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// waitReady polls url until it answers 200, the child exits, or timeout.
func waitReady(ctx context.Context, c *child, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s exited before it was ready: %v\n%s", c.name, c.err, c.logTail(2048))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %v (last: %s)\n%s", c.name, timeout, last, c.logTail(2048))
		case <-tick.C:
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. The service takes its address from its configuration, and does not
// print the one it got when told port 0 at log level warn.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildMplogin builds ./cmd/mplogin of the module the go command finds from
// the working directory into dir.
func buildMplogin(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the mplogin module: run the harness from the repository (go run ./cmd/mplogin-bench)")
	}
	bin := filepath.Join(dir, "mplogin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mplogin")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mplogin: %w\n%s", err, out)
	}
	return bin, nil
}
