// Package js_test runs the JavaScript client's tests from go test: the unit
// suites, and the end-to-end suite against an mplogin binary built here.
package js_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
)

const nodeTimeout = 2 * time.Minute

// summary matches the totals node's test runner prints at the end.
var summary = regexp.MustCompile(`^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) `)

func TestJS(t *testing.T) {
	nodePath := findNode(t)
	files, err := filepath.Glob(filepath.Join("test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files under test/: %v", err)
	}
	env := withoutVar(os.Environ(), "MPLOGIN_BIN")
	if testing.Short() {
		t.Log("-short: the end-to-end suite is skipped (it builds and runs mplogin)")
	} else {
		env = append(env, "MPLOGIN_BIN="+testutil.Build(t, testutil.Mplogin))
	}

	timeout := nodeTimeout
	if d, ok := t.Deadline(); ok && time.Until(d)-10*time.Second < timeout {
		timeout = time.Until(d) - 10*time.Second
	}
	// A process group of its own, so that a timeout also ends the mplogin
	// processes the end-to-end suite started, and anything left behind is
	// killed with it.
	out := &testutil.Buffer{}
	var w io.Writer = out
	if testing.Verbose() {
		w = io.MultiWriter(out, os.Stdout)
	}
	node := testutil.StartProcess(t, "node --test", nodePath, append([]string{"--test"}, files...),
		testutil.ProcessOptions{Env: env, Stdout: w, Stderr: w})
	select {
	case <-node.Done():
	case <-time.After(timeout):
		node.Kill()
		t.Fatalf("node --test did not finish within %v:\n%s", timeout, out.String())
	}
	node.Kill() // anything left behind
	if err := node.Err(); err != nil {
		t.Fatalf("node --test: %v\n%s", err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if summary.MatchString(line) {
			t.Log(line[2:])
		}
	}
}

// findNode is node's path; without node (20 or later) the test skips, or fails
// where CI=true, since CI provides it.
func findNode(t *testing.T) string {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		fail("node is not on PATH: the JavaScript client's tests need Node.js 20 or later")
		return ""
	}
	out, err := exec.Command(node, "--version").Output()
	m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(bytes.TrimSpace(out))
	if err != nil || m == nil {
		fail("cannot tell node's version (%v): the JavaScript client's tests need Node.js 20 or later", err)
		return ""
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 20 {
		fail("node is %s: the JavaScript client's tests need Node.js 20 or later", bytes.TrimSpace(out))
	}
	return node
}

func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
